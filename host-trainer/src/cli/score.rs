//! `simnas score`: training-free scores of one cell (`--arch`), of the whole space
//! (`--all`, resumable, both cores), their correlation report (`report`) and the per-metric
//! cost (`bench`).

use super::NetArgs;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use edge_runtime::rng::SplitMix64;
use host_trainer::data::{data_dir, NatsMap};
use host_trainer::score::fast::Scorer;
use host_trainer::score::report::{self, Accuracies};
use host_trainer::score::table::{self, PartialRow, PartialTable, RunMeta, RunMetaExt as _};
use host_trainer::score::{
    logsynflow, naswot, InputKind, ScoreSettings, ScoreTable, DEFAULT_BATCH, DEFAULT_INITS, DEFAULT_SEED,
};
use simnas_shared::{Arch, ArchCode, NatsIndex, NUM_ARCHS};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

/// Default location of the shipped table.
const SHIPPED_TABLE: &str = "artifacts/scores/cifar10_scores.csv";

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ScoreArgs {
    #[command(subcommand)]
    cmd: Option<ScoreCmd>,
    /// Score one cell (NATS-Bench string, e.g. '|nor_conv_3x3~0|+|...|'); prints JSON.
    #[arg(long, value_name = "CELL", conflicts_with = "all")]
    arch: Option<String>,
    /// Score every cell of the space into --out (resumable: rerun the same command).
    #[arg(long, requires = "out")]
    all: bool,
    /// The table --all writes (CSV); a sidecar <stem>.json and, for the whole space, the
    /// quantised <stem>.tf16 are written beside it.
    #[arg(long, value_name = "CSV")]
    out: Option<PathBuf>,
    /// With --all: score only a seeded random sample of this many cells (for tuning).
    #[arg(long, requires = "all", value_parser = clap::value_parser!(u32).range(1..=15625))]
    sample: Option<u32>,
    /// Seed of --sample.
    #[arg(long, default_value_t = 1)]
    sample_seed: u64,
    /// With --all: copy from this finished table (CSV with its sidecar) every metric its
    /// settings fix exactly as this run's would, and compute only the rest. NASWOT and MeCo
    /// do not depend on the number of classes (the classifier comes after their last
    /// observation and is initialised last), LogSynflow does not depend on the batch or the
    /// input: e.g. a CIFAR-100 table computes only LogSynflow with `--reuse` of the
    /// CIFAR-10 table, and a CIFAR-10 table gains MeCo with `--reuse` of itself. The
    /// sidecar records what was copied.
    #[arg(long, value_name = "CSV", requires = "all")]
    reuse: Option<PathBuf>,
    #[command(flatten)]
    method: MethodArgs,
    /// Worker threads for --all (default: every core).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    jobs: Option<u32>,
    /// With --arch: also compute NASWOT and LogSynflow with the candle reference
    /// implementation (seconds per cell) and print both.
    #[arg(long, requires = "arch")]
    reference: bool,
}

/// What fixes a score (must match between runs that share a table).
#[derive(Args, Debug, Clone)]
struct MethodArgs {
    /// Master seed: the synthetic input batch and every initialisation derive from it.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// NASWOT batch size.
    #[arg(long, default_value_t = DEFAULT_BATCH as u32, value_parser = clap::value_parser!(u32).range(2..=1024))]
    batch: u32,
    /// Distribution of the synthetic NASWOT batch.
    #[arg(long, value_enum, default_value = "pink")]
    input: InputArg,
    /// Initialisations averaged per metric.
    #[arg(long, default_value_t = DEFAULT_INITS as u32, value_parser = clap::value_parser!(u32).range(1..=64))]
    inits: u32,
    #[command(flatten)]
    net: NetArgs,
}

impl MethodArgs {
    fn settings(&self) -> Result<ScoreSettings> {
        let input = match self.input {
            InputArg::Gaussian => InputKind::Gaussian,
            InputArg::Pink => InputKind::Pink,
        };
        let s = ScoreSettings {
            net: self.net.config()?,
            seed: self.seed,
            batch: self.batch as usize,
            inits: self.inits as usize,
            input,
        };
        s.validate()?;
        Ok(s)
    }
}

/// `--input` choices.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum InputArg {
    /// Every value an independent N(0, 1).
    Gaussian,
    /// Gaussian fields with a 1/f^2 power spectrum (natural-image statistics), unit variance.
    Pink,
}

#[derive(Subcommand, Debug)]
enum ScoreCmd {
    /// Rank correlations of a score table with the benchmark's test accuracies (markdown
    /// and an SVG scatter plot of TF vs CIFAR-10 accuracy).
    Report(ReportArgs),
    /// Time each metric per cell on a random sample (one thread) and estimate the
    /// whole-space wall time.
    Bench(BenchArgs),
    /// Write the quantised tables of a finished CSV without rescoring: `<stem>.tf16` (every
    /// cell carries its executed network's scores; what searches and the board use) and
    /// `<stem>_raw.tf16` (every cell as scored, the paper's space). `score --all` writes both
    /// too.
    Quantise(QuantiseArgs),
}

#[derive(Args, Debug)]
struct QuantiseArgs {
    /// Score table (CSV from `simnas score --all`); the `.tf16` files go beside it.
    #[arg(long, value_name = "CSV")]
    table: PathBuf,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// Score table (CSV).
    #[arg(long, value_name = "CSV", default_value = SHIPPED_TABLE)]
    table: PathBuf,
    /// Directory for <stem>_report.md and <stem>_tf_vs_cifar10.svg (the shipped report is
    /// regenerated only by passing `--out artifacts/scores`).
    #[arg(long, value_name = "DIR", default_value = "simnas-out/scores")]
    out: PathBuf,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Cells timed (a seeded random sample of the space).
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=15625))]
    sample: u32,
    /// Seed of the sample.
    #[arg(long, default_value_t = 2)]
    sample_seed: u64,
    /// Also time the candle references on this many of the cells (seconds each).
    #[arg(long, default_value_t = 0)]
    reference_cells: u32,
    /// Threads assumed for the whole-space estimate (default: every core).
    #[arg(long)]
    jobs: Option<u32>,
    #[command(flatten)]
    method: MethodArgs,
}

pub fn run(data: &Option<PathBuf>, args: ScoreArgs) -> Result<ExitCode> {
    match args.cmd {
        Some(ScoreCmd::Report(r)) => return report_cmd(data, r),
        Some(ScoreCmd::Bench(b)) => return bench_cmd(b),
        Some(ScoreCmd::Quantise(q)) => return quantise_cmd(q),
        None => {}
    }
    if let Some(cell) = &args.arch {
        let arch = Arch::parse(cell).with_context(|| format!("--arch {cell:?}"))?;
        return one(arch, &args.method, args.reference);
    }
    if args.all {
        let out = args.out.as_deref().context("--all needs --out")?;
        return all(data, out, &args);
    }
    bail!("nothing to do: pass --arch CELL, --all --out CSV, or a subcommand (report, bench); see --help")
}

fn command_line() -> String {
    std::iter::once("simnas".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" ")
}

fn threads(jobs: Option<u32>) -> usize {
    jobs.map(|j| j as usize).unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// `--arch`: the three metrics, and TF when the shipped table's normalisation applies.
fn one(arch: Arch, method: &MethodArgs, reference: bool) -> Result<ExitCode> {
    let settings = method.settings()?;
    let scorer = Scorer::new(settings)?;
    let mut ws = scorer.workspace();
    let m = scorer.score(&arch, &mut ws)?;
    // The shipped table's ranges normalise TF (and give the NASWOT floor) for its settings.
    let shipped = (settings == ScoreSettings::default()).then(shipped_table).flatten();
    let naswot = m.naswot.or(shipped.as_ref().map(|t| t.ranges().naswot.0));
    let tf = shipped.as_ref().zip(naswot).map(|(t, n)| table::tf_of(t.ranges(), n, m.logsynflow, m.skip));
    let mut v = serde_json::json!({
        "arch": arch.to_string(),
        "naswot": naswot,
        "degenerate": m.naswot.is_none(),
        "logsynflow": m.logsynflow,
        "skip": m.skip,
        "meco": m.meco,
        "tf": tf,
        "seed": settings.seed, "batch": settings.batch, "inits": settings.inits, "input": settings.input,
    });
    if reference {
        v["reference_naswot"] = serde_json::json!(naswot::reference(&settings, arch)?);
        v["reference_logsynflow"] = serde_json::json!(logsynflow::reference(&settings, arch)?);
    }
    outln!("{v}");
    Ok(ExitCode::SUCCESS)
}

/// The shipped table (its normalisation and NASWOT floor).
fn shipped_table() -> Option<ScoreTable> {
    ScoreTable::embedded().ok()
}

/// The cells a run covers: the whole space in index order, or a seeded sample.
fn targets(sample: Option<usize>, seed: u64) -> Vec<NatsIndex> {
    let mut all: Vec<NatsIndex> = (0..NUM_ARCHS as u16).filter_map(NatsIndex::new).collect();
    if let Some(n) = sample {
        let mut rng = SplitMix64::new(seed);
        for i in (1..all.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            all.swap(i, j);
        }
        all.truncate(n);
    }
    all
}

enum Msg {
    /// A row and the seconds spent on NASWOT, LogSynflow and MeCo.
    Row(PartialRow, [f64; 3]),
    Failed(String),
}

/// Metric values copied from another table (`--reuse`), per NATS-Bench index.
#[derive(Default)]
struct Reused {
    naswot: Option<Vec<Option<f64>>>,
    logsynflow: Option<Vec<f64>>,
    meco: Option<Vec<f64>>,
    meta: Option<table::Reuse>,
}

impl Reused {
    /// What `path` can give a run with `run`'s settings over `targets`.
    fn load(path: &Path, run: &RunMeta, targets: &[NatsIndex]) -> Result<Reused> {
        let side_path = table::sibling(path, ".json");
        let text = std::fs::read_to_string(&side_path)
            .with_context(|| format!("--reuse {}: reading its sidecar {}", path.display(), side_path.display()))?;
        let side = table::Sidecar::from_json(&text)
            .with_context(|| format!("{}: not a score-table sidecar", side_path.display()))?;
        let rows = table::read_rows(path).with_context(|| format!("--reuse {}", path.display()))?;
        let o = &side.run;
        let net = o.channels == run.channels
            && o.cells_per_stage == run.cells_per_stage
            && o.resolution == run.resolution
            && o.seed == run.seed
            && o.inits == run.inits;
        let mut by_index: Vec<Option<&table::ScoreRow>> = vec![None; NUM_ARCHS];
        for r in &rows {
            by_index[r.index.get() as usize] = Some(r);
        }
        let covered =
            |f: &dyn Fn(&table::ScoreRow) -> bool| targets.iter().all(|i| by_index[i.get() as usize].is_some_and(f));
        let mut out = Reused::default();
        let mut metrics = Vec::new();
        // A degenerate (disconnected) cell's NASWOT is stored as the table's floor: copied
        // back as undefined, so this run's floor is its own.
        if net && o.batch == run.batch && o.input == run.input && covered(&|_| true) {
            out.naswot = Some(by_index.iter().map(|r| r.filter(|r| r.arch.is_connected()).map(|r| r.naswot)).collect());
            metrics.push("naswot".to_string());
        }
        if net && o.classes == run.classes && covered(&|_| true) {
            out.logsynflow = Some(by_index.iter().map(|r| r.map_or(0.0, |r| r.logsynflow)).collect());
            metrics.push("logsynflow".to_string());
        }
        if net && o.input == run.input && covered(&|r| r.meco.is_some()) {
            out.meco = Some(by_index.iter().map(|r| r.and_then(|r| r.meco).unwrap_or(0.0)).collect());
            metrics.push("meco".to_string());
        }
        if metrics.is_empty() {
            bail!(
                "--reuse {}: nothing to copy: its settings (C={} N={} R={} classes={} seed={} batch={} inits={} input={:?}) fix no metric of this run the same way, or it lacks rows",
                path.display(), o.channels, o.cells_per_stage, o.resolution, o.classes, o.seed, o.batch, o.inits, o.input
            );
        }
        out.meta = Some(table::Reuse { table: path.display().to_string(), metrics });
        Ok(out)
    }
}

/// `--all`: score every target cell on `jobs` threads, appending rows as they finish.
fn all(data: &Option<PathBuf>, out: &Path, args: &ScoreArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let settings = args.method.settings()?;
    let quantised = table::Proxy::ALL.into_iter().flat_map(|p| table::quantised_paths(out, p));
    for path in [out.to_path_buf(), table::sibling(out, ".json")].into_iter().chain(quantised) {
        host_trainer::output::prepare(&path)?;
    }
    let map = NatsMap::load(&data_dir(data.as_deref())?)?;
    let sample = args.sample.map(|n| n as usize);
    let targets = targets(sample, args.sample_seed);
    let mut meta = RunMeta::new(&settings, sample, args.sample_seed);
    let reused = match &args.reuse {
        Some(path) => Reused::load(path, &meta, &targets)?,
        None => Reused::default(),
    };
    meta.reuse = reused.meta.clone();
    if let Some(r) = &reused.meta {
        eprintln!("copying {} from {}", r.metrics.join(", "), r.table);
    }
    let mut table = PartialTable::open(out, meta)?;
    let done = table.done();
    let todo: Vec<NatsIndex> = targets.iter().copied().filter(|i| !done.contains(i)).collect();
    let jobs = threads(args.jobs).min(todo.len().max(1));
    if !todo.is_empty() {
        eprintln!(
            "scoring {} cells ({} already in {}) on {jobs} threads: seed {}, batch {}, {} inits",
            todo.len(),
            targets.len() - todo.len(),
            table.partial_path().display(),
            settings.seed,
            settings.batch,
            settings.inits
        );
    }
    let scorer = Scorer::new(settings)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Only the first handler of a process can be set; a second `score --all` in the same
        // process (tests) keeps the first.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let bar = progress_bar(targets.len() as u64, (targets.len() - todo.len()) as u64);
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<Msg>();
    let (mut secs, mut n_scored) = ([0.0f64; 3], 0usize);
    let mut failure: Option<anyhow::Error> = None;
    let mut last_save = Instant::now();
    let plain = !std::io::stderr().is_terminal();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let (tx, scorer, stop, next, todo, map, reused) = (tx.clone(), &scorer, &stop, &next, &todo, &map, &reused);
            scope.spawn(move || {
                let mut ws = scorer.workspace();
                while !stop.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&index) = todo.get(i) else { break };
                    let arch = map.arch(index);
                    let at = index.get() as usize;
                    let t0 = Instant::now();
                    let n = match &reused.naswot {
                        Some(v) => Ok(v[at]),
                        None => scorer.naswot(&arch, &mut ws),
                    };
                    let t1 = Instant::now();
                    let l = match &reused.logsynflow {
                        Some(v) => Ok(v[at]),
                        None => scorer.logsynflow(&arch, &mut ws),
                    };
                    let t2 = Instant::now();
                    let m = match &reused.meco {
                        Some(v) => Ok(v[at]),
                        None => scorer.meco(&arch, &mut ws),
                    };
                    let t3 = Instant::now();
                    let msg = match (n, l, m) {
                        (Ok(naswot), Ok(logsynflow), Ok(meco)) => {
                            let skip = host_trainer::score::skip::skip_score(&arch);
                            let row = PartialRow { index, arch, naswot, logsynflow, skip, meco: Some(meco) };
                            let secs = [t1 - t0, t2 - t1, t3 - t2].map(|d| d.as_secs_f64());
                            Msg::Row(row, secs)
                        }
                        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                            Msg::Failed(format!("cell {index} ({arch}): {e}"))
                        }
                    };
                    if tx.send(msg).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for msg in rx {
            match msg {
                Msg::Row(row, t) => {
                    if let Err(e) = table.append(row) {
                        failure = Some(e.into());
                        stop.store(true, Ordering::SeqCst);
                        continue;
                    }
                    for (s, t) in secs.iter_mut().zip(t) {
                        *s += t;
                    }
                    n_scored += 1;
                    bar.inc(1);
                    if plain && n_scored % 250 == 0 {
                        eprintln!(
                            "{}/{} cells, {:.0} s, {:.0} ms/cell per thread",
                            bar.position(),
                            targets.len(),
                            started.elapsed().as_secs_f64(),
                            1e3 * secs.iter().sum::<f64>() / n_scored as f64
                        );
                    }
                    if last_save.elapsed().as_secs() >= 30 {
                        let _ = table.add_time(last_save.elapsed().as_secs_f64());
                        last_save = Instant::now();
                    }
                }
                Msg::Failed(e) => {
                    failure.get_or_insert_with(|| anyhow::anyhow!(e));
                    stop.store(true, Ordering::SeqCst);
                }
            }
        }
    });
    bar.finish_and_clear();
    table.add_time(last_save.elapsed().as_secs_f64())?;
    if let Some(e) = failure {
        return Err(e.context(format!("rows scored so far are kept in {}", table.partial_path().display())));
    }
    if n_scored > 0 {
        eprintln!(
            "scored {n_scored} cells in {:.1} s; per cell and thread: NASWOT {:.1} ms, LogSynflow {:.1} ms, MeCo {:.1} ms (copied metrics take ~0)",
            started.elapsed().as_secs_f64(),
            1e3 * secs[0] / n_scored as f64,
            1e3 * secs[1] / n_scored as f64,
            1e3 * secs[2] / n_scored as f64
        );
    }
    if stop.load(Ordering::SeqCst) || table.rows().len() < targets.len() {
        eprintln!(
            "interrupted: {} of {} cells kept in {}; rerun the same command to continue",
            table.rows().len(),
            targets.len(),
            table.partial_path().display()
        );
        return Ok(ExitCode::from(130));
    }
    let side = table.finish(&command_line(), jobs)?;
    outln!(
        "wrote {} ({} rows, {} degenerate cells at the NASWOT floor {:.4}; {:.0} s of scoring in total)",
        out.display(),
        side.rows,
        side.degenerate_cells,
        side.naswot_floor,
        side.run.wall_time_s
    );
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(len: u64, pos: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_position(pos);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} cells ({per_sec}, ETA {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// `score quantise`: the two `.tf16` files of a finished table, from its sidecar's settings.
fn quantise_cmd(args: QuantiseArgs) -> Result<ExitCode> {
    let table = ScoreTable::load(&args.table).with_context(|| format!("score table {}", args.table.display()))?;
    let side_path = table::sibling(&args.table, ".json");
    let text = std::fs::read_to_string(&side_path)
        .with_context(|| format!("reading the sidecar {} (written by `simnas score --all`)", side_path.display()))?;
    let side = table::Sidecar::from_json(&text)
        .with_context(|| format!("{}: not a score-table sidecar", side_path.display()))?;
    let meta = host_trainer::score::quant::QuantMeta {
        seed: side.run.seed,
        batch: side.run.batch.min(usize::from(u16::MAX)) as u16,
        inits: side.run.inits.min(usize::from(u16::MAX)) as u16,
        executed: false,
    };
    for pair in table::write_quantised(&table, &args.table, meta)?.chunks(2) {
        if let [exec, raw] = pair {
            outln!("wrote {} (executed networks) and {} (raw cells)", exec.display(), raw.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `score report`: correlations of a table with the benchmark's accuracies.
fn report_cmd(data: &Option<PathBuf>, mut args: ReportArgs) -> Result<ExitCode> {
    args.table = super::artifacts::locate(&args.table);
    let dir = args.out.clone();
    let stem = args.table.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "scores".into());
    let d = dataset_of(&args.table);
    let key = ["cifar10", "cifar100", "imagenet16"][d];
    let (md_name, svg_name) = (format!("{stem}_report.md"), format!("{stem}_tf_vs_{key}.svg"));
    host_trainer::output::prepare_dir(&dir, &[&md_name, &svg_name])?;
    let rows = table::read_rows(&args.table)?;
    let dir_data = data_dir(data.as_deref())?;
    // The accuracies are joined by index: every row's index must name its own cell.
    let nats = NatsMap::load(&dir_data)?;
    if let Some(r) = rows.iter().find(|r| nats.arch(r.index) != r.arch) {
        bail!(
            "{}: row with index {} says {}, but the benchmark's index {} is {}: the index column does not match the arch column (fix the table, or rescore with `simnas score --all`)",
            args.table.display(),
            r.index,
            r.arch,
            r.index,
            nats.arch(r.index)
        );
    }
    let acc = Accuracies::load(&dir_data)?;
    let r = report::build(&rows, &acc).with_context(|| format!("{} has no rows", args.table.display()))?;
    // The search space: the connected executed networks, each scored as itself.
    let space: Vec<_> = rows.iter().filter(|r| r.arch.is_connected() && r.arch.is_executed()).copied().collect();
    let rs = report::build(&space, &acc);
    let mut sections = Vec::new();
    if let Some(rs) = &rs {
        sections.push(("The search space: connected executed networks", rs));
    }
    sections.push(("Every cell as scored (the paper's raw space)", &r));
    let mut md = report::markdown(&sections, &command_line(), &args.table.display().to_string());
    md += &ceiling_section(d, &rows, &acc, &nats, &dir_data)?;
    let md_path = dir.join(md_name);
    host_trainer::output::write(&md_path, md.as_bytes())?;
    let svg = dir.join(svg_name);
    // The search space's cells, as the search sees them.
    report::scatter_svg(&space, &acc, d, &svg).with_context(|| format!("plot {}", svg.display()))?;
    outln!("{md}");
    outln!("wrote {} and {}", md_path.display(), svg.display());
    Ok(ExitCode::SUCCESS)
}

/// The table's dataset (an index into [`report::DATASETS`]) from its sidecar's classes:
/// CIFAR-10 without a sidecar.
fn dataset_of(path: &Path) -> usize {
    let classes = std::fs::read_to_string(table::sibling(path, ".json"))
        .ok()
        .and_then(|t| table::Sidecar::from_json(&t).ok())
        .map_or(10, |s| s.run.classes);
    match classes {
        100 => 1,
        120 => 2,
        _ => 0,
    }
}

/// The report's last section: per proxy the table supports, the accuracy (on dataset `d`)
/// of the proxy's ceiling under the p10/p25/p50 limits of the training and the validation
/// devices, next to the most accurate cell that fits, averaged over the devices; empty for
/// a table that does not cover the space.
fn ceiling_section(d: usize, rows: &[table::ScoreRow], acc: &Accuracies, nats: &NatsMap, dir: &Path) -> Result<String> {
    use host_trainer::latency::registry::{self, Split};
    use host_trainer::latency::{InvalidPolicy, LatencyTable};
    use host_trainer::search::eval::{proxy_ceiling, tf_vector, PERCENTILES};
    use std::fmt::Write as _;
    // Ceilings need every cell (a sampled table has no ceiling to report).
    let Some(full) = ScoreTable::from_rows(rows) else { return Ok(String::new()) };
    let mut by_code = vec![None; NUM_ARCHS];
    for r in rows {
        by_code[r.arch.code().get() as usize] = Some(acc.acc[d][r.index.get() as usize]);
    }
    let load = |which: Split| -> Result<Vec<LatencyTable>> {
        registry::split(which)
            .map(|dev| {
                LatencyTable::load(&dev.path(dir), dev.column, Some(nats), InvalidPolicy::Skip)
                    .with_context(|| format!("device {}", dev.name))
            })
            .collect()
    };
    let (train, validation) = (load(Split::Train)?, load(Split::Validation)?);
    let mut s = format!(
        "\n## Proxy ceiling under a latency limit ({})\n\n\
         Per device, the limit is the p10 / p25 / p50 latency of the connected executed networks; the \
         *ceiling* is the best-TF network that truly fits (what a perfect search with the proxy picks), *best* the \
         most accurate one that fits; test accuracy (%), mean over the devices ({} training, {} validation).\n\n\
         | devices | proxy | p10 ceiling | p10 best | p25 ceiling | p25 best | p50 ceiling | p50 best |\n|---|---|---:|---:|---:|---:|---:|---:|\n",
        report::DATASETS[d].0,
        train.len(),
        validation.len()
    );
    for (split, tables) in [("training", &train), ("validation", &validation)] {
        for proxy in table::Proxy::ALL {
            let Ok(t) = full.clone().with_proxy(proxy) else { continue };
            let t = t.executed();
            let tf = tf_vector(|a| t.tf(a));
            let mut sums = [(0.0, 0.0, 0usize); 3];
            for lt in tables {
                for (k, v) in proxy_ceiling(lt, &tf, &by_code).into_iter().enumerate() {
                    if let Some((c, b)) = v {
                        sums[k] = (sums[k].0 + c, sums[k].1 + b, sums[k].2 + 1);
                    }
                }
            }
            let _ = write!(s, "| {split} | {} |", proxy.name());
            for (c, b, n) in sums {
                let n = n.max(1) as f64;
                let _ = write!(s, " {:.2} | {:.2} |", c / n, b / n);
            }
            s.push('\n');
        }
    }
    let _ = writeln!(s, "\nLimits at {:?} of each device's latencies.", PERCENTILES);
    Ok(s)
}

/// `score bench`: per-metric cost per cell on one thread.
fn bench_cmd(args: BenchArgs) -> Result<ExitCode> {
    let settings = args.method.settings()?;
    let t = Instant::now();
    let scorer = Scorer::new(settings)?;
    let setup = t.elapsed().as_secs_f64();
    let mut ws = scorer.workspace();
    // A sample of codes (the bench needs no benchmark data, so no index mapping).
    let cells: Vec<Arch> = targets(Some(args.sample as usize), args.sample_seed)
        .into_iter()
        .filter_map(|i| ArchCode::new(i.get()))
        .map(Arch::from_code)
        .collect();
    let (mut tn, mut ts, mut tm) = (Vec::new(), Vec::new(), Vec::new());
    for a in &cells {
        let t0 = Instant::now();
        scorer.naswot(a, &mut ws)?;
        let t1 = Instant::now();
        scorer.logsynflow(a, &mut ws)?;
        let t2 = Instant::now();
        scorer.meco(a, &mut ws)?;
        tn.push((t1 - t0).as_secs_f64());
        ts.push((t2 - t1).as_secs_f64());
        tm.push(t2.elapsed().as_secs_f64());
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        (1e3 * mean, 1e3 * v[v.len() / 2], 1e3 * v[(v.len() * 9 / 10).min(v.len() - 1)])
    };
    let (n, s, m) = (stats(&mut tn), stats(&mut ts), stats(&mut tm));
    let jobs = threads(args.jobs);
    let per_cell = (n.0 + s.0 + m.0) / 1e3;
    outln!(
        "{} random cells (sample seed {}), one thread, seed {} batch {} inits {} (setup {:.2} s)",
        cells.len(),
        args.sample_seed,
        settings.seed,
        settings.batch,
        settings.inits,
        setup
    );
    outln!("{:<12} {:>10} {:>10} {:>10}", "metric", "mean ms", "median ms", "p90 ms");
    outln!("{:<12} {:>10.1} {:>10.1} {:>10.1}", "NASWOT", n.0, n.1, n.2);
    outln!("{:<12} {:>10.1} {:>10.1} {:>10.1}", "LogSynflow", s.0, s.1, s.2);
    outln!("{:<12} {:>10.1} {:>10.1} {:>10.1}", "MeCo", m.0, m.1, m.2);
    outln!("{:<12} {:>10} {:>10} {:>10}", "SkipScore", "~0", "~0", "~0");
    outln!(
        "whole space ({NUM_ARCHS} cells) on {jobs} threads: about {:.1} min if the threads run at this speed",
        NUM_ARCHS as f64 * per_cell / jobs as f64 / 60.0
    );
    for a in cells.iter().take(args.reference_cells as usize) {
        let t0 = Instant::now();
        let rn = naswot::reference(&settings, *a)?;
        let t1 = Instant::now();
        let rs = logsynflow::reference(&settings, *a)?;
        let t2 = Instant::now();
        let fast_n = scorer.naswot(a, &mut ws)?;
        let fast_s = scorer.logsynflow(a, &mut ws)?;
        outln!(
            "reference (candle) {a}: NASWOT {:.0} ms ({:?} vs fast {:?}), LogSynflow {:.0} ms ({} vs fast {})",
            1e3 * (t1 - t0).as_secs_f64(),
            rn,
            fast_n,
            1e3 * (t2 - t1).as_secs_f64(),
            rs,
            fast_s
        );
    }
    Ok(ExitCode::SUCCESS)
}
