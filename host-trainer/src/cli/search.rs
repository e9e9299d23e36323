//! `simnas search`: find the best cell for a device within a probe budget.
//!
//! Prints each probe as it happens, then the pick. Exit status: 0 with a pick; 2 when a
//! constrained search measured no feasible cell (`result: null` in the JSON); 1 on an
//! error (bad flags, unknown device, a table with NaN or non-positive latencies, a probe
//! that failed or timed out), after writing everything measured so far to `--json`.
//! `--json` and `--plot` are checked before the first probe (missing directories created;
//! a directory, a read-only file or an unwritable place refused); a save that still fails
//! at the end is reported after the pick is printed, with exit status 1.
//!
//! A record already at `--json OUT` is never replaced: without `--resume` the search is
//! refused before anything is measured; with it, the record's strategy, objective, seed and
//! budget must be the flags', its probes are replayed, and the file is rewritten only once
//! the new record holds every probe of the old one.

use super::artifacts::{load_scores, SearchInputs, StrategyInputs};
use super::device::{DeviceArgs, OpenWith, Opened};
use super::NetArgs;
use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use host_trainer::data::{data_dir, NatsMap};
use host_trainer::device::Device;
use host_trainer::export::{ExportSpec, Format};
use host_trainer::output;
use host_trainer::score::table::Proxy;
use host_trainer::search::json::{SearchJson, SearchJsonExt as _};
use host_trainer::search::plot::{trajectories, Trajectory};
use host_trainer::search::ObjectiveExt as _;
use host_trainer::search::{
    search, Event, Measured, Normaliser, Objective, SearchConfig, SearchOutcome, Space, Strategy,
};
use simnas_shared::Arch;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// A percentage in [0, 100].
fn percent(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=100.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not a percentage in [0, 100]"))
    }
}

/// Probes of a search on one device (per device for a pool) when `--budget` is not given.
const BUDGET: usize = 10;

mod pool;

/// The longest a measured probe waits before the `--json` record holds it.
const REWRITE_EVERY: Duration = Duration::from_millis(500);

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Maximum number of latency probes [default: 10; for a pool, 10 per device]. For a
    /// pool it is the total over the pool: a probe measures one cell on one device.
    #[arg(long)]
    budget: Option<usize>,
    /// Weight of the proxy in `w * TF + (1 - w) * (1 - normalised latency)` (the default
    /// objective, w = 0.5).
    #[arg(long, conflicts_with = "max_latency_ms", allow_negative_numbers = true, value_parser = super::unit_weight)]
    weight: Option<f64>,
    /// Constrained objective instead: maximise TF subject to measured latency <= X ms. For a
    /// pool, one per --device, in the same order.
    #[arg(long, value_name = "X", allow_negative_numbers = true, value_parser = super::positive_ms,
          action = clap::ArgAction::Append)]
    max_latency_ms: Vec<f64>,
    /// A pool's strategy (several --device): `pool` decides which cell to measure on which
    /// device next; `independent` searches each device alone with an equal share of the
    /// budget, then measures every device's pick on the others (the baseline).
    #[arg(long, value_enum, value_name = "S")]
    pool_strategy: Option<host_trainer::search::pool::PoolStrategy>,
    /// How candidates are chosen [default: controller, or controller-paper when --policy is
    /// given].
    #[arg(long, value_enum)]
    strategy: Option<Strategy>,
    /// `controller-paper`'s policy file (safetensors) [default: the shipped
    /// artifacts/policy/policy.safetensors].
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the probes and the pick as JSON (rewritten as probes arrive: after the 1st, 2nd, 4th, 8th ... probe, and after any probe that comes half a second or more after the last write, so a slow device's every probe is saved at once). An existing
    /// record at OUT is never replaced: continue it with --resume, or remove it first.
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,
    /// Continue the search recorded in --json OUT: its probes (made on the same device) are
    /// replayed instead of measured again, cells without a record are measured. The flags
    /// must repeat the record's strategy, objective, seed and budget (another budget is
    /// refused too: strategies plan with their budget, so it would not ask for the same
    /// cells); nothing recorded is dropped.
    #[arg(long, requires = "json")]
    resume: bool,
    /// Write the trajectory (probes and pick in the latency-vs-proxy plane) as SVG.
    #[arg(long, value_name = "SVG")]
    plot: Option<PathBuf>,
    #[command(flatten)]
    inputs: SearchInputs,
    #[command(flatten)]
    net: NetArgs,
    /// Write the pick's executed network here after the search: ONNX with the seeded
    /// weights of `simnas export --seed 0`, or PyTorch source for a `.py` file.
    #[arg(long, value_name = "FILE")]
    export_pick: Option<PathBuf>,
    /// Table devices: the least share (percent) of the 9,444 searchable networks the table
    /// must have a latency for (cells it lacks are skipped without spending budget).
    #[arg(long, value_name = "PERCENT", default_value_t = host_trainer::device::table::MIN_COVERAGE_PERCENT,
          value_parser = percent)]
    min_table_coverage: f64,
    /// Which device, and how it measures.
    #[command(flatten)]
    device: DeviceArgs,
}

/// The index maps: for display, `--data`'s `nb201_archs.csv`, else the score table's
/// indices; for reading an `index`-keyed latency table, the same only when it is the
/// benchmark's numbering (the data directory's, or the score table's when its fingerprint
/// is NATS-Bench's): a score table whose `index` column is shuffled against its `arch`
/// column would otherwise put every latency on the wrong cell.
pub(crate) fn index_maps(data: &Option<PathBuf>, from_scores: Option<NatsMap>) -> (Option<NatsMap>, Option<NatsMap>) {
    let from_data = data_dir(data.as_deref()).ok().and_then(|d| NatsMap::load(&d).ok());
    match (from_data, from_scores) {
        (Some(d), _) => (Some(d.clone()), Some(d)),
        (None, Some(m)) if m.is_benchmark() => (Some(m.clone()), Some(m)),
        (None, other) => (other, None),
    }
}

pub fn run(data: &Option<PathBuf>, args: SearchArgs) -> Result<ExitCode> {
    if args.device.devices.len() > 1 {
        return pool::run(data, args);
    }
    if args.pool_strategy.is_some() {
        bail!("--pool-strategy is for a pool of devices (several --device); a search on one device takes --strategy");
    }
    if args.max_latency_ms.len() > 1 {
        bail!(
            "{} values of --max-latency-ms for one device: give one limit, or one --device per limit",
            args.max_latency_ms.len()
        );
    }
    let cfg = config(&args)?;
    let (strategy, objective, space) = (cfg.strategy, cfg.objective, cfg.space);
    // Output paths are checked (parents created) before anything is measured, and what is
    // at --json is continued or left alone.
    for out in args.json.iter().chain(&args.plot).chain(&args.export_pick) {
        output::prepare(out)?;
    }
    let export_cfg = args.net.config()?;
    let previous = match &args.json {
        Some(out) => existing_record(out, args.resume, &cfg, args.inputs.proxy.proxy.into())?,
        None => None,
    };
    // A board runs the firmware's ImageNet16-120 network: its table unless --scores says.
    let preset = if args.device.is_board() { super::Preset::Imagenet16 } else { args.net.net };
    let (tf, score_map) = load_scores(&args.inputs.scores_for(preset), space, args.inputs.proxy)?;
    let (map, keyed_map) = index_maps(data, score_map);
    let inputs = StrategyInputs::load(strategy, &args.inputs, args.policy.as_deref())?;
    if strategy == Strategy::Oracle && !args.device.is_table() {
        bail!("--strategy oracle reads the whole latency table: it needs a table:PATH#COLUMN device");
    }
    let with = OpenWith {
        net: export_cfg,
        weights_seed: 0,
        data: data.as_deref(),
        nats: keyed_map.as_ref(),
        min_table_coverage: Some(args.min_table_coverage),
    };
    let Opened { mut device, table: whole } = args.device.open(&with)?;
    let device: &mut dyn Device = device.as_mut();
    let name = device.name();
    let recorded = match (&args.json, &previous) {
        (Some(out), Some(rec)) => recorded_probes(out, rec, &name, whole.as_ref())?,
        _ => Vec::new(),
    };
    let had = recorded.len();
    // Recorded cells not asked for again yet: the file is rewritten only when the new record
    // holds every one of them, so nothing recorded is ever dropped.
    let pending: HashSet<Arch> = recorded.iter().map(|&(a, _)| a).collect();
    let mut replay = host_trainer::device::Replay::new(device, recorded);
    let device: &mut dyn Device = &mut replay;
    let ctx = inputs.context(&tf, whole.as_ref());
    let index = |a: Arch| map.as_ref().map(|m| m.index(a).get());

    outln!("device {name} | strategy {} | budget {} | {}", cfg.strategy.name(), cfg.budget, describe(&objective));
    outln!("{:>4} {:>11} {:>7} {:>6}  cell", "step", "latency ms", "TF", "index");
    // A device or a FIFO at --json gets the final record only (each write adds to a stream).
    let out = args.json.as_deref().filter(|p| output::replaces(p));
    let proxy = Proxy::from(args.inputs.proxy.proxy).name();
    let mut recorder = Recorder::new(out, &name, &cfg, &tf, &index, pending).with_proxy(proxy);
    let outcome = search(&cfg, &ctx, device, &mut |e| recorder.observe(e));
    let Recorder { pending, io_error, .. } = recorder;
    if !outcome.skipped.is_empty() {
        eprintln!(
            "{} cells were not in the table (no probe spent on them; listed under \"skipped\" in --json)",
            outcome.skipped.len()
        );
    }
    if had > 0 {
        eprintln!("resumed: {} of {had} recorded probes replayed, the rest measured", replay.replayed());
    }
    // Saved before the verdict; a failure to save is reported after it, so the pick is on
    // stdout even when the file could not be written.
    let done = Finished { name: &name, cfg: &cfg, outcome: &outcome, tf: &tf, index: &index };
    let mut save_error = save(&args, &done, &pending, had);
    if let Some(err) = io_error {
        return Err(err);
    }
    if let Some(err) = outcome.error {
        return Err(match save_error {
            Some(save) => save.context(format!("search stopped ({err}), and what it measured could not be saved")),
            None => {
                let saved =
                    args.json.as_ref().map(|p| format!(" ({} probes saved to {})", outcome.probes.len(), p.display()));
                anyhow!(err).context(format!("search stopped{}", saved.unwrap_or_default()))
            }
        });
    }
    let code = report_pick(data, &args, &done, keyed_map.as_ref(), &mut save_error)?;
    match save_error {
        Some(err) => Err(err),
        None => Ok(code),
    }
}

/// The search the flags ask for, checked before a device is opened or a probe spent.
fn config(args: &SearchArgs) -> Result<SearchConfig> {
    let budget = args.budget.unwrap_or(BUDGET);
    if budget == 0 {
        bail!("--budget 0: the search needs at least one probe");
    }
    let objective = match (args.weight, args.max_latency_ms.first()) {
        (_, Some(&x)) => Objective::Constraint { max_latency_ms: x },
        (w, None) => Objective::Weighted { weight: w.unwrap_or(0.5) },
    };
    objective.validate()?;
    let strategy = match (args.strategy, &args.policy) {
        (None, Some(_)) => Strategy::ControllerPaper,
        (None, None) => Strategy::Controller,
        (Some(s), Some(_)) if s != Strategy::ControllerPaper => {
            bail!("--policy is the policy of --strategy controller-paper; {} does not use one", s.name())
        }
        (Some(s), _) => s,
    };
    let space = Space::from(args.inputs.space);
    let cfg = SearchConfig { strategy, budget, objective, seed: args.seed, space };
    cfg.validate()?;
    Ok(cfg)
}

/// The search as it goes: each probe printed as it arrives, and the `--json` record
/// rewritten in amortised steps.
struct Recorder<'a> {
    /// `--json`, when it is a file a rewrite replaces.
    out: Option<&'a Path>,
    name: &'a str,
    cfg: &'a SearchConfig,
    tf: &'a [f64],
    index: &'a dyn Fn(Arch) -> Option<u16>,
    /// The proxy's name, for the record.
    proxy: &'static str,
    probes: Vec<Measured>,
    skipped: Vec<Arch>,
    /// Recorded cells not asked for again yet: the file is rewritten only when the new
    /// record holds every one of them, so nothing recorded is ever dropped.
    pending: HashSet<Arch>,
    /// The first failure to print a probe.
    io_error: Option<anyhow::Error>,
    /// A failed rewrite after a probe is retried after the next one and at the end; it is
    /// an error only if the final write fails too, and warned about once.
    warned: bool,
    last_write: Option<Instant>,
}

impl<'a> Recorder<'a> {
    fn new(
        out: Option<&'a Path>,
        name: &'a str,
        cfg: &'a SearchConfig,
        tf: &'a [f64],
        index: &'a dyn Fn(Arch) -> Option<u16>,
        pending: HashSet<Arch>,
    ) -> Recorder<'a> {
        let (probes, skipped) = (Vec::new(), Vec::new());
        Recorder {
            out,
            name,
            cfg,
            tf,
            index,
            proxy: Proxy::Freerea.name(),
            probes,
            skipped,
            pending,
            io_error: None,
            warned: false,
            last_write: None,
        }
    }

    /// Records that TF came from `proxy`.
    fn with_proxy(self, proxy: &'static str) -> Recorder<'a> {
        Recorder { proxy, ..self }
    }

    fn observe(&mut self, e: Event) {
        match e {
            Event::Probe(m) => {
                self.probes.push(*m);
                self.pending.remove(&m.arch);
                let idx = (self.index)(m.arch).map(|i| i.to_string()).unwrap_or_else(|| "-".into());
                let tfv = self.tf[m.arch.code().get() as usize];
                if let Err(err) = print_row(m, tfv, &idx) {
                    self.io_error.get_or_insert(err);
                }
            }
            Event::Skipped(a) => self.skipped.push(a),
        }
        // Rewritten in amortised steps: after the 1st, 2nd, 4th, 8th ... event, and whenever
        // half a second has passed since the last write (so a slow device's every probe is
        // on disk at once, and a fast one's record costs a bounded multiple of its final
        // size instead of growing quadratically).
        let events = self.probes.len() + self.skipped.len();
        let due = events.is_power_of_two() || self.last_write.is_none_or(|t: Instant| t.elapsed() >= REWRITE_EVERY);
        if let Some(out) = self.out.filter(|_| self.pending.is_empty() && due) {
            self.last_write = Some(Instant::now());
            let rec = SearchJson::new(self.name, self.cfg, &self.probes, &self.skipped, None, None, self.index)
                .with_proxy(self.proxy);
            if let Err(err) = output::write(out, &rec.to_bytes()) {
                if !std::mem::replace(&mut self.warned, true) {
                    eprintln!("warning: {err} (tried again as the search goes on)");
                }
            }
        }
    }
}

/// A finished search, as the files written after it see it.
struct Finished<'a> {
    name: &'a str,
    cfg: &'a SearchConfig,
    outcome: &'a SearchOutcome,
    tf: &'a [f64],
    index: &'a dyn Fn(Arch) -> Option<u16>,
}

/// Write the final `--json` record (unless a resumed search left recorded cells unasked:
/// then the record stays as it was) and the `--plot`; the first failure, if any.
fn save(args: &SearchArgs, done: &Finished<'_>, pending: &HashSet<Arch>, had: usize) -> Option<anyhow::Error> {
    let Finished { name, cfg, outcome, tf, index } = *done;
    let proxy = Proxy::from(args.inputs.proxy.proxy).name();
    let mut save_error: Option<anyhow::Error> = None;
    if let Some(out) = &args.json {
        if let Some(a) = pending.iter().next() {
            save_error = Some(anyhow!(
                "the resumed search did not ask again for {} of the {had} cells recorded in {} (one is {a}): the record is left as it was; this run's probes are the ones printed above",
                pending.len(),
                out.display()
            ));
        } else if let Err(err) =
            output::write(out, &SearchJson::of(name, cfg, outcome, index).with_proxy(proxy).to_bytes())
        {
            save_error = Some(err.into());
        }
    }
    if let Some(svg) = &args.plot {
        let run = Trajectory { label: name.to_string(), probes: &outcome.probes, pick: outcome.pick };
        let title = format!("{} on {name}: {} probes", cfg.strategy.name(), outcome.probes.len());
        if let Err(err) = trajectories(&[run], &|a| tf[a.code().get() as usize], &title, svg) {
            save_error.get_or_insert(anyhow!(err));
        }
    }
    save_error
}

/// Print the pick (or say there is none) and write `--export-pick`; a failed export is
/// kept in `save_error`. Exit status 0 with a pick, 2 without one.
fn report_pick(
    data: &Option<PathBuf>,
    args: &SearchArgs,
    done: &Finished<'_>,
    nats: Option<&NatsMap>,
    save_error: &mut Option<anyhow::Error>,
) -> Result<ExitCode> {
    let Finished { cfg, outcome, index, .. } = *done;
    Ok(match outcome.pick {
        Some(p) => {
            let idx = index(p.arch).map(|i| format!(" | index {i}")).unwrap_or_default();
            let l = Normaliser::of(&outcome.probes)
                .map(|n| format!(" | l {:.3}", n.widened(outcome.range_factor).linear(p.latency_ms)))
                .unwrap_or_default();
            outln!(
                "pick: {} | {:.4} ms (measured, probe {}) | TF {:.4}{l} | objective {:.4}{idx}",
                p.arch,
                p.latency_ms,
                p.step,
                p.tf,
                p.score
            );
            after_pick(data, args, nats, p.arch, save_error)?;
            ExitCode::SUCCESS
        }
        None => {
            let why = match cfg.objective {
                Objective::Constraint { max_latency_ms } => {
                    format!(
                        "no feasible architecture found: none of the {} measured cells ran within {max_latency_ms} ms",
                        outcome.probes.len()
                    )
                }
                Objective::Weighted { .. } => "no architecture could be measured".into(),
            };
            // The reason once, on stderr; stdout says only that there is no pick.
            outln!("pick: none");
            eprintln!("{why}");
            ExitCode::from(2)
        }
    })
}

/// Below the pick line: the pick's benchmark accuracy (with `--data`), and `--export-pick`
/// written (a failed export is kept in `save_error`).
fn after_pick(
    data: &Option<PathBuf>,
    args: &SearchArgs,
    nats: Option<&NatsMap>,
    arch: Arch,
    save_error: &mut Option<anyhow::Error>,
) -> Result<()> {
    if let Some(acc) = benchmark_accuracy(data, nats, arch) {
        outln!("      CIFAR-10 test accuracy {acc:.2}% (benchmark ground truth from --data, reported only: the search never reads it)");
    }
    if let Some(out) = &args.export_pick {
        let spec = ExportSpec { arch, cfg: args.net.config()?, batch: 1, seed: 0 };
        match spec.write(out, Format::of_path(out)) {
            Ok(()) => outln!("      pick's network written to {}", out.display()),
            Err(err) => {
                save_error.get_or_insert(anyhow!(err).context(format!("--export-pick {}", out.display())));
            }
        }
    }
    Ok(())
}

/// The benchmark's CIFAR-10 test accuracy of `arch` when a data directory is given (`None`
/// without one, or when its files cannot be read: the accuracy is only ever reported).
/// `nats` is the benchmark numbering the search already loaded.
fn benchmark_accuracy(data: &Option<PathBuf>, nats: Option<&NatsMap>, arch: Arch) -> Option<f64> {
    let dir = data_dir(data.as_deref()).ok()?;
    let acc = host_trainer::search::eval::load_accuracy(&dir.join("nb201_accuracy.csv"), nats?).ok()?;
    acc.get(usize::from(arch.code().get())).copied().flatten()
}

/// The record at `path` to continue: `None` when there is nothing to keep (no file, an
/// empty one, a device or a FIFO). A record without `resume`, or one made with other
/// settings than `cfg`, is refused: replacing it would lose what it measured.
fn existing_record(path: &Path, resume: bool, cfg: &SearchConfig, proxy: Proxy) -> Result<Option<SearchJson>> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() > 0 => {}
        _ => return Ok(None),
    }
    let bytes = host_trainer::data::read_capped(path, host_trainer::data::MAX_READ_BYTES)
        .with_context(|| format!("reading {}", path.display()))?;
    let parsed = serde_json::from_slice::<SearchJson>(&bytes);
    if !resume {
        match parsed {
            Ok(r) => bail!(
                "{} holds a search record ({} probes, {} on {}): pass --resume to continue it, or remove it or choose another --json path to start a new search",
                path.display(),
                r.probes.len(),
                r.strategy,
                r.device
            ),
            Err(_) => bail!(
                "{} already exists and is not a search record: remove it or choose another --json path",
                path.display()
            ),
        }
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| {
        format!("{} is not a search record to resume from (remove it, or choose another --json path)", path.display())
    })?;
    // Before the typed read, which would only say "invalid type: null" of a NaN (JSON has
    // none and writes null) or miss a zero: every recorded latency is a positive finite
    // number, or nothing is replayed.
    let probes = value["probes"].as_array().map(Vec::as_slice).unwrap_or_default();
    let latencies = probes.iter().enumerate().map(|(i, p)| (format!("probe {}", i + 1), &p["latency_ms"]));
    let result = value.get("result").filter(|r| !r.is_null()).map(|r| ("the pick".to_string(), &r["latency_ms"]));
    for (what, ms) in latencies.chain(result) {
        if !ms.as_f64().is_some_and(|ms| ms.is_finite() && ms > 0.0) {
            bail!(
                "{}: {what} has latency_ms {ms}, not a positive finite number: this record cannot be resumed from (delete it, or drop --resume)",
                path.display()
            );
        }
    }

    let rec = parsed.with_context(|| {
        format!("{} is not a search record to resume from (remove it, or choose another --json path)", path.display())
    })?;
    let refuse = |recorded: String, asked: String, why: &str| {
        anyhow!(
            "{} was recorded with {recorded}, this run asks for {asked}: a search is resumed with the settings it was recorded with{why} (pass {recorded}, or choose another --json path for a new search)",
            path.display()
        )
    };
    let flag = |o: &Objective| match *o {
        Objective::Weighted { weight } => format!("--weight {weight}"),
        Objective::Constraint { max_latency_ms } => format!("--max-latency-ms {max_latency_ms}"),
    };
    if rec.strategy != cfg.strategy.name() {
        let asked = format!("--strategy {}", cfg.strategy.name());
        return Err(refuse(format!("--strategy {}", rec.strategy), asked, ""));
    }
    if rec.objective != cfg.objective {
        return Err(refuse(flag(&rec.objective), flag(&cfg.objective), ""));
    }
    let recorded_space = rec.space.as_deref().unwrap_or("raw");
    if recorded_space != cfg.space.name() {
        return Err(refuse(format!("--space {recorded_space}"), format!("--space {}", cfg.space.name()), ""));
    }
    if let Some(seed) = rec.seed.filter(|&s| s != cfg.seed) {
        return Err(refuse(format!("--seed {seed}"), format!("--seed {}", cfg.seed), ""));
    }
    let recorded_proxy = rec.proxy.as_deref().unwrap_or(Proxy::Freerea.name());
    if recorded_proxy != proxy.name() {
        let why = " (the search chose its cells by that proxy's TF)";
        return Err(refuse(format!("--proxy {recorded_proxy}"), format!("--proxy {}", proxy.name()), why));
    }
    if rec.budget != cfg.budget {
        let why = " (a strategy plans with its budget: another one would not ask for the recorded cells)";
        return Err(refuse(format!("--budget {}", rec.budget), format!("--budget {}", cfg.budget), why));
    }
    Ok(Some(rec))
}

/// The probes of the record at `path`, if it was made on this device.
/// The probes of the record at `path`, if it was made on this device: each network once,
/// the pick one of them with its latency, and on a table device (where reading again costs
/// nothing) every latency what the table says now.
fn recorded_probes(
    path: &Path,
    rec: &SearchJson,
    device: &str,
    table: Option<&host_trainer::latency::LatencyTable>,
) -> Result<Vec<(Arch, f64)>> {
    if rec.device != device {
        bail!(
            "{} was measured on {:?}, not on {device:?}: its probes cannot be reused (choose another --json path for a search on this device)",
            path.display(),
            rec.device
        );
    }
    let mut seen: std::collections::HashMap<Arch, usize> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(rec.probes.len());
    for p in &rec.probes {
        let arch = Arch::parse(&p.arch).with_context(|| format!("{}: probe {}", path.display(), p.step))?;
        if let Some(first) = seen.insert(arch, p.step) {
            bail!(
                "{}: probes {first} and {} both record {arch}: a record measures each network once (it was edited or merged; remove it to start again)",
                path.display(),
                p.step
            );
        }
        if let Some(now) = table.and_then(|t| t.get(arch)) {
            if now != p.latency_ms {
                bail!(
                    "{}: probe {} recorded {} ms for {arch}, the table now says {now} ms: the table changed since the record was made (remove the record to search the new table)",
                    path.display(),
                    p.step,
                    p.latency_ms
                );
            }
        }
        out.push((arch, p.latency_ms));
    }
    if let Some(r) = &rec.result {
        let arch = Arch::parse(&r.arch).with_context(|| format!("{}: the pick", path.display()))?;
        if !out.iter().any(|&(a, ms)| a == arch && ms == r.latency_ms) {
            bail!(
                "{}: the pick {arch} at {} ms is not one of the recorded probes with that latency (the record was edited; remove it to start again)",
                path.display(),
                r.latency_ms
            );
        }
    }
    Ok(out)
}

fn print_row(m: &Measured, tf: f64, idx: &str) -> Result<()> {
    outln!("{:>4} {:>11.4} {:>7.4} {:>6}  {}", m.step, m.latency_ms, tf, idx, m.arch);
    Ok(())
}

fn describe(o: &Objective) -> String {
    match o {
        Objective::Weighted { weight } => format!("maximise {weight} * TF + {} * (1 - l)", 1.0 - weight),
        Objective::Constraint { max_latency_ms } => format!("maximise TF, measured latency <= {max_latency_ms} ms"),
    }
}
