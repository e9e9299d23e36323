//! The network every probe runs and the seed of its weights and input. Read by `build.rs`
//! too (it sizes the arena and generates the weight bank from these), so keep it to
//! constants over `edge_runtime` types.

use edge_runtime::NetConfig;

/// ImageNet16-120-sized NB201 network: 16x16 input, C=16, N=5, 120 classes.
pub const NET: NetConfig = NetConfig::IMAGENET16_120;

/// Seed of the weight bank (generated at build time) and of the input (filled at boot).
pub const SEED: u64 = 0x5EED;

/// Largest number of timed repeats one probe may ask for (the samples live on the stack):
/// the protocol's limit, which the host checks before it boots a board.
pub const MAX_REPEATS: usize = simnas_shared::protocol::MAX_REPEATS;
