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
        // The tolerance keeps decimal percentiles exact: 99.9 % of 2000 is rank 1998, although
        // 0.999 × 2000 comes out a hair above 1998 in binary floating point.
        let rank = (p * self.sorted.len() as f64 / 100.0 - 1e-9).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    pub fn max(&self) -> Duration {
        self.sorted.last().copied().unwrap_or_default()
    }

    pub fn mean(&self) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        let total: Duration = self.sorted.iter().sum();
        total / self.sorted.len() as u32
    }

    /// The figures a benchmark reports.
    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            samples: self.len(),
            mean: self.mean(),
            p50: self.at(50.0),
            p95: self.at(95.0),
            p99: self.at(99.0),
            p999: self.at(99.9),
            max: self.max(),
        }
    }
}

/// Percentiles of a latency distribution, as reported per benchmark run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencySummary {
    pub samples: usize,
    pub mean: Duration,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
}

impl LatencySummary {
    /// Milliseconds, for reports: `(name, value)` in reporting order.
    pub fn millis(&self) -> [(&'static str, f64); 6] {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        [
            ("mean", ms(self.mean)),
            ("p50", ms(self.p50)),
            ("p95", ms(self.p95)),
            ("p99", ms(self.p99)),
            ("p99.9", ms(self.p999)),
            ("max", ms(self.max)),
        ]
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

    #[test]
    fn tail_percentiles_use_nearest_rank() {
        let us = |v: u64| Duration::from_micros(v);
        // 1..=2000 µs, shuffled order: p95 is the 1900th sample, p99.9 the 1998th.
        let samples: Vec<_> = (1..=2000).map(|i| us((i * 7919) % 2000 + 1)).collect();
        let s = Percentiles::new(samples).summary();
        assert_eq!(s.samples, 2000);
        assert_eq!(s.p50, us(1000));
        assert_eq!(s.p95, us(1900));
        assert_eq!(s.p99, us(1980));
        assert_eq!(s.p999, us(1998));
        assert_eq!(s.max, us(2000));
        assert_eq!(s.mean, Duration::from_nanos(1_000_500));

        // With fewer than 1000 samples p99.9 is the maximum, not an interpolation past it.
        let small = Percentiles::new((1..=10).map(us).collect()).summary();
        assert_eq!(small.p95, us(10));
        assert_eq!(small.p999, us(10));
        assert_eq!(small.p50, us(5));
        assert_eq!(
            Percentiles::new(vec![]).summary(),
            LatencySummary::default()
        );
    }
}
