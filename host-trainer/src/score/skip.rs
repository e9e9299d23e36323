//! SkipScore (FreeREA): how far the cell's skip connections reach.
//!
//! For each `skip_connect` edge `i -> j` count the intermediate nodes it jumps over,
//! `j - i - 1` (0, 1 or 2: an edge 1->2 scores 0, an edge 0->3 scores 2), and take the mean
//! over the cell's skip edges; a cell without `skip_connect` scores 0. The range is [0, 2].

use simnas_shared::{Arch, Edge, Op};

/// The SkipScore of `arch` (see the module docs).
pub fn skip_score(arch: &Arch) -> f64 {
    let (mut sum, mut n) = (0u32, 0u32);
    for e in Edge::ALL {
        if arch.op(e) == Op::SkipConnect {
            sum += u32::from(e.to() - e.from() - 1);
            n += 1;
        }
    }
    if n == 0 {
        0.0
    } else {
        f64::from(sum) / f64::from(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(a: &str) -> f64 {
        skip_score(&Arch::parse(a).unwrap())
    }

    #[test]
    fn hand_computed_scores() {
        assert_eq!(s("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"), 0.0);
        // Only 0->3: jumps over nodes 1 and 2.
        assert_eq!(s("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"), 2.0);
        // Only 1->2: adjacent nodes.
        assert_eq!(s("|none~0|+|none~0|skip_connect~1|+|none~0|none~1|none~2|"), 0.0);
        // All skips: (0 + 1 + 0 + 2 + 1 + 0) / 6.
        let all = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|";
        assert_eq!(s(all), 4.0 / 6.0);
        // 0->2 and 2->3 with convs elsewhere: (1 + 0) / 2.
        assert_eq!(s("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|skip_connect~2|"), 0.5);
    }
}
