//! The executed NB201 network as a self-contained PyTorch source file, for training the
//! pick.
//!
//! The module is the macro network in training form (NCHW): stem `Conv3x3 -> BN`, three
//! stages of `N` cells at `C`, `2C`, `4C` joined by the residual reduction block
//! (`ReLU-Conv3x3/s2-BN`, `ReLU-Conv3x3-BN`, shortcut `AvgPool2x2 -> Conv1x1`), head
//! `BN -> ReLU -> global average pool -> Linear`. A cell holds only its live edges (the
//! executed network), listed as `(source, target, op)` in NATS-Bench order; `nor_conv_kxk`
//! is `ReLU -> Conv(kxk, no bias) -> BN`, `avg_pool_3x3` does not count the padding. It is
//! the network the ONNX export describes before its BNs are folded; the file carries no
//! weights.

use edge_runtime::layout::NetConfig;
use simnas_shared::{Arch, Edge, Op};
use std::fmt::Write as _;

/// Python source of `arch`'s executed network on `cfg` (the caller has checked that it is
/// connected).
pub fn source(cfg: NetConfig, arch: Arch) -> String {
    let executed = arch.executed();
    let live = executed.live_edges();
    let mut edges = String::new();
    for e in Edge::ALL.into_iter().filter(|e| live[e.index()]) {
        let op = executed.op(e);
        if op != Op::None {
            let _ = writeln!(edges, "    ({}, {}, \"{}\"),", e.from(), e.to(), op.name());
        }
    }
    let mut s = String::new();
    let _ = write!(
        s,
        r#""""NB201 network of the cell {arch}
(executed network {executed}), written by simnas export.

C={c} base channels, N={n} cells per stage, {r}x{r} input (NCHW), {k} classes.
Train it with any PyTorch loop: `model = Network(); logits = model(images)`.
"""

import torch
from torch import nn

ARCH = "{arch}"
EXECUTED = "{executed}"
# The edges that run: (source node, target node, op), in NATS-Bench order.
EDGES = [
{edges}]
CHANNELS = {c}
CELLS_PER_STAGE = {n}
RESOLUTION = {r}
CLASSES = {k}


class ReLUConvBN(nn.Module):
    def __init__(self, c_in, c_out, kernel, stride):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x):
        return self.op(x)


def make_op(name, c):
    if name == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3, 1)
    if name == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1, 1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity()
    raise ValueError("unknown op " + name)


class Cell(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.edges = list(EDGES)
        self.ops = nn.ModuleList([make_op(op, c) for _, _, op in self.edges])

    def forward(self, x):
        nodes = [x, None, None, None]
        for j in range(1, 4):
            total = None
            for (i, t, _), op in zip(self.edges, self.ops):
                if t == j:
                    y = op(nodes[i])
                    total = y if total is None else total + y
            nodes[j] = total
        return nodes[3]


class ResNetBasicBlock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x):
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class Network(nn.Module):
    def __init__(self, channels=CHANNELS, cells_per_stage=CELLS_PER_STAGE, classes=CLASSES):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        layers = []
        c = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResNetBasicBlock(c, 2 * c))
                c *= 2
            layers.extend(Cell(c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, classes)

    def forward(self, x):
        y = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.global_pooling(y), 1))


if __name__ == "__main__":
    model = Network().eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, RESOLUTION, RESOLUTION))
    print(EXECUTED, tuple(out.shape))
"#,
        c = cfg.channels,
        n = cfg.cells_per_stage,
        r = cfg.resolution,
        k = cfg.classes,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_exactly_the_live_edges() {
        let a = Arch::parse("|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|").unwrap();
        let s = source(NetConfig::CIFAR10, a);
        assert!(s.contains("EDGES = [\n    (0, 3, \"skip_connect\"),\n]"), "{s}");
        assert!(s.contains("CHANNELS = 16\nCELLS_PER_STAGE = 5\nRESOLUTION = 32\nCLASSES = 10"));
        let all = source(NetConfig::CIFAR10, Arch::uniform(Op::AvgPool3x3));
        assert_eq!(all.matches("\"avg_pool_3x3\"),").count(), 6);
    }
}
