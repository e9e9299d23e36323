//! The executed NB201 network as an ONNX model (opset [`OPSET`]), built on the protobuf
//! messages of [`pb`] and encoded with prost.
//!
//! Graph, NCHW throughout (`N` batch, `C` base channels, `R` input side, `K` classes):
//!
//! ```text
//! input [N,3,R,R] -> Conv3x3(3->C, pad 1, bias = folded BN)                [N,C,R,R]
//!   stage 0: cells at C; reduction -> 2C, R/2; stage 1; reduction -> 4C, R/4; stage 2
//!   head: Mul(scale) -> Add(shift) -> Relu -> GlobalAveragePool -> Flatten
//!         -> Gemm(W [4C,K], bias [K])                                       logits [N,K]
//! ```
//!
//! A cell: `n0 = x`, `n_j = sum` of its live edges into `j` (chained `Add`s):
//! `nor_conv_kxk` = `Conv_kxk(Relu(n_i))` with the folded BN as bias (pad `k/2`; one `Relu`
//! per source node, shared by its convs), `skip_connect` = `n_i`, `avg_pool_3x3` =
//! `AveragePool(3x3, stride 1, pad 1, count_include_pad = 0)`. Only the live edges of the
//! executed network appear ([`Arch::live_edges`]), the edges the executor runs.
//! A reduction: `Conv3x3(Relu(Conv3x3/s2(Relu(x))))` + `Conv1x1(AveragePool2x2/s2(x))`.
//!
//! Weights come from the executor's dense layout ([`edge_runtime::layout`]): conv slots
//! `[kh][kw][cin][cout]` are transposed to ONNX's `[cout][cin][kh][kw]`; the classifier's
//! `[4C][K]` is Gemm's `B` as it is. Initialisers are little-endian `raw_data`.

pub mod pb;

use super::{ExportError, ExportSpec};
use edge_runtime::layout::{NetConfig, ParamLayout, Slot, SlotInfo, IN_CHANNELS, STAGES};
use pb::{
    AttributeProto, AttributeType, DataType, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TensorType, TypeProto, ValueInfoProto,
};
use prost::Message as _;
use simnas_shared::{Arch, Edge, Op};
use std::collections::HashMap;

/// The ONNX operator set the model declares.
pub const OPSET: i64 = 17;
/// The ONNX IR version that goes with [`OPSET`].
pub const IR_VERSION: i64 = 8;
/// Name of the graph's input.
pub const INPUT: &str = "input";
/// Name of the graph's output.
pub const OUTPUT: &str = "logits";

/// The model of `arch`'s executed network on `cfg` for batches of `batch`, with the dense
/// inference parameters `params` (`ParamLayout::new(cfg).total_len()` floats; `seed` is
/// recorded in the metadata).
pub fn model(cfg: NetConfig, arch: Arch, batch: usize, params: &[f32], seed: u64) -> Result<ModelProto, ExportError> {
    let executed = ExportSpec { arch, cfg, batch, seed }.executed()?;
    let layout = ParamLayout::new(cfg)?;
    if params.len() != layout.total_len() {
        return Err(ExportError::Params { expected: layout.total_len(), got: params.len() });
    }
    let slots: HashMap<Slot, SlotInfo> = layout.slots().map(|s| (s.slot, s)).collect();
    let mut g = Builder { params, slots, nodes: Vec::new(), inits: Vec::new(), next: 0 };

    let mut x = g.conv(INPUT, Slot::Stem, 1)?;
    for stage in 0..STAGES {
        if stage > 0 {
            x = g.reduction(&x, stage)?;
        }
        for cell in 0..cfg.cells_per_stage {
            x = g.cell(&x, executed, stage, cell)?;
        }
    }
    let f = cfg.final_channels();
    let bn = g.info(Slot::FinalBn)?;
    let scale = g.init("head.bn.scale", vec![1, f as i64, 1, 1], g.floats(bn.offset, f)?.to_vec());
    let shift = g.init("head.bn.shift", vec![1, f as i64, 1, 1], g.floats(bn.offset + f, f)?.to_vec());
    let y = g.node("Mul", &[&x, &scale], vec![]);
    let y = g.node("Add", &[&y, &shift], vec![]);
    let y = g.node("Relu", &[&y], vec![]);
    let y = g.node("GlobalAveragePool", &[&y], vec![]);
    let y = g.node("Flatten", &[&y], vec![int("axis", 1)]);
    let cls = g.info(Slot::Classifier)?;
    let k = cfg.classes;
    let w = g.init("head.classifier.weight", vec![f as i64, k as i64], g.floats(cls.offset, f * k)?.to_vec());
    let b = g.init("head.classifier.bias", vec![k as i64], g.floats(cls.offset + f * k, k)?.to_vec());
    g.node("Gemm", &[&y, &w, &b], vec![]);
    // The last node's output is the graph's.
    if let Some(last) = g.nodes.last_mut() {
        last.output = vec![OUTPUT.to_string()];
    }

    let n = batch as i64;
    let r = cfg.resolution as i64;
    let graph = GraphProto {
        node: g.nodes,
        name: "nb201".into(),
        initializer: g.inits,
        doc_string: format!("NB201 executed network of {executed}"),
        input: vec![value_info(INPUT, &[n, IN_CHANNELS as i64, r, r])],
        output: vec![value_info(OUTPUT, &[n, k as i64])],
    };
    let meta = |key: &str, value: String| StringStringEntryProto { key: key.into(), value };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: OPSET }],
        producer_name: "simnas".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!(
            "NB201 macro network (C={} N={} {}x{} {} classes), executed network of {arch}, seeded inference weights",
            cfg.channels, cfg.cells_per_stage, cfg.resolution, cfg.resolution, cfg.classes
        ),
        graph: Some(graph),
        metadata_props: vec![
            meta("arch", arch.to_string()),
            meta("executed", executed.to_string()),
            meta("channels", cfg.channels.to_string()),
            meta("cells_per_stage", cfg.cells_per_stage.to_string()),
            meta("resolution", cfg.resolution.to_string()),
            meta("classes", cfg.classes.to_string()),
            meta("weights_seed", seed.to_string()),
            meta("layout", "NCHW".into()),
        ],
    })
}

/// The model's protobuf bytes.
pub fn encode(model: &ModelProto) -> Result<Vec<u8>, ExportError> {
    Ok(model.encode_to_vec())
}

/// Builds the graph: nodes in topological order, one initialiser per parameter tensor.
struct Builder<'p> {
    params: &'p [f32],
    slots: HashMap<Slot, SlotInfo>,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    next: usize,
}

impl Builder<'_> {
    fn info(&self, slot: Slot) -> Result<SlotInfo, ExportError> {
        self.slots.get(&slot).copied().ok_or(ExportError::Params { expected: 0, got: self.params.len() })
    }

    fn floats(&self, offset: usize, len: usize) -> Result<&[f32], ExportError> {
        self.params
            .get(offset..offset.saturating_add(len))
            .ok_or(ExportError::Params { expected: offset.saturating_add(len), got: self.params.len() })
    }

    fn init(&mut self, name: &str, dims: Vec<i64>, values: Vec<f32>) -> String {
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.inits.push(TensorProto { dims, data_type: DataType::Float as i32, name: name.into(), raw_data });
        name.into()
    }

    /// Append a node; its single output is a fresh name `tK`, returned.
    fn node(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        let out = format!("t{}", self.next);
        self.next += 1;
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: format!("{op}_{}", self.next - 1),
            op_type: op.into(),
            attribute,
        });
        out
    }

    /// `Conv` with the slot's folded weights (transposed to OIHW) and bias, pad `k/2`.
    fn conv(&mut self, x: &str, slot: Slot, stride: i64) -> Result<String, ExportError> {
        let s = self.info(slot)?;
        let (k, cin, cout) = (s.kernel, s.cin, s.cout);
        let src = self.floats(s.offset, s.len())?;
        let mut w = vec![0f32; s.weights];
        for ky in 0..k {
            for kx in 0..k {
                for ci in 0..cin {
                    for co in 0..cout {
                        w[((co * cin + ci) * k + ky) * k + kx] = src[((ky * k + kx) * cin + ci) * cout + co];
                    }
                }
            }
        }
        let b = src[s.weights..].to_vec();
        let name = slot_name(slot);
        let wn = self.init(&format!("{name}.weight"), vec![cout as i64, cin as i64, k as i64, k as i64], w);
        let bn = self.init(&format!("{name}.bias"), vec![cout as i64], b);
        let p = (k / 2) as i64;
        let attrs = vec![
            ints("kernel_shape", &[k as i64, k as i64]),
            ints("pads", &[p, p, p, p]),
            ints("strides", &[stride, stride]),
        ];
        Ok(self.node("Conv", &[x, &wn, &bn], attrs))
    }

    fn reduction(&mut self, x: &str, stage: usize) -> Result<String, ExportError> {
        let r = self.node("Relu", &[x], vec![]);
        let a = self.conv(&r, Slot::ReduceA(stage), 2)?;
        let ra = self.node("Relu", &[&a], vec![]);
        let b = self.conv(&ra, Slot::ReduceB(stage), 1)?;
        let pooled = self.node(
            "AveragePool",
            &[x],
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2]), ints("pads", &[0, 0, 0, 0])],
        );
        let sc = self.conv(&pooled, Slot::ReduceShortcut(stage), 1)?;
        Ok(self.node("Add", &[&b, &sc], vec![]))
    }

    fn cell(&mut self, x: &str, arch: Arch, stage: usize, cell: usize) -> Result<String, ExportError> {
        let live = arch.live_edges();
        let mut nodes: [Option<String>; 4] = [Some(x.to_string()), None, None, None];
        let mut relus: [Option<String>; 4] = Default::default();
        for j in 1..4u8 {
            let mut sum: Option<String> = None;
            for e in Edge::ALL.into_iter().filter(|e| e.to() == j && live[e.index()]) {
                let i = e.from() as usize;
                // Live edges start at nodes the input reaches, computed before `j`.
                let src = nodes[i].clone().ok_or_else(|| ExportError::Disconnected { arch: arch.to_string() })?;
                let op = arch.op(e);
                let y = match op {
                    Op::SkipConnect => src,
                    Op::AvgPool3x3 => self.node(
                        "AveragePool",
                        &[&src],
                        vec![
                            ints("kernel_shape", &[3, 3]),
                            ints("strides", &[1, 1]),
                            ints("pads", &[1, 1, 1, 1]),
                            int("count_include_pad", 0),
                        ],
                    ),
                    Op::NorConv1x1 | Op::NorConv3x3 => {
                        let relu = match &relus[i] {
                            Some(r) => r.clone(),
                            None => {
                                let r = self.node("Relu", &[&src], vec![]);
                                relus[i] = Some(r.clone());
                                r
                            }
                        };
                        let kernel = if op == Op::NorConv1x1 { 1 } else { 3 };
                        self.conv(&relu, Slot::CellConv { stage, cell, edge: e.index(), kernel }, 1)?
                    }
                    Op::None => continue,
                };
                sum = Some(match sum {
                    None => y,
                    Some(acc) => self.node("Add", &[&acc, &y], vec![]),
                });
            }
            nodes[j as usize] = sum;
        }
        nodes[3].clone().ok_or_else(|| ExportError::Disconnected { arch: arch.to_string() })
    }
}

/// A readable initialiser prefix for a slot, e.g. `s1.c0.e4.conv3`.
fn slot_name(slot: Slot) -> String {
    match slot {
        Slot::Stem => "stem".into(),
        Slot::ReduceA(s) => format!("s{s}.reduce.a"),
        Slot::ReduceB(s) => format!("s{s}.reduce.b"),
        Slot::ReduceShortcut(s) => format!("s{s}.reduce.shortcut"),
        Slot::CellConv { stage, cell, edge, kernel } => format!("s{stage}.c{cell}.e{edge}.conv{kernel}"),
        Slot::FinalBn => "head.bn".into(),
        Slot::Classifier => "head.classifier".into(),
    }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..AttributeProto::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto { name: name.into(), r#type: AttributeType::Int as i32, i: value, ..AttributeProto::default() }
}

fn value_info(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dim = dims.iter().map(|&d| Dimension { dim_value: Some(d) });
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorType {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto { dim: dim.collect() }),
            }),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: NetConfig = NetConfig { channels: 4, cells_per_stage: 1, resolution: 8, classes: 3 };

    fn ops(m: &ModelProto) -> Vec<String> {
        m.graph.as_ref().map(|g| g.node.iter().map(|n| n.op_type.clone()).collect()).unwrap_or_default()
    }

    #[test]
    fn only_live_edges_become_nodes() {
        let params = super::super::seeded_params(SMALL, 1).unwrap();
        // Nodes 1 and 2 never reach the output: the executed network is one skip per cell.
        let a = Arch::parse("|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|").unwrap();
        let m = model(SMALL, a, 1, &params, 1).unwrap();
        let o = ops(&m);
        // stem, 2 reductions x (Relu Conv Relu Conv AvgPool Conv Add), head (6 nodes).
        assert_eq!(o.iter().filter(|t| *t == "Conv").count(), 1 + 2 * 3, "{o:?}");
        assert_eq!(o.len(), 1 + 2 * 7 + 6, "{o:?}");
        let all = model(SMALL, Arch::uniform(Op::NorConv3x3), 1, &params, 1).unwrap();
        // 6 convs per cell, 3 cells; one Relu per source node (3 per cell).
        let o = ops(&all);
        assert_eq!(o.iter().filter(|t| *t == "Conv").count(), 7 + 18);
        assert_eq!(o.iter().filter(|t| *t == "Relu").count(), 2 * 2 + 3 * 3 + 1);
        assert_eq!(all.graph.as_ref().unwrap().node.last().unwrap().output, vec![OUTPUT.to_string()]);
    }

    #[test]
    fn disconnected_cells_and_bad_inputs_are_refused() {
        let params = super::super::seeded_params(SMALL, 1).unwrap();
        let dead = Arch::parse("|none~0|+|skip_connect~0|none~1|+|none~0|nor_conv_3x3~1|none~2|").unwrap();
        assert!(matches!(model(SMALL, dead, 1, &params, 1), Err(ExportError::Disconnected { .. })));
        let a = Arch::uniform(Op::SkipConnect);
        assert!(matches!(model(SMALL, a, 0, &params, 1), Err(ExportError::Batch { batch: 0 })));
        assert!(matches!(model(SMALL, a, 1, &params[1..], 1), Err(ExportError::Params { .. })));
        let bad = NetConfig { resolution: 6, ..SMALL };
        assert!(matches!(model(bad, a, 1, &params, 1), Err(ExportError::Config(_))));
    }

    #[test]
    fn weights_are_transposed_to_oihw() {
        let params = super::super::seeded_params(SMALL, 3).unwrap();
        let m = model(SMALL, Arch::uniform(Op::SkipConnect), 1, &params, 3).unwrap();
        let g = m.graph.unwrap();
        let w = g.initializer.iter().find(|t| t.name == "stem.weight").unwrap();
        assert_eq!(w.dims, vec![4, 3, 3, 3]);
        let at = |co: usize, ci: usize, ky: usize, kx: usize| {
            let i = 4 * (((co * 3 + ci) * 3 + ky) * 3 + kx);
            f32::from_le_bytes(w.raw_data[i..i + 4].try_into().unwrap())
        };
        // Dense stem weights are [ky][kx][ci][co] from offset 0.
        assert_eq!(at(2, 1, 0, 2), params[((2 * 3) + 1) * 4 + 2]);
        assert_eq!(at(3, 2, 2, 1), params[(((2 * 3 + 1) * 3) + 2) * 4 + 3]);
    }
}
