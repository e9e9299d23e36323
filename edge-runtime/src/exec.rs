//! Running a [`Plan`] over a caller-given arena: no allocation, no panics.

use crate::kernels::{
    add_acc, avg_pool2_into_padded, avg_pool3_acc, conv_acc, fill_channels, head, pad_copy, pad_relu, ConvGeom,
};
use crate::layout::{IN_CHANNELS, STAGES};
use crate::params::Params;
use crate::plan::Plan;
use crate::Error;
use simnas_shared::{Edge, Op};

/// A plan bound to its arena.
pub struct Executor<'a> {
    plan: Plan,
    nodes: [&'a mut [f32]; 4],
    scratch: &'a mut [f32],
    vec: &'a mut [f32],
}

impl<'a> Executor<'a> {
    /// Bind `plan` to `arena`; fails with [`Error::ArenaTooSmall`] if it cannot hold the
    /// plan's activations ([`Plan::arena_len`] floats). Extra arena is left unused.
    pub fn new(plan: &Plan, arena: &'a mut [f32]) -> Result<Executor<'a>, Error> {
        if arena.len() < plan.arena_len() {
            return Err(Error::ArenaTooSmall {
                needed_bytes: plan.arena_bytes(),
                got_bytes: core::mem::size_of_val(arena),
            });
        }
        let n = plan.node_len;
        let (b0, rest) = arena.split_at_mut(n);
        let (b1, rest) = rest.split_at_mut(n);
        let (b2, rest) = rest.split_at_mut(n);
        let (b3, rest) = rest.split_at_mut(n);
        let (scratch, rest) = rest.split_at_mut(plan.scratch_len);
        let (vec, _) = rest.split_at_mut(plan.vec_len);
        Ok(Executor { plan: *plan, nodes: [b0, b1, b2, b3], scratch, vec })
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// One forward pass: `input` is HWC (`res x res x 3`), `logits` receives `classes` values.
    pub fn run(&mut self, params: &impl Params, input: &[f32], logits: &mut [f32]) -> Result<(), Error> {
        let cfg = self.plan.cfg;
        if input.len() != cfg.input_len() {
            return Err(Error::InputLength { expected: cfg.input_len(), got: input.len() });
        }
        if logits.len() != cfg.classes {
            return Err(Error::OutputLength { expected: cfg.classes, got: logits.len() });
        }
        // Stem.
        let res = cfg.resolution;
        let c0 = cfg.channels;
        let g = ConvGeom { in_side: res, cin: IN_CHANNELS, cout: c0, k: 3, stride: 1 };
        let (w, b) = conv_slot(params, self.plan.offsets.stem, &g)?;
        pad_copy(input, res, IN_CHANNELS, self.scratch);
        fill_channels(self.nodes[0], res * res, b);
        conv_acc(&g, self.scratch, w, self.nodes[0]);
        let mut cur = 0;
        for stage in 0..STAGES {
            if stage > 0 {
                cur = self.reduction(params, stage, cur)?;
            }
            for cell in 0..cfg.cells_per_stage {
                cur = self.cell(params, stage, cell, cur)?;
            }
        }
        // Head.
        let f = cfg.final_channels();
        let side = cfg.stage_side(STAGES - 1);
        let bn = slot(params, self.plan.offsets.final_bn, 2 * f)?;
        let cls = slot(params, self.plan.offsets.classifier, f * cfg.classes + cfg.classes)?;
        head(self.nodes[cur], side * side, bn, cls, &mut self.vec[..f], logits);
        Ok(())
    }

    /// Residual reduction into `stage`: returns the buffer holding its output.
    fn reduction(&mut self, params: &impl Params, stage: usize, x: usize) -> Result<usize, Error> {
        let cfg = self.plan.cfg;
        let (side, cp, cs) = (cfg.stage_side(stage - 1), cfg.stage_channels(stage - 1), cfg.stage_channels(stage));
        let [oa, ob, osc] = self.plan.offsets.reduce[stage];
        let (a, y) = ((x + 1) % 4, (x + 2) % 4);
        let half = side / 2;
        let ga = ConvGeom { in_side: side, cin: cp, cout: cs, k: 3, stride: 2 };
        let gb = ConvGeom { in_side: half, cin: cs, cout: cs, k: 3, stride: 1 };
        let gs = ConvGeom { in_side: half, cin: cp, cout: cs, k: 1, stride: 1 };
        let (wa, ba) = conv_slot(params, oa, &ga)?;
        let (wb, bb) = conv_slot(params, ob, &gb)?;
        let (ws, bsc) = conv_slot(params, osc, &gs)?;

        pad_relu(self.nodes[x], side, cp, self.scratch);
        fill_channels(self.nodes[a], half * half, ba);
        conv_acc(&ga, self.scratch, wa, self.nodes[a]);

        pad_relu(self.nodes[a], half, cs, self.scratch);
        let v = &mut self.vec[..cs];
        for ((s, p), q) in v.iter_mut().zip(bb).zip(bsc) {
            *s = p + q;
        }
        fill_channels(self.nodes[y], half * half, v);
        conv_acc(&gb, self.scratch, wb, self.nodes[y]);

        avg_pool2_into_padded(self.nodes[x], side, cp, self.scratch);
        conv_acc(&gs, self.scratch, ws, self.nodes[y]);
        Ok(y)
    }

    /// One cell reading buffer `inp`: returns the buffer holding node 3.
    fn cell(&mut self, params: &impl Params, stage: usize, cell: usize, inp: usize) -> Result<usize, Error> {
        let plan = self.plan;
        let (side, c) = (plan.cfg.stage_side(stage), plan.cfg.stage_channels(stage));
        let pixels = side * side;
        // Node j lives in buffer buf[j].
        let buf = [inp, (inp + 1) % 4, (inp + 2) % 4, (inp + 3) % 4];
        let kernel_of = |op: Op| if op == Op::NorConv1x1 { 1 } else { 3 };
        let geom = |k: usize| ConvGeom { in_side: side, cin: c, cout: c, k, stride: 1 };

        // Targets start at the sum of the BN shifts of every conv feeding them.
        for j in 1..4 {
            if !plan.computed[j] {
                continue;
            }
            let v = &mut self.vec[..c];
            v.fill(0.0);
            for e in Edge::ALL.into_iter().filter(|e| e.to() as usize == j) {
                let op = plan.arch.op(e);
                if op.is_conv() && (plan.full[e.index()] || plan.bias_only[e.index()]) {
                    let k = kernel_of(op);
                    let (_, b) = conv_slot(params, plan.cell_conv_offset(stage, cell, e.index(), k), &geom(k))?;
                    v.iter_mut().zip(b).for_each(|(s, x)| *s += x);
                }
            }
            fill_channels(self.nodes[buf[j]], pixels, v);
        }
        // Sources in order: each node's ReLU is computed once and read by all its convs.
        for i in 0..3 {
            let outgoing = Edge::ALL.into_iter().filter(|e| e.from() as usize == i && plan.full[e.index()]);
            if outgoing.clone().any(|e| plan.arch.op(e).is_conv()) {
                pad_relu(self.nodes[buf[i]], side, c, self.scratch);
            }
            for e in outgoing {
                let op = plan.arch.op(e);
                let (src, dst) = pair(&mut self.nodes, buf[i], buf[e.to() as usize]);
                match op {
                    Op::SkipConnect => add_acc(&src[..pixels * c], &mut dst[..pixels * c]),
                    Op::AvgPool3x3 => avg_pool3_acc(src, side, c, dst),
                    Op::NorConv1x1 | Op::NorConv3x3 => {
                        let k = kernel_of(op);
                        let g = geom(k);
                        let (w, _) = conv_slot(params, plan.cell_conv_offset(stage, cell, e.index(), k), &g)?;
                        conv_acc(&g, self.scratch, w, dst);
                    }
                    Op::None => {}
                }
            }
        }
        Ok(buf[3])
    }
}

/// Shared access to buffer `i` and exclusive access to buffer `j` (`i != j`).
fn pair<'b>(bufs: &'b mut [&mut [f32]; 4], i: usize, j: usize) -> (&'b [f32], &'b mut [f32]) {
    if i < j {
        let (lo, hi) = bufs.split_at_mut(j);
        (&*lo[i], &mut *hi[0])
    } else {
        let (lo, hi) = bufs.split_at_mut(i);
        (&*hi[0], &mut *lo[j])
    }
}

fn slot(params: &impl Params, offset: usize, len: usize) -> Result<&[f32], Error> {
    let s = params.slot(offset, len);
    if s.len() != len {
        return Err(Error::ParamsLength { expected: len, got: s.len() });
    }
    Ok(s)
}

fn conv_slot<'p>(params: &'p impl Params, offset: usize, g: &ConvGeom) -> Result<(&'p [f32], &'p [f32]), Error> {
    Ok(slot(params, offset, g.weights_len() + g.cout)?.split_at(g.weights_len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{NetConfig, ParamLayout};
    use crate::params::{BankParams, DenseParams};
    use crate::rng::fill_params;
    use simnas_shared::{Arch, ArchCode};

    const SMALL: NetConfig = NetConfig { channels: 4, cells_per_stage: 2, resolution: 8, classes: 3 };

    fn run(cfg: NetConfig, arch: Arch, params: &[f32], input: &[f32]) -> Vec<f32> {
        let layout = ParamLayout::new(cfg).unwrap();
        let plan = Plan::new(cfg, arch).unwrap();
        let mut arena = vec![f32::NAN; plan.arena_len()];
        let mut ex = Executor::new(&plan, &mut arena).unwrap();
        let mut logits = vec![0.0; cfg.classes];
        ex.run(&DenseParams::new(&layout, params).unwrap(), input, &mut logits).unwrap();
        logits
    }

    fn setup(cfg: NetConfig, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let layout = ParamLayout::new(cfg).unwrap();
        let mut p = vec![0.0; layout.total_len()];
        fill_params(&layout, seed, &mut p);
        let mut r = crate::rng::SplitMix64::new(seed ^ 0xabc);
        let x = (0..cfg.input_len()).map(|_| r.next_signed()).collect();
        (p, x)
    }

    #[test]
    fn every_cell_runs_and_gives_finite_logits() {
        let (p, x) = setup(SMALL, 1);
        for code in ArchCode::all().step_by(7) {
            let l = run(SMALL, Arch::from_code(code), &p, &x);
            assert!(l.iter().all(|v| v.is_finite()), "{}", Arch::from_code(code));
        }
    }

    #[test]
    fn pruned_branches_do_not_change_the_output() {
        // node2 does not reach the output: same logits as with its inputs set to none.
        let (p, x) = setup(SMALL, 2);
        let a = Arch::parse("|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
            .unwrap();
        let b = Arch::parse("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|").unwrap();
        assert_eq!(run(SMALL, a, &p, &x), run(SMALL, b, &p, &x));
    }

    #[test]
    fn disconnected_cells_ignore_their_input() {
        let (p, x) = setup(SMALL, 3);
        let y: Vec<f32> = x.iter().map(|v| v * -3.0 + 1.0).collect();
        // node1 is zero, node2 only its conv's BN shift, node3 a conv of that constant.
        let a = Arch::parse("|none~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_1x1~2|").unwrap();
        assert!(!a.is_connected());
        assert_eq!(run(SMALL, a, &p, &x), run(SMALL, a, &p, &y));
        let connected = a.apply(simnas_shared::Action { edge: Edge::new(3).unwrap(), op: Op::SkipConnect });
        assert_ne!(run(SMALL, connected, &p, &x), run(SMALL, connected, &p, &y));
    }

    #[test]
    fn arena_and_io_errors() {
        let plan = Plan::new(SMALL, Arch::uniform(Op::NorConv3x3)).unwrap();
        let mut small = vec![0.0; plan.arena_len() - 1];
        assert_eq!(
            Executor::new(&plan, &mut small).err(),
            Some(Error::ArenaTooSmall { needed_bytes: plan.arena_bytes(), got_bytes: plan.arena_bytes() - 4 })
        );
        let layout = ParamLayout::new(SMALL).unwrap();
        let (p, x) = setup(SMALL, 4);
        let mut arena = vec![0.0; plan.arena_len() + 5];
        let mut ex = Executor::new(&plan, &mut arena).unwrap();
        let params = DenseParams::new(&layout, &p).unwrap();
        let mut l = vec![0.0; 3];
        assert_eq!(ex.run(&params, &x[1..], &mut l), Err(Error::InputLength { expected: 192, got: 191 }));
        assert_eq!(ex.run(&params, &x, &mut l[1..]), Err(Error::OutputLength { expected: 3, got: 2 }));
        struct Short;
        impl Params for Short {
            fn slot(&self, _: usize, len: usize) -> &[f32] {
                &[0.0; 3][..len.min(3)]
            }
        }
        assert!(matches!(ex.run(&Short, &x, &mut l), Err(Error::ParamsLength { .. })));
        assert!(ex.run(&params, &x, &mut l).is_ok());
    }

    #[test]
    fn bank_params_run_the_same_network_shape() {
        let layout = ParamLayout::new(SMALL).unwrap();
        let (_, x) = setup(SMALL, 5);
        let mut bank = vec![0.0; layout.max_slot_len()];
        crate::rng::fill_uniform(&mut crate::rng::SplitMix64::new(9), &mut bank, 36, 1.0);
        let plan = Plan::new(SMALL, Arch::uniform(Op::NorConv3x3)).unwrap();
        let mut arena = vec![0.0; plan.arena_len()];
        let mut ex = Executor::new(&plan, &mut arena).unwrap();
        let mut l = vec![0.0; 3];
        ex.run(&BankParams::new(&layout, &bank).unwrap(), &x, &mut l).unwrap();
        assert!(l.iter().all(|v| v.is_finite()));
    }
}
