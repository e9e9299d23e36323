//! LogSynflow on this crate's `f64` kernels: the candle reference
//! ([`crate::score::logsynflow`]) with its forward and backward written out by hand.
//!
//! Under SynFlow's linearisation (absolute-valued weights, BN disabled, all-ones input,
//! zero biases) every activation is non-negative, so each ReLU is the identity and the
//! network is linear in its input. A node that receives anything is strictly positive
//! everywhere (a conv's centre tap, a pool's own pixel, a skip all carry a positive value),
//! so ReLU derivatives never block a gradient that reaches a weight. Hence, exactly:
//! * forward: only nodes that reach the cell output are computed (the others get a zero
//!   gradient, so their weights score `ln(0 + 1) = 0`, as in the reference);
//! * backward from `R = sum(logits)`: `dR/dpooled_c = sum_k W_fc[c][k]`, the mean over
//!   `H x W` spreads it evenly, then each cell is walked back edge by edge (skip: copy;
//!   pool: its adjoint; conv: weight gradient, then the input gradient through the
//!   transposed taps), the reductions likewise, down to the stem;
//! * each conv or linear weight `theta` with gradient `g` adds `|theta * ln(g + 1)|`.

use super::kernels::ConvGeom;
use super::kernels64::{
    add, add_interior, conv_dgrad, conv_fwd, conv_wgrad, log_synflow_terms, pad, pool2_backward, pool2_padded, pool3,
    pool3_backward, transpose_taps,
};
use super::weights::NetWeights;
use crate::score::{Result, ScoreError, ScoreSettings};
use candle_core::DType;
use edge_runtime::layout::{IN_CHANNELS, STAGES};
use edge_runtime::NetConfig;
use simnas_shared::{Arch, Edge, Op};

/// The fast LogSynflow scorer: absolute `f64` weights of every initialisation (and their
/// tap-transposed copies for input gradients).
#[derive(Debug)]
pub struct FastSynflow {
    settings: ScoreSettings,
    w: Vec<NetWeights<f64>>,
    wt: Vec<NetWeights<f64>>,
}

#[derive(Debug, Default)]
struct CellTape {
    nodes: [Vec<f64>; 4],
    padded: [Vec<f64>; 4],
}

#[derive(Debug, Default)]
struct RedTape {
    xpad: Vec<f64>,
    a: Vec<f64>,
    apad: Vec<f64>,
    pool: Vec<f64>,
}

/// Per-thread buffers of the fast LogSynflow (about 8 MB for CIFAR-10).
#[derive(Debug, Default)]
pub struct SynflowWorkspace {
    ones_pad: Vec<f64>,
    stem_out: Vec<f64>,
    cells: Vec<CellTape>,
    reds: Vec<RedTape>,
    delta: [Vec<f64>; 4],
    dx: Vec<f64>,
    dpad: Vec<f64>,
    dw: Vec<f64>,
}

/// Which nodes carry a value and which reach the output.
#[derive(Clone, Copy, Debug)]
struct Flow {
    /// Receives a non-zero value (node 0: the cell input).
    nonzero: [bool; 4],
    /// Reaches node 3 through non-`none` edges.
    live: [bool; 4],
}

impl Flow {
    /// The cell's reachability ([`Arch::nodes`], the one analysis of the cell graph).
    fn new(arch: &Arch) -> Flow {
        let nodes = arch.nodes();
        Flow { nonzero: nodes.from_input, live: nodes.to_output }
    }

    /// Whether edge `e` carries a gradient-bearing contribution.
    fn active(&self, arch: &Arch, e: Edge) -> bool {
        arch.op(e) != Op::None && self.nonzero[e.from() as usize] && self.live[e.to() as usize]
    }
}

fn geom(side: usize, cin: usize, cout: usize, k: usize, stride: usize) -> ConvGeom {
    ConvGeom { in_side: side, cin, cout, k, stride }
}

fn kernel_failed(what: &str) -> ScoreError {
    ScoreError::Settings(format!("LogSynflow kernel {what}: buffer sizes do not match the network"))
}

impl FastSynflow {
    /// Absolute-valued `f64` weights of every initialisation of `settings`.
    pub fn new(settings: ScoreSettings) -> Result<FastSynflow> {
        settings.validate()?;
        let mut w = Vec::new();
        let mut wt = Vec::new();
        for i in 0..settings.inits {
            let mut nw = NetWeights::<f64>::from_seed(&settings, i, DType::F64)?;
            nw.abs();
            wt.push(transposed(&settings.net, &nw));
            w.push(nw);
        }
        Ok(FastSynflow { settings, w, wt })
    }

    /// Buffers for one thread.
    pub fn workspace(&self) -> SynflowWorkspace {
        let cfg = self.settings.net;
        let map = |s: usize| cfg.stage_side(s).pow(2) * cfg.stage_channels(s);
        let padded = |s: usize| (cfg.stage_side(s) + 2).pow(2) * cfg.stage_channels(s);
        let r = cfg.resolution;
        let mut ones_pad = vec![0.0; (r + 2) * (r + 2) * IN_CHANNELS];
        pad(&vec![1.0; r * r * IN_CHANNELS], r, IN_CHANNELS, &mut ones_pad);
        let cells = (0..STAGES)
            .flat_map(|s| {
                (0..cfg.cells_per_stage).map(move |_| CellTape {
                    nodes: std::array::from_fn(|_| vec![0.0; map(s)]),
                    padded: std::array::from_fn(|_| vec![0.0; padded(s)]),
                })
            })
            .collect();
        let reds = (1..STAGES)
            .map(|s| RedTape {
                xpad: vec![0.0; padded(s - 1)],
                a: vec![0.0; map(s)],
                apad: vec![0.0; padded(s)],
                pool: vec![0.0; (cfg.stage_side(s) + 2).pow(2) * cfg.stage_channels(s - 1)],
            })
            .collect();
        let max_map = (0..STAGES).map(map).max().unwrap_or(0);
        let max_pad = (0..STAGES).map(padded).max().unwrap_or(0);
        let c4 = cfg.final_channels();
        SynflowWorkspace {
            ones_pad,
            stem_out: vec![0.0; map(0)],
            cells,
            reds,
            delta: std::array::from_fn(|_| vec![0.0; max_map]),
            dx: vec![0.0; max_map],
            dpad: vec![0.0; max_pad],
            dw: vec![0.0; 9 * c4 * c4],
        }
    }

    /// Mean LogSynflow of `arch` over the initialisations.
    pub fn score(&self, arch: &Arch, ws: &mut SynflowWorkspace) -> Result<f64> {
        let mut sum = 0.0;
        for i in 0..self.w.len() {
            sum += self.score_init(arch, i, ws)?;
        }
        Ok(sum / self.w.len() as f64)
    }

    /// LogSynflow of `arch` under initialisation `init`.
    pub fn score_init(&self, arch: &Arch, init: usize, ws: &mut SynflowWorkspace) -> Result<f64> {
        let (Some(w), Some(wt)) = (self.w.get(init), self.wt.get(init)) else {
            return Err(ScoreError::Settings(format!("no initialisation {init}")));
        };
        if !arch.is_connected() {
            // The output ignores every weight but the classifier's, whose input is zero.
            return Ok(0.0);
        }
        let cfg = self.settings.net;
        let flow = Flow::new(arch);
        let n = cfg.cells_per_stage;
        // Forward.
        let r = cfg.resolution;
        let gs = geom(r, IN_CHANNELS, cfg.channels, 3, 1);
        if !conv_fwd(&gs, &ws.ones_pad, &w.stem, &mut ws.stem_out, false) {
            return Err(kernel_failed("stem"));
        }
        for s in 0..STAGES {
            for i in 0..n {
                let idx = s * n + i;
                let (before, rest) = ws.cells.split_at_mut(idx);
                let input: &[f64] = if idx == 0 {
                    &ws.stem_out
                } else if i == 0 {
                    // The reduction's output was left in this cell's node 0.
                    let tape = &mut rest[0];
                    let (side_in, c_in) = (cfg.stage_side(s - 1), cfg.stage_channels(s - 1));
                    let prev = &before[idx - 1].nodes[3];
                    reduction_forward(&cfg, s, w, &mut ws.reds[s - 1], prev, side_in, c_in, &mut tape.nodes[0])?;
                    cell_forward(&cfg, s, i, arch, &flow, w, tape, None)?;
                    continue;
                } else {
                    &before[idx - 1].nodes[3]
                };
                cell_forward(&cfg, s, i, arch, &flow, w, &mut rest[0], Some(input))?;
            }
        }
        // Head: pooled features, classifier term, gradient spread over H x W.
        let (side, c) = (cfg.stage_side(STAGES - 1), cfg.final_channels());
        let hw = side * side;
        let last = &ws.cells[STAGES * n - 1].nodes[3];
        let mut pooled = vec![0.0; c];
        for px in last[..hw * c].chunks_exact(c) {
            pooled.iter_mut().zip(px).for_each(|(p, v)| *p += v);
        }
        pooled.iter_mut().for_each(|p| *p /= hw as f64);
        let classes = cfg.classes;
        let mut score = 0.0;
        let mut u = vec![0.0; c];
        for (ch, row) in w.classifier.chunks_exact(classes).enumerate() {
            u[ch] = row.iter().sum();
            score += row.iter().map(|&wv| (wv * (pooled[ch] + 1.0).ln()).abs()).sum::<f64>();
        }
        let mut d = std::mem::take(&mut ws.dx);
        for px in d[..hw * c].chunks_exact_mut(c) {
            px.iter_mut().zip(&u).for_each(|(dv, uv)| *dv = uv / hw as f64);
        }
        // Backward: cells and reductions in reverse, then the stem.
        for s in (0..STAGES).rev() {
            for i in (0..n).rev() {
                score += cell_backward(&cfg, s, s * n + i, arch, &flow, w, wt, ws, &mut d)?;
            }
            if s > 0 {
                score += reduction_backward(&cfg, s, w, wt, ws, &mut d)?;
            }
        }
        let mut dw = std::mem::take(&mut ws.dw);
        let ok = conv_wgrad(&gs, &ws.ones_pad, &d[..r * r * cfg.channels], &mut dw);
        score += log_synflow_terms(&w.stem, &dw[..gs.weights_len()]);
        ws.dw = dw;
        ws.dx = d;
        if !ok {
            return Err(kernel_failed("stem gradient"));
        }
        Ok(score)
    }
}

/// Tap-transposed copies (`[kh][kw][cout][cin]`) of every conv used for input gradients.
fn transposed(cfg: &NetConfig, w: &NetWeights<f64>) -> NetWeights<f64> {
    let mut t = w.clone();
    for s in 1..STAGES {
        let (p, c) = (cfg.stage_channels(s - 1), cfg.stage_channels(s));
        let r = &mut t.reductions[s - 1];
        r[0] = transpose_taps(&w.reductions[s - 1][0], 3, p, c);
        r[1] = transpose_taps(&w.reductions[s - 1][1], 3, c, c);
        r[2] = transpose_taps(&w.reductions[s - 1][2], 1, p, c);
    }
    for (s, stage) in t.cells.iter_mut().enumerate() {
        let c = cfg.stage_channels(s);
        for (i, cell) in stage.iter_mut().enumerate() {
            for (e, pair) in cell.iter_mut().enumerate() {
                pair[0] = transpose_taps(&w.cells[s][i][e][0], 1, c, c);
                pair[1] = transpose_taps(&w.cells[s][i][e][1], 3, c, c);
            }
        }
    }
    t
}

/// `(&v[a], &mut v[b])` for `a != b`.
fn pair<T>(v: &mut [T], a: usize, b: usize) -> (&T, &mut T) {
    if a < b {
        let (lo, hi) = v.split_at_mut(b);
        (&lo[a], &mut hi[0])
    } else {
        let (lo, hi) = v.split_at_mut(a);
        (&hi[0], &mut lo[b])
    }
}

/// Forward one cell into `tape` (node 0 copied from `input`, or already in place).
#[allow(clippy::too_many_arguments)]
fn cell_forward(
    cfg: &NetConfig,
    s: usize,
    i: usize,
    arch: &Arch,
    flow: &Flow,
    w: &NetWeights<f64>,
    tape: &mut CellTape,
    input: Option<&[f64]>,
) -> Result<()> {
    let (side, c) = (cfg.stage_side(s), cfg.stage_channels(s));
    let m = side * side * c;
    if let Some(x) = input {
        tape.nodes[0][..m].copy_from_slice(&x[..m]);
    }
    let mut padded = [false; 4];
    for t in 1..4u8 {
        let ti = t as usize;
        let mut written = false;
        for src in 0..t {
            let Some(e) = Edge::between(src, t) else { continue };
            if !flow.active(arch, e) {
                continue;
            }
            let si = src as usize;
            let op = arch.op(e);
            if op.is_conv() && !padded[si] {
                pad(&tape.nodes[si][..m], side, c, &mut tape.padded[si]);
                padded[si] = true;
            }
            let (x, dst) = pair(&mut tape.nodes, si, ti);
            match op {
                Op::SkipConnect => add(&x[..m], &mut dst[..m], written),
                Op::AvgPool3x3 => pool3(&x[..m], side, c, &mut dst[..m], written),
                Op::NorConv1x1 | Op::NorConv3x3 => {
                    let k = if op == Op::NorConv3x3 { 3 } else { 1 };
                    let ok =
                        conv_fwd(&geom(side, c, c, k, 1), &tape.padded[si], w.cell(s, i, e.index(), k), dst, written);
                    if !ok {
                        return Err(kernel_failed("cell conv"));
                    }
                }
                Op::None => {}
            }
            written = true;
        }
        if !written {
            tape.nodes[ti][..m].fill(0.0);
        }
    }
    Ok(())
}

/// Walk one cell back: `d` holds the gradient of the cell output on entry and of its input
/// on return. Returns the cell's LogSynflow terms.
#[allow(clippy::too_many_arguments)]
fn cell_backward(
    cfg: &NetConfig,
    s: usize,
    idx: usize,
    arch: &Arch,
    flow: &Flow,
    w: &NetWeights<f64>,
    wt: &NetWeights<f64>,
    ws: &mut SynflowWorkspace,
    d: &mut Vec<f64>,
) -> Result<f64> {
    let i = idx % cfg.cells_per_stage;
    let (side, c) = (cfg.stage_side(s), cfg.stage_channels(s));
    let m = side * side * c;
    let mut delta = std::mem::take(&mut ws.delta);
    std::mem::swap(&mut delta[3], d);
    let mut has = [false, false, false, true];
    let mut score = 0.0;
    let tape = &ws.cells[idx];
    let mut result = Ok(());
    'outer: for t in (1..4u8).rev() {
        let ti = t as usize;
        if !has[ti] {
            continue;
        }
        for src in 0..t {
            let Some(e) = Edge::between(src, t) else { continue };
            if !flow.active(arch, e) {
                continue;
            }
            let si = src as usize;
            let (dt, ds) = pair(&mut delta, ti, si);
            if !has[si] {
                ds[..m].fill(0.0);
                has[si] = true;
            }
            match arch.op(e) {
                Op::SkipConnect => add(&dt[..m], &mut ds[..m], true),
                Op::AvgPool3x3 => pool3_backward(&dt[..m], side, c, &mut ds[..m]),
                op @ (Op::NorConv1x1 | Op::NorConv3x3) => {
                    let k = if op == Op::NorConv3x3 { 3 } else { 1 };
                    let g = geom(side, c, c, k, 1);
                    let ok = conv_wgrad(&g, &tape.padded[si], &dt[..m], &mut ws.dw)
                        && conv_dgrad(&g, &dt[..m], wt.cell(s, i, e.index(), k), &mut ws.dpad);
                    if !ok {
                        result = Err(kernel_failed("cell gradient"));
                        break 'outer;
                    }
                    score += log_synflow_terms(w.cell(s, i, e.index(), k), &ws.dw[..g.weights_len()]);
                    add_interior(&ws.dpad, side, c, &mut ds[..m]);
                }
                Op::None => {}
            }
        }
    }
    if result.is_ok() && !has[0] {
        delta[0][..m].fill(0.0);
    }
    std::mem::swap(&mut delta[0], d);
    ws.delta = delta;
    result.map(|()| score)
}

/// Forward the reduction before stage `s` from `x` into `out`.
#[allow(clippy::too_many_arguments)]
fn reduction_forward(
    cfg: &NetConfig,
    s: usize,
    w: &NetWeights<f64>,
    tape: &mut RedTape,
    x: &[f64],
    side_in: usize,
    c_in: usize,
    out: &mut [f64],
) -> Result<()> {
    let (side, c) = (cfg.stage_side(s), cfg.stage_channels(s));
    pad(x, side_in, c_in, &mut tape.xpad);
    let ok = conv_fwd(&geom(side_in, c_in, c, 3, 2), &tape.xpad, w.reduce_a(s), &mut tape.a, false);
    pad(&tape.a, side, c, &mut tape.apad);
    pool2_padded(x, side_in, c_in, &mut tape.pool);
    let ok = ok
        && conv_fwd(&geom(side, c, c, 3, 1), &tape.apad, w.reduce_b(s), out, false)
        && conv_fwd(&geom(side, c_in, c, 1, 1), &tape.pool, w.shortcut(s), out, true);
    if ok {
        Ok(())
    } else {
        Err(kernel_failed("reduction"))
    }
}

/// Walk the reduction before stage `s` back (`d`: output gradient in, input gradient out).
fn reduction_backward(
    cfg: &NetConfig,
    s: usize,
    w: &NetWeights<f64>,
    wt: &NetWeights<f64>,
    ws: &mut SynflowWorkspace,
    d: &mut Vec<f64>,
) -> Result<f64> {
    let (side_in, c_in) = (cfg.stage_side(s - 1), cfg.stage_channels(s - 1));
    let (side, c) = (cfg.stage_side(s), cfg.stage_channels(s));
    let (m, m_in) = (side * side * c, side_in * side_in * c_in);
    let tape = &ws.reds[s - 1];
    let (ga, gb, gs) = (geom(side_in, c_in, c, 3, 2), geom(side, c, c, 3, 1), geom(side, c_in, c, 1, 1));
    let mut score = 0.0;
    let mut da = std::mem::take(&mut ws.delta[1]);
    let mut dx = std::mem::take(&mut ws.delta[2]);
    let mut ok = conv_wgrad(&gb, &tape.apad, &d[..m], &mut ws.dw);
    score += log_synflow_terms(w.reduce_b(s), &ws.dw[..gb.weights_len()]);
    ok = ok && conv_dgrad(&gb, &d[..m], wt.reduce_b(s), &mut ws.dpad);
    da[..m].fill(0.0);
    add_interior(&ws.dpad, side, c, &mut da[..m]);
    ok = ok && conv_wgrad(&ga, &tape.xpad, &da[..m], &mut ws.dw);
    score += log_synflow_terms(w.reduce_a(s), &ws.dw[..ga.weights_len()]);
    ok = ok && conv_dgrad(&ga, &da[..m], wt.reduce_a(s), &mut ws.dpad);
    dx[..m_in].fill(0.0);
    add_interior(&ws.dpad, side_in, c_in, &mut dx[..m_in]);
    ok = ok && conv_wgrad(&gs, &tape.pool, &d[..m], &mut ws.dw);
    score += log_synflow_terms(w.shortcut(s), &ws.dw[..gs.weights_len()]);
    ok = ok && conv_dgrad(&gs, &d[..m], wt.shortcut(s), &mut ws.dpad);
    pool2_backward(&ws.dpad, side_in, c_in, &mut dx[..m_in]);
    std::mem::swap(d, &mut dx);
    ws.delta[1] = da;
    ws.delta[2] = dx;
    if ok {
        Ok(score)
    } else {
        Err(kernel_failed("reduction gradient"))
    }
}

#[cfg(test)]
mod flow_tests {
    use simnas_shared::{Arch, ArchCode, Edge, Op};

    /// The shared analysis gives what this module computed by itself before: nodes carrying
    /// a value forward, nodes reaching the output backward, over every cell.
    #[test]
    fn flow_is_the_cell_graphs_reachability_on_every_cell() {
        for c in ArchCode::all() {
            let arch = Arch::from_code(c);
            let mut nonzero = [true, false, false, false];
            for e in Edge::ALL {
                if arch.op(e) != Op::None && nonzero[e.from() as usize] {
                    nonzero[e.to() as usize] = true;
                }
            }
            let mut live = [false, false, false, true];
            for n in (0..3u8).rev() {
                live[n as usize] =
                    (n + 1..4).any(|t| Edge::between(n, t).is_some_and(|e| arch.op(e) != Op::None && live[t as usize]));
            }
            let f = super::Flow::new(&arch);
            assert_eq!((f.nonzero, f.live), (nonzero, live), "{arch}");
        }
    }
}
