//! Build script: picks the board's `memory.x`, and generates what the firmware needs to
//! know about its network at compile time (from `src/config.rs`): the arena size and the
//! shared weight bank, written as little-endian `f32` bytes that the firmware keeps in
//! flash.
//!
//! It also prepares the on-board search (`src/search.rs`): the paths of the policy and the
//! score table the firmware embeds, the policy's `obs_tf` flag, the search settings, and
//! the start cells: the zero-shot prior's three best cells (edge-runtime's `prior_top`,
//! the host controller's own function) computed here from the embedded score table and
//! the mean per-op LUT of the fitted device distribution. Every input can be replaced by an
//! environment variable (see [`inputs`]); a score table or distribution that cannot be read
//! leaves the start to the all-skip cell, and the firmware reports the unusable file at boot.

#[path = "src/config.rs"]
#[allow(dead_code)]
mod config;

use edge_runtime::layout::ParamLayout;
use edge_runtime::rng::{fill_uniform, SplitMix64};
use edge_runtime::search::calibrated::GroupTable;
use edge_runtime::search::paper::{prior_top, PRIOR_TOP};
use edge_runtime::search::{Lut, Space};
use edge_runtime::tf16::Tf16;
use edge_runtime::Plan;
use simnas_formats::DeviceDistribution;
use simnas_shared::{Arch, Op};
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let board = if env::var_os("CARGO_FEATURE_BOARD_NUCLEO_F411").is_some() { "nucleo-f411" } else { "mps2-an386" };
    let memory = format!("memory/{board}.x");
    fs::copy(&memory, out.join("memory.x")).unwrap_or_else(|e| panic!("copying {memory}: {e}"));
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={memory}");
    println!("cargo:rerun-if-changed=src/config.rs");
    println!("cargo:rerun-if-changed=build.rs");
    // Link the firmware only for the board; on the host the bin is a stub.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
    }

    let net = config::NET;
    let layout = ParamLayout::new(net).expect("config::NET is a valid network");
    // The arena does not depend on the cell; size it once for the full cell.
    let plan = Plan::new(net, Arch::uniform(Op::NorConv3x3)).expect("plan for config::NET");
    let bank_len = layout.max_slot_len();
    let mut bank = vec![0f32; bank_len];
    // He-uniform over the largest fan-in, scaled like the runtime's cell convs.
    fill_uniform(&mut SplitMix64::new(config::SEED), &mut bank, 9 * net.final_channels(), 0.8);
    let bytes: Vec<u8> = bank.iter().flat_map(|v| v.to_le_bytes()).collect();
    fs::write(out.join("bank.bin"), bytes).expect("writing bank.bin");
    let sizes = format!(
        "/// Floats of activation arena the network needs.\npub const ARENA_LEN: usize = {};\n\
         /// Floats of the shared weight bank (the largest parameter slot).\npub const BANK_LEN: usize = {};\n\
         /// Floats of the input image.\npub const INPUT_LEN: usize = {};\n",
        plan.arena_len(),
        bank_len,
        net.input_len()
    );
    fs::write(out.join("sizes.rs"), sizes).expect("writing sizes.rs");
    search_inputs(&out);
}

/// The embedded files: (environment variable, default relative to the workspace).
const FILES: [(&str, &str); 3] = [
    ("SIMNAS_FW_POLICY", "artifacts/policy/policy.safetensors"),
    ("SIMNAS_FW_SCORES", "artifacts/scores/imagenet16_scores.tf16"),
    ("SIMNAS_FW_PRIOR", "artifacts/devices/distribution.json"),
];

/// The paths of the embedded files, each from its variable or its default.
fn inputs() -> [PathBuf; 3] {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("..");
    FILES.map(|(var, default)| {
        println!("cargo:rerun-if-env-changed={var}");
        let p = env::var_os(var).map(PathBuf::from).unwrap_or_else(|| root.join(default));
        let p = fs::canonicalize(&p).unwrap_or_else(|e| panic!("{var}: {}: {e}", p.display()));
        println!("cargo:rerun-if-changed={}", p.display());
        p
    })
}

/// A number from the environment, or its default.
fn setting<T: std::str::FromStr>(var: &str, default: T) -> T {
    println!("cargo:rerun-if-env-changed={var}");
    match env::var(var) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{var}={v} is not a valid value")),
        Err(_) => default,
    }
}

/// The policy's training config says whether TF was part of the state (default: it was,
/// as the host assumes).
fn obs_tf(policy: &[u8]) -> bool {
    let header = || -> Option<serde_json::Value> {
        let len = u64::from_le_bytes(policy.get(..8)?.try_into().ok()?) as usize;
        let h: serde_json::Value = serde_json::from_slice(policy.get(8..8usize.checked_add(len)?)?).ok()?;
        serde_json::from_str(h.pointer("/__metadata__/train_config")?.as_str()?).ok()
    };
    header().and_then(|c| c.pointer("/env/obs_tf").and_then(serde_json::Value::as_bool)).unwrap_or(true)
}

/// The mean per-op LUT of the training devices (`per_op`'s Gaussian means), read through
/// the distribution file's format (version checked).
fn prior_lut(path: &Path) -> Result<Lut, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let dist = DeviceDistribution::from_slice(&bytes).map_err(|e| e.to_string())?;
    Ok(dist.per_op.mean().search_lut())
}

fn search_inputs(out: &Path) {
    let [policy, scores, prior] = inputs();
    let policy_bytes = fs::read(&policy).unwrap_or_else(|e| panic!("{}: {e}", policy.display()));
    let score_bytes = fs::read(&scores).unwrap_or_else(|e| panic!("{}: {e}", scores.display()));
    let start: Vec<u16> = match (Tf16::parse(&score_bytes), prior_lut(&prior)) {
        (Ok(table), Ok(lut)) => prior_top::<PRIOR_TOP>(Space::Executed, |a| lut.latency(a), |a| table.tf(&a))
            .iter()
            .flatten()
            .map(|a| a.code().get())
            .collect(),
        (t, l) => {
            println!(
                "cargo:warning=no zero-shot prior for the on-board search (scores: {:?}, prior LUT: {:?}); it starts from all-skip",
                t.err(),
                l.err()
            );
            Vec::new()
        }
    };
    let budget: u16 = setting("SIMNAS_FW_BUDGET", 10);
    let weight: f64 = setting("SIMNAS_FW_WEIGHT", 0.5);
    let warmup: u16 = setting("SIMNAS_FW_SEARCH_WARMUP", 1);
    let repeats: u16 = setting("SIMNAS_FW_SEARCH_REPEATS", 3);
    assert!((0.0..=1.0).contains(&weight), "SIMNAS_FW_WEIGHT={weight} outside [0, 1]");
    let code = format!(
        "/// The embedded policy (safetensors).\npub static POLICY: &[u8] = include_bytes!({policy:?});\n\
         /// The embedded score table (.tf16).\npub static SCORES: &[u8] = include_bytes!({scores:?});\n\
         /// The policy observes TF (its training config's `env.obs_tf`).\npub const OBS_TF: bool = {obs};\n\
         /// The zero-shot prior's best cells (ArchCodes), computed at build time from the\n\
         /// embedded score table and {prior:?}.\npub const START: &[u16] = &{start:?};\n\
         /// Probe budget of the search run at boot.\npub const BUDGET: u16 = {budget};\n\
         /// Weight of TF in the objective.\npub const WEIGHT: f64 = {weight:?};\n\
         /// Untimed runs per probe.\npub const WARMUP: u16 = {warmup};\n\
         /// Timed runs per probe.\npub const REPEATS: u16 = {repeats};\n",
        obs = obs_tf(&policy_bytes),
    );
    fs::write(out.join("search_inputs.rs"), code).expect("writing search_inputs.rs");
    calibrated(out, &score_bytes);
}

/// The calibrated controller (the default on-board controller): its prior from
/// `$SIMNAS_FW_CONTROLLER_PRIOR` (default `artifacts/controller/prior.json`) as a constant,
/// and the cell groups of its scan built from the embedded score table. `$SIMNAS_FW_CONTROLLER`
/// = `paper` embeds the paper's RL walk instead.
fn calibrated(out: &Path, score_bytes: &[u8]) {
    let var = "SIMNAS_FW_CONTROLLER_PRIOR";
    println!("cargo:rerun-if-env-changed={var}");
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")).join("..");
    let path = env::var_os(var).map(PathBuf::from).unwrap_or_else(|| root.join("artifacts/controller/prior.json"));
    println!("cargo:rerun-if-changed={}", path.display());
    let controller: String = setting("SIMNAS_FW_CONTROLLER", "calibrated".to_string());
    let paper = match controller.as_str() {
        "calibrated" => false,
        "paper" => true,
        other => panic!("SIMNAS_FW_CONTROLLER={other}: expected calibrated or paper"),
    };
    // The prior file's own type and checks (format version, features, shape, a positive
    // definite covariance): the host reads it the same way.
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file: simnas_formats::PriorFile =
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let prior = file.prior().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rule = match prior.range_rule {
        edge_runtime::calib::RangeRule::Reference => "Reference",
        edge_runtime::calib::RangeRule::Model => "Model",
    };
    let table = Tf16::parse(score_bytes).expect("the embedded score table");
    let groups = GroupTable::build(Space::Executed, |c| {
        table.tf(&Arch::from_code(simnas_shared::ArchCode::new(c as u16).expect("code in range")))
    });
    use std::fmt::Write as _;
    let mut code = String::new();
    let w = &mut code;
    writeln!(w, "/// Run the paper's RL walk instead of the calibrated controller.").unwrap();
    writeln!(w, "pub const CONTROLLER_PAPER: bool = {paper};").unwrap();
    writeln!(w, "/// The calibrated controller's prior ({path:?}).").unwrap();
    writeln!(w, "pub const CALIB: edge_runtime::calib::Prior = edge_runtime::calib::Prior {{").unwrap();
    writeln!(w, "    mean: {:?},\n    cov: {:?},", prior.mean, prior.cov).unwrap();
    writeln!(w, "    noise: {:?},\n    range_factor: {:?},", prior.noise, prior.range_factor).unwrap();
    writeln!(w, "    range_rule: edge_runtime::calib::RangeRule::{rule},").unwrap();
    writeln!(w, "    dead_edge_probe: {},", prior.dead_edge_probe).unwrap();
    writeln!(w, "    constrained_dead_edge_probe: {},", prior.constrained_dead_edge_probe).unwrap();
    writeln!(w, "    explore: {:?},\n}};", prior.explore).unwrap();
    writeln!(w, "/// Group starts of the calibrated scan.").unwrap();
    writeln!(w, "pub static GROUP_STARTS: [u16; {}] = {:?};", groups.starts.len(), groups.starts).unwrap();
    writeln!(w, "/// Group members of the calibrated scan.").unwrap();
    writeln!(w, "pub static GROUP_MEMBERS: [u16; {}] = {:?};", groups.members.len(), groups.members).unwrap();
    writeln!(w, "/// Each group's packed op counts.").unwrap();
    writeln!(w, "pub static GROUP_PACKED: [u32; {}] = {:?};", groups.packed.len(), groups.packed).unwrap();
    writeln!(w, "/// TF of each group's first member.").unwrap();
    writeln!(w, "pub static GROUP_TF0: [f32; {}] = {:?};", groups.tf0.len(), groups.tf0).unwrap();
    fs::write(out.join("calibrated.rs"), &code).expect("writing calibrated.rs");
}
