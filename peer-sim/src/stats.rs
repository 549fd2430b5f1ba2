//! Latency accounting.

use std::time::Duration;

/// Nearest-rank percentiles of a set of latencies.
#[derive(Clone, Debug, PartialEq)]
pub struct Percentiles {
    sorted: Vec<Duration>,
}

impl Percentiles {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Percentiles { sorted: samples }
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The smallest sample that at least `p` percent of the samples do not exceed.
    pub fn at(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    pub fn max(&self) -> Duration {
        self.sorted.last().copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let ms = |v: u64| Duration::from_millis(v);
        let p = Percentiles::new((1..=100).rev().map(ms).collect());
        assert_eq!(p.at(50.0), ms(50));
        assert_eq!(p.at(99.0), ms(99));
        assert_eq!(p.at(100.0), ms(100));
        assert_eq!(p.at(0.0), ms(1));
        assert_eq!(p.max(), ms(100));
        let one = Percentiles::new(vec![ms(7)]);
        assert_eq!(one.at(99.9), ms(7));
        assert_eq!(Percentiles::new(vec![]).at(50.0), Duration::ZERO);
    }
}
