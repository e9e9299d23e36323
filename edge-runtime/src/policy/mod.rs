//! The controller's actor network, read from safetensors bytes and run without an allocator.
//!
//! The actor is an MLP: `x -> ReLU(W0 x + b0) -> ... -> W_{L-1} h + b_{L-1}` giving one
//! logit per action (`edge * 5 + op`). Tensors are named `actor.{k}.weight` (`[out, in]`,
//! row-major, as candle and PyTorch store a linear layer) and `actor.{k}.bias` (`[out]`),
//! all `F32`. The header's `__metadata__` must say `format_version` = [`FORMAT_VERSION`],
//! `activation` = `relu` and `obs_dim` = [`OBS_DIM`]; other tensors (a critic) and other
//! metadata are ignored.
//!
//! [`Policy::from_bytes`] validates everything once: header length, JSON syntax, dtype,
//! shapes chaining from [`OBS_DIM`] to [`ACTIONS`], offsets inside the data region with
//! lengths matching the shapes, and finite weights. [`Policy::forward`] then cannot fail on
//! the file; it reads weights straight from the bytes (flash on a board).

mod header;
pub mod obs;

use core::fmt;
use header::{scan, Item};
pub use obs::{normalise_latency, History, Step, ACTIONS, HISTORY, OBS_DIM};
use simnas_shared::Action;

/// Policy file format version this runtime reads.
pub const FORMAT_VERSION: &str = "1";
/// Most layers of the actor.
pub const MAX_LAYERS: usize = 4;
/// Widest hidden layer.
pub const MAX_HIDDEN: usize = 256;
/// Largest header accepted.
pub const MAX_HEADER: usize = 64 * 1024;

/// Why a policy file was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyError {
    /// Fewer bytes than the header length field or the header says.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// The header length field is larger than [`MAX_HEADER`].
    HeaderTooLarge {
        /// The length field.
        len: u64,
    },
    /// The header is not valid JSON (byte offset within the header).
    HeaderSyntax {
        /// Offset of the problem.
        at: usize,
    },
    /// JSON nested deeper than a safetensors header ever is.
    HeaderDepth,
    /// A tensor entry lacks `dtype`, `shape` or a two-number `data_offsets`.
    TensorFields,
    /// A shape with more than 4 dimensions.
    TensorRank,
    /// An actor tensor is not `F32`.
    DType {
        /// Layer.
        layer: usize,
    },
    /// The same actor tensor twice.
    Duplicate {
        /// Layer.
        layer: usize,
    },
    /// An actor tensor is missing (layers must be numbered 0, 1, ... without gaps).
    Missing {
        /// Layer.
        layer: usize,
        /// The bias (else the weight).
        bias: bool,
    },
    /// More than [`MAX_LAYERS`] layers, or a layer number beyond it.
    TooManyLayers,
    /// A shape that does not chain (`[out, in]` weight, `[out]` bias, `in` = previous `out`).
    Shape {
        /// Layer.
        layer: usize,
        /// Expected size of the offending dimension.
        expected: usize,
        /// Size found.
        got: usize,
    },
    /// A hidden layer wider than [`MAX_HIDDEN`].
    HiddenTooWide {
        /// Its width.
        width: usize,
    },
    /// `data_offsets` outside the data region, reversed, or not `4 * elements` long.
    Offsets {
        /// Layer.
        layer: usize,
    },
    /// A weight that is NaN or infinite.
    NonFinite {
        /// Layer.
        layer: usize,
    },
    /// Metadata `format_version` missing or not [`FORMAT_VERSION`].
    FormatVersion,
    /// Metadata `format_version` is a later version than this reader knows.
    NewerFormat {
        /// The file's version.
        version: u32,
    },
    /// Metadata `activation` missing or not `relu`.
    Activation,
    /// Metadata `obs_dim` missing or not [`OBS_DIM`].
    ObsLayout,
    /// An observation or logit buffer of the wrong length.
    BufferLength {
        /// Values expected.
        expected: usize,
        /// Values given.
        got: usize,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use PolicyError::*;
        match *self {
            Truncated { needed, got } => write!(f, "policy file truncated: needs {needed} bytes, has {got}"),
            HeaderTooLarge { len } => write!(f, "safetensors header of {len} bytes exceeds {MAX_HEADER}"),
            HeaderSyntax { at } => write!(f, "safetensors header is not valid JSON (byte {at})"),
            HeaderDepth => write!(f, "safetensors header nests too deeply"),
            TensorFields => write!(f, "a tensor entry lacks dtype, shape or data_offsets [begin, end]"),
            TensorRank => write!(f, "a tensor has more than 4 dimensions"),
            DType { layer } => write!(f, "actor layer {layer} is not F32"),
            Duplicate { layer } => write!(f, "actor layer {layer} is given twice"),
            Missing { layer, bias } => {
                write!(f, "actor.{layer}.{} is missing", if bias { "bias" } else { "weight" })
            }
            TooManyLayers => write!(f, "the actor has more than {MAX_LAYERS} layers"),
            Shape { layer, expected, got } => {
                write!(f, "actor layer {layer} has a dimension of {got} where {expected} is needed")
            }
            HiddenTooWide { width } => write!(f, "hidden layer of {width} units exceeds {MAX_HIDDEN}"),
            Offsets { layer } => {
                write!(f, "actor layer {layer} has data offsets outside the file or of the wrong length")
            }
            NonFinite { layer } => write!(f, "actor layer {layer} holds a NaN or infinite weight"),
            FormatVersion => write!(f, "policy metadata format_version is missing or not {FORMAT_VERSION}"),
            NewerFormat { version } => write!(
                f,
                "policy format_version {version} is newer than this reader's {FORMAT_VERSION}: update simnas (or the firmware) to read it"
            ),
            Activation => write!(f, "policy metadata activation is missing or not relu"),
            ObsLayout => write!(f, "policy metadata obs_dim is missing or not {OBS_DIM}"),
            BufferLength { expected, got } => write!(f, "buffer of {got} values where {expected} are needed"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PolicyError {}

#[derive(Clone, Copy, Debug, Default)]
struct Layer {
    /// Byte offset of the weight in the file, and of the bias.
    w: usize,
    b: usize,
    inp: usize,
    out: usize,
}

/// A validated actor over the bytes of a safetensors file.
#[derive(Clone, Debug)]
pub struct Policy<'a> {
    bytes: &'a [u8],
    layers: [Layer; MAX_LAYERS],
    n: usize,
}

/// Parse `actor.{k}.weight` / `actor.{k}.bias`.
fn actor_slot(name: &[u8]) -> Option<(usize, bool)> {
    let rest = name.strip_prefix(b"actor.")?;
    let dot = rest.iter().position(|&c| c == b'.')?;
    let (num, kind) = (&rest[..dot], &rest[dot + 1..]);
    if num.is_empty() || num.len() > 3 || !num.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let k = num.iter().fold(0usize, |a, &c| a * 10 + (c - b'0') as usize);
    match kind {
        b"weight" => Some((k, false)),
        b"bias" => Some((k, true)),
        _ => None,
    }
}

fn read_f32(bytes: &[u8], at: usize) -> f32 {
    match bytes.get(at..at + 4) {
        Some(b) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        None => f32::NAN, // unreachable after validation
    }
}

impl<'a> Policy<'a> {
    /// Validate a safetensors file and index its actor.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Policy<'a>, PolicyError> {
        let head = bytes.get(..8).ok_or(PolicyError::Truncated { needed: 8, got: bytes.len() })?;
        let len = u64::from_le_bytes([head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7]]);
        if len > MAX_HEADER as u64 {
            return Err(PolicyError::HeaderTooLarge { len });
        }
        let data_start = 8 + len as usize;
        let json = bytes.get(8..data_start).ok_or(PolicyError::Truncated { needed: data_start, got: bytes.len() })?;
        let data_len = bytes.len() - data_start;
        let mut found: [[Option<header::TensorEntry<'a>>; 2]; MAX_LAYERS] = [[None; 2]; MAX_LAYERS];
        let (mut version, mut relu, mut obs) = (false, false, false);
        let mut newer = None;
        let mut obs_buf = [0u8; 8];
        let obs_str = fmt_usize(OBS_DIM, &mut obs_buf);
        scan(json, |item| {
            match item {
                Item::Meta(k, v) => match k {
                    b"format_version" => {
                        version = v == FORMAT_VERSION.as_bytes();
                        let parse = |b: &[u8]| core::str::from_utf8(b).ok().and_then(|s| s.parse::<u32>().ok());
                        newer = parse(v).filter(|&n| parse(FORMAT_VERSION.as_bytes()).is_some_and(|ours| n > ours));
                    }
                    b"activation" => relu = v == b"relu",
                    b"obs_dim" => obs = v == obs_str,
                    _ => {}
                },
                Item::Tensor(t) => {
                    if let Some((k, bias)) = actor_slot(t.name) {
                        let slot = found.get_mut(k).ok_or(PolicyError::TooManyLayers)?;
                        if slot[bias as usize].replace(t).is_some() {
                            return Err(PolicyError::Duplicate { layer: k });
                        }
                    }
                }
            }
            Ok(())
        })?;
        if let Some(version) = newer {
            return Err(PolicyError::NewerFormat { version });
        }
        if !version {
            return Err(PolicyError::FormatVersion);
        }
        if !relu {
            return Err(PolicyError::Activation);
        }
        if !obs {
            return Err(PolicyError::ObsLayout);
        }
        let n = found.iter().take_while(|s| s[0].is_some() || s[1].is_some()).count();
        if n == 0 || found[n..].iter().any(|s| s[0].is_some() || s[1].is_some()) {
            let gap = n;
            return Err(PolicyError::Missing { layer: gap, bias: false });
        }
        let mut layers = [Layer::default(); MAX_LAYERS];
        let mut inp = OBS_DIM;
        for k in 0..n {
            let w = found[k][0].ok_or(PolicyError::Missing { layer: k, bias: false })?;
            let b = found[k][1].ok_or(PolicyError::Missing { layer: k, bias: true })?;
            if !w.f32 || !b.f32 {
                return Err(PolicyError::DType { layer: k });
            }
            if w.rank != 2 {
                return Err(PolicyError::Shape { layer: k, expected: 2, got: w.rank });
            }
            let out = w.shape[0];
            if w.shape[1] != inp {
                return Err(PolicyError::Shape { layer: k, expected: inp, got: w.shape[1] });
            }
            if b.rank != 1 || b.shape[0] != out {
                return Err(PolicyError::Shape { layer: k, expected: out, got: b.shape[0] });
            }
            let last = k + 1 == n;
            if last && out != ACTIONS {
                return Err(PolicyError::Shape { layer: k, expected: ACTIONS, got: out });
            }
            if !last && (out > MAX_HIDDEN || out == 0) {
                return Err(PolicyError::HiddenTooWide { width: out });
            }
            for (t, count) in [(w, out.checked_mul(inp)), (b, Some(out))] {
                let ok =
                    count.and_then(|c| c.checked_mul(4)).is_some_and(|nb| t.end >= t.begin && t.end - t.begin == nb)
                        && t.end <= data_len;
                if !ok {
                    return Err(PolicyError::Offsets { layer: k });
                }
                let at = data_start + t.begin;
                if (0..t.end - t.begin).step_by(4).any(|i| !read_f32(bytes, at + i).is_finite()) {
                    return Err(PolicyError::NonFinite { layer: k });
                }
            }
            layers[k] = Layer { w: data_start + w.begin, b: data_start + b.begin, inp, out };
            inp = out;
        }
        Ok(Policy { bytes, layers, n })
    }

    /// Number of layers.
    pub fn depth(&self) -> usize {
        self.n
    }

    /// Width of every layer's output (the last is [`ACTIONS`]).
    pub fn widths(&self) -> impl Iterator<Item = usize> + '_ {
        self.layers[..self.n].iter().map(|l| l.out)
    }

    /// Number of parameters of the actor.
    pub fn parameters(&self) -> usize {
        self.layers[..self.n].iter().map(|l| l.out * (l.inp + 1)).sum()
    }

    /// Logits of every action for observation `obs` ([`OBS_DIM`] values).
    pub fn forward(&self, obs: &[f32], logits: &mut [f32]) -> Result<(), PolicyError> {
        if obs.len() != OBS_DIM {
            return Err(PolicyError::BufferLength { expected: OBS_DIM, got: obs.len() });
        }
        if logits.len() != ACTIONS {
            return Err(PolicyError::BufferLength { expected: ACTIONS, got: logits.len() });
        }
        let mut a = [0f32; MAX_HIDDEN];
        let mut b = [0f32; MAX_HIDDEN];
        // The inputs that are not zero, in order: an observation is mostly zeros (one-hots
        // and padding) and so are ReLU outputs. Skipping zeros and keeping the order keeps
        // every sum exactly what the dense loop computes.
        let mut nz = [(0usize, 0f32); OBS_DIM];
        for (k, l) in self.layers[..self.n].iter().enumerate() {
            let last = k + 1 == self.n;
            let x: &[f32] = if k == 0 { obs } else { &a[..l.inp] };
            let mut m = 0;
            for (slot, (i, &xi)) in nz.iter_mut().zip(x.iter().enumerate().filter(|(_, xi)| **xi != 0.0)) {
                *slot = (4 * i, xi);
                m += 1;
            }
            let nz = &nz[..m];
            for o in 0..l.out {
                let row = l.w + 4 * o * l.inp;
                // The row's bytes, checked once (validated at parse time: never empty here).
                let w = self.bytes.get(row..row + 4 * l.inp).unwrap_or_default();
                let mut acc = read_f32(self.bytes, l.b + 4 * o);
                for &(at, xi) in nz {
                    acc += read_f32(w, at) * xi;
                }
                if last {
                    logits[o] = acc;
                } else {
                    b[o] = acc.max(0.0);
                }
            }
            if !last {
                a[..l.out].copy_from_slice(&b[..l.out]);
            }
        }
        Ok(())
    }

    /// The highest-logit action among those `allowed` (all when `allowed` returns true).
    pub fn greedy(&self, obs: &[f32], allowed: impl Fn(Action) -> bool) -> Result<Option<Action>, PolicyError> {
        let mut logits = [0f32; ACTIONS];
        self.forward(obs, &mut logits)?;
        let mut best: Option<(usize, f32)> = None;
        for (i, &v) in logits.iter().enumerate() {
            let Some(a) = Action::from_index(i as u8) else { continue };
            if allowed(a) && best.is_none_or(|(_, bv)| v > bv) {
                best = Some((i, v));
            }
        }
        Ok(best.and_then(|(i, _)| Action::from_index(i as u8)))
    }
}

/// Decimal digits of `v` into `buf` (for comparing metadata numbers without allocating).
fn fmt_usize(mut v: usize, buf: &mut [u8; 8]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 || i == 0 {
            break;
        }
    }
    &buf[i..]
}

#[cfg(test)]
mod tests;
