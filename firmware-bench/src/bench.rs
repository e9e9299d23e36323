//! The board benchmark: whole-network timings from which per-op costs follow.
//!
//! The executor runs whole networks, so ops are timed in context: [`BenchItem::Baseline`]
//! is the network with every cell empty (stem, reductions, head), and
//! `SingleEdge(op)` the network whose every cell is the single edge 0->3 carrying `op`.
//! `(SingleEdge(op) - Baseline) / (3 N)` is the cost of one op in one cell; in NB201 the
//! three stages do the same number of conv MACs, so this is also the per-stage cost.
//! Whole cells (uniform and mixed) follow.

use simnas_shared::protocol::BenchItem;
use simnas_shared::{Arch, ArchCode, Edge, Op};

/// Every item of the benchmark with its cell, in order.
pub const ITEMS: [(BenchItem, &str); 11] = [
    (BenchItem::Baseline, "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"),
    (BenchItem::SingleEdge(Op::SkipConnect as u8), "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"),
    (BenchItem::SingleEdge(Op::NorConv1x1 as u8), "|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|"),
    (BenchItem::SingleEdge(Op::NorConv3x3 as u8), "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"),
    (BenchItem::SingleEdge(Op::AvgPool3x3 as u8), "|none~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|"),
    (
        BenchItem::Cell,
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
    ),
    (
        BenchItem::Cell,
        "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
    ),
    (
        BenchItem::Cell,
        "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|",
    ),
    (
        BenchItem::Cell,
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    ),
    (BenchItem::Cell, "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"),
    (
        BenchItem::Cell,
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    ),
];

/// The cell of item `i`, if `i` is an item (the strings above parse; a typo would show as
/// a missing item, and the unit test below catches it).
pub fn cell(i: usize) -> Option<ArchCode> {
    let (item, s) = ITEMS.get(i)?;
    let arch = Arch::parse(s).ok()?;
    let single_ok = match item {
        BenchItem::SingleEdge(op) => {
            Edge::between(0, 3).map(|e| arch.op(e) as u8) == Some(*op) && arch.count(Op::None) == 5
        }
        BenchItem::Baseline => arch.count(Op::None) == 6,
        BenchItem::Cell => true,
    };
    single_ok.then(|| arch.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_parses_and_matches_its_kind() {
        for i in 0..ITEMS.len() {
            assert!(cell(i).is_some(), "item {i}");
        }
        assert!(cell(ITEMS.len()).is_none());
    }
}
