//! Planning: validate a network for one cell once, decide what runs, size the arena.
//!
//! ## Pruning (what the runtime does with `none` edges and dead nodes)
//! A deployment runtime does not compute what cannot change the output. The plan:
//! * skips `none` edges (they add exact zeros);
//! * marks a node [`NodeState::Zero`] when nothing flows into it; it is never materialised.
//!   Skip and pool edges leaving a zero node vanish; a conv edge leaving it reduces to
//!   its folded BN shift (ReLU-Conv of zeros is zero, BN adds its shift), which is added to
//!   the target once, per channel, instead of running the conv;
//! * does not compute a node whose value no computed edge reads (it does not reach the
//!   output), nor the edges feeding it;
//! * a cell whose output node receives nothing outputs zeros.
//!
//! All of this is exact with respect to the unpruned NB201 network in inference mode (the
//! parity test compares against the faithful candle network, dead edges included), so the
//! latency it measures is that of the network a deployment would run.
//!
//! ## Arena
//! `4` node buffers of the largest feature map (`res^2 * C` floats; stage 0 dominates),
//! one padded scratch (`(side+2)^2 * channels`, largest over the stem and stages) holding
//! the ReLU of the node being read, and one vector of `4C` floats (bias sums, pooled
//! features).

use crate::layout::{NetConfig, ParamLayout, Slot, IN_CHANNELS, STAGES};
use crate::Error;
use simnas_shared::{Arch, Edge, Op, NUM_EDGES};

/// Whether a node of the cell carries data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Provably all zeros: nothing flows into it.
    Zero,
    /// Carries data (possibly a per-channel constant from BN shifts).
    Live,
}

/// Dense-layout offsets resolved once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Offsets {
    pub stem: usize,
    /// [stage][A, B, shortcut]; stage 0 unused.
    pub reduce: [[usize; 3]; STAGES],
    /// Offset of stage `s`, cell 0, edge 0, 1x1 conv.
    pub cells: [usize; STAGES],
    pub final_bn: usize,
    pub classifier: usize,
}

/// A validated network for one cell: what runs, where its weights are, how much arena it
/// needs.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub(crate) cfg: NetConfig,
    pub(crate) arch: Arch,
    pub(crate) state: [NodeState; 4],
    pub(crate) computed: [bool; 4],
    /// Edge runs its op on the source's data.
    pub(crate) full: [bool; NUM_EDGES],
    /// Conv edge out of a zero node whose target is computed: contributes its bias only.
    pub(crate) bias_only: [bool; NUM_EDGES],
    pub(crate) offsets: Offsets,
    pub(crate) node_len: usize,
    pub(crate) scratch_len: usize,
    pub(crate) vec_len: usize,
}

impl Plan {
    /// Validate `cfg`, analyse `arch`, resolve parameter offsets and size the arena.
    pub fn new(cfg: NetConfig, arch: Arch) -> Result<Plan, Error> {
        let layout = ParamLayout::new(cfg)?;
        let (state, computed, full, bias_only) = analyse(&arch);
        let mut offsets = Offsets { stem: 0, reduce: [[0; 3]; STAGES], cells: [0; STAGES], final_bn: 0, classifier: 0 };
        for s in layout.slots() {
            match s.slot {
                Slot::Stem => offsets.stem = s.offset,
                Slot::ReduceA(st) => offsets.reduce[st][0] = s.offset,
                Slot::ReduceB(st) => offsets.reduce[st][1] = s.offset,
                Slot::ReduceShortcut(st) => offsets.reduce[st][2] = s.offset,
                Slot::CellConv { stage, cell: 0, edge: 0, kernel: 1 } => offsets.cells[stage] = s.offset,
                Slot::FinalBn => offsets.final_bn = s.offset,
                Slot::Classifier => offsets.classifier = s.offset,
                Slot::CellConv { .. } => {}
            }
        }
        let node_len = (0..STAGES).map(|s| cfg.stage_side(s).pow(2) * cfg.stage_channels(s)).max().unwrap_or(0);
        let stem_pad = (cfg.resolution + 2).pow(2) * IN_CHANNELS;
        let scratch_len =
            (0..STAGES).map(|s| (cfg.stage_side(s) + 2).pow(2) * cfg.stage_channels(s)).fold(stem_pad, usize::max);
        let vec_len = cfg.final_channels();
        Ok(Plan { cfg, arch, state, computed, full, bias_only, offsets, node_len, scratch_len, vec_len })
    }

    /// The configuration.
    pub const fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// The cell.
    pub const fn arch(&self) -> &Arch {
        &self.arch
    }

    /// Arena floats needed.
    pub const fn arena_len(&self) -> usize {
        4 * self.node_len + self.scratch_len + self.vec_len
    }

    /// Arena bytes needed.
    pub const fn arena_bytes(&self) -> usize {
        self.arena_len() * core::mem::size_of::<f32>()
    }

    /// Whether node `j` (0..4) carries data.
    pub fn node_state(&self, j: usize) -> NodeState {
        self.state.get(j).copied().unwrap_or(NodeState::Zero)
    }

    /// Whether node `j`'s values are materialised when the cell runs.
    pub fn is_computed(&self, j: usize) -> bool {
        self.computed.get(j).copied().unwrap_or(false)
    }

    /// Whether `edge` runs its op (false: pruned, or reduced to a bias).
    pub fn runs_edge(&self, edge: Edge) -> bool {
        self.full[edge.index()]
    }

    /// Whether `edge` is a conv out of a zero node that only adds its BN shift.
    pub fn is_bias_only(&self, edge: Edge) -> bool {
        self.bias_only[edge.index()]
    }

    /// Offset of the conv slot of `kernel` on `edge` of cell `cell` in stage `stage`.
    pub(crate) fn cell_conv_offset(&self, stage: usize, cell: usize, edge: usize, kernel: usize) -> usize {
        let c = self.cfg.stage_channels(stage);
        let conv1 = c * c + c;
        let per_edge = conv1 + 9 * c * c + c;
        let base = self.offsets.cells[stage] + (cell * NUM_EDGES + edge) * per_edge;
        if kernel == 3 {
            base + conv1
        } else {
            base
        }
    }
}

type Analysis = ([NodeState; 4], [bool; 4], [bool; NUM_EDGES], [bool; NUM_EDGES]);

/// What the executor computes of `arch`. Not [`Arch::nodes`]: the executor follows values,
/// not paths, so a convolution out of a zero node still makes its target non-zero (its
/// folded BN shift), and such an edge into a computed node is run for its bias alone. On
/// executed networks (what the search measures) the two agree, as a test below checks.
fn analyse(arch: &Arch) -> Analysis {
    let mut state = [NodeState::Live, NodeState::Zero, NodeState::Zero, NodeState::Zero];
    for e in Edge::ALL {
        let op = arch.op(e);
        let from_live = state[e.from() as usize] == NodeState::Live;
        if op != Op::None && (from_live || op.is_conv()) {
            state[e.to() as usize] = NodeState::Live;
        }
    }
    // Backwards: a live node is computed when some computed node reads it.
    let mut computed = [false, false, false, true];
    let mut full = [false; NUM_EDGES];
    let mut bias_only = [false; NUM_EDGES];
    for e in Edge::ALL.into_iter().rev() {
        let (i, j) = (e.from() as usize, e.to() as usize);
        let op = arch.op(e);
        if op == Op::None || !computed[j] {
            continue;
        }
        if state[i] == NodeState::Live {
            full[e.index()] = true;
            computed[i] = true;
        } else if op.is_conv() {
            bias_only[e.index()] = true;
        }
    }
    (state, computed, full, bias_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arch(s: &str) -> Arch {
        Arch::parse(s).unwrap()
    }

    #[test]
    fn offsets_agree_with_the_layout() {
        let cfg = NetConfig { channels: 6, cells_per_stage: 3, resolution: 8, classes: 5 };
        let plan = Plan::new(cfg, Arch::uniform(Op::NorConv3x3)).unwrap();
        let layout = ParamLayout::new(cfg).unwrap();
        for s in layout.slots() {
            if let Slot::CellConv { stage, cell, edge, kernel } = s.slot {
                assert_eq!(plan.cell_conv_offset(stage, cell, edge, kernel), s.offset, "{s:?}");
            }
        }
    }

    #[test]
    fn on_executed_networks_the_plan_runs_exactly_the_live_edges() {
        // The search only plans executed networks: there the executor's pruning and the one
        // graph analysis in `shared` agree edge by edge, and no conv is reduced to a bias.
        let cfg = NetConfig { channels: 4, cells_per_stage: 1, resolution: 8, classes: 3 };
        for code in simnas_shared::ArchCode::all() {
            let a = Arch::from_code(code).executed();
            let p = Plan::new(cfg, a).unwrap();
            let live = a.live_edges();
            for e in Edge::ALL {
                assert_eq!(p.runs_edge(e), live[e.index()], "{a} edge {}", e.index());
                assert!(!p.is_bias_only(e), "{a}");
            }
        }
    }

    #[test]
    fn full_cells_compute_everything() {
        let p = Plan::new(NetConfig::CIFAR10, Arch::uniform(Op::NorConv3x3)).unwrap();
        assert!(Edge::ALL.iter().all(|&e| p.runs_edge(e)));
        assert!((0..4).all(|j| p.is_computed(j)));
        // CIFAR-10: 4 x 32*32*16 + 34*34*16 + 64 floats.
        assert_eq!(p.arena_len(), 4 * 16384 + 18496 + 64);
    }

    #[test]
    fn zero_node_convs_become_biases() {
        // node1 gets nothing (0->1 none); 1->2 conv and 1->3 skip leave a zero node.
        let p = Plan::new(
            NetConfig::CIFAR10,
            arch("|none~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|skip_connect~1|nor_conv_1x1~2|"),
        )
        .unwrap();
        assert_eq!(p.node_state(1), NodeState::Zero);
        assert!(!p.is_computed(1));
        assert!(p.is_bias_only(Edge::between(1, 2).unwrap()));
        assert!(!p.runs_edge(Edge::between(1, 3).unwrap()));
        assert!(!p.is_bias_only(Edge::between(1, 3).unwrap()));
        assert!(p.runs_edge(Edge::between(0, 2).unwrap()) && p.runs_edge(Edge::between(2, 3).unwrap()));
    }

    #[test]
    fn nodes_that_do_not_reach_the_output_are_not_computed() {
        // node2 is fed (0->2, 1->2) but nothing reads it (2->3 none).
        let p = Plan::new(
            NetConfig::CIFAR10,
            arch("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"),
        )
        .unwrap();
        assert_eq!(p.node_state(2), NodeState::Live);
        assert!(!p.is_computed(2) && !p.is_computed(1));
        assert!(!p.runs_edge(Edge::between(0, 2).unwrap()));
        assert!(!p.runs_edge(Edge::between(0, 1).unwrap()));
        assert_eq!(Edge::ALL.iter().filter(|&&e| p.runs_edge(e)).count(), 1);
    }

    #[test]
    fn disconnected_cells_output_zero() {
        let p = Plan::new(NetConfig::CIFAR10, Arch::uniform(Op::None)).unwrap();
        assert_eq!(p.node_state(3), NodeState::Zero);
        assert!(!Edge::ALL.iter().any(|&e| p.runs_edge(e) || p.is_bias_only(e)));
    }

    #[test]
    fn bad_configs_are_refused() {
        let cfg = NetConfig { resolution: 18, ..NetConfig::CIFAR10 };
        assert_eq!(
            Plan::new(cfg, Arch::uniform(Op::None)).unwrap_err(),
            Error::ResolutionNotMultipleOf4 { resolution: 18 }
        );
    }
}
