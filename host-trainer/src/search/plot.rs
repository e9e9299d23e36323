//! SVG plots of searches (plotters' SVG backend only: no font or image libraries).
//!
//! * [`trajectories`]: the paper's Figure 6: the probes of one or more searches and their
//!   final picks in the latency-vs-proxy plane. Latency is normalised per device with the
//!   search's own reference probes ([`super::Normaliser::of`]) so devices of very different
//!   speed share one axis.
//! * [`fitness_vs_budget`]: mean fitness (fraction of the oracle) against the probe budget,
//!   one line per strategy.

use super::{Measured, Normaliser, Pick};
use crate::output::PlotError;
use plotters::prelude::*;
use std::path::Path;

/// One search to draw.
pub struct Trajectory<'a> {
    /// Legend label (the device).
    pub label: String,
    /// Probes in order.
    pub probes: &'a [Measured],
    /// The pick, if any.
    pub pick: Option<Pick>,
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// Probes (small dots joined in probe order) and picks (large rings) of `runs`, with
/// `tf_of` giving the proxy score of a cell.
pub fn trajectories(
    runs: &[Trajectory],
    tf_of: &dyn Fn(simnas_shared::Arch) -> f64,
    title: &str,
    path: &Path,
) -> Result<(), PlotError> {
    crate::output::write_svg(path, (900, 640), |root| {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(-0.05f64..1.05f64, 0.0f64..1.0f64)?;
        chart
            .configure_mesh()
            .x_desc("latency, normalised between the all-skip and all-conv3x3 probes of each device")
            .y_desc("proxy score TF")
            .draw()?;
        for (k, run) in runs.iter().enumerate() {
            let c = COLORS[k % COLORS.len()];
            let norm = Normaliser::of(run.probes);
            let xy = |ms: f64, a| (norm.map_or(0.5, |n| (ms - n.lo) / (n.hi - n.lo)).clamp(-0.05, 1.05), tf_of(a));
            let pts: Vec<(f64, f64)> = run.probes.iter().map(|p| xy(p.latency_ms, p.arch)).collect();
            chart.draw_series(LineSeries::new(pts.clone(), c.mix(0.35).stroke_width(1)))?;
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))?
                .label(run.label.clone())
                .legend(move |(x, y)| Circle::new((x, y), 4, c.filled()));
            if let Some(p) = run.pick {
                chart.draw_series([Circle::new(xy(p.latency_ms, p.arch), 9, c.stroke_width(3))])?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
        Ok(root.present()?)
    })
}

/// Mean fitness against budget: `series` = (strategy, [(budget, mean fitness)]).
pub fn fitness_vs_budget(series: &[(String, Vec<(usize, f64)>)], title: &str, path: &Path) -> Result<(), PlotError> {
    crate::output::write_svg(path, (820, 560), |root| {
        root.fill(&WHITE)?;
        let xs = series.iter().flat_map(|s| s.1.iter().map(|p| p.0 as f64));
        let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
        let (x0, x1) = if x0.is_finite() { (x0 - 0.5, x1 + 0.5) } else { (0.0, 1.0) };
        let y0 = series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).filter(|v| v.is_finite()).fold(1.0f64, f64::min);
        let y0 = (y0 - 0.02).clamp(0.0, 0.98);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(x0..x1, y0..1.005f64)?;
        chart.configure_mesh().x_desc("probe budget").y_desc("fitness / oracle fitness").draw()?;
        for (k, (name, pts)) in series.iter().enumerate() {
            let c = COLORS[k % COLORS.len()];
            let pts: Vec<(f64, f64)> = pts.iter().map(|&(b, f)| (b as f64, f)).collect();
            chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))?
                .label(name.clone())
                .legend(move |(x, y)| Circle::new((x, y), 4, c.filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
        Ok(root.present()?)
    })
}
