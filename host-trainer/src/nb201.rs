//! The NAS-Bench-201 macro network in candle: the reference the edge runtime is checked
//! against, and the network the training-free scores are computed on.
//!
//! Exactly xautodl's `TinyNetwork` with `InferCell`s, unpruned (shapes for a batch `B`,
//! NCHW, `C` base channels, `R` input side, `K` classes):
//!
//! ```text
//! x [B,3,R,R] -> stem: Conv3x3(3->C, pad 1) -> BN                    [B,C,R,R]
//!   stage 0: N cells at C                                             [B,C,R,R]
//!   reduction: ResNetBasicblock(C->2C, stride 2)                      [B,2C,R/2,R/2]
//!   stage 1: N cells at 2C
//!   reduction: ResNetBasicblock(2C->4C, stride 2)                     [B,4C,R/4,R/4]
//!   stage 2: N cells at 4C
//!   head: BN -> ReLU -> global mean over H,W -> Linear(4C->K) + bias  [B,K]
//! ```
//!
//! ResNetBasicblock: `y = BN(Conv3x3(ReLU(BN(Conv3x3/s2(ReLU(x)))))) + Conv1x1(AvgPool2x2(x))`
//! (the shortcut has no BN). A cell: `n0 = x`, `n_j = sum_{i<j} op_{i->j}(n_i)`, output `n3`;
//! edges in NATS-Bench order 0->1, 0->2, 1->2, 0->3, 1->3, 2->3. Ops: `none` = exact zeros,
//! `skip_connect` = identity, `nor_conv_kxk` = BN(Conv_kxk(ReLU(x))) (no conv bias, pad
//! (k-1)/2), `avg_pool_3x3` = 3x3 mean, stride 1, pad 1, padding not counted. Nothing is
//! pruned: a conv applied to an all-zero node still adds its BN shift, and ops on nodes that
//! never reach the output are still computed (their ReLUs are still observed).
//!
//! BN in [`BnMode::Eval`] is `(x - mean) / sqrt(var + eps) * gamma + beta` with the running
//! statistics (evaluated as `x * scale + shift`, per channel), in [`BnMode::Batch`] it uses the batch mean and biased variance over
//! `(B, H, W)` without touching the running statistics, in [`BnMode::Identity`] it is skipped.
//!
//! The model is a supernet: every edge of every cell owns both a 1x1 and a 3x3 conv (each
//! with its BN), so the parameters do not depend on the cell, [`Nb201::set_arch`] is free,
//! and [`Nb201::to_dense_params`] writes the edge runtime's dense layout slot for slot.
//! Every parameter and running statistic is a candle [`Var`] registered in the model's
//! [`VarMap`].

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;
use edge_runtime::layout::{NetConfig, Slot, IN_CHANNELS, STAGES};
use simnas_shared::{Arch, Edge, Op, NUM_EDGES};

mod export;
mod init;

pub use init::Fan;

/// Batch-norm epsilon (PyTorch's default, as in NAS-Bench-201).
pub const BN_EPS: f64 = 1e-5;

/// What can go wrong building, running or exporting the model.
#[derive(Debug, thiserror::Error)]
pub enum Nb201Error {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The configuration was refused by the runtime's layout.
    #[error("network configuration: {0}")]
    Config(#[from] edge_runtime::Error),
    /// Only F32 and F64 models exist.
    #[error("dtype {0:?} is not supported (use F32 or F64)")]
    DType(DType),
    /// An HWC input slice of the wrong length.
    #[error("input holds {got} floats; expected {expected} (HWC, 3 channels)")]
    InputLength {
        /// Floats expected.
        expected: usize,
        /// Floats given.
        got: usize,
    },
    /// An input tensor that is not `[B, 3, R, R]`.
    #[error("input tensor has shape {got:?}; expected [batch, 3, {side}, {side}]")]
    InputShape {
        /// The shape given.
        got: Vec<usize>,
        /// The configured side `R`.
        side: usize,
    },
    /// A layout slot whose geometry the model does not have.
    #[error("parameter slot {slot:?} needs {expected} floats; the model has {got}")]
    SlotMismatch {
        /// The slot.
        slot: Slot,
        /// Floats the layout expects.
        expected: usize,
        /// Floats the model holds for it.
        got: usize,
    },
    /// Another thread panicked while holding the parameter map.
    #[error("the parameter map's lock is poisoned")]
    Poisoned,
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, Nb201Error>;

/// How batch norms behave during a forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BnMode {
    /// Running statistics (inference).
    Eval,
    /// Batch statistics (train mode; the running statistics are not updated).
    Batch,
    /// Batch norms disabled (identity).
    Identity,
}

/// Where a ReLU sits, as reported to the observer of [`Nb201::forward_observed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReluSite {
    /// The ReLU opening conv `a` (0) or `b` (1) of the reduction block before `stage`.
    Reduction {
        /// Stage 1 or 2.
        stage: usize,
        /// 0 for the strided conv, 1 for the second conv.
        conv: usize,
    },
    /// The ReLU opening the conv op on `edge` of cell `cell` of `stage`.
    Cell {
        /// Stage 0..3.
        stage: usize,
        /// Cell within the stage.
        cell: usize,
        /// Edge 0..6.
        edge: usize,
    },
    /// The ReLU after the final batch norm.
    Head,
}

/// Observer of ReLU outputs (see [`Nb201::forward_observed`]).
pub type ReluObserver<'a> = dyn FnMut(ReluSite, &Tensor) -> Result<()> + 'a;

/// What a parameter is, for initialisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    ConvWeight { fan_in: usize, fan_out: usize },
    BnGamma,
    BnBeta,
    BnMean,
    BnVar,
    LinearWeight { fan_in: usize, fan_out: usize },
    LinearBias { fan_in: usize },
}

#[derive(Clone, Debug)]
struct BatchNorm {
    gamma: Var,
    beta: Var,
    mean: Var,
    var: Var,
}

/// A conv (no bias) with its weight `[cout, cin, k, k]`.
#[derive(Clone, Debug)]
struct Conv {
    w: Var,
    stride: usize,
    pad: usize,
}

#[derive(Clone, Debug)]
struct ConvBn {
    conv: Conv,
    bn: BatchNorm,
}

#[derive(Clone, Debug)]
struct Reduction {
    a: ConvBn,
    b: ConvBn,
    shortcut: Conv,
}

/// `convs[edge][0]` is the 1x1 op of the edge, `convs[edge][1]` the 3x3 op.
#[derive(Clone, Debug)]
struct Cell {
    convs: Vec<[ConvBn; 2]>,
}

/// Registers parameters in a [`VarMap`] and remembers their order and kind.
struct Builder<'a> {
    varmap: &'a VarMap,
    dtype: DType,
    device: &'a Device,
    params: Vec<(String, Kind, Var)>,
}

impl Builder<'_> {
    fn var(&mut self, name: String, shape: &[usize], kind: Kind) -> Result<Var> {
        let var = Var::zeros(shape, self.dtype, self.device)?;
        let mut map = self.varmap.data().lock().map_err(|_| Nb201Error::Poisoned)?;
        map.insert(name.clone(), var.clone());
        drop(map);
        self.params.push((name, kind, var.clone()));
        Ok(var)
    }

    fn conv(&mut self, name: &str, cin: usize, cout: usize, k: usize, stride: usize) -> Result<Conv> {
        let kind = Kind::ConvWeight { fan_in: cin * k * k, fan_out: cout * k * k };
        let w = self.var(format!("{name}.weight"), &[cout, cin, k, k], kind)?;
        Ok(Conv { w, stride, pad: (k - 1) / 2 })
    }

    fn bn(&mut self, name: &str, c: usize) -> Result<BatchNorm> {
        Ok(BatchNorm {
            gamma: self.var(format!("{name}.weight"), &[c], Kind::BnGamma)?,
            beta: self.var(format!("{name}.bias"), &[c], Kind::BnBeta)?,
            mean: self.var(format!("{name}.running_mean"), &[c], Kind::BnMean)?,
            var: self.var(format!("{name}.running_var"), &[c], Kind::BnVar)?,
        })
    }

    fn conv_bn(&mut self, name: &str, cin: usize, cout: usize, k: usize, stride: usize) -> Result<ConvBn> {
        Ok(ConvBn {
            conv: self.conv(&format!("{name}.conv"), cin, cout, k, stride)?,
            bn: self.bn(&format!("{name}.bn"), cout)?,
        })
    }
}

/// The NB201 macro network for one configuration, running one cell (see the module docs).
pub struct Nb201 {
    cfg: NetConfig,
    arch: Arch,
    dtype: DType,
    device: Device,
    varmap: VarMap,
    params: Vec<(String, Kind, Var)>,
    stem: ConvBn,
    /// Reductions before stages 1 and 2.
    reductions: Vec<Reduction>,
    /// `cells[stage][cell]`.
    cells: Vec<Vec<Cell>>,
    head_bn: BatchNorm,
    fc_w: Var,
    fc_b: Var,
    /// Per stage, `1 / count` of the 3x3 window's in-image taps, shape `[1, 1, H, W]`.
    pool_scale: Vec<Tensor>,
}

impl std::fmt::Debug for Nb201 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nb201")
            .field("cfg", &self.cfg)
            .field("arch", &self.arch)
            .field("dtype", &self.dtype)
            .field("params", &self.params.len())
            .finish_non_exhaustive()
    }
}

impl Nb201 {
    /// A model for `cfg` running `arch`, all parameters zero (call an `init_*` method), in
    /// `dtype` (F32 or F64) on `device`.
    pub fn new(cfg: NetConfig, arch: Arch, dtype: DType, device: &Device) -> Result<Nb201> {
        cfg.validate()?;
        if !matches!(dtype, DType::F32 | DType::F64) {
            return Err(Nb201Error::DType(dtype));
        }
        let varmap = VarMap::new();
        let mut b = Builder { varmap: &varmap, dtype, device, params: Vec::new() };
        let c0 = cfg.channels;
        let stem = b.conv_bn("stem", IN_CHANNELS, c0, 3, 1)?;
        let mut reductions = Vec::new();
        let mut cells = Vec::new();
        for s in 0..STAGES {
            let c = cfg.stage_channels(s);
            if s > 0 {
                let p = cfg.stage_channels(s - 1);
                let name = format!("reduction{s}");
                reductions.push(Reduction {
                    a: b.conv_bn(&format!("{name}.conv_a"), p, c, 3, 2)?,
                    b: b.conv_bn(&format!("{name}.conv_b"), c, c, 3, 1)?,
                    shortcut: b.conv(&format!("{name}.downsample"), p, c, 1, 1)?,
                });
            }
            let mut stage = Vec::new();
            for i in 0..cfg.cells_per_stage {
                let mut convs = Vec::with_capacity(NUM_EDGES);
                for e in 0..NUM_EDGES {
                    let name = format!("cells.{s}.{i}.edge{e}");
                    convs.push([
                        b.conv_bn(&format!("{name}.conv1x1"), c, c, 1, 1)?,
                        b.conv_bn(&format!("{name}.conv3x3"), c, c, 3, 1)?,
                    ]);
                }
                stage.push(Cell { convs });
            }
            cells.push(stage);
        }
        let f = cfg.final_channels();
        let head_bn = b.bn("lastact.bn", f)?;
        let fc_w = b.var(
            "classifier.weight".into(),
            &[cfg.classes, f],
            Kind::LinearWeight { fan_in: f, fan_out: cfg.classes },
        )?;
        let fc_b = b.var("classifier.bias".into(), &[cfg.classes], Kind::LinearBias { fan_in: f })?;
        let params = b.params;
        let pool_scale =
            (0..STAGES).map(|s| pool_scale(cfg.stage_side(s), dtype, device)).collect::<Result<Vec<_>>>()?;
        Ok(Nb201 {
            cfg,
            arch,
            dtype,
            device: device.clone(),
            varmap,
            params,
            stem,
            reductions,
            cells,
            head_bn,
            fc_w,
            fc_b,
            pool_scale,
        })
    }

    /// The configuration.
    pub fn config(&self) -> NetConfig {
        self.cfg
    }

    /// The cell the forward pass runs.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Run another cell with the same parameters.
    pub fn set_arch(&mut self, arch: Arch) {
        self.arch = arch;
    }

    /// The parameters' dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The map holding every parameter and running statistic (e.g. for an optimiser or
    /// `save`). Names follow PyTorch's (`stem.bn.running_var`, `classifier.weight`, ...).
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// Every parameter and running statistic, named, in a fixed order.
    pub fn named_vars(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.params.iter().map(|(n, _, v)| (n.as_str(), v))
    }

    /// Replace every parameter and running statistic by its absolute value (SynFlow's
    /// linearisation of the state dict).
    pub fn abs_params(&self) -> Result<()> {
        for (_, _, var) in &self.params {
            var.set(&var.as_tensor().abs()?)?;
        }
        Ok(())
    }

    /// A copy of this model (same cell, same values) in `dtype`, with its own variables.
    pub fn to_dtype(&self, dtype: DType) -> Result<Nb201> {
        let copy = Nb201::new(self.cfg, self.arch, dtype, &self.device)?;
        for ((_, _, dst), (_, _, src)) in copy.params.iter().zip(&self.params) {
            dst.set(&src.as_tensor().to_dtype(dtype)?)?;
        }
        Ok(copy)
    }

    /// Forward pass on `x` `[B, 3, R, R]` (converted to the model's dtype if needed);
    /// returns logits `[B, classes]`.
    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        self.forward_observed(x, mode, &mut |_, _| Ok(()))
    }

    /// [`Nb201::forward`], handing every ReLU output to `observe` in execution order: the
    /// ReLU opening every conv op of every cell (one per conv op, even on nodes that are
    /// zero or never reach the output, as in NAS-Bench-201), the two ReLUs of each
    /// reduction block, and the head's ReLU.
    pub fn forward_observed(&self, x: &Tensor, mode: BnMode, observe: &mut ReluObserver) -> Result<Tensor> {
        self.forward_with(x, mode, observe, &mut |_, _, _| Ok(()))
    }

    /// [`Nb201::forward`], handing every cell's output (`[B, C, H, W]`) to `cell` with its
    /// stage and index, in execution order (what MeCo reads).
    pub fn forward_cells(
        &self,
        x: &Tensor,
        mode: BnMode,
        cell: &mut dyn FnMut(usize, usize, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        self.forward_with(x, mode, &mut |_, _| Ok(()), cell)
    }

    fn forward_with(
        &self,
        x: &Tensor,
        mode: BnMode,
        observe: &mut ReluObserver,
        on_cell: &mut dyn FnMut(usize, usize, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        let side = self.cfg.resolution;
        let dims = x.dims();
        if dims.len() != 4 || dims[1] != IN_CHANNELS || dims[2] != side || dims[3] != side {
            return Err(Nb201Error::InputShape { got: dims.to_vec(), side });
        }
        let x = if x.dtype() == self.dtype { x.clone() } else { x.to_dtype(self.dtype)? };
        let mut h = self.stem.forward(&x, mode)?;
        for s in 0..STAGES {
            if s > 0 {
                if let Some(r) = self.reductions.get(s - 1) {
                    h = r.forward(&h, mode, s, observe)?;
                }
            }
            for (i, cell) in self.cells[s].iter().enumerate() {
                h = self.cell_forward(cell, s, i, &h, mode, observe)?;
                on_cell(s, i, &h)?;
            }
        }
        let h = self.head_bn.forward(&h, mode)?.relu()?;
        observe(ReluSite::Head, &h)?;
        let pooled = h.mean((2, 3))?;
        Ok(pooled.matmul(&self.fc_w.as_tensor().t()?)?.broadcast_add(self.fc_b.as_tensor())?)
    }

    fn cell_forward(
        &self,
        cell: &Cell,
        stage: usize,
        index: usize,
        x: &Tensor,
        mode: BnMode,
        observe: &mut ReluObserver,
    ) -> Result<Tensor> {
        let mut nodes: Vec<Tensor> = vec![x.clone()];
        for target in 1..4u8 {
            let mut acc: Option<Tensor> = None;
            // For a fixed target, edges come in increasing source order.
            for edge in Edge::ALL.into_iter().filter(|e| e.to() == target) {
                let input = &nodes[edge.from() as usize];
                let e = edge.index();
                let out = match self.arch.op(edge) {
                    Op::None => input.zeros_like()?,
                    Op::SkipConnect => input.clone(),
                    Op::AvgPool3x3 => avg_pool_3x3(input, &self.pool_scale[stage])?,
                    op @ (Op::NorConv1x1 | Op::NorConv3x3) => {
                        let r = input.relu()?;
                        observe(ReluSite::Cell { stage, cell: index, edge: e }, &r)?;
                        let k = usize::from(op == Op::NorConv3x3);
                        cell.convs[e][k].forward(&r, mode)?
                    }
                };
                acc = Some(match acc {
                    None => out,
                    Some(a) => (a + out)?,
                });
            }
            // Every target node has at least one incoming edge.
            nodes.push(match acc {
                Some(a) => a,
                None => x.zeros_like()?,
            });
        }
        Ok(nodes.swap_remove(3))
    }
}

impl BatchNorm {
    fn forward(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        let c = self.gamma.elem_count();
        let shape = (1, c, 1, 1);
        let gamma = self.gamma.as_tensor().reshape(shape)?;
        let beta = self.beta.as_tensor().reshape(shape)?;
        Ok(match mode {
            BnMode::Identity => x.clone(),
            BnMode::Eval => {
                // Per-channel affine computed on the C-vectors, then one pass over x.
                let mean = self.mean.as_tensor().reshape(shape)?;
                let scale = gamma.div(&(self.var.as_tensor().reshape(shape)? + BN_EPS)?.sqrt()?)?;
                let shift = beta.sub(&mean.mul(&scale)?)?;
                x.broadcast_mul(&scale)?.broadcast_add(&shift)?
            }
            BnMode::Batch => {
                let centred = x.broadcast_sub(&x.mean_keepdim((0, 2, 3))?)?;
                let var = centred.sqr()?.mean_keepdim((0, 2, 3))?;
                let std = (var + BN_EPS)?.sqrt()?;
                centred.broadcast_div(&std)?.broadcast_mul(&gamma)?.broadcast_add(&beta)?
            }
        })
    }
}

impl Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.conv2d(self.w.as_tensor(), self.pad, self.stride, 1, 1)?)
    }
}

impl ConvBn {
    /// Conv then BN (callers apply the opening ReLU themselves, so they can observe it).
    fn forward(&self, x: &Tensor, mode: BnMode) -> Result<Tensor> {
        self.bn.forward(&self.conv.forward(x)?, mode)
    }
}

impl Reduction {
    fn forward(&self, x: &Tensor, mode: BnMode, stage: usize, observe: &mut ReluObserver) -> Result<Tensor> {
        let r = x.relu()?;
        observe(ReluSite::Reduction { stage, conv: 0 }, &r)?;
        let a = self.a.forward(&r, mode)?;
        let r = a.relu()?;
        observe(ReluSite::Reduction { stage, conv: 1 }, &r)?;
        let b = self.b.forward(&r, mode)?;
        let short = self.shortcut.forward(&x.avg_pool2d(2)?)?;
        Ok((b + short)?)
    }
}

/// 3x3 average, stride 1, zero padding 1, dividing by the number of in-image taps
/// (`count_include_pad=False`). Built from shifted slices so it is differentiable.
fn avg_pool_3x3(x: &Tensor, scale: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let p = x.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 1, 1)?;
    let rows = ((p.narrow(2, 0, h)? + p.narrow(2, 1, h)?)? + p.narrow(2, 2, h)?)?;
    let sum = ((rows.narrow(3, 0, w)? + rows.narrow(3, 1, w)?)? + rows.narrow(3, 2, w)?)?;
    Ok(sum.broadcast_mul(scale)?)
}

/// `1 / count` of in-image taps of a 3x3 window on a `side x side` map, `[1, 1, side, side]`.
fn pool_scale(side: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let taps = |i: usize| 3 - usize::from(i == 0) - usize::from(i + 1 == side);
    let taps = |i: usize| if side == 1 { 1 } else { taps(i) };
    let vals: Vec<f64> = (0..side * side).map(|i| 1.0 / (taps(i / side) * taps(i % side)) as f64).collect();
    Ok(Tensor::from_vec(vals, (1, 1, side, side), device)?.to_dtype(dtype)?)
}

/// An HWC `f32` image (`side * side * 3` floats) as an NCHW tensor `[1, 3, side, side]` in
/// `dtype`.
pub fn hwc_to_nchw(hwc: &[f32], side: usize, dtype: DType, device: &Device) -> Result<Tensor> {
    let expected = side * side * IN_CHANNELS;
    if hwc.len() != expected {
        return Err(Nb201Error::InputLength { expected, got: hwc.len() });
    }
    let t = Tensor::from_slice(hwc, (side, side, IN_CHANNELS), device)?;
    Ok(t.permute((2, 0, 1))?.unsqueeze(0)?.contiguous()?.to_dtype(dtype)?)
}

#[cfg(test)]
mod tests;
