//! How well the scores rank cells: Spearman and Kendall (tau-b) correlations of each metric
//! and of the combinations with the benchmark's test accuracies, the accuracy of each
//! metric's top cell, a markdown summary and an SVG scatter plot.
//!
//! Accuracies (`nb201_accuracy.csv` from the user's data directory) are read here and only
//! here: they judge the scores, they never enter them.
//!
//! Combinations use the min-max normalisation over the table's rows ([`normalise`]):
//! `NASWOT+LogSynflow = n(NASWOT) + n(LogSynflow)` and `TF = (n(NASWOT) + n(LogSynflow) +
//! n(SkipScore)) / 3`. FreeREA's own code sums the metrics each divided by its largest
//! absolute value instead, which weighs LogSynflow more (NASWOT's values span a small part
//! of their magnitude); that sum is reported too, as `NASWOT+LogSynflow (FreeREA scaling)`.
//! The argmax of a metric is its highest-scoring row (the first in index order on ties).

use super::table::{normalise, proxy_tf, Proxy, Ranges, RangesExt as _, ScoreRow};
use crate::data::DataError;
use crate::output::PlotError;
use crate::stats::{kendall_tau_b, spearman};
use simnas_shared::NUM_ARCHS;
use std::fmt::Write as _;
use std::path::Path;

/// The test-accuracy columns the report uses, with display names.
pub const DATASETS: [(&str, &str); 3] =
    [("CIFAR-10", "cifar10_test"), ("CIFAR-100", "cifar100_test"), ("ImageNet16-120", "imagenet16_test")];

/// Test accuracies (%) per NATS-Bench index, one vector per entry of [`DATASETS`].
#[derive(Clone, Debug)]
pub struct Accuracies {
    /// `acc[d][index]`.
    pub acc: [Vec<f64>; 3],
}

impl Accuracies {
    /// Read `nb201_accuracy.csv` from `dir`.
    pub fn load(dir: &Path) -> Result<Accuracies, DataError> {
        let path = dir.join("nb201_accuracy.csv");
        let bad = |line: u64, msg: String| DataError::Malformed { path: path.clone(), line, msg };
        let file = std::fs::File::open(&path).map_err(|source| DataError::Io { path: path.clone(), source })?;
        let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(file);
        let headers = rdr.headers().map_err(|e| bad(1, e.to_string()))?.clone();
        let col = |name: &str| {
            headers.iter().position(|h| h.trim() == name).ok_or_else(|| bad(1, format!("no column {name}")))
        };
        let ci = col("index")?;
        let cols = [col(DATASETS[0].1)?, col(DATASETS[1].1)?, col(DATASETS[2].1)?];
        let mut acc: [Vec<f64>; 3] = Default::default();
        for (row, rec) in rdr.records().enumerate() {
            let line = row as u64 + 2;
            let rec = rec.map_err(|e| bad(line, e.to_string()))?;
            let idx: usize = rec.get(ci).unwrap_or("").trim().parse().map_err(|_| bad(line, "bad index".into()))?;
            if idx != row {
                return Err(bad(line, format!("index {idx} out of order (expected {row})")));
            }
            for (d, &c) in cols.iter().enumerate() {
                let v: f64 =
                    rec.get(c).unwrap_or("").trim().parse().map_err(|_| bad(line, format!("bad {}", DATASETS[d].1)))?;
                acc[d].push(v);
            }
        }
        if acc[0].len() != NUM_ARCHS {
            return Err(DataError::RowCount { path, expected: NUM_ARCHS, got: acc[0].len() });
        }
        Ok(Accuracies { acc })
    }
}

/// One metric's correlations with each dataset.
#[derive(Clone, Debug)]
pub struct Correlation {
    /// Metric name.
    pub metric: &'static str,
    /// Spearman per dataset.
    pub spearman: [Option<f64>; 3],
    /// Kendall tau-b per dataset.
    pub kendall: [Option<f64>; 3],
    /// The row with the highest score.
    pub argmax: ScoreRow,
    /// Test accuracy of that row per dataset.
    pub argmax_acc: [f64; 3],
}

/// The whole report.
#[derive(Clone, Debug)]
pub struct Report {
    /// Rows scored (15,625 for the whole space).
    pub rows: usize,
    /// Per metric and combination.
    pub correlations: Vec<Correlation>,
    /// Best test accuracy among the rows, per dataset.
    pub optimum: [f64; 3],
}

/// A metric's value for a row.
type MetricFn<'a> = Box<dyn Fn(&ScoreRow) -> f64 + 'a>;

/// The metrics and combinations, as `(name, value of a row)`.
fn metrics(r: &Ranges) -> Vec<(&'static str, MetricFn<'_>)> {
    let maxabs = |(lo, hi): (f64, f64)| {
        let m = lo.abs().max(hi.abs());
        if m > 0.0 {
            m
        } else {
            1.0
        }
    };
    let (mn, ml) = (maxabs(r.naswot), maxabs(r.logsynflow));
    vec![
        ("NASWOT", Box::new(|x: &ScoreRow| x.naswot)),
        ("LogSynflow", Box::new(|x: &ScoreRow| x.logsynflow)),
        ("SkipScore", Box::new(|x: &ScoreRow| x.skip)),
        (
            "NASWOT+LogSynflow",
            Box::new(move |x: &ScoreRow| normalise(x.naswot, r.naswot) + normalise(x.logsynflow, r.logsynflow)),
        ),
        ("NASWOT+LogSynflow (FreeREA scaling)", Box::new(move |x: &ScoreRow| x.naswot / mn + x.logsynflow / ml)),
        (
            "TF freerea (NASWOT, LogSynflow, SkipScore)",
            Box::new(move |x: &ScoreRow| {
                (normalise(x.naswot, r.naswot) + normalise(x.logsynflow, r.logsynflow) + normalise(x.skip, r.skip))
                    / 3.0
            }),
        ),
    ]
}

/// Correlations and argmaxes of `rows` against `acc` (`None` for an empty table). MeCo and
/// the rank-aggregate proxy (over these rows) are included when every row has MeCo.
pub fn build(rows: &[ScoreRow], acc: &Accuracies) -> Option<Report> {
    let ranges = Ranges::of(rows)?;
    let accs: [Vec<f64>; 3] =
        std::array::from_fn(|d| rows.iter().map(|r| acc.acc[d][r.index.get() as usize]).collect());
    let optimum = std::array::from_fn(|d| accs[d].iter().copied().fold(f64::NEG_INFINITY, f64::max));
    let mut columns: Vec<(&'static str, Vec<f64>)> =
        metrics(&ranges).into_iter().map(|(name, f)| (name, rows.iter().map(&f).collect())).collect();
    if let Some(meco) = rows.iter().map(|r| r.meco).collect::<Option<Vec<f64>>>() {
        columns.insert(3, ("MeCo", meco));
        if let Some(tf) = proxy_tf(rows, Proxy::MecoRank) {
            columns.push(("TF meco-rank (MeCo, NASWOT, LogSynflow)", tf));
        }
    }
    let mut correlations = Vec::new();
    for (name, v) in columns {
        let best =
            (0..v.len())
                .fold(0, |b, i| if v[i] > v[b] || (v[i] == v[b] && rows[i].index < rows[b].index) { i } else { b });
        correlations.push(Correlation {
            metric: name,
            spearman: std::array::from_fn(|d| spearman(&v, &accs[d])),
            kendall: std::array::from_fn(|d| kendall_tau_b(&v, &accs[d])),
            argmax: rows[best],
            argmax_acc: std::array::from_fn(|d| accs[d][best]),
        });
    }
    Some(Report { rows: rows.len(), correlations, optimum })
}

fn fmt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "n/a".into())
}

/// The reports as markdown, one section per `(title, report)` (e.g. the connected executed
/// networks, then every cell); `command` and `table` say what produced them.
pub fn markdown(sections: &[(&str, &Report)], command: &str, table: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Training-free scores against NAS-Bench-201 test accuracy\n");
    let _ = writeln!(s, "Table `{table}`, report produced by `{command}`.");
    let head = format!("| metric | {} | {} | {} |\n|---|---:|---:|---:|", DATASETS[0].0, DATASETS[1].0, DATASETS[2].0);
    for (title, r) in sections {
        let _ = writeln!(s, "\n## {title} ({} cells)\n", r.rows);
        let _ = writeln!(s, "### Spearman rho\n\n{head}");
        for c in &r.correlations {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                c.metric,
                fmt(c.spearman[0]),
                fmt(c.spearman[1]),
                fmt(c.spearman[2])
            );
        }
        let _ = writeln!(s, "\n### Kendall tau-b\n\n{head}");
        for c in &r.correlations {
            let _ =
                writeln!(s, "| {} | {} | {} | {} |", c.metric, fmt(c.kendall[0]), fmt(c.kendall[1]), fmt(c.kendall[2]));
        }
        let _ = writeln!(s, "\n### Test accuracy (%) of each metric's top cell\n");
        let _ = writeln!(
            s,
            "| metric | top cell (index) | {} | {} | {} |\n|---|---|---:|---:|---:|",
            DATASETS[0].0, DATASETS[1].0, DATASETS[2].0
        );
        for c in &r.correlations {
            let _ = writeln!(
                s,
                "| {} | `{}` ({}) | {:.2} | {:.2} | {:.2} |",
                c.metric, c.argmax.arch, c.argmax.index, c.argmax_acc[0], c.argmax_acc[1], c.argmax_acc[2]
            );
        }
        let _ = writeln!(s, "| best cell | | {:.2} | {:.2} | {:.2} |", r.optimum[0], r.optimum[1], r.optimum[2]);
    }
    let _ = writeln!(
        s,
        "\nCombinations: `NASWOT+LogSynflow = n(NASWOT) + n(LogSynflow)`, `TF freerea = (n(NASWOT) + n(LogSynflow) + \
         n(SkipScore)) / 3`, with `n` the min-max normalisation over the section's cells; `FreeREA scaling` divides each \
         metric by its largest absolute value instead (as FreeREA's code does); `TF meco-rank` sums `ln(rank / N)` of \
         MeCo, NASWOT and LogSynflow over the section's `N` cells. FreeREA (paper, CIFAR-10 Spearman): NASWOT 0.79, \
         LogSynflow 0.83, NASWOT+LogSynflow 0.84; argmax 94.36%."
    );
    s
}

/// SVG scatter plot of `TF` against the test accuracy of dataset `dataset` (an index into
/// [`DATASETS`]), one panel per proxy the rows can make (FreeREA's, then the rank
/// aggregate), each titled with its Spearman rho.
pub fn scatter_svg(rows: &[ScoreRow], acc: &Accuracies, dataset: usize, path: &Path) -> Result<(), PlotError> {
    use plotters::prelude::*;
    let d = dataset.min(DATASETS.len() - 1);
    let y: Vec<f64> = rows.iter().map(|r| acc.acc[d][r.index.get() as usize]).collect();
    let panels: Vec<(Proxy, Vec<f64>)> =
        Proxy::ALL.into_iter().filter_map(|p| proxy_tf(rows, p).map(|tf| (p, tf))).collect();
    let (lo, hi) = y.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo < hi { (lo.floor(), hi.ceil()) } else { (0.0, 100.0) };
    crate::output::write_svg(path, (520 * panels.len().max(1) as u32, 600), |root| {
        root.fill(&WHITE)?;
        for (area, (proxy, tf)) in root.split_evenly((1, panels.len().max(1))).iter().zip(&panels) {
            let caption = format!(
                "TF {} vs {} ({} cells, Spearman {})",
                proxy.name(),
                DATASETS[d].0,
                rows.len(),
                fmt(spearman(tf, &y))
            );
            let mut chart = ChartBuilder::on(area)
                .caption(caption, ("sans-serif", 17))
                .margin(14)
                .x_label_area_size(40)
                .y_label_area_size(50)
                .build_cartesian_2d(0f64..1f64, lo..hi)?;
            chart
                .configure_mesh()
                .x_desc(format!("TF ({})", proxy.name()))
                .y_desc(format!("{} test accuracy (%)", DATASETS[d].0))
                .draw()?;
            chart.draw_series(tf.iter().zip(&y).map(|(&t, &a)| Circle::new((t, a), 1, BLUE.mix(0.35).filled())))?;
        }
        root.present()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use simnas_shared::{Arch, ArchCode, NatsIndex};

    #[test]
    fn report_on_a_synthetic_table() {
        // Accuracy = code; NASWOT increasing with it, LogSynflow decreasing, skip constant.
        let acc = Accuracies { acc: std::array::from_fn(|_| (0..NUM_ARCHS).map(|i| i as f64).collect()) };
        let rows: Vec<ScoreRow> = (0..50u16)
            .map(|i| ScoreRow {
                index: NatsIndex::new(i).unwrap(),
                arch: Arch::from_code(ArchCode::new(i).unwrap()),
                naswot: i as f64,
                logsynflow: -(i as f64),
                skip: 1.0,
                meco: None,
            })
            .collect();
        let r = build(&rows, &acc).unwrap();
        assert_eq!(r.rows, 50);
        assert_eq!(r.correlations[0].spearman[0], Some(1.0));
        assert_eq!(r.correlations[1].kendall[2], Some(-1.0));
        assert_eq!(r.correlations[2].spearman[0], None, "constant metric");
        assert_eq!(r.correlations[0].argmax_acc, [49.0; 3]);
        assert_eq!(r.correlations.len(), 6);
        assert_eq!(r.correlations[1].argmax.index.get(), 0);
        assert_eq!(r.optimum, [49.0; 3]);
        let md = markdown(&[("every cell", &r)], "simnas score report", "t.csv");
        assert!(md.contains("| NASWOT | 1.000 |") && md.contains("n/a"));
        let p = std::env::temp_dir().join(format!("simnas-report-{}.svg", std::process::id()));
        scatter_svg(&rows, &acc, 0, &p).unwrap();
        assert!(std::fs::read_to_string(&p).unwrap().contains("<svg"));
        assert!(build(&[], &acc).is_none());
    }
}
