//! `simnas search --device A --device B ...`: one network for a pool of devices.
//!
//! The devices are opened in order (a QEMU board boots then) after every flag and output
//! path is checked; one listed twice is refused before any opens. Each probe is printed as
//! it happens with the device it ran on; `--json` holds the per-device probes, rewritten as
//! they arrive, and is continued with `--resume`. Exit status as for one device: 0 with a
//! pick, 2 when a constrained search measured no cell within every limit (the message names
//! the devices without a feasible measured cell), 1 on an error, after saving what was
//! measured.

use super::super::artifacts::{load_scores, StrategyInputs};
use super::super::device::{is_board, OpenWith, Opened};
use super::{after_pick, index_maps, SearchArgs, BUDGET, REWRITE_EVERY};
use anyhow::{anyhow, bail, Context as _, Result};
use host_trainer::device::{Device, Replay};
use host_trainer::output;
use host_trainer::score::table::Proxy;
use host_trainer::search::json::{PoolJson, PoolJsonExt as _, PoolObjectiveJson, PoolRecord};
use host_trainer::search::plot::{trajectories, Trajectory};
use host_trainer::search::pool::{
    per_device, search_pool, PoolConfig, PoolError, PoolObjective, PoolOutcome, PoolProbe, PoolStrategy,
};
use host_trainer::search::{Event, Pick, Space, Strategy};
use simnas_shared::Arch;
use std::collections::HashSet;
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// The pool search the flags ask for, checked before any device opens.
fn config(args: &SearchArgs) -> Result<PoolConfig> {
    let n = args.device.devices.len();
    if let Some(s) = args.strategy.filter(|&s| s != Strategy::Controller) {
        bail!(
            "--strategy {}: a pool search runs the calibrated controller over the pool (--pool-strategy pool or independent); search one device to use {}",
            s.name(),
            s.name()
        );
    }
    if args.policy.is_some() {
        bail!("--policy is controller-paper's; a pool search runs the calibrated controller");
    }
    let budget = args.budget.unwrap_or(BUDGET * n);
    let objective = if args.max_latency_ms.is_empty() {
        PoolObjective::Weighted { weight: args.weight.unwrap_or(0.5) }
    } else {
        PoolObjective::Constraint { max_latency_ms: args.max_latency_ms.clone() }
    };
    let cfg = PoolConfig {
        strategy: args.pool_strategy.unwrap_or(PoolStrategy::Pool),
        budget,
        objective,
        seed: args.seed,
        space: Space::from(args.inputs.space),
    };
    // Names are checked again once the devices are open (two spellings of one table).
    let specs: Vec<String> = args.device.devices.iter().map(|d| d.to_string()).collect();
    cfg.validate(&specs)?;
    Ok(cfg)
}

pub(super) fn run(data: &Option<PathBuf>, args: SearchArgs) -> Result<ExitCode> {
    let cfg = config(&args)?;
    for out in args.json.iter().chain(&args.plot).chain(&args.export_pick) {
        output::prepare(out)?;
    }
    let proxy = Proxy::from(args.inputs.proxy.proxy).name();
    let previous = match &args.json {
        Some(out) => existing_record(out, args.resume, &cfg, proxy)?,
        None => None,
    };
    // One network for the pool: a board's (ImageNet16-120) if a board is in it.
    let preset = if args.device.devices.iter().any(is_board) { super::super::Preset::Imagenet16 } else { args.net.net };
    let (tf, score_map) = load_scores(&args.inputs.scores_for(preset), cfg.space, args.inputs.proxy)?;
    let (map, keyed_map) = index_maps(data, score_map);
    let inputs = StrategyInputs::load(Strategy::Controller, &args.inputs, None)?;
    let with = OpenWith {
        net: args.net.config()?,
        weights_seed: 0,
        data: data.as_deref(),
        nats: keyed_map.as_ref(),
        min_table_coverage: Some(args.min_table_coverage),
    };
    let mut opened: Vec<Box<dyn Device>> = Vec::new();
    for (i, spec) in args.device.devices.iter().enumerate() {
        let Opened { device, .. } =
            args.device.open_spec(spec, &with).with_context(|| format!("opening device {} of the pool", i + 1))?;
        opened.push(device);
    }
    let names: Vec<String> = opened.iter().map(|d| d.name()).collect();
    cfg.validate(&names)?;
    let recorded = match (&args.json, &previous) {
        (Some(out), Some(rec)) => recorded_probes(out, rec, &names)?,
        _ => vec![Vec::new(); names.len()],
    };
    let had: usize = recorded.iter().map(Vec::len).sum();
    let pending: HashSet<(usize, Arch)> =
        recorded.iter().enumerate().flat_map(|(d, r)| r.iter().map(move |&(a, _)| (d, a))).collect();
    let mut replays: Vec<Replay> =
        opened.iter_mut().zip(recorded).map(|(dev, rec)| Replay::new(dev.as_mut(), rec)).collect();
    let ctx = inputs.context(&tf, None);
    let index = |a: Arch| map.as_ref().map(|m| m.index(a).get());

    for (i, n) in names.iter().enumerate() {
        outln!("device {} {n}{}", i + 1, limit_of(&cfg.objective, i));
    }
    outln!(
        "pool of {} | strategy {} | budget {} in total | {}",
        names.len(),
        cfg.strategy.name(),
        cfg.budget,
        describe(&cfg.objective)
    );
    outln!("{:>4} {:>6} {:>11} {:>7} {:>6}  cell", "step", "device", "latency ms", "TF", "index");
    let out = args.json.as_deref().filter(|p| output::replaces(p));
    let mut rec = Recorder {
        out,
        names: &names,
        cfg: &cfg,
        proxy,
        tf: &tf,
        index: &index,
        pending,
        probes: vec![],
        skipped: vec![],
        io_error: None,
        warned: false,
        last_write: None,
    };
    let outcome = {
        let mut devs: Vec<&mut dyn Device> = replays.iter_mut().map(|r| r as &mut dyn Device).collect();
        search_pool(&cfg, &ctx, &mut devs, &mut |d, e| rec.observe(d, e))
    };
    let replayed: usize = replays.iter().map(Replay::replayed).sum();
    if !outcome.skipped.is_empty() {
        eprintln!(
            "{} cells were not in a device's table (no probe spent on them; listed under \"skipped\" in --json)",
            outcome.skipped.len()
        );
    }
    if had > 0 {
        eprintln!("resumed: {replayed} of {had} recorded probes replayed, the rest measured");
    }
    let Recorder { pending, io_error, .. } = rec;
    let mut save_error = save(&args, &names, &cfg, proxy, &outcome, &tf, &index, &pending, had);
    if let Some(err) = io_error {
        return Err(err);
    }
    if let Some(err) = &outcome.error {
        let msg = err.message();
        return Err(match save_error {
            Some(save) => save.context(format!("pool search stopped ({msg}), and what it measured could not be saved")),
            None => {
                let saved =
                    args.json.as_ref().map(|p| format!(" ({} probes saved to {})", outcome.probes.len(), p.display()));
                anyhow!("{msg}").context(format!("pool search stopped{}", saved.unwrap_or_default()))
            }
        });
    }
    let code = report_pick(data, &args, &names, &outcome, &index, keyed_map.as_ref(), &mut save_error)?;
    match save_error {
        Some(err) => Err(err),
        None => Ok(code),
    }
}

fn limit_of(o: &PoolObjective, d: usize) -> String {
    match o {
        PoolObjective::Constraint { max_latency_ms } => format!(" | limit {} ms", max_latency_ms[d]),
        PoolObjective::Weighted { .. } => String::new(),
    }
}

fn describe(o: &PoolObjective) -> String {
    match o {
        PoolObjective::Weighted { weight } => {
            format!("maximise {weight} * TF + {} * (1 - mean l), each device's latency on its own scale", 1.0 - weight)
        }
        PoolObjective::Constraint { .. } => "maximise TF, every device's measured latency within its limit".into(),
    }
}

/// The search as it goes: each probe printed, the record rewritten in amortised steps.
struct Recorder<'a> {
    out: Option<&'a Path>,
    names: &'a [String],
    cfg: &'a PoolConfig,
    proxy: &'a str,
    tf: &'a [f64],
    index: &'a dyn Fn(Arch) -> Option<u16>,
    /// Recorded (device, cell) not asked for again yet: the file is rewritten only when the
    /// new record holds every one of them.
    pending: HashSet<(usize, Arch)>,
    probes: Vec<PoolProbe>,
    skipped: Vec<(usize, Arch)>,
    io_error: Option<anyhow::Error>,
    warned: bool,
    last_write: Option<Instant>,
}

impl Recorder<'_> {
    fn observe(&mut self, d: usize, e: Event) {
        match e {
            Event::Probe(m) => {
                let step = self.probes.len() + 1;
                self.probes.push(PoolProbe { step, device: d, arch: m.arch, latency_ms: m.latency_ms });
                self.pending.remove(&(d, m.arch));
                let idx = (self.index)(m.arch).map(|i| i.to_string()).unwrap_or_else(|| "-".into());
                let tfv = self.tf[m.arch.code().get() as usize];
                let row = || -> Result<()> {
                    outln!("{step:>4} {:>6} {:>11.4} {tfv:>7.4} {idx:>6}  {}", d + 1, m.latency_ms, m.arch);
                    Ok(())
                };
                if let Err(err) = row() {
                    self.io_error.get_or_insert(err);
                }
            }
            Event::Skipped(a) => self.skipped.push((d, a)),
        }
        let events = self.probes.len() + self.skipped.len();
        let due = events.is_power_of_two() || self.last_write.is_none_or(|t: Instant| t.elapsed() >= REWRITE_EVERY);
        if let Some(out) = self.out.filter(|_| self.pending.is_empty() && due) {
            self.last_write = Some(Instant::now());
            let rec = PoolRecord {
                devices: self.names,
                cfg: self.cfg,
                proxy: self.proxy,
                probes: &self.probes,
                skipped: &self.skipped,
                pick: None,
                infeasible_on: &[],
                error: None,
            };
            if let Err(err) = output::write(out, &PoolJson::new(&rec, self.index).to_bytes()) {
                if !std::mem::replace(&mut self.warned, true) {
                    eprintln!("warning: {err} (tried again as the search goes on)");
                }
            }
        }
    }
}

/// Write the final record (unless a resumed search left recorded probes unasked) and the
/// plot; the first failure.
#[allow(clippy::too_many_arguments)]
fn save(
    args: &SearchArgs,
    names: &[String],
    cfg: &PoolConfig,
    proxy: &str,
    outcome: &PoolOutcome,
    tf: &[f64],
    index: &dyn Fn(Arch) -> Option<u16>,
    pending: &HashSet<(usize, Arch)>,
    had: usize,
) -> Option<anyhow::Error> {
    let mut save_error: Option<anyhow::Error> = None;
    if let Some(out) = &args.json {
        if let Some((d, a)) = pending.iter().next() {
            save_error = Some(anyhow!(
                "the resumed search did not ask again for {} of the {had} probes recorded in {} (one is {a} on device {}): the record is left as it was; this run's probes are the ones printed above",
                pending.len(),
                out.display(),
                d + 1
            ));
        } else {
            let rec = PoolRecord {
                devices: names,
                cfg,
                proxy,
                probes: &outcome.probes,
                skipped: &outcome.skipped,
                pick: outcome.pick.as_ref(),
                infeasible_on: &outcome.infeasible_on,
                error: outcome.error.as_ref().map(PoolError::message),
            };
            if let Err(err) = output::write(out, &PoolJson::new(&rec, index).to_bytes()) {
                save_error = Some(err.into());
            }
        }
    }
    if let Some(svg) = &args.plot {
        let per = per_device(&outcome.probes, names.len());
        let picks: Vec<Option<Pick>> = (0..names.len())
            .map(|d| {
                let p = outcome.pick.as_ref()?;
                let m = per[d].iter().find(|m| m.arch == p.arch)?;
                Some(Pick { arch: p.arch, latency_ms: m.latency_ms, tf: p.tf, step: m.step, score: p.score })
            })
            .collect();
        let runs: Vec<Trajectory> = names
            .iter()
            .zip(&per)
            .zip(&picks)
            .map(|((n, probes), &pick)| Trajectory { label: n.clone(), probes, pick })
            .collect();
        let title = format!("{} over {} devices: {} probes", cfg.strategy.name(), names.len(), outcome.probes.len());
        if let Err(err) = trajectories(&runs, &|a| tf[a.code().get() as usize], &title, svg) {
            save_error.get_or_insert(anyhow!(err));
        }
    }
    save_error
}

/// Print the pick or why there is none; write `--export-pick`. Exit 0 with a pick, 2 without.
fn report_pick(
    data: &Option<PathBuf>,
    args: &SearchArgs,
    names: &[String],
    outcome: &PoolOutcome,
    index: &dyn Fn(Arch) -> Option<u16>,
    nats: Option<&host_trainer::data::NatsMap>,
    save_error: &mut Option<anyhow::Error>,
) -> Result<ExitCode> {
    let Some(p) = &outcome.pick else {
        outln!("pick: none");
        let why = if outcome.infeasible_on.is_empty() {
            format!(
                "no feasible architecture found: every device has a measured cell within its limit, but none of the {} probes found one cell within every limit",
                outcome.probes.len()
            )
        } else {
            let which: Vec<String> =
                outcome.infeasible_on.iter().map(|&d| format!("device {} ({})", d + 1, names[d])).collect();
            format!("no feasible architecture found: no measured cell is within the limit on {}", which.join(", "))
        };
        eprintln!("{why}");
        return Ok(ExitCode::from(2));
    };
    let idx = index(p.arch).map(|i| format!(" | index {i}")).unwrap_or_default();
    let lat: Vec<String> =
        p.latency_ms.iter().enumerate().map(|(d, ms)| format!("device {} {ms:.4} ms", d + 1)).collect();
    outln!(
        "pick: {} | {} (measured on every device) | TF {:.4} | objective {:.4}{idx}",
        p.arch,
        lat.join(", "),
        p.tf,
        p.score
    );
    after_pick(data, args, nats, p.arch, save_error)?;
    Ok(ExitCode::SUCCESS)
}

/// The pool record at `path` to continue (`None` when there is nothing to keep); refused
/// without `--resume` or when made with other settings.
fn existing_record(path: &Path, resume: bool, cfg: &PoolConfig, proxy: &str) -> Result<Option<PoolJson>> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() > 0 => {}
        _ => return Ok(None),
    }
    let bytes = host_trainer::data::read_capped(path, host_trainer::data::MAX_READ_BYTES)
        .with_context(|| format!("reading {}", path.display()))?;
    let parsed = serde_json::from_slice::<PoolJson>(&bytes);
    if !resume {
        bail!(
            "{} already exists: pass --resume to continue the pool search recorded there, or remove it or choose another --json path",
            path.display()
        );
    }
    let rec = parsed.map_err(|e| {
        anyhow!(
            "{} is not a pool search record to resume from ({e}): remove it, or choose another --json path",
            path.display()
        )
    })?;
    let mismatch = |what: &str, recorded: String, asked: String| {
        anyhow!(
            "{} was recorded with {what} {recorded}, this run asks for {asked}: a pool search is resumed with the settings it was recorded with",
            path.display()
        )
    };
    if rec.strategy != cfg.strategy.name() {
        return Err(mismatch("--pool-strategy", rec.strategy.clone(), cfg.strategy.name().into()));
    }
    let asked = PoolObjectiveJson::from(&cfg.objective);
    if rec.objective != asked {
        return Err(mismatch("the objective", format!("{:?}", rec.objective), format!("{asked:?}")));
    }
    if rec.seed != cfg.seed {
        return Err(mismatch("--seed", rec.seed.to_string(), cfg.seed.to_string()));
    }
    if rec.budget != cfg.budget {
        return Err(mismatch("--budget", rec.budget.to_string(), cfg.budget.to_string()));
    }
    if rec.space != cfg.space.name() {
        return Err(mismatch("--space", rec.space.clone(), cfg.space.name().into()));
    }
    if rec.proxy != proxy {
        return Err(mismatch("--proxy", rec.proxy.clone(), proxy.into()));
    }
    for p in &rec.probes {
        if !(p.latency_ms.is_finite() && p.latency_ms > 0.0) {
            bail!(
                "{}: probe {} has latency_ms {}, not a positive finite number: this record cannot be resumed from",
                path.display(),
                p.step,
                p.latency_ms
            );
        }
    }
    Ok(Some(rec))
}

/// Each device's recorded probes, if the record was made on these devices in this order.
fn recorded_probes(path: &Path, rec: &PoolJson, names: &[String]) -> Result<Vec<Vec<(Arch, f64)>>> {
    if rec.devices != names {
        bail!(
            "{} was measured on {:?}, not on {:?}: its probes cannot be reused (give the same devices in the same order, or choose another --json path)",
            path.display(),
            rec.devices,
            names
        );
    }
    let mut out = vec![Vec::new(); names.len()];
    let mut seen = HashSet::new();
    for p in &rec.probes {
        let arch = Arch::parse(&p.arch).with_context(|| format!("{}: probe {}", path.display(), p.step))?;
        let Some(slot) = p.device.checked_sub(1).and_then(|d| out.get_mut(d)) else {
            bail!("{}: probe {} names device {}, the pool has {}", path.display(), p.step, p.device, names.len());
        };
        if !seen.insert((p.device, arch)) {
            bail!("{}: probe {} measures {arch} on device {} a second time (the record was edited; remove it to start again)", path.display(), p.step, p.device);
        }
        slot.push((arch, p.latency_ms));
    }
    Ok(out)
}
