//! Per-op latency lookup tables (LUTs) and their least-squares fit to measured tables.
//!
//! A LUT predicts `latency(h) = base + sum_e t[e][op_e]` with `t[e][none] = 0` (`none` costs
//! nothing; without that constraint `base` and a constant shift of every `t` are the same
//! model, since every cell has exactly six edges). Two shapes:
//! * [`LutKind::PerOp`] (the paper): `t[e][op] = t[op]` for every edge, 5 unknowns;
//! * [`LutKind::PerEdgeOp`]: one cost per (edge, op), 25 unknowns, so position effects
//!   (e.g. edges into the output node) are captured.
//!
//! The fit is ordinary least squares over every measured cell of the table.

use super::stats::{r_squared, solve_spd};
use crate::latency::LatencyTable;
use crate::stats::spearman;
use simnas_shared::{Arch, ArchCode, Op, NUM_ARCHS, NUM_EDGES, NUM_OPS};

/// Shape of a LUT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LutKind {
    /// One cost per op (5 unknowns with the base).
    PerOp,
    /// One cost per (edge, op) (25 unknowns with the base).
    PerEdgeOp,
}

/// A latency lookup table (the distribution file's type, [`simnas_formats::distribution::Lut`]).
pub use simnas_formats::distribution::Lut;

/// How well a LUT explains a measured table.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LutFit {
    /// The fitted LUT (ms).
    pub lut: Lut,
    /// R² of the LUT's predictions on the measured cells.
    pub r2: f64,
    /// Spearman rank correlation of predictions with measurements.
    pub spearman: f64,
    /// Measured cells used.
    pub cells: usize,
}

fn features(kind: LutKind, arch: Arch, out: &mut Vec<f64>) {
    out.clear();
    out.push(1.0);
    match kind {
        LutKind::PerOp => {
            for op in &Op::ALL[1..] {
                out.push(arch.count(*op) as f64);
            }
        }
        LutKind::PerEdgeOp => {
            for &o in &arch.ops {
                for op in &Op::ALL[1..] {
                    out.push(f64::from(u8::from(o == *op)));
                }
            }
        }
    }
}

/// Fit a LUT of shape `kind` to every measured cell of `table`.
pub fn fit(table: &LatencyTable, kind: LutKind) -> LutFit {
    let n = match kind {
        LutKind::PerOp => NUM_OPS,
        LutKind::PerEdgeOp => 1 + NUM_EDGES * (NUM_OPS - 1),
    };
    let mut ata = vec![0.0; n * n];
    let mut atb = vec![0.0; n];
    let mut f = Vec::with_capacity(n);
    let mut cells = Vec::with_capacity(NUM_ARCHS);
    for code in ArchCode::all() {
        let Some(y) = table.get_code(code) else { continue };
        let arch = Arch::from_code(code);
        features(kind, arch, &mut f);
        for i in 0..n {
            if f[i] == 0.0 {
                continue;
            }
            atb[i] += f[i] * y;
            for j in 0..n {
                ata[i * n + j] += f[i] * f[j];
            }
        }
        cells.push((arch, y));
    }
    let x = solve_spd(&ata, &atb);
    let mut lut = Lut { base: x[0], t: [[0.0; NUM_OPS]; NUM_EDGES] };
    for (e, row) in lut.t.iter_mut().enumerate() {
        for o in 1..NUM_OPS {
            row[o] = match kind {
                LutKind::PerOp => x[o],
                LutKind::PerEdgeOp => x[1 + e * (NUM_OPS - 1) + (o - 1)],
            };
        }
    }
    let y: Vec<f64> = cells.iter().map(|c| c.1).collect();
    // Predictions equal up to round-off are ties (a per-op LUT gives whole groups of cells
    // the same latency): quantise to 1e-9 of the largest measurement before ranking.
    let q = 1e-9 * y.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    let pred: Vec<f64> = cells.iter().map(|c| (lut.latency(c.0) / q).round() * q).collect();
    LutFit { r2: r_squared(&y, &pred), spearman: spearman(&y, &pred).unwrap_or(0.0), cells: y.len(), lut }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_from(lut: &Lut, noise: impl Fn(usize) -> f64) -> LatencyTable {
        let vals = lut.table().iter().enumerate().map(|(i, v)| Some(v + noise(i))).collect();
        LatencyTable::from_codes("synthetic", vals).unwrap()
    }

    #[test]
    fn recovers_an_exact_per_op_lut() {
        let t = [0.0, 0.1, 0.7, 2.0, 0.4];
        let lut = Lut { base: 3.0, t: [t; NUM_EDGES] };
        let f = fit(&table_from(&lut, |_| 0.0), LutKind::PerOp);
        assert!((f.lut.base - 3.0).abs() < 1e-9, "{:?}", f.lut);
        for row in &f.lut.t {
            for (got, want) in row.iter().zip(t) {
                assert!((got - want).abs() < 1e-9);
            }
        }
        assert!((f.r2 - 1.0).abs() < 1e-12 && f.spearman > 0.999);
        assert_eq!(f.cells, NUM_ARCHS);
        // all-conv3x3 = 3 + 6 * 2.
        assert!((f.lut.hi() - 15.0).abs() < 1e-9);
    }

    #[test]
    fn per_edge_fit_sees_position_and_per_op_fit_averages_it() {
        let mut lut = Lut { base: 1.0, t: [[0.0, 0.1, 0.5, 1.0, 0.3]; NUM_EDGES] };
        lut.t[5][3] = 2.5; // a costly conv into the output node
        let table = table_from(&lut, |_| 0.0);
        let edge = fit(&table, LutKind::PerEdgeOp);
        assert!((edge.lut.t[5][3] - 2.5).abs() < 1e-9 && (edge.lut.t[0][3] - 1.0).abs() < 1e-9);
        assert!((edge.r2 - 1.0).abs() < 1e-12);
        let op = fit(&table, LutKind::PerOp);
        // Balanced design: the per-op conv3x3 cost is the edge average (5*1 + 2.5)/6 = 1.25.
        assert!((op.lut.t[0][3] - 1.25).abs() < 1e-9, "{:?}", op.lut);
        assert!(op.r2 < 1.0);
    }

    #[test]
    fn missing_cells_are_ignored() {
        let lut = Lut { base: 2.0, t: [[0.0, 0.2, 0.4, 0.9, 0.3]; NUM_EDGES] };
        let mut vals: Vec<Option<f64>> = lut.table().into_iter().map(Some).collect();
        for (i, v) in vals.iter_mut().enumerate() {
            if i % 3 == 0 {
                *v = None;
            }
        }
        let f = fit(&LatencyTable::from_codes("gappy", vals).unwrap(), LutKind::PerOp);
        assert!((f.lut.t[0][3] - 0.9).abs() < 1e-9);
        assert_eq!(f.cells, NUM_ARCHS - NUM_ARCHS.div_ceil(3));
    }
}
