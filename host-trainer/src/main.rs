//! `simnas`: hardware-aware NAS without a latency predictor.

// The flags' doc comments are `--help` text (clap), written for a terminal: `<stem>` and
// `[default: ...]` there are words, not HTML or links.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        // `simnas ... | head`: the reader left; that is not a failure.
        Err(err) if stdout_reader_left(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", render(&err));
            ExitCode::FAILURE
        }
    }
}

/// `err` and its causes joined by `: `, each text once: many error messages already embed
/// their source's text (`cannot read FILE: No such file...`), and printing the chain as
/// well would say it twice.
fn render(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
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

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read table.csv: {source}")]
    struct Embeds {
        source: Error,
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = Error::new(ErrorKind::NotFound, "No such file or directory (os error 2)");
        let err = anyhow::Error::from(Embeds { source: io }).context("device table:table.csv#ms");
        assert_eq!(
            render(&err),
            "device table:table.csv#ms: cannot read table.csv: No such file or directory (os error 2)"
        );
        // A cause the message does not embed is still said.
        let plain = anyhow::Error::from(Error::new(ErrorKind::NotFound, "gone")).context("opening x");
        assert_eq!(render(&plain), "opening x: gone");
    }

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
