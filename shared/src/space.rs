//! The NATS-Bench topology (NAS-Bench-201) cell: 4 nodes, 6 edges, 5 ops, 5^6 = 15,625 cells.
//!
//! Node 0 is the cell input, node 3 the cell output; node `j` is the sum of `op(i -> j)`
//! applied to every earlier node `i`. Edges are numbered in the order the NATS-Bench string
//! lists them: 0->1, 0->2, 1->2, 0->3, 1->3, 2->3, i.e. edge `t*(t-1)/2 + s` joins source
//! `s` to target `t`.
//!
//! String form (exact NATS-Bench): `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`, one `+`-separated
//! group per target node, each entry `op~source`.

use core::fmt;
use core::str::FromStr;

/// Number of edges in a cell.
pub const NUM_EDGES: usize = 6;
/// Number of candidate operations per edge.
pub const NUM_OPS: usize = 5;
/// Number of cells in the space (5^6).
pub const NUM_ARCHS: usize = 15_625;

/// One candidate operation on an edge.
///
/// The discriminant is the op's digit in [`ArchCode`] and its index in action vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Op {
    /// `none`: the edge contributes nothing (a zero tensor).
    None = 0,
    /// `skip_connect`: identity.
    SkipConnect = 1,
    /// `nor_conv_1x1`: ReLU, 1x1 convolution, batch norm.
    NorConv1x1 = 2,
    /// `nor_conv_3x3`: ReLU, 3x3 convolution (padding 1), batch norm.
    NorConv3x3 = 3,
    /// `avg_pool_3x3`: 3x3 average pool, stride 1, padding 1, padding not counted.
    AvgPool3x3 = 4,
}

impl Op {
    /// All ops in discriminant order.
    pub const ALL: [Op; NUM_OPS] = [Op::None, Op::SkipConnect, Op::NorConv1x1, Op::NorConv3x3, Op::AvgPool3x3];

    /// The NATS-Bench name of the op.
    pub const fn name(self) -> &'static str {
        match self {
            Op::None => "none",
            Op::SkipConnect => "skip_connect",
            Op::NorConv1x1 => "nor_conv_1x1",
            Op::NorConv3x3 => "nor_conv_3x3",
            Op::AvgPool3x3 => "avg_pool_3x3",
        }
    }

    /// The op with this NATS-Bench name.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// The op with this digit (0..5).
    pub const fn from_index(i: u8) -> Option<Op> {
        match i {
            0 => Some(Op::None),
            1 => Some(Op::SkipConnect),
            2 => Some(Op::NorConv1x1),
            3 => Some(Op::NorConv3x3),
            4 => Some(Op::AvgPool3x3),
            _ => None,
        }
    }

    /// True for the two ReLU-Conv-BN ops.
    pub const fn is_conv(self) -> bool {
        matches!(self, Op::NorConv1x1 | Op::NorConv3x3)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An edge of the cell, 0..6 in NATS-Bench string order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Edge(u8);

impl Edge {
    /// All edges in string order.
    pub const ALL: [Edge; NUM_EDGES] = [Edge(0), Edge(1), Edge(2), Edge(3), Edge(4), Edge(5)];
    const ENDPOINTS: [(u8, u8); NUM_EDGES] = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)];

    /// The edge with this index, if `i < 6`.
    pub const fn new(i: u8) -> Option<Edge> {
        if (i as usize) < NUM_EDGES {
            Some(Edge(i))
        } else {
            None
        }
    }

    /// The edge joining `from` to `to` (`from < to <= 3`).
    pub const fn between(from: u8, to: u8) -> Option<Edge> {
        if from < to && to <= 3 {
            Some(Edge(to * (to - 1) / 2 + from))
        } else {
            None
        }
    }

    /// Index 0..6.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// Source node (0..=2).
    pub const fn from(self) -> u8 {
        Self::ENDPOINTS[self.0 as usize].0
    }

    /// Target node (1..=3).
    pub const fn to(self) -> u8 {
        Self::ENDPOINTS[self.0 as usize].1
    }
}

/// Distinct executed networks of the space ([`Arch::executed`]), the all-`none` cell included.
pub const NUM_EXECUTED: usize = 9445;
/// Connected executed networks: the search space of every strategy by default.
pub const NUM_CONNECTED_EXECUTED: usize = NUM_EXECUTED - 1;

/// Reachability of a cell's nodes along non-`none` edges ([`Arch::nodes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellNodes {
    /// Node `n` is reached from the input (node 0 always is): it carries a value that
    /// depends on the input.
    pub from_input: [bool; 4],
    /// Node `n` reaches the output (node 3 always does): its value can affect the output.
    pub to_output: [bool; 4],
}

/// A cell: one op per edge, edges in NATS-Bench string order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Arch {
    /// `ops[e]` is the op on edge `e`.
    pub ops: [Op; NUM_EDGES],
}

/// Compact code of an [`Arch`]: the six op digits read as a base-5 number, edge 0 most
/// significant (so `|none~0|+...` all-`none` is 0 and all-`avg_pool_3x3` is 15624).
///
/// This is *not* the NATS-Bench index; see [`NatsIndex`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArchCode(u16);

impl ArchCode {
    /// The code if `code < 15625`.
    pub const fn new(code: u16) -> Option<ArchCode> {
        if (code as usize) < NUM_ARCHS {
            Some(ArchCode(code))
        } else {
            None
        }
    }

    /// The raw number.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// Every code in increasing order.
    pub fn all() -> impl Iterator<Item = ArchCode> {
        (0..NUM_ARCHS as u16).map(ArchCode)
    }
}

/// The benchmark's own index of an architecture (row of `nb201_archs.csv`, 0..15624).
///
/// The mapping between [`NatsIndex`] and [`Arch`] is data (a permutation fixed by the
/// benchmark), so it lives on the host; the board only ever sees [`ArchCode`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NatsIndex(u16);

impl NatsIndex {
    /// The index if `i < 15625`.
    pub const fn new(i: u16) -> Option<NatsIndex> {
        if (i as usize) < NUM_ARCHS {
            Some(NatsIndex(i))
        } else {
            None
        }
    }

    /// The raw number.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for NatsIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An edit: put `op` on `edge`. 30 actions, indexed `edge * 5 + op`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Action {
    /// The edge to change.
    pub edge: Edge,
    /// Its new op.
    pub op: Op,
}

impl Action {
    /// Number of distinct actions.
    pub const COUNT: usize = NUM_EDGES * NUM_OPS;

    /// Action number `i` (`edge * 5 + op`), if `i < 30`.
    pub const fn from_index(i: u8) -> Option<Action> {
        match (Edge::new(i / NUM_OPS as u8), Op::from_index(i % NUM_OPS as u8)) {
            (Some(edge), Some(op)) => Some(Action { edge, op }),
            _ => None,
        }
    }

    /// The action's number.
    pub const fn index(self) -> usize {
        self.edge.index() * NUM_OPS + self.op as usize
    }
}

impl Arch {
    /// The cell with `op` on every edge.
    pub const fn uniform(op: Op) -> Arch {
        Arch { ops: [op; NUM_EDGES] }
    }

    /// The op on `edge`.
    pub const fn op(&self, edge: Edge) -> Op {
        self.ops[edge.index()]
    }

    /// The cell after applying `action`.
    pub const fn apply(mut self, action: Action) -> Arch {
        self.ops[action.edge.index()] = action.op;
        self
    }

    /// Compact base-5 code.
    pub fn code(&self) -> ArchCode {
        ArchCode(self.ops.iter().fold(0u16, |acc, &op| acc * NUM_OPS as u16 + op as u16))
    }

    /// The cell with this code.
    pub fn from_code(code: ArchCode) -> Arch {
        let mut ops = [Op::None; NUM_EDGES];
        let mut rest = code.0;
        for slot in ops.iter_mut().rev() {
            // rest % 5 < 5, so from_index always succeeds.
            *slot = Op::from_index((rest % NUM_OPS as u16) as u8).unwrap_or(Op::None);
            rest /= NUM_OPS as u16;
        }
        Arch { ops }
    }

    /// Number of edges carrying `op`.
    pub fn count(&self, op: Op) -> usize {
        self.ops.iter().filter(|&&o| o == op).count()
    }

    /// True when some path of non-`none` edges joins the input (node 0) to the output (node 3).
    ///
    /// Cells for which this is false compute a constant (they ignore their input).
    pub const fn is_connected(&self) -> bool {
        self.reached_from_input()[3]
    }

    /// Which nodes some path of non-`none` edges from the input reaches.
    const fn reached_from_input(&self) -> [bool; 4] {
        let mut reach = [true, false, false, false];
        let mut i = 0;
        while i < NUM_EDGES {
            let e = Edge(i as u8);
            if !matches!(self.ops[i], Op::None) && reach[e.from() as usize] {
                reach[e.to() as usize] = true;
            }
            i += 1;
        }
        reach
    }

    /// Which nodes reach the output (node 3) along a path of non-`none` edges.
    const fn reaching_output(&self) -> [bool; 4] {
        let mut to_out = [false, false, false, true];
        let mut i = NUM_EDGES;
        while i > 0 {
            i -= 1;
            let e = Edge(i as u8);
            if !matches!(self.ops[i], Op::None) && to_out[e.to() as usize] {
                to_out[e.from() as usize] = true;
            }
        }
        to_out
    }

    /// The cell's graph, node by node: which nodes the input reaches and which reach the
    /// output, along non-`none` edges (the one reachability analysis [`Arch::live_edges`],
    /// [`Arch::executed`] and the scores' gradient flow are built on).
    pub const fn nodes(&self) -> CellNodes {
        CellNodes { from_input: self.reached_from_input(), to_output: self.reaching_output() }
    }

    /// Which edges are *live*: not `none`, their source reachable from the cell input and
    /// their target reaching the cell output, both along non-`none` edges. An edge is live
    /// exactly when it lies on a path from input to output.
    ///
    /// Every other edge is *dead*: its work cannot reach the output. That includes a
    /// convolution out of a node the input never reaches: such a node is zero, and the conv
    /// would only add a constant (its folded BN shift) to the output, which no runtime that
    /// prunes computes and no accuracy depends on; it is counted as dead.
    pub const fn live_edges(&self) -> [bool; NUM_EDGES] {
        let from_in = self.reached_from_input();
        let to_out = self.reaching_output();
        let mut live = [false; NUM_EDGES];
        let mut i = 0;
        while i < NUM_EDGES {
            let e = Edge(i as u8);
            live[i] = !matches!(self.ops[i], Op::None) && from_in[e.from() as usize] && to_out[e.to() as usize];
            i += 1;
        }
        live
    }

    /// The *executed network* of this cell: the same cell with every dead edge (see
    /// [`Arch::live_edges`]) set to `none`. It computes what this cell computes (up to the
    /// constant of a dead conv's BN shift), and it is what a runtime that prunes runs.
    ///
    /// Idempotent; a disconnected cell maps to the all-`none` cell. The 15,625 cells have
    /// [`NUM_EXECUTED`] distinct executed networks, [`NUM_CONNECTED_EXECUTED`] of them
    /// connected (all but all-`none`).
    pub const fn executed(&self) -> Arch {
        let live = self.live_edges();
        let mut ops = self.ops;
        let mut i = 0;
        while i < NUM_EDGES {
            if !live[i] {
                ops[i] = Op::None;
            }
            i += 1;
        }
        Arch { ops }
    }

    /// True when the cell has no dead edge (it is its own executed network).
    pub const fn is_executed(&self) -> bool {
        let live = self.live_edges();
        let mut i = 0;
        while i < NUM_EDGES {
            if !live[i] && !matches!(self.ops[i], Op::None) {
                return false;
            }
            i += 1;
        }
        true
    }

    /// Parse the exact NATS-Bench string `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`.
    ///
    /// Every malformed input returns a [`ParseError`] naming the first problem.
    pub fn parse(s: &str) -> Result<Arch, ParseError> {
        if s.is_empty() {
            return Err(ParseError::Empty);
        }
        if s.len() > MAX_STR_LEN {
            return Err(ParseError::TooLong { len: s.len() });
        }
        let mut ops = [Op::None; NUM_EDGES];
        let mut groups = 0u8;
        for (g, group) in s.split('+').enumerate() {
            let node = g as u8 + 1;
            if node > 3 {
                return Err(ParseError::NodeCount { found: s.split('+').count().min(255) as u8 });
            }
            groups = node;
            let inner = group
                .strip_prefix('|')
                .and_then(|rest| rest.strip_suffix('|'))
                .ok_or(ParseError::MissingBar { node })?;
            let mut found = 0u8;
            for (position, entry) in inner.split('|').enumerate() {
                let position = position as u8;
                if position >= node {
                    return Err(ParseError::EdgeCount { node, found: inner.split('|').count().min(255) as u8 });
                }
                let (name, source) = entry.split_once('~').ok_or(ParseError::MissingTilde { node, position })?;
                let op = Op::from_name(name).ok_or(ParseError::UnknownOp { node, position })?;
                if source.len() != 1 || source.as_bytes()[0] != b'0' + position {
                    return Err(ParseError::BadSource { node, position });
                }
                // position < node <= 3, so the edge exists.
                let edge = Edge::between(position, node).ok_or(ParseError::BadSource { node, position })?;
                ops[edge.index()] = op;
                found += 1;
            }
            if found != node {
                return Err(ParseError::EdgeCount { node, found });
            }
        }
        if groups != 3 {
            return Err(ParseError::NodeCount { found: groups });
        }
        Ok(Arch { ops })
    }
}

/// Longest valid cell string is 6 x `|avg_pool_3x3~0` plus separators; anything much longer
/// is rejected before it is scanned.
pub const MAX_STR_LEN: usize = 128;

impl FromStr for Arch {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Arch, ParseError> {
        Arch::parse(s)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for to in 1..=3u8 {
            if to > 1 {
                f.write_str("+")?;
            }
            f.write_str("|")?;
            for from in 0..to {
                let op = Edge::between(from, to).map(|e| self.op(e)).unwrap_or(Op::None);
                write!(f, "{}~{}|", op.name(), from)?;
            }
        }
        Ok(())
    }
}

/// Why a cell string was rejected. `node` is the target node (1..=3) of the offending group,
/// `position` the entry within it (= its source node).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The string is empty.
    Empty,
    /// The string is longer than any valid cell string.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Not exactly three `+`-separated node groups.
    NodeCount {
        /// Groups found.
        found: u8,
    },
    /// A group does not start and end with `|`.
    MissingBar {
        /// Target node of the group.
        node: u8,
    },
    /// Group for node `n` must hold exactly `n` entries.
    EdgeCount {
        /// Target node of the group.
        node: u8,
        /// Entries found.
        found: u8,
    },
    /// An entry is not of the form `op~source`.
    MissingTilde {
        /// Target node.
        node: u8,
        /// Entry position.
        position: u8,
    },
    /// The op name is not one of the five NATS-Bench ops.
    UnknownOp {
        /// Target node.
        node: u8,
        /// Entry position.
        position: u8,
    },
    /// The source after `~` is not the entry's position.
    BadSource {
        /// Target node.
        node: u8,
        /// Entry position (the expected source).
        position: u8,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const FORM: &str = "expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2| with op one of none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3";
        match *self {
            ParseError::Empty => write!(f, "empty architecture string; {FORM}"),
            ParseError::TooLong { len } => {
                write!(f, "architecture string is {len} bytes, longer than any cell ({MAX_STR_LEN}); {FORM}")
            }
            ParseError::NodeCount { found } => {
                write!(f, "found {found} '+'-separated node groups, need 3; {FORM}")
            }
            ParseError::MissingBar { node } => {
                write!(f, "group for node {node} must start and end with '|'; {FORM}")
            }
            ParseError::EdgeCount { node, found } => {
                write!(f, "group for node {node} has {found} entries, needs {node}; {FORM}")
            }
            ParseError::MissingTilde { node, position } => {
                write!(f, "entry {position} of node {node} is not 'op~{position}'; {FORM}")
            }
            ParseError::UnknownOp { node, position } => {
                write!(f, "entry {position} of node {node} names an unknown op; {FORM}")
            }
            ParseError::BadSource { node, position } => {
                write!(f, "entry {position} of node {node} must come from node {position} ('~{position}'); {FORM}")
            }
        }
    }
}

#[cfg(any(test, feature = "std"))]
impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIXED: &str =
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";

    #[test]
    fn parses_the_nats_bench_example_in_string_order() {
        let a = Arch::parse(MIXED).unwrap();
        use Op::*;
        assert_eq!(a.ops, [NorConv3x3, NorConv3x3, AvgPool3x3, SkipConnect, NorConv3x3, SkipConnect]);
        assert_eq!(a.to_string(), MIXED);
    }

    #[test]
    fn every_code_round_trips_through_string_and_code() {
        let mut seen = std::collections::HashSet::new();
        for code in ArchCode::all() {
            let a = Arch::from_code(code);
            assert_eq!(a.code(), code);
            let s = a.to_string();
            assert!(s.len() <= MAX_STR_LEN);
            assert_eq!(Arch::parse(&s), Ok(a), "{s}");
            assert!(seen.insert(s));
        }
        assert_eq!(seen.len(), NUM_ARCHS);
    }

    #[test]
    fn code_digits_follow_string_order() {
        // Edge 0 is the most significant base-5 digit.
        let mut a = Arch::uniform(Op::None);
        a.ops[0] = Op::SkipConnect;
        assert_eq!(a.code().get(), 3125);
        a = Arch::uniform(Op::None);
        a.ops[5] = Op::AvgPool3x3;
        assert_eq!(a.code().get(), 4);
        assert_eq!(Arch::uniform(Op::AvgPool3x3).code().get(), 15624);
        assert!(ArchCode::new(15625).is_none());
        assert!(NatsIndex::new(15625).is_none());
    }

    #[test]
    fn edges_and_actions() {
        for e in Edge::ALL {
            assert_eq!(Edge::between(e.from(), e.to()), Some(e));
        }
        assert_eq!(Edge::between(2, 3).map(|e| e.index()), Some(5));
        assert!(Edge::between(3, 3).is_none() && Edge::new(6).is_none());
        for i in 0..Action::COUNT as u8 {
            let a = Action::from_index(i).unwrap();
            assert_eq!(a.index(), i as usize);
        }
        assert!(Action::from_index(30).is_none());
        let a = Arch::uniform(Op::SkipConnect).apply(Action::from_index(2 * 5 + 3).unwrap());
        assert_eq!(a.ops[2], Op::NorConv3x3);
        assert_eq!(a.count(Op::SkipConnect), 5);
    }

    #[test]
    fn connectivity() {
        assert!(!Arch::uniform(Op::None).is_connected());
        assert!(Arch::uniform(Op::SkipConnect).is_connected());
        // Only 0->1 and 1->2 live: node 3 never reached.
        let a = Arch::parse("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|none~2|").unwrap();
        assert!(!a.is_connected());
        let a = Arch::parse("|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|").unwrap();
        assert!(a.is_connected());
        let n = ArchCode::all().filter(|&c| !Arch::from_code(c).is_connected()).count();
        // The benchmark's BRP-NAS data misses exactly the 341 disconnected cells.
        assert_eq!(n, 341);
    }

    #[test]
    fn executed_networks() {
        let p = |s: &str| Arch::parse(s).unwrap();
        // The README's example: nodes 1 and 2 never reach the output; what runs is a skip.
        let a = p("|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|");
        assert_eq!(a.live_edges(), [false, false, false, true, false, false]);
        assert_eq!(a.executed(), p("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"));
        assert!(!a.is_executed() && a.executed().is_executed());
        // A conv out of a node the input never reaches (node 1) only adds a constant: dead.
        let b = p("|none~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|");
        assert_eq!(b.live_edges(), [false, true, false, false, false, true]);
        assert_eq!(Arch::uniform(Op::NorConv3x3).live_edges(), [true; 6]);
        assert_eq!(Arch::uniform(Op::None).executed(), Arch::uniform(Op::None));
        let mut distinct = std::collections::HashSet::new();
        for code in ArchCode::all() {
            let a = Arch::from_code(code);
            let e = a.executed();
            assert_eq!(e.executed(), e, "{a}: idempotent");
            assert_eq!(e.is_connected(), a.is_connected(), "{a}");
            assert_eq!(a.is_executed(), a == e, "{a}");
            // Live edges are exactly the edges on some input-to-output path.
            for (i, live) in a.live_edges().into_iter().enumerate() {
                assert_eq!(live, a.ops[i] != Op::None && path_through(&a, i), "{a} edge {i}");
            }
            distinct.insert(e);
        }
        assert_eq!(distinct.len(), NUM_EXECUTED);
        assert_eq!(distinct.iter().filter(|e| e.is_connected()).count(), NUM_CONNECTED_EXECUTED);
        let dead = ArchCode::all().map(Arch::from_code).filter(|a| !a.is_executed()).count();
        assert_eq!(dead, 6180, "cells with a dead edge");
    }

    /// Is there a path input -> from(i) and to(i) -> output along non-`none` edges.
    fn path_through(a: &Arch, i: usize) -> bool {
        let e = Edge::ALL[i];
        let reach = |from: u8, to: u8| -> bool {
            if from == to {
                return true;
            }
            let mut r = [false; 4];
            r[from as usize] = true;
            for x in Edge::ALL {
                if a.op(x) != Op::None && r[x.from() as usize] {
                    r[x.to() as usize] = true;
                }
            }
            r[to as usize]
        };
        reach(0, e.from()) && reach(e.to(), 3)
    }

    #[test]
    fn malformed_strings_get_the_right_error() {
        use ParseError::*;
        let cases: &[(&str, ParseError)] = &[
            ("", Empty),
            ("|none~0|", NodeCount { found: 1 }),
            ("|none~0|+|none~0|none~1|", NodeCount { found: 2 }),
            ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|", NodeCount { found: 4 }),
            ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", MissingBar { node: 1 }),
            ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2", MissingBar { node: 3 }),
            ("|none~0|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", EdgeCount { node: 1, found: 2 }),
            ("|none~0|+|none~0|+|none~0|none~1|none~2|", EdgeCount { node: 2, found: 1 }),
            ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", MissingTilde { node: 1, position: 0 }),
            ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", UnknownOp { node: 1, position: 0 }),
            ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", BadSource { node: 1, position: 0 }),
            ("|none~0|+|none~0|none~1|+|none~0|none~1|none~22|", BadSource { node: 3, position: 2 }),
            ("|NONE~0|+|none~0|none~1|+|none~0|none~1|none~2|", UnknownOp { node: 1, position: 0 }),
            ("|none~0| +|none~0|none~1|+|none~0|none~1|none~2|", MissingBar { node: 1 }),
        ];
        for (s, want) in cases {
            assert_eq!(Arch::parse(s), Err(*want), "{s:?}");
        }
        let long = "|".repeat(MAX_STR_LEN + 1);
        assert_eq!(Arch::parse(&long), Err(TooLong { len: MAX_STR_LEN + 1 }));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Arbitrary strings never panic, and whatever parses formats back to itself.
        #[test]
        fn arbitrary_strings_parse_or_error(s in ".{0,160}") {
            if let Ok(a) = Arch::parse(&s) {
                prop_assert_eq!(a.to_string(), s);
            }
        }

        /// Single-byte edits of a valid string: either rejected or another exact cell string.
        #[test]
        fn mutated_valid_strings(code in 0u16..15625, pos in 0usize..120, byte in any::<u8>()) {
            let mut bytes = Arch::from_code(ArchCode::new(code).unwrap()).to_string().into_bytes();
            let pos = pos % bytes.len();
            bytes[pos] = byte;
            if let Ok(s) = std::str::from_utf8(&bytes) {
                match Arch::parse(s) {
                    Ok(a) => prop_assert_eq!(a.to_string(), s),
                    Err(e) => prop_assert!(!e.to_string().is_empty()),
                }
            }
        }

        /// Dropping or duplicating a separator is always rejected.
        #[test]
        fn structural_damage_is_rejected(code in 0u16..15625, which in 0usize..32, dup in any::<bool>()) {
            let s = Arch::from_code(ArchCode::new(code).unwrap()).to_string();
            let seps: Vec<usize> = s.char_indices().filter(|(_, c)| matches!(c, '|' | '+' | '~')).map(|(i, _)| i).collect();
            let i = seps[which % seps.len()];
            let mut t = s.clone();
            if dup { t.insert(i, s.as_bytes()[i] as char); } else { t.remove(i); }
            prop_assert!(Arch::parse(&t).is_err(), "{}", t);
        }
    }
}
