//! What the four command-line tools share: log setup and reading a secret
//! (a passphrase, a recovery phrase) from a file, the environment or a
//! prompt. Behind the `cli` feature.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Logs to stderr, filtered by `RUST_LOG` (else `default_level`), in colour
/// only on a terminal (see [`log_colour`]).
pub fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(log_colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .init();
}

/// Whether logs carry ANSI colour codes: only on a terminal, and not when
/// `NO_COLOR` is set to anything but the empty string (no-color.org). A
/// log file or a pipe never gets escape codes.
pub fn log_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// Writes the URL a server listens on to `path` (a command's
/// `--addr-file`, for scripts and tests that listen on port 0): to a
/// temporary file beside it, then renamed into place, so a reader that
/// sees the file sees the whole address.
///
/// # Errors
/// When the temporary file cannot be written or renamed.
pub fn write_addr_file(path: &Path, url: &str) -> std::io::Result<()> {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".partial");
    let partial = path.with_file_name(name);
    std::fs::write(&partial, url)?;
    std::fs::rename(&partial, path)
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The file named could not be read.
    #[error("reading {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No file, no variable, and no terminal to prompt on.
    #[error("no {what}: give it in a file or {var}, or run in a terminal")]
    Missing {
        /// What was asked for.
        what: String,
        /// The environment variable that would have given it.
        var: String,
    },
    /// The prompt failed.
    #[error("reading the {what} from the terminal: {source}")]
    Prompt {
        /// What was asked for.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The confirmation differs from the first entry.
    #[error("the two entries of the {0} differ")]
    Mismatch(String),
}

/// A secret, from the first that is given: the first line of `file`, the
/// environment variable `var`, or a prompt for `what` on the terminal
/// (asked twice when `confirm`).
///
/// # Errors
/// [`SecretError`] naming what is missing or wrong.
pub fn secret(
    file: Option<&Path>,
    var: &str,
    what: &str,
    confirm: bool,
) -> Result<Zeroizing<String>, SecretError> {
    if let Some(path) = file {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    path: path.to_owned(),
                    source,
                })?,
            );
        return Ok(Zeroizing::new(
            text.lines().next().unwrap_or_default().to_owned(),
        ));
    }
    if let Ok(v) = std::env::var(var) {
        return Ok(Zeroizing::new(v));
    }
    if !std::io::stdin().is_terminal() {
        return Err(SecretError::Missing {
            what: what.to_owned(),
            var: var.to_owned(),
        });
    }
    let prompt = |text: &str| {
        rpassword::prompt_password(text)
            .map(Zeroizing::new)
            .map_err(|source| SecretError::Prompt {
                what: what.to_owned(),
                source,
            })
    };
    let mut label = what.to_owned();
    if let Some(first) = label.get_mut(..1) {
        first.make_ascii_uppercase();
    }
    let first = prompt(&format!("{label}: "))?;
    if confirm && *prompt("Again: ")? != *first {
        return Err(SecretError::Mismatch(what.to_owned()));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(log_colour(true, None));
        assert!(log_colour(true, Some(OsStr::new(""))));
        assert!(!log_colour(true, Some(OsStr::new("1"))));
        assert!(!log_colour(false, None));
        assert!(!log_colour(false, Some(OsStr::new(""))));
    }

    #[test]
    fn the_addr_file_holds_the_url_and_nothing_else_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.url");
        write_addr_file(&path, "http://127.0.0.1:1").unwrap();
        write_addr_file(&path, "http://127.0.0.1:7400").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "http://127.0.0.1:7400"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A directory that does not exist is an error, not a panic.
        assert!(write_addr_file(&dir.path().join("no/such/file"), "x").is_err());
    }

    #[test]
    fn a_file_gives_its_first_line_and_a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "first line\nsecond\n").unwrap();
        let got = secret(Some(&path), "VOUCH_TEST_UNSET_VAR", "passphrase", false).unwrap();
        assert_eq!(got.as_str(), "first line");
        let err = secret(Some(&dir.path().join("nope")), "X", "passphrase", false).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
