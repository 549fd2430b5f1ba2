//! `peer-sim plot`: one latency-throughput chart (PNG) per open-loop sweep of a benchmark suite.
//! A sweep is the runs whose JSON reports are labelled `<group>-rate-<pct>%` (as
//! `network/bench.sh` names them); each chart draws their p50 and p99 delivery latency against
//! their delivered tx/s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use plotters::prelude::*;
use serde_json::Value;

/// Where DejaVu Sans lives on Debian (package fonts-dejavu-core).
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

#[derive(Args, Clone, Debug)]
pub struct PlotArgs {
    /// A suite folder of `network/bench.sh` (its runs' JSON reports).
    #[arg(long)]
    pub suite: PathBuf,
    /// Folder for the PNGs (default: the suite folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// TrueType font for the text.
    #[arg(long, default_value = DEFAULT_FONT)]
    pub font: PathBuf,
}

/// One run of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Offered rate, as a % of the group's saturation.
    pub percent: u32,
    pub delivered_tx_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The runs of one group's sweep, by offered rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    pub group: String,
    /// The channel's block rules in the runs, e.g. "blocks of ≤500 tx / 500 ms".
    pub block_rules: String,
    pub points: Vec<Point>,
}

/// `("raft3", 50)` for `raft3-rate-50%`; `None` for a label that is not a sweep run's.
pub fn sweep_label(label: &str) -> Option<(&str, u32)> {
    let rest = label.strip_suffix('%')?;
    let (group, percent) = rest.rsplit_once("-rate-")?;
    if group.is_empty() || percent.is_empty() || !percent.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((group, percent.parse().ok()?))
}

/// The block rules of a report's channel, as the charts' titles give them.
fn block_rules(report: &Value) -> Option<String> {
    let channel = report.get("channel")?;
    Some(format!(
        "blocks of ≤{} tx / {} ms",
        channel.get("max_message_count")?.as_u64()?,
        channel.get("batch_timeout_ms")?.as_u64()?
    ))
}

/// The sweeps among the JSON reports in `dir` (other JSON files are left alone), by group name.
pub fn read_sweeps(dir: &Path) -> anyhow::Result<Vec<Sweep>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut groups: BTreeMap<String, (Vec<String>, Vec<Point>)> = BTreeMap::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let report: Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        let Some((group, percent)) = report
            .get("label")
            .and_then(Value::as_str)
            .and_then(sweep_label)
        else {
            continue;
        };
        let number = |pointer: &str| {
            report
                .pointer(pointer)
                .and_then(Value::as_f64)
                .ok_or_else(|| anyhow!("{}: no number at {pointer}", path.display()))
        };
        let point = Point {
            percent,
            delivered_tx_per_s: number("/tx_per_s")?,
            p50_ms: number("/latency_ms/p50")?,
            p99_ms: number("/latency_ms/p99")?,
        };
        let rules = block_rules(&report)
            .ok_or_else(|| anyhow!("{}: no channel block rules", path.display()))?;
        let (all_rules, points) = groups.entry(group.to_string()).or_default();
        if !all_rules.contains(&rules) {
            all_rules.push(rules);
        }
        points.push(point);
    }
    Ok(groups
        .into_iter()
        .map(|(group, (rules, mut points))| {
            points.sort_by(|a, b| {
                (a.percent, a.delivered_tx_per_s)
                    .partial_cmp(&(b.percent, b.delivered_tx_per_s))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            Sweep {
                group,
                block_rules: rules.join("; "),
                points,
            }
        })
        .collect())
}

/// Makes the font at `path` the charts' sans-serif face.
pub fn load_font(path: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "reading the font {} (Debian: apt-get install fonts-dejavu-core; or give --font PATH)",
            path.display()
        )
    })?;
    // plotters keeps fonts for the life of the process and only borrows: the bytes must live
    // as long, so they are leaked once per font loaded.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{}: not a TrueType/OpenType font", path.display()))
}

/// Draws `sweep` as a PNG at `path` (the font must be loaded).
pub fn draw(sweep: &Sweep, path: &Path) -> anyhow::Result<()> {
    let failed = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    let max_x = sweep
        .points
        .iter()
        .map(|p| p.delivered_tx_per_s)
        .fold(0.0, f64::max);
    let latencies = || sweep.points.iter().flat_map(|p| [p.p50_ms, p.p99_ms]);
    // Latency spans decades once a sweep passes saturation: a log axis keeps the low points
    // apart. It needs a positive floor.
    let min_y = latencies().fold(f64::INFINITY, f64::min).max(0.1);
    let max_y = latencies().fold(0.0, f64::max).max(min_y * 2.0);

    let root = BitMapBackend::new(path, (1000, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(&e))?;
    let title = format!(
        "{}: delivery latency against throughput ({})",
        sweep.group, sweep.block_rules
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(
            0.0..(max_x * 1.1).max(1.0),
            (min_y / 1.5..max_y * 1.5).log_scale(),
        )
        .map_err(|e| failed(&e))?;
    chart
        .configure_mesh()
        .x_desc("delivered tx/s")
        .y_desc("latency, submit → block delivered (ms)")
        .label_style(("sans-serif", 15))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(|e| failed(&e))?;

    let p50: Vec<f64> = sweep.points.iter().map(|p| p.p50_ms).collect();
    let p99: Vec<f64> = sweep.points.iter().map(|p| p.p99_ms).collect();
    for (name, color, values) in [("p50", BLUE, p50), ("p99", RED, p99)] {
        let points: Vec<(f64, f64)> = sweep
            .points
            .iter()
            .zip(values)
            .map(|(p, v)| (p.delivered_tx_per_s, v.max(min_y)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| failed(&e))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        chart
            .draw_series(PointSeries::of_element(
                points,
                5,
                color.filled(),
                &|at, size, style| Circle::new(at, size, style),
            ))
            .map_err(|e| failed(&e))?;
    }
    // Each p99 point names its offered rate, so a reader can tell where saturation was passed.
    chart
        .draw_series(sweep.points.iter().map(|p| {
            Text::new(
                format!("{}%", p.percent),
                (p.delivered_tx_per_s, p.p99_ms.max(min_y) * 1.12),
                ("sans-serif", 14),
            )
        }))
        .map_err(|e| failed(&e))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| failed(&e))?;
    root.present().map_err(|e| failed(&e))?;
    Ok(())
}

/// The PNG file name of a group's chart.
pub fn file_name(group: &str) -> String {
    let safe: String = group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}-latency.png")
}

/// `peer-sim plot`: one PNG per sweep of the suite; returns their paths.
pub fn run(args: &PlotArgs) -> anyhow::Result<Vec<PathBuf>> {
    let sweeps = read_sweeps(&args.suite)?;
    if sweeps.is_empty() {
        bail!(
            "{}: no open-loop sweep runs (JSON reports labelled <group>-rate-<pct>%)",
            args.suite.display()
        );
    }
    load_font(&args.font)?;
    let out = args.out.clone().unwrap_or_else(|| args.suite.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::with_capacity(sweeps.len());
    for sweep in &sweeps {
        let path = out.join(file_name(&sweep.group));
        draw(sweep, &path)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sweep_labels_name_a_group_and_a_percentage() {
        assert_eq!(sweep_label("raft3-rate-50%"), Some(("raft3", 50)));
        assert_eq!(
            sweep_label("raft3-lowlat-rate-10%"),
            Some(("raft3-lowlat", 10))
        );
        assert_eq!(sweep_label("solo-max-1024"), None);
        assert_eq!(sweep_label("raft3-rate-%"), None);
        assert_eq!(sweep_label("-rate-5%"), None);
        assert_eq!(sweep_label("raft3-rate-5x%"), None);
        assert_eq!(sweep_label("raft3-rate-50"), None);
    }

    fn report(label: &str, tps: f64, p50: f64, p99: f64) -> Value {
        json!({
            "label": label,
            "tx_per_s": tps,
            "latency_ms": { "p50": p50, "p99": p99, "max": p99 * 2.0 },
            "channel": { "max_message_count": 500, "batch_timeout_ms": 500 },
        })
    }

    #[test]
    fn draws_a_png_per_sweep_from_the_reports() {
        let suite = tempfile::tempdir().unwrap();
        let write = |name: &str, v: Value| {
            std::fs::write(suite.path().join(name), v.to_string()).unwrap();
        };
        write(
            "raft3-rate-50_-1.json",
            report("raft3-rate-50%", 8215.0, 135.9, 224.1),
        );
        write(
            "raft3-rate-100_-2.json",
            report("raft3-rate-100%", 15490.0, 168.3, 5276.0),
        );
        // Not a sweep run: left out.
        write(
            "raft3-max-1024-3.json",
            report("raft3-max-1024", 16739.0, 2123.8, 3571.9),
        );

        let sweeps = read_sweeps(suite.path()).unwrap();
        assert_eq!(sweeps.len(), 1);
        assert_eq!(sweeps[0].group, "raft3");
        assert_eq!(sweeps[0].block_rules, "blocks of ≤500 tx / 500 ms");
        let percents: Vec<u32> = sweeps[0].points.iter().map(|p| p.percent).collect();
        assert_eq!(percents, vec![50, 100]);

        let out = tempfile::tempdir().unwrap();
        let written = run(&PlotArgs {
            suite: suite.path().to_path_buf(),
            out: Some(out.path().to_path_buf()),
            font: PathBuf::from(DEFAULT_FONT),
        })
        .unwrap();
        assert_eq!(written, vec![out.path().join("raft3-latency.png")]);
        let png = std::fs::read(&written[0]).unwrap();
        assert!(png.len() > 8);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn no_sweep_or_no_font_is_an_error() {
        let suite = tempfile::tempdir().unwrap();
        let args = |font: &str| PlotArgs {
            suite: suite.path().to_path_buf(),
            out: None,
            font: PathBuf::from(font),
        };
        let e = run(&args(DEFAULT_FONT)).unwrap_err();
        assert!(
            format!("{e:#}").contains("no open-loop sweep runs"),
            "{e:#}"
        );

        std::fs::write(
            suite.path().join("solo-rate-25_-1.json"),
            report("solo-rate-25%", 7000.0, 50.0, 117.0).to_string(),
        )
        .unwrap();
        let e = run(&args("/nonexistent/font.ttf")).unwrap_err();
        assert!(format!("{e:#}").contains("reading the font"), "{e:#}");

        std::fs::write(suite.path().join("broken.json"), "{").unwrap();
        let e = run(&args(DEFAULT_FONT)).unwrap_err();
        assert!(format!("{e:#}").contains("not JSON"), "{e:#}");
    }
}
