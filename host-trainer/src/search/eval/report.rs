//! The evaluation report: markdown summary, per-run CSVs, and plots.
//!
//! Files written to the output directory:
//! * `report.md`: per budget, fitness / oracle per device and strategy (mean over seeds),
//!   the mean over devices, over the primary devices, and the worst device; constrained
//!   form per percentile: fraction of feasible picks, mean CIFAR-10 test accuracy of the
//!   feasible picks, and the proxy's ceiling; per strategy, the mean accuracy of the
//!   weighted picks, how many have dead branches, and probes that repeat an executed network;
//! * `weighted.csv`, `constrained.csv`: one row per run;
//! * `fitness_vs_budget.svg`: mean fitness / oracle against budget, one line per strategy.

use super::{ConstrainedRun, EvalResults, WeightedRun, PERCENTILES};
use crate::output::{OutputError, PlotError};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

/// Strategies in the order they first appear.
fn strategies(r: &EvalResults) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for w in &r.weighted {
        if !out.contains(&w.strategy) {
            out.push(w.strategy);
        }
    }
    out
}

fn budgets(r: &EvalResults) -> Vec<usize> {
    let mut b: Vec<usize> = r.weighted.iter().map(|w| w.budget).collect();
    b.sort_unstable();
    b.dedup();
    b
}

/// Mean fitness ratio of (device, strategy, budget) over seeds.
pub fn ratio(r: &EvalResults, device: &str, strategy: &str, budget: usize) -> f64 {
    mean(
        r.weighted
            .iter()
            .filter(|w| w.device == device && w.strategy == strategy && w.budget == budget)
            .map(|w| w.ratio),
    )
}

/// Mean over devices of the per-device mean ratio (`primary_only`: the primary devices).
pub fn mean_ratio(r: &EvalResults, strategy: &str, budget: usize, primary_only: bool) -> f64 {
    mean(r.devices.iter().filter(|d| d.1 || !primary_only).map(|d| ratio(r, &d.0, strategy, budget)))
}

fn constrained_of<'a>(
    r: &'a EvalResults,
    strategy: &'a str,
    budget: usize,
    p: f64,
) -> impl Iterator<Item = &'a ConstrainedRun> + 'a {
    r.constrained.iter().filter(move |c| c.strategy == strategy && c.budget == budget && c.percentile == p)
}

/// The markdown report. `header` goes first (title, command, provenance).
pub fn markdown(r: &EvalResults, header: &str) -> String {
    let mut s = String::from(header);
    let strats = strategies(r);
    let _ = writeln!(s, "\n## Weighted objective (w = 0.5): fitness of the pick / fitness of the oracle\n");
    let _ = writeln!(
        s,
        "Fitness uses each device's true latency range (min and max of its table); mean over seeds. \
         `*` marks the primary device of each validation family. `rule cap`: the true fitness of the best cell \
         under the search's own scoring rule (latency normalised by the all-skip and all-conv3x3 cells) with \
         every latency known, as a fraction of the oracle's; where it is below 1 the reference cells misjudge \
         the device's true latency range, and no search that scores its probes by that rule can do better.\n"
    );
    for b in budgets(r) {
        let _ = writeln!(s, "### Budget {b}\n");
        let _ = writeln!(s, "| device | rule cap | {} |", strats.join(" | "));
        let _ = writeln!(s, "|---|---:|{}", "---:|".repeat(strats.len()));
        for (k, (d, primary)) in r.devices.iter().enumerate() {
            let _ = write!(
                s,
                "| {d}{} | {:.4} |",
                if *primary { " *" } else { "" },
                r.caps.get(k).copied().unwrap_or(f64::NAN)
            );
            for st in &strats {
                let _ = write!(s, " {:.4} |", ratio(r, d, st, b));
            }
            let _ = writeln!(s);
        }
        let caps = |primary_only: bool| {
            mean(r.devices.iter().zip(&r.caps).filter(|(d, _)| d.1 || !primary_only).map(|(_, &c)| c))
        };
        let row = |s: &mut String, label: &str, cap: f64, f: &dyn Fn(&str) -> f64| {
            let _ = write!(s, "| **{label}** | {cap:.4} |");
            for st in &strats {
                let _ = write!(s, " **{:.4}** |", f(st));
            }
            let _ = writeln!(s);
        };
        row(&mut s, "mean", caps(false), &|st| mean_ratio(r, st, b, false));
        if r.devices.iter().any(|d| d.1) {
            row(&mut s, "mean (primary)", caps(true), &|st| mean_ratio(r, st, b, true));
        }
        let worst_cap = r.caps.iter().copied().fold(f64::INFINITY, f64::min);
        row(&mut s, "worst device", worst_cap, &|st| {
            r.devices.iter().map(|d| ratio(r, &d.0, st, b)).fold(f64::INFINITY, f64::min)
        });
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "### What the weighted picks are\n");
    let _ = writeln!(
        s,
        "Per strategy, over every device and seed: `acc`, the mean CIFAR-10 test accuracy (%) of the picks \
         (ground truth, reporting only; no search reads it); `dead`, the fraction of picks with an edge that \
         cannot reach the output; `repeats`, probes that measured an executed network an earlier probe of the \
         same run had measured.\n"
    );
    let _ = writeln!(
        s,
        "| budget | {} |",
        strats.iter().map(|st| format!("{st} acc / dead / repeats")).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(s, "|---:|{}", "---:|".repeat(strats.len()));
    for b in budgets(r) {
        let _ = write!(s, "| {b} |");
        for st in &strats {
            let runs: Vec<&WeightedRun> = r.weighted.iter().filter(|w| w.strategy == *st && w.budget == b).collect();
            let acc = mean(runs.iter().filter_map(|w| w.accuracy));
            let dead = mean(runs.iter().map(|w| f64::from(u8::from(w.dead_branch))));
            let repeats: usize = runs.iter().map(|w| w.repeated).sum();
            let _ = write!(s, " {acc:.2} / {:.0}% / {repeats} |", 100.0 * dead);
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s);
    if !r.ranges.is_empty() {
        let _ = writeln!(s, "### Where each device's latency range comes from\n");
        let _ = writeln!(
            s,
            "The oracle's fitness normalises latency by the table's true range (max - min). `/ reference`: that \
             range over the reference cells' (all-conv3x3 - all-skip), what a search measures first. `/ model`: \
             that range over the range of the controller's per-op latency model fitted to every cell of the \
             table (the most it could learn); well above 1, a few cells far outside anything the model predicts \
             set the range. A 10-probe search almost never measures them, so no estimate it makes can know the \
             range, and the rule cap falls below 1 where the pick depends on it.\n"
        );
        let _ = writeln!(s, "| device | range / reference | range / model | rule cap |");
        let _ = writeln!(s, "|---|---:|---:|---:|");
        for (k, (d, primary)) in r.devices.iter().enumerate() {
            let g = r.ranges.get(k).copied().unwrap_or_default();
            let cap = r.caps.get(k).copied().unwrap_or(f64::NAN);
            let star = if *primary { " *" } else { "" };
            let _ = writeln!(s, "| {d}{star} | {:.2} | {:.2} | {cap:.4} |", g.reference, g.model);
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Constrained objective: maximise TF subject to measured latency <= limit\n");
    let _ = writeln!(
        s,
        "Limits at the 10th, 25th and 50th latency percentile of each device. `feasible`: fraction of runs whose \
         pick exists and satisfies the limit by measurement. `acc`: mean CIFAR-10 test accuracy (%) of the \
         feasible picks (ground truth, reporting only). `proxy ceiling`: the best-TF cell that truly satisfies \
         the limit (what a perfect search with this proxy reaches); `acc - ceiling`: mean accuracy difference \
         to it over the feasible picks.\n"
    );
    for b in budgets(r) {
        let _ = writeln!(s, "### Budget {b}\n");
        let _ = write!(s, "| strategy |");
        for p in PERCENTILES {
            let q = (p * 100.0).round();
            let _ = write!(s, " p{q} feasible | p{q} acc | p{q} acc - ceiling |");
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "|---|{}", "---:|".repeat(3 * PERCENTILES.len()));
        for st in &strats {
            let _ = write!(s, "| {st} |");
            for p in PERCENTILES {
                let runs: Vec<&ConstrainedRun> = constrained_of(r, st, b, p).collect();
                let feas = mean(runs.iter().map(|c| f64::from(u8::from(c.feasible))));
                let acc = mean(runs.iter().filter(|c| c.feasible).filter_map(|c| c.accuracy));
                let gap =
                    mean(runs.iter().filter(|c| c.feasible).filter_map(|c| Some(c.accuracy? - c.ceiling_accuracy?)));
                let _ = write!(s, " {:.1}% | {acc:.2} | {gap:+.2} |", 100.0 * feas);
            }
            let _ = writeln!(s);
        }
        let _ = write!(s, "| *proxy ceiling* |");
        for p in PERCENTILES {
            let acc =
                mean(r.devices.iter().filter_map(|d| {
                    r.constrained.iter().find(|c| c.device == d.0 && c.percentile == p)?.ceiling_accuracy
                }));
            let _ = write!(s, " 100% | {acc:.2} | 0 |");
        }
        let _ = writeln!(s, "\n");
    }
    s
}

/// Why the report was not written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A CSV row could not be encoded.
    #[error("{path}: {source}")]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// Why.
        source: csv::Error,
    },
    /// The output directory or a file in it could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The budget plot could not be drawn or written.
    #[error(transparent)]
    Plot(#[from] PlotError),
}

fn csv_write<T: serde::Serialize>(path: &Path, rows: &[T]) -> Result<(), ReportError> {
    let csv_error = |source| ReportError::Csv { path: path.to_path_buf(), source };
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(csv_error)?;
    }
    let bytes = w.into_inner().map_err(|e| csv_error(e.into_error().into()))?;
    Ok(crate::output::write(path, &bytes)?)
}

/// Write `report.md`, the CSVs and the budget plot into `dir`.
pub fn write_all(r: &EvalResults, header: &str, dir: &Path) -> Result<(), ReportError> {
    crate::output::prepare_dir(dir, &[])?;
    csv_write::<WeightedRun>(&dir.join("weighted.csv"), &r.weighted)?;
    csv_write::<ConstrainedRun>(&dir.join("constrained.csv"), &r.constrained)?;
    let series: Vec<(String, Vec<(usize, f64)>)> = strategies(r)
        .into_iter()
        .map(|st| (st.to_string(), budgets(r).into_iter().map(|b| (b, mean_ratio(r, st, b, false))).collect()))
        .collect();
    super::super::plot::fitness_vs_budget(
        &series,
        "Mean fitness / oracle over the evaluated devices (w = 0.5)",
        &dir.join("fitness_vs_budget.svg"),
    )?;
    Ok(crate::output::write(&dir.join("report.md"), markdown(r, header).as_bytes())?)
}
