//! Training curves as CSV and as an SVG of the paper's Figure 5 panels.

use super::train::CurveRow;
use crate::output::PlotError;
use std::path::Path;

/// The curves as CSV (header from the row's fields).
pub fn csv(rows: &[CurveRow]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Six panels over environment steps: TF, normalised latency, latency percentile and
/// ground-truth accuracy of the final cell, the reference network's latency, the return.
pub fn figure5(rows: &[CurveRow], path: &Path) -> Result<(), PlotError> {
    use plotters::prelude::*;
    crate::output::write_svg(path, (1200, 700), |root| {
        root.fill(&WHITE)?;
        let panels = root.split_evenly((2, 3));
        type Get = fn(&CurveRow) -> f64;
        let specs: [(&str, Get); 6] = [
            ("TF of the final cell", |r| r.final_tf),
            ("normalised latency of the final cell", |r| r.final_latency),
            ("latency percentile on the device", |r| r.final_percentile),
            ("CIFAR-10 test accuracy (plot only)", |r| r.final_accuracy),
            ("latency of the reference network", |r| r.reference_latency),
            ("episode return", |r| r.episode_return),
        ];
        let x_max = rows.last().map_or(1.0, |r| r.steps as f64).max(1.0);
        for (area, (title, get)) in panels.iter().zip(specs) {
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.episodes > 0)
                .map(|r| (r.steps as f64, get(r)))
                .filter(|p| p.1.is_finite())
                .collect();
            let (lo, hi) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| (l.min(p.1), h.max(p.1)));
            let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi + (hi - lo) * 0.05) } else { (0.0, 1.0) };
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(48)
                .build_cartesian_2d(0.0..x_max, lo..hi)?;
            chart.configure_mesh().x_labels(5).y_labels(5).x_desc("steps").draw()?;
            chart.draw_series(LineSeries::new(pts, BLUE.stroke_width(1)))?;
        }
        Ok(root.present()?)
    })
}
