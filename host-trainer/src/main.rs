//! `simnas`: hardware-aware NAS without a latency predictor.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        // `simnas ... | head`: the reader left; that is not a failure.
        Err(err) if stdout_reader_left(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `err` is a write to stdout whose reader has gone (and not, say, a serial line
/// that hung up, which reports the same `BrokenPipe`).
fn stdout_reader_left(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.downcast_ref::<cli::StdoutError>().is_some_and(cli::StdoutError::reader_left))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Error, ErrorKind};

    #[test]
    fn only_a_closed_stdout_is_a_quiet_end() {
        let stdout = anyhow::Error::from(cli::StdoutError(Error::from(ErrorKind::BrokenPipe)));
        assert!(stdout_reader_left(&stdout.context("printing the pick")));
        // A serial port reports a hang-up as BrokenPipe too: that is an error.
        let device = anyhow::Error::from(Error::from(ErrorKind::BrokenPipe)).context("probe 3 failed");
        assert!(!stdout_reader_left(&device));
        let full_disk = anyhow::Error::from(cli::StdoutError(Error::from(ErrorKind::StorageFull)));
        assert!(!stdout_reader_left(&full_disk));
    }
}
