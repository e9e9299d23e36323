//! The commands a build without the `train` feature leaves out (`score`, `train`, `bench`:
//! everything computed with candle). Each keeps its name and summary in `simnas --help`;
//! run, it takes any arguments and fails with the command that rebuilds simnas with the
//! feature and reruns it.

use anyhow::{bail, Result};
use clap::Args;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// A left-out command's arguments: anything, kept only to repeat them in the message.
#[derive(Args, Debug)]
#[command(after_help = "This build of simnas leaves this command out: rebuild with `--features train` (README).")]
pub struct Unbuilt {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<OsString>,
}

impl Unbuilt {
    /// The error naming what `command` needs and the one command that runs it.
    fn refuse(self, command: &str) -> Result<ExitCode> {
        let args: String = self.args.iter().map(|a| format!(" {}", shell_word(&a.to_string_lossy()))).collect();
        bail!(
            "simnas {command} needs the training support (candle), which this build leaves out: \
             rebuild with cargo run --release --features train -- {command}{args}"
        )
    }
}

/// `word` as a shell would read it back: as it is when it is plain, else single-quoted.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `simnas score` without `train`.
pub mod score {
    use super::*;

    /// Any arguments.
    pub type ScoreArgs = Unbuilt;

    /// Fails with the rebuild command.
    pub fn run(_data: &Option<PathBuf>, args: ScoreArgs) -> Result<ExitCode> {
        args.refuse("score")
    }
}

/// `simnas train` without `train`.
pub mod train {
    use super::*;

    /// Any arguments.
    pub type TrainArgs = Unbuilt;

    /// Fails with the rebuild command.
    pub fn run(_data: &Option<PathBuf>, args: TrainArgs) -> Result<ExitCode> {
        args.refuse("train")
    }
}

/// `simnas bench` without `train`.
pub mod bench {
    use super::*;

    /// Any arguments.
    pub type BenchArgs = Unbuilt;

    /// Fails with the rebuild command.
    pub fn run(args: BenchArgs) -> Result<ExitCode> {
        args.refuse("bench")
    }
}
