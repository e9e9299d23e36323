//! How well the synthetic family covers real devices.
//!
//! For every real device: Spearman's rho between its measured latencies and (a) its own
//! per-op and per-(edge, op) LUT (how far from additive the device is), (b) the closest of
//! `samples` synthetic devices of each preset (whether some synthetic device ranks the
//! space like this real one), and the median over those samples (how typical such a device
//! is for the preset). Only measured cells count; ties get average ranks.

use super::{DeviceDistribution, DeviceDistributionExt as _, SynthPreset};
use crate::latency::registry::{BenchDevice, Split};
use crate::latency::LatencyTable;
use crate::output::PlotError;
use crate::stats::{pearson, ranks};
use rand::SeedableRng;
use simnas_shared::NUM_ARCHS;
use std::fmt::Write as _;

/// Coverage of one device.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CoverageRow {
    /// Registry name.
    pub name: String,
    /// Family.
    pub family: String,
    /// Split side.
    pub split: Split,
    /// Measured cells.
    pub cells: usize,
    /// Own per-op LUT: R² and rho.
    pub own_op: (f64, f64),
    /// Own per-(edge, op) LUT: R² and rho.
    pub own_edge: (f64, f64),
    /// Per preset: (closest synthetic rho, median synthetic rho).
    pub presets: Vec<(SynthPreset, f64, f64)>,
}

/// Compute coverage rows for `tables` against `samples` draws of each preset.
pub fn coverage(
    dist: &DeviceDistribution,
    tables: &[(&'static BenchDevice, LatencyTable)],
    presets: &[SynthPreset],
    samples: usize,
    seed: u64,
) -> Vec<CoverageRow> {
    let mut rows: Vec<CoverageRow> = tables
        .iter()
        .map(|(d, t)| {
            let rec = dist.devices.iter().find(|r| r.name == d.name);
            let q = |f: fn(&super::DeviceRecord) -> super::Quality| {
                rec.map(|r| (f(r).r2, f(r).spearman)).unwrap_or((f64::NAN, f64::NAN))
            };
            CoverageRow {
                name: d.name.into(),
                family: d.family.into(),
                split: d.split,
                cells: t.measured(),
                own_op: q(|r| r.per_op),
                own_edge: q(|r| r.per_edge_op),
                presets: vec![],
            }
        })
        .collect();
    // Devices sharing a set of measured cells share the synthetic ranks.
    let masks: Vec<Vec<bool>> = tables.iter().map(|(_, t)| t.values().iter().map(Option::is_some).collect()).collect();
    let mut groups: Vec<(Vec<bool>, Vec<usize>)> = vec![];
    for (i, m) in masks.into_iter().enumerate() {
        match groups.iter_mut().find(|g| g.0 == m) {
            Some(g) => g.1.push(i),
            None => groups.push((m, vec![i])),
        }
    }
    for &preset in presets {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let synth: Vec<Vec<f64>> = (0..samples).map(|_| dist.sample(preset, &mut rng).latency).collect();
        let mut rhos = vec![Vec::with_capacity(samples); tables.len()];
        for (mask, members) in &groups {
            let keep: Vec<usize> = (0..NUM_ARCHS).filter(|&c| mask[c]).collect();
            let real_ranks: Vec<Vec<f64>> = members
                .iter()
                .map(|&i| ranks(&keep.iter().map(|&c| tables[i].1.values()[c].unwrap_or(0.0)).collect::<Vec<_>>()))
                .collect();
            for s in &synth {
                let sr = ranks(&keep.iter().map(|&c| s[c]).collect::<Vec<_>>());
                for (k, &i) in members.iter().enumerate() {
                    rhos[i].push(pearson(&real_ranks[k], &sr).unwrap_or(0.0));
                }
            }
        }
        for (row, mut r) in rows.iter_mut().zip(rhos) {
            r.sort_by(f64::total_cmp);
            let best = r.last().copied().unwrap_or(f64::NAN);
            let median = r.get(r.len() / 2).copied().unwrap_or(f64::NAN);
            row.presets.push((preset, best, median));
        }
    }
    rows
}

/// Mean of a column over the rows of one split.
fn mean_of(rows: &[CoverageRow], split: Split, f: impl Fn(&CoverageRow) -> f64) -> f64 {
    let v: Vec<f64> = rows.iter().filter(|r| r.split == split).map(f).collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The coverage report as markdown.
pub fn markdown(rows: &[CoverageRow], samples: usize, command: &str) -> String {
    let mut s = String::new();
    let presets: Vec<SynthPreset> = rows.first().map(|r| r.presets.iter().map(|p| p.0).collect()).unwrap_or_default();
    let pname =
        |p: &SynthPreset| serde_json::to_value(p).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
    let _ = writeln!(s, "# Synthetic-device coverage\n\nProduced by `{command}`.\n");
    let _ = writeln!(
        s,
        "Spearman's rho over each device's measured cells. *own op* / *own edge*: the device's own \
         per-op / per-(edge, op) LUT (R² in brackets). *closest* / *median*: the best and the median \
         rho over {samples} synthetic devices drawn from each preset.\n"
    );
    let _ = writeln!(s, "## Means by split\n");
    let _ = write!(s, "| split | own op rho | own edge rho | own edge R² |");
    for p in &presets {
        let _ = write!(s, " {} closest | {} median |", pname(p), pname(p));
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "|---|---:|---:|---:|{}", "---:|---:|".repeat(presets.len()));
    for split in [Split::Train, Split::Validation] {
        let _ = write!(
            s,
            "| {split:?} | {:.3} | {:.3} | {:.3} |",
            mean_of(rows, split, |r| r.own_op.1),
            mean_of(rows, split, |r| r.own_edge.1),
            mean_of(rows, split, |r| r.own_edge.0)
        );
        for k in 0..presets.len() {
            let _ = write!(
                s,
                " {:.3} | {:.3} |",
                mean_of(rows, split, |r| r.presets[k].1),
                mean_of(rows, split, |r| r.presets[k].2)
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "\n## Per device\n");
    let _ = write!(s, "| device | family | split | cells | own op rho (R²) | own edge rho (R²) |");
    for p in &presets {
        let _ = write!(s, " {} closest / median |", pname(p));
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "|---|---|---|---:|---:|---:|{}", "---:|".repeat(presets.len()));
    for r in rows {
        let _ = write!(
            s,
            "| {} | {} | {:?} | {} | {:.3} ({:.3}) | {:.3} ({:.3}) |",
            r.name, r.family, r.split, r.cells, r.own_op.1, r.own_op.0, r.own_edge.1, r.own_edge.0
        );
        for p in &r.presets {
            let _ = write!(s, " {:.3} / {:.3} |", p.1, p.2);
        }
        let _ = writeln!(s);
    }
    s
}

/// An SVG plot: per device, own-LUT rho and closest-synthetic rho of each preset.
pub fn plot(rows: &[CoverageRow], path: &std::path::Path) -> Result<(), PlotError> {
    use plotters::prelude::*;
    crate::output::write_svg(path, (1100, 520), |root| {
        root.fill(&WHITE)?;
        let lo = rows
            .iter()
            .flat_map(|r| r.presets.iter().map(|p| p.1).chain([r.own_edge.1, r.own_op.1]))
            .filter(|v| v.is_finite())
            .fold(1.0f64, f64::min)
            .min(0.5);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Rank correlation with real latency (left: train, right of the line: validation)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(50)
            .build_cartesian_2d(-0.5f64..rows.len() as f64 - 0.5, lo..1.0f64)?;
        chart
            .configure_mesh()
            .x_desc("device (registry order, train first)")
            .y_desc("Spearman rho")
            .disable_x_mesh()
            .draw()?;
        let n_train = rows.iter().filter(|r| r.split == Split::Train).count();
        chart.draw_series(LineSeries::new(
            [(n_train as f64 - 0.5, lo), (n_train as f64 - 0.5, 1.0)],
            BLACK.stroke_width(1),
        ))?;
        let colors = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
        let mut series: Vec<(String, Vec<f64>)> =
            vec![("own per-edge LUT".into(), rows.iter().map(|r| r.own_edge.1).collect())];
        if let Some(first) = rows.first() {
            for (k, p) in first.presets.iter().enumerate() {
                series.push((format!("closest {:?}", p.0), rows.iter().map(|r| r.presets[k].1).collect()));
            }
        }
        for (k, (label, ys)) in series.iter().enumerate() {
            let c = colors[k % colors.len()];
            chart
                .draw_series(ys.iter().enumerate().map(|(i, &y)| Circle::new((i as f64, y), 3, c.filled())))?
                .label(label.clone())
                .legend(move |(x, y)| Circle::new((x, y), 3, c.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerLeft)
            .draw()?;
        Ok(root.present()?)
    })
}
