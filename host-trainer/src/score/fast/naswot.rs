//! NASWOT on this crate's batched kernels: the same network, weights, batch and kernel as
//! the candle reference ([`crate::score::naswot`]), computed without the work that cannot
//! change the result.
//!
//! Exact shortcuts (each leaves every ReLU pattern, hence `K`, unchanged):
//! * `K_ij = sum over ReLU units of [c_i == c_j] = sum_sites (D - hamming(c_i, c_j))`, so the
//!   codes are bit-packed (64 units a word) and compared with popcount; the kernel is held
//!   as integers (`D_total` and a Hamming matrix) and is exact.
//! * The ReLU opening a conv op sees the op's source node, so every conv leaving a node has
//!   the same pattern: it is computed once and counted with its multiplicity (the reference
//!   network has one ReLU per conv op, all observed).
//! * With batch-statistics BN at initialisation (`gamma = 1, beta = 0`) a conv on an
//!   all-zero node gives exactly zero (`(0 - 0) / sqrt(0 + eps)`), as do `none`, skip and
//!   pool of zero: such a node is tracked as a flag, its patterns are all-zero (they add
//!   `D` to every `K_ij`), and nothing is computed from it.
//! * A node's *value* is needed only if it is the output or feeds something needed or a
//!   conv (whose ReLU is observed); convs into a node whose value is never needed are not
//!   run, but their ReLU (on the source node) is still counted, as in the reference, where
//!   ops on nodes that never reach the output still run and are observed.
//! * The stem's output depends on the input and the initialisation only: computed once per
//!   initialisation and shared by every cell.
//!
//! Stride-1 3x3 convs with at least [`WINOGRAD_MIN_CHANNELS`] channels run as Winograd
//! `F(2x2, 3x3)` ([`super::winograd`]): the same function, rounded differently.
//!
//! Everything else is computed as the reference does: the same `f32` weights (read from
//! the candle model after the same seeded initialisation), batch statistics over
//! `(B, H, W)` with the biased variance and `eps = 1e-5`.

use super::kernels::{
    add_hamming, avg_pool2_padded, avg_pool3, bn_apply, centred_codes, conv_batch, copy_or_add, pad_relu_codes,
    ChannelStats, ConvGeom, ShapeError, Store,
};
use super::weights::NetWeights;
use super::winograd::{self, conv3x3_batch};
use crate::nb201::BN_EPS;
use crate::score::linalg::logdet_psd;
use crate::score::{Result, ScoreError, ScoreSettings};
use edge_runtime::layout::{IN_CHANNELS, STAGES};
use simnas_shared::{Arch, Edge, Op};

impl From<ShapeError> for ScoreError {
    fn from(e: ShapeError) -> Self {
        ScoreError::Settings(e.to_string())
    }
}

/// Channels from which stride-1 3x3 convs run as Winograd `F(2x2, 3x3)`: below, its
/// transforms cost more than the multiplies it saves (measured on this crate's kernels:
/// 64 channels 1.5x faster than direct, 32 even, 16 2x slower).
pub const WINOGRAD_MIN_CHANNELS: usize = 64;

/// Winograd weights of one initialisation (empty where the direct conv runs).
#[derive(Debug, Default)]
struct WinoWeights {
    /// `cells[stage][cell][edge]` for the 3x3 conv.
    cells: Vec<Vec<Vec<Vec<f32>>>>,
    /// Reduction conv B before stage `s`, at `s - 1`.
    reduce_b: Vec<Vec<f32>>,
}

impl WinoWeights {
    fn new(cfg: &edge_runtime::NetConfig, w: &NetWeights) -> WinoWeights {
        let on = |s: usize| cfg.stage_channels(s) >= WINOGRAD_MIN_CHANNELS && cfg.stage_side(s) % 2 == 0;
        let cells =
            (0..STAGES)
                .map(|s| {
                    let c = cfg.stage_channels(s);
                    (0..cfg.cells_per_stage)
                        .map(|i| {
                            (0..6)
                                .map(|e| {
                                    if on(s) {
                                        winograd::transform_weights(w.cell(s, i, e, 3), c, c)
                                    } else {
                                        Vec::new()
                                    }
                                })
                                .collect()
                        })
                        .collect()
                })
                .collect();
        let reduce_b = (1..STAGES)
            .map(|s| {
                let c = cfg.stage_channels(s);
                if on(s) {
                    winograd::transform_weights(w.reduce_b(s), c, c)
                } else {
                    Vec::new()
                }
            })
            .collect();
        WinoWeights { cells, reduce_b }
    }
}

fn nonempty(v: &[f32]) -> Option<&[f32]> {
    (!v.is_empty()).then_some(v)
}

/// What a cell needs computed (depends on the cell only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellPlan {
    /// Conv ops leaving each node (how many times its ReLU pattern counts).
    pub mult: [u64; 4],
    /// Whether each node's value is needed (the output, or feeding a conv or a needed node).
    pub needed: [bool; 4],
}

impl CellPlan {
    /// The plan of `arch`. Not [`Arch::nodes`]: NASWOT observes every convolution's input
    /// (its ReLU pattern), so a node feeding a convolution is needed even when that
    /// convolution's output never reaches the cell output.
    pub fn new(arch: &Arch) -> CellPlan {
        let mut mult = [0u64; 4];
        for e in Edge::ALL {
            if arch.op(e).is_conv() {
                mult[e.from() as usize] += 1;
            }
        }
        let mut needed = [false, false, false, true];
        for n in (0..3u8).rev() {
            needed[n as usize] = (n + 1..4).any(|t| {
                Edge::between(n, t).is_some_and(|e| {
                    let op = arch.op(e);
                    op.is_conv() || (op != Op::None && needed[t as usize])
                })
            });
        }
        CellPlan { mult, needed }
    }
}

/// What [`FastNaswot::kernel_observed`] hands every cell output: the map (NHWC), its side,
/// its channels, and whether it is all zero.
pub type CellObserver<'a> = dyn FnMut(&[f32], usize, usize, bool) -> Result<()> + 'a;

/// Per-thread buffers of the fast forward pass (about 28 MB for CIFAR-10 at batch 64).
#[derive(Debug, Default)]
pub struct Workspace {
    nodes: Vec<Vec<f32>>,
    padded: Vec<f32>,
    tmp: Vec<f32>,
    red_a: Vec<f32>,
    pool: Vec<f32>,
    codes: Vec<u64>,
    ham: Vec<u64>,
    wino: winograd::Scratch,
    stats: ChannelStats,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

/// The integer NASWOT kernel: `K_ii = d_total`, `K_ij = d_total - ham[i * B + j]` (`i < j`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntKernel {
    /// Units observed over all ReLUs (with multiplicity).
    pub d_total: u64,
    /// Upper triangle of the weighted Hamming distances, `B x B` row-major.
    pub ham: Vec<u64>,
    /// Batch size.
    pub batch: usize,
}

impl IntKernel {
    /// `K` as a dense symmetric `f64` matrix.
    pub fn to_f64(&self) -> Vec<f64> {
        let b = self.batch;
        let mut k = vec![self.d_total as f64; b * b];
        for i in 0..b {
            for j in i + 1..b {
                let v = (self.d_total - self.ham[i * b + j]) as f64;
                k[i * b + j] = v;
                k[j * b + i] = v;
            }
        }
        k
    }
}

/// The fast NASWOT scorer: weights of every initialisation, the synthetic batch's stem
/// outputs, ready to score any cell.
#[derive(Debug)]
pub struct FastNaswot {
    settings: ScoreSettings,
    weights: Vec<NetWeights>,
    /// Per initialisation, Winograd-transformed weights of the stride-1 3x3 convs with at
    /// least [`WINOGRAD_MIN_CHANNELS`] channels (where it beats the direct conv).
    wino: Vec<WinoWeights>,
    /// Per initialisation: BN(stem conv(x)), NHWC `[B, R, R, C]`.
    stem: Vec<Vec<f32>>,
}

impl FastNaswot {
    /// Build from `weights` (one per initialisation, see [`NetWeights::from_seed`]).
    pub fn new(settings: ScoreSettings, weights: Vec<NetWeights>) -> Result<FastNaswot> {
        settings.validate()?;
        FastNaswot::build(settings, weights)
    }

    /// [`FastNaswot::new`] for any batch of at least one image (MeCo runs one).
    pub(crate) fn build(settings: ScoreSettings, weights: Vec<NetWeights>) -> Result<FastNaswot> {
        if settings.batch == 0 || weights.is_empty() {
            return Err(ScoreError::Settings(format!(
                "nothing to score: {} images, {} initialisations of weights",
                settings.batch,
                weights.len()
            )));
        }
        let (b, r, c) = (settings.batch, settings.net.resolution, settings.net.channels);
        let x = settings.input_batch(); // NCHW
                                        // Padded HWC copy of the input (the stem has no ReLU in front).
        let pw = r + 2;
        let mut padded = vec![0f32; b * pw * pw * IN_CHANNELS];
        for img in 0..b {
            for ch in 0..IN_CHANNELS {
                for y in 0..r {
                    for xx in 0..r {
                        padded[((img * pw + y + 1) * pw + xx + 1) * IN_CHANNELS + ch] =
                            x[((img * IN_CHANNELS + ch) * r + y) * r + xx];
                    }
                }
            }
        }
        let g = ConvGeom { in_side: r, cin: IN_CHANNELS, cout: c, k: 3, stride: 1 };
        let mut stem = Vec::with_capacity(weights.len());
        let mut stats = ChannelStats::default();
        let (mut mean, mut inv) = (Vec::new(), Vec::new());
        for w in &weights {
            let mut tmp = vec![0f32; b * g.out_len()];
            stats.reset(c);
            conv_batch(&g, b, &padded, &w.stem, &mut tmp, Store::Overwrite, Some(&mut stats))?;
            stats.mean_inv_std(BN_EPS, &mut mean, &mut inv);
            let mut out = vec![0f32; tmp.len()];
            bn_apply(&tmp, &mean, &inv, &mut out, tmp.len(), Store::Overwrite);
            stem.push(out);
        }
        let wino = weights.iter().map(|w| WinoWeights::new(&settings.net, w)).collect();
        Ok(FastNaswot { settings, weights, wino, stem })
    }

    /// The settings.
    pub fn settings(&self) -> &ScoreSettings {
        &self.settings
    }

    /// Buffers for one thread.
    pub fn workspace(&self) -> Workspace {
        let (b, cfg) = (self.settings.batch, self.settings.net);
        let max_map = (0..STAGES).map(|s| cfg.stage_side(s).pow(2) * cfg.stage_channels(s)).max().unwrap_or(0);
        let max_padded = (0..STAGES).map(|s| (cfg.stage_side(s) + 2).pow(2) * cfg.stage_channels(s)).max().unwrap_or(0);
        Workspace {
            nodes: (0..4).map(|_| vec![0f32; b * max_map]).collect(),
            padded: vec![0f32; b * max_padded],
            tmp: vec![0f32; b * max_map],
            red_a: vec![0f32; b * max_map],
            pool: vec![0f32; b * max_padded],
            codes: vec![0u64; b * max_map.div_ceil(64)],
            ham: vec![0u64; b * b],
            ..Workspace::default()
        }
    }

    /// Mean NASWOT over the initialisations, `None` for a degenerate cell (disconnected, or a
    /// kernel singular under some initialisation).
    pub fn score(&self, arch: &Arch, ws: &mut Workspace) -> Result<Option<f64>> {
        if !arch.is_connected() {
            return Ok(None);
        }
        let mut sum = 0.0;
        for init in 0..self.weights.len() {
            let k = self.kernel(arch, init, ws)?;
            match logdet_psd(&k.to_f64(), k.batch) {
                Some(v) => sum += v,
                None => return Ok(None),
            }
        }
        Ok(Some(sum / self.weights.len() as f64))
    }

    /// The integer kernel of `arch` under initialisation `init`.
    pub fn kernel(&self, arch: &Arch, init: usize, ws: &mut Workspace) -> Result<IntKernel> {
        self.kernel_observed(arch, init, ws, &mut |_, _, _, _| Ok(()))
    }

    /// [`FastNaswot::kernel`], handing every cell output to `on_cell` as it is computed:
    /// the map (NHWC `[B, side, side, C]`), `side`, `C`, and whether it is all zero (then
    /// the map's contents are not meaningful).
    pub fn kernel_observed(
        &self,
        arch: &Arch,
        init: usize,
        ws: &mut Workspace,
        on_cell: &mut CellObserver<'_>,
    ) -> Result<IntKernel> {
        let (Some(w), Some(wino)) = (self.weights.get(init), self.wino.get(init)) else {
            return Err(ScoreError::Settings(format!("no initialisation {init}")));
        };
        let (b, cfg) = (self.settings.batch, self.settings.net);
        let plan = CellPlan::new(arch);
        ws.ham.clear();
        ws.ham.resize(b * b, 0);
        let mut d_total = 0u64;
        let stem = &self.stem[init];
        ws.nodes[0][..stem.len()].copy_from_slice(stem);
        let (mut cur, mut zero) = (0usize, false);
        for s in 0..STAGES {
            if s > 0 {
                (cur, zero) = reduction(&cfg, b, s, w, wino, cur, zero, ws, &mut d_total)?;
            }
            for cell in 0..cfg.cells_per_stage {
                (cur, zero) = cell_forward(&cfg, b, s, cell, arch, &plan, w, wino, cur, zero, ws, &mut d_total)?;
                let (side, c) = (cfg.stage_side(s), cfg.stage_channels(s));
                on_cell(&ws.nodes[cur][..b * side * side * c], side, c, zero)?;
            }
        }
        // Head: BN (batch statistics) then ReLU; its code is `x - mean > 0`.
        let (side, c) = (cfg.stage_side(STAGES - 1), cfg.final_channels());
        let d = side * side * c;
        d_total += d as u64;
        if !zero {
            let x = &ws.nodes[cur][..b * d];
            ws.stats.reset(c);
            for px in x.chunks_exact(c) {
                for (s, v) in ws.stats.sum.iter_mut().zip(px) {
                    *s += f64::from(*v);
                }
            }
            ws.stats.count = b * side * side;
            let mean: Vec<f32> = ws.stats.sum.iter().map(|s| (s / ws.stats.count as f64) as f32).collect();
            centred_codes(x, b, d, &mean, &mut ws.codes)?;
            add_hamming(&ws.codes, b, d / 64, 1, &mut ws.ham)?;
        }
        Ok(IntKernel { d_total, ham: ws.ham.clone(), batch: b })
    }
}

/// `(&nodes[a], &mut nodes[b])` for `a != b`.
fn pair(nodes: &mut [Vec<f32>], a: usize, b: usize) -> (&[f32], &mut [f32]) {
    if a < b {
        let (lo, hi) = nodes.split_at_mut(b);
        (&lo[a], &mut hi[0])
    } else {
        let (lo, hi) = nodes.split_at_mut(a);
        (&hi[0], &mut lo[b])
    }
}

/// Observe the ReLU of a node (`mult` conv ops open with it): add its codes to the kernel
/// and leave its padded ReLU in `ws.padded`.
#[allow(clippy::too_many_arguments)]
fn observe(
    src: &[f32],
    b: usize,
    side: usize,
    c: usize,
    mult: u64,
    zero: bool,
    ws: &mut Workspace,
    d_total: &mut u64,
) -> Result<()> {
    let d = side * side * c;
    *d_total += mult * d as u64;
    if !zero {
        pad_relu_codes(src, b, side, c, &mut ws.padded, Some(&mut ws.codes))?;
        add_hamming(&ws.codes, b, d / 64, mult, &mut ws.ham)?;
    }
    Ok(())
}

/// `dst (=|+=) BN(conv(ws.padded, w))` with batch statistics; Winograd when `wino` holds the
/// conv's transformed weights.
fn conv_bn(
    g: &ConvGeom,
    b: usize,
    w: &[f32],
    wino: Option<&[f32]>,
    dst: &mut [f32],
    store: Store,
    ws: &mut Workspace,
) -> Result<()> {
    ws.stats.reset(g.cout);
    match wino {
        Some(u) => {
            conv3x3_batch(g, b, &ws.padded, u, &mut ws.tmp, Store::Overwrite, Some(&mut ws.stats), &mut ws.wino)?
        }
        None => conv_batch(g, b, &ws.padded, w, &mut ws.tmp, Store::Overwrite, Some(&mut ws.stats))?,
    }
    ws.stats.mean_inv_std(BN_EPS, &mut ws.mean, &mut ws.inv_std);
    bn_apply(&ws.tmp, &ws.mean, &ws.inv_std, dst, b * g.out_len(), store);
    Ok(())
}

/// One cell on node buffer `cur`; returns the output's buffer and whether it is all zero.
#[allow(clippy::too_many_arguments)]
fn cell_forward(
    cfg: &edge_runtime::NetConfig,
    b: usize,
    s: usize,
    cell: usize,
    arch: &Arch,
    plan: &CellPlan,
    w: &NetWeights,
    wino: &WinoWeights,
    cur: usize,
    in_zero: bool,
    ws: &mut Workspace,
    d_total: &mut u64,
) -> Result<(usize, bool)> {
    let (side, c) = (cfg.stage_side(s), cfg.stage_channels(s));
    let n = b * side * side * c;
    // Node i lives in buffer idx[i].
    let mut idx = [cur, 0, 0, 0];
    let mut k = 1;
    for i in 0..4 {
        if i != cur {
            idx[k] = i;
            k += 1;
        }
    }
    let mut written = [true, false, false, false];
    let mut zero = [in_zero, true, true, true];
    let mut nodes = std::mem::take(&mut ws.nodes);
    let result = (|| -> Result<()> {
        for src in 0..3u8 {
            let si = src as usize;
            if si > 0 {
                zero[si] = !written[si];
            }
            if plan.mult[si] > 0 {
                observe(&nodes[idx[si]][..n], b, side, c, plan.mult[si], zero[si], ws, d_total)?;
            }
            if zero[si] {
                continue;
            }
            for t in src + 1..4 {
                let ti = t as usize;
                let Some(edge) = Edge::between(src, t) else { continue };
                let op = arch.op(edge);
                if op == Op::None || !plan.needed[ti] {
                    continue;
                }
                let store = if written[ti] { Store::Accumulate } else { Store::Overwrite };
                let (x, dst) = pair(&mut nodes, idx[si], idx[ti]);
                match op {
                    Op::SkipConnect => copy_or_add(&x[..n], dst, n, store),
                    Op::AvgPool3x3 => avg_pool3(&x[..n], b, side, c, dst, store),
                    Op::NorConv1x1 | Op::NorConv3x3 => {
                        let k = if op == Op::NorConv3x3 { 3 } else { 1 };
                        let g = ConvGeom { in_side: side, cin: c, cout: c, k, stride: 1 };
                        let u = if k == 3 { nonempty(&wino.cells[s][cell][edge.index()]) } else { None };
                        conv_bn(&g, b, w.cell(s, cell, edge.index(), k), u, dst, store, ws)?;
                    }
                    Op::None => {}
                }
                written[ti] = true;
            }
        }
        zero[3] = !written[3];
        Ok(())
    })();
    ws.nodes = nodes;
    result?;
    Ok((idx[3], zero[3]))
}

/// The reduction block before stage `s` on buffer `cur`.
#[allow(clippy::too_many_arguments)]
fn reduction(
    cfg: &edge_runtime::NetConfig,
    b: usize,
    s: usize,
    w: &NetWeights,
    wino: &WinoWeights,
    cur: usize,
    zero: bool,
    ws: &mut Workspace,
    d_total: &mut u64,
) -> Result<(usize, bool)> {
    let (side_in, c_in) = (cfg.stage_side(s - 1), cfg.stage_channels(s - 1));
    let (side, c) = (cfg.stage_side(s), cfg.stage_channels(s));
    let n = b * side * side * c;
    let out = (cur + 1) % 4;
    let mut nodes = std::mem::take(&mut ws.nodes);
    let result = (|| -> Result<bool> {
        let x = &nodes[cur][..b * side_in * side_in * c_in];
        observe(x, b, side_in, c_in, 1, zero, ws, d_total)?;
        if zero {
            *d_total += (side * side * c) as u64; // relu(a) of a zero block: all-zero codes
            return Ok(true);
        }
        let ga = ConvGeom { in_side: side_in, cin: c_in, cout: c, k: 3, stride: 2 };
        let mut a = std::mem::take(&mut ws.red_a);
        let r = conv_bn(&ga, b, w.reduce_a(s), None, &mut a[..n], Store::Overwrite, ws);
        ws.red_a = a;
        r?;
        let a = std::mem::take(&mut ws.red_a);
        let r = observe(&a[..n], b, side, c, 1, false, ws, d_total);
        ws.red_a = a;
        r?;
        let (x, dst) = pair(&mut nodes, cur, out);
        let gb = ConvGeom { in_side: side, cin: c, cout: c, k: 3, stride: 1 };
        conv_bn(&gb, b, w.reduce_b(s), nonempty(&wino.reduce_b[s - 1]), &mut dst[..n], Store::Overwrite, ws)?;
        avg_pool2_padded(&x[..b * side_in * side_in * c_in], b, side_in, c_in, &mut ws.pool);
        let gs = ConvGeom { in_side: side, cin: c_in, cout: c, k: 1, stride: 1 };
        conv_batch(&gs, b, &ws.pool, w.shortcut(s), &mut dst[..n], Store::Accumulate, None)?;
        Ok(false)
    })();
    ws.nodes = nodes;
    let zero_out = result?;
    Ok((if zero_out { cur } else { out }, zero_out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_by_hand() {
        let p = CellPlan::new(
            &Arch::parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1|none~2|").unwrap(),
        );
        // Node 0 opens one conv (0->1), node 1 one (1->3); node 2 has no way out (2->3 none).
        assert_eq!(p.mult, [1, 1, 0, 0]);
        assert_eq!(p.needed, [true, true, false, true]);
        // A conv into a dead node still needs its source (its ReLU is observed).
        let p = CellPlan::new(&Arch::parse("|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|none~2|").unwrap());
        assert_eq!(p.mult, [1, 0, 0, 0]);
        assert_eq!(p.needed, [true, false, false, true]);
        // Pool into a dead node: not needed.
        let p = CellPlan::new(&Arch::parse("|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|").unwrap());
        assert_eq!(p.needed, [true, false, false, true]);
    }
}
