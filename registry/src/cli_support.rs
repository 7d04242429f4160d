//! What the four command-line tools share: log setup and reading a secret
//! (a passphrase, a recovery phrase) from a file, the environment or a
//! prompt. Behind the `cli` feature.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// The most of a secret's file read: its first line is the secret.
const MAX_SECRET_FILE: u64 = 64 << 10;

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
        use std::io::Read as _;
        let failed = |source| SecretError::File {
            path: path.to_owned(),
            source,
        };
        // A secret is its file's first line: read no more than that
        // could be, and only that line need be UTF-8.
        let mut bytes = Zeroizing::new(Vec::new());
        std::fs::File::open(path)
            .map_err(failed)?
            .take(MAX_SECRET_FILE)
            .read_to_end(&mut bytes)
            .map_err(failed)?;
        let line = match bytes.iter().position(|b| *b == b'\n') {
            Some(end) => &bytes[..end],
            None if bytes.len() as u64 >= MAX_SECRET_FILE => {
                return Err(failed(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "its first line is longer than a secret can be (64 KiB)",
                )));
            }
            None => &bytes[..],
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = std::str::from_utf8(line).map_err(|_| {
            failed(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "its first line is not UTF-8 text",
            ))
        })?;
        return Ok(Zeroizing::new(text.to_owned()));
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

    #[test]
    fn fail_a_secret_file_is_read_no_further_than_a_secret_can_be() {
        let dir = tempfile::tempdir().unwrap();
        let read = |bytes: &[u8]| {
            let path = dir.path().join("pass");
            std::fs::write(&path, bytes).unwrap();
            secret(Some(&path), "VOUCH_TEST_UNSET_VAR", "passphrase", false)
        };
        // A first line, then anything: only the line is read as text.
        let mut tail = b"pw with spaces\r\n".to_vec();
        tail.extend(std::iter::repeat_n(0xff, 200_000));
        assert_eq!(read(&tail).unwrap().as_str(), "pw with spaces");
        // No line end within 64 KiB, or a first line that is not UTF-8.
        let err = read(&vec![b'a'; 100_000]).unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
        let err = read(b"\xff\xfe\n").unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        assert_eq!(read(b"").unwrap().as_str(), "");
    }
}
