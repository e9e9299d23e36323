//! Where the search's inputs come from: the shipped artifacts (score table, controller
//! policy, calibrated-controller prior, synthetic-device distribution) unless a flag names
//! another file, located from any directory of a checkout, and loaded with an error that
//! says which file and how to make one.

use anyhow::{bail, Context as _, Result};
use clap::Args;
use edge_runtime::calib::Prior;
use host_trainer::data::NatsMap;
use host_trainer::latency::LatencyTable;
use host_trainer::score::table::Proxy;
use host_trainer::score::ScoreTable;
use host_trainer::search::strategies::controller::PriorFile;
use host_trainer::search::strategies::paper::Controller;
use host_trainer::search::strategies::Policy;
use host_trainer::search::{Context, Space, Strategy};
use host_trainer::synth::lut::Lut;
use host_trainer::synth::{DeviceDistribution, DeviceDistributionExt as _};
use std::path::{Path, PathBuf};

/// The shipped score table (written by `simnas score --all`).
pub(crate) const SHIPPED_SCORES: &str = "artifacts/scores/cifar10_scores.csv";
/// The shipped controller (written by `simnas train`).
pub(crate) const SHIPPED_POLICY: &str = "artifacts/policy/policy.safetensors";
/// The shipped synthetic-device distribution (written by `simnas devices fit`).
pub(crate) const SHIPPED_DEVICES: &str = "artifacts/devices/distribution.json";
/// The shipped calibrated-controller prior (written by `simnas prior`).
pub(crate) const SHIPPED_CALIB: &str = "artifacts/controller/prior.json";

/// Inputs shared by `search` and `eval`.
#[derive(Args, Debug, Clone)]
pub struct SearchInputs {
    /// Score table (CSV from `simnas score --all`, or its quantised `.tf16`) [default: the
    /// shipped table of the network's dataset, `artifacts/scores/<net>_scores.csv`, i.e.
    /// CIFAR-10's unless `search --net` names another preset; ImageNet16-120's for a board,
    /// whose firmware runs that network].
    #[arg(long, value_name = "FILE")]
    pub scores: Option<PathBuf>,
    /// Synthetic-device distribution (for `lut-prior`: the mean LUT of the training devices).
    #[arg(long, value_name = "FILE", default_value = SHIPPED_DEVICES)]
    pub prior: PathBuf,
    /// The calibrated controller's meta-learned prior (JSON from `simnas prior`).
    #[arg(long, value_name = "FILE", default_value = SHIPPED_CALIB)]
    pub controller_prior: PathBuf,
    /// Search space. `executed` (default): the 9,444 distinct networks that can run, a cell
    /// counting as its executed network (dead branches removed) for its score and latency,
    /// disconnected cells excluded, each network probed at most once. `raw`: the paper's
    /// 15,625 cells as written, scored unpruned (for reproducing the paper).
    #[arg(long, value_enum, default_value_t = SpaceArg::Executed)]
    pub space: SpaceArg,
    #[command(flatten)]
    pub proxy: ProxyArgs,
}

impl SearchInputs {
    /// `--scores`, else the shipped table of `preset`'s dataset.
    pub fn scores_for(&self, preset: super::Preset) -> PathBuf {
        self.scores.clone().unwrap_or_else(|| shipped_scores(preset))
    }
}

/// The shipped score table of `preset`'s dataset.
pub(crate) fn shipped_scores(preset: super::Preset) -> PathBuf {
    let name = match preset {
        super::Preset::Cifar10 => "cifar10",
        super::Preset::Cifar100 => "cifar100",
        super::Preset::Imagenet16 => "imagenet16",
    };
    PathBuf::from(format!("artifacts/scores/{name}_scores.csv"))
}

/// How the score table's metrics combine into TF.
#[derive(Args, Debug, Clone, Copy)]
pub struct ProxyArgs {
    /// Training-free proxy. `freerea` (default): FreeREA's mean of NASWOT, LogSynflow and
    /// SkipScore, min-max normalised. `meco-rank`: the rank aggregate of MeCo, NASWOT and
    /// LogSynflow (ranks far better with accuracy; under latency limits it is not better
    /// on the training devices: artifacts/scores/README.md). A `.tf16` holds one proxy's TF
    /// (`<stem>_meco-rank.tf16` for meco-rank); a CSV serves both.
    #[arg(long, value_enum, default_value_t = ProxyArg::Freerea)]
    pub proxy: ProxyArg,
}

/// `--proxy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProxyArg {
    /// FreeREA's TF (the paper's).
    Freerea,
    /// Rank aggregate of MeCo, NASWOT and LogSynflow.
    MecoRank,
}

impl From<ProxyArg> for Proxy {
    fn from(p: ProxyArg) -> Proxy {
        match p {
            ProxyArg::Freerea => Proxy::Freerea,
            ProxyArg::MecoRank => Proxy::MecoRank,
        }
    }
}

/// `--space`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SpaceArg {
    /// Connected executed networks (dead branches removed).
    Executed,
    /// Every cell as written (the paper's space).
    Raw,
}

impl From<SpaceArg> for Space {
    fn from(s: SpaceArg) -> Space {
        match s {
            SpaceArg::Executed => Space::Executed,
            SpaceArg::Raw => Space::Raw,
        }
    }
}

/// `rel` as given if it exists, else relative to the source tree this binary was built
/// from (so shipped artifacts are found from any directory of a checkout).
pub(crate) fn locate(rel: &Path) -> PathBuf {
    if rel.exists() || rel.is_absolute() {
        return rel.to_path_buf();
    }
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    if tree.exists() {
        tree
    } else {
        rel.to_path_buf()
    }
}

/// TF per code in `space` (each cell its executed network's in the executed space), and
/// the index map if the table carries indices.
pub(crate) fn load_scores(path: &Path, space: Space, proxy: ProxyArgs) -> Result<(Vec<f64>, Option<NatsMap>)> {
    let path = locate(path);
    let quantised = path.extension().is_some_and(|e| e == "tf16");
    let table =
        if quantised { ScoreTable::load_quantised(&path) } else { ScoreTable::load(&path) }.with_context(|| {
            format!("score table {} (make one with `simnas score --all`, or pass --scores)", path.display())
        })?;
    let want = Proxy::from(proxy.proxy);
    if quantised && table.proxy() != want {
        bail!(
            "score table {} holds the {} proxy's TF; pass --proxy {} or a table of the {} proxy (the CSV, or <stem>_{}.tf16)",
            path.display(),
            table.proxy().name(),
            table.proxy().name(),
            want.name(),
            want.name()
        );
    }
    let table = table.with_proxy(want).with_context(|| format!("score table {}", path.display()))?;
    if space == Space::Raw && table.is_executed() {
        bail!(
            "score table {} holds executed-network scores; --space raw needs the raw table (the CSV, or <stem>_raw.tf16)",
            path.display()
        );
    }
    let table = if space == Space::Executed { table.executed() } else { table };
    let tf = host_trainer::search::eval::tf_vector(|a| table.tf(a));
    let map = if quantised { None } else { std::fs::File::open(&path).ok().and_then(|f| NatsMap::read(f, &path).ok()) };
    Ok((tf, map))
}

/// The controller: `--policy FILE`, else the shipped policy.
pub(crate) fn load_policy(flag: Option<&Path>) -> Result<Controller> {
    let path = locate(flag.unwrap_or(Path::new(SHIPPED_POLICY)));
    if flag.is_none() && !path.exists() {
        bail!(
            "no trained controller policy at {} (train one with `simnas train`, pass --policy FILE, or choose a baseline with --strategy lut-probe)",
            path.display()
        );
    }
    Ok(Controller::load(&path)?)
}

/// The calibrated controller's prior.
pub(crate) fn load_calib(path: &Path) -> Result<Prior> {
    let path = locate(path);
    let bytes = host_trainer::data::read_capped(&path, host_trainer::data::MAX_READ_BYTES).with_context(|| {
        format!("controller prior {} (fit one with `simnas prior`, or pass --controller-prior FILE)", path.display())
    })?;
    let file: PriorFile = serde_json::from_slice(&bytes)
        .with_context(|| format!("controller prior {}: not a prior file", path.display()))?;
    file.prior().with_context(|| format!("controller prior {}", path.display()))
}

/// The training devices' mean per-op LUT (the paper's LUT).
pub(crate) fn load_prior(path: &Path) -> Result<Lut> {
    let path = locate(path);
    let dist = DeviceDistribution::load(&path).with_context(|| format!("device distribution {}", path.display()))?;
    Ok(dist.per_op.mean())
}

/// What a strategy reads besides the score table, loaded for that strategy only.
pub(crate) struct StrategyInputs {
    /// The training devices' mean LUT (`lut-prior`; `controller-paper`'s start when present).
    pub prior: Option<Lut>,
    /// `controller-paper`'s policy.
    pub controller: Option<Controller>,
    /// The calibrated controller's prior (`controller`).
    pub calib: Option<Prior>,
}

impl StrategyInputs {
    /// The inputs of `strategy`: from `inputs`' paths, the policy from `policy` (else the
    /// shipped one).
    pub fn load(strategy: Strategy, inputs: &SearchInputs, policy: Option<&Path>) -> Result<StrategyInputs> {
        let prior = match strategy {
            Strategy::LutPrior => Some(load_prior(&inputs.prior)?),
            // The paper's controller starts from the prior's best cell when it has one, else
            // from all-skip.
            Strategy::ControllerPaper => match load_prior(&inputs.prior) {
                Ok(p) => Some(p),
                Err(e) => {
                    eprintln!("warning: {e:#}; controller-paper starts from the all-skip cell");
                    None
                }
            },
            _ => None,
        };
        let controller = match strategy {
            Strategy::ControllerPaper => Some(load_policy(policy)?),
            _ => None,
        };
        let calib = match strategy {
            Strategy::Controller => Some(load_calib(&inputs.controller_prior)?),
            _ => None,
        };
        Ok(StrategyInputs { prior, controller, calib })
    }

    /// The search's context: these inputs, the proxy scores `tf`, and a table device's
    /// whole table (read only by `oracle`).
    pub fn context<'a>(&'a self, tf: &'a [f64], table: Option<&'a LatencyTable>) -> Context<'a> {
        Context {
            tf,
            prior: self.prior.as_ref(),
            table,
            policy: self.controller.as_ref().map(|c| c as &dyn Policy),
            calib: self.calib.as_ref(),
        }
    }
}
