//! vouch-e2e: end-to-end flows across all crates, the demo and the test vectors.
//!
//! The tests in `tests/tests/` drive the four command-line programs
//! (`vouch-registry`, `vouch-issuer`, `vouch-wallet`, `vouch-verifier`) as
//! separate processes, the way `scripts/demo` and a user run them. This
//! library finds those programs and keeps the servers a test starts from
//! outliving it.
//!
//! # How the binaries are found
//!
//! Cargo names a package's own binaries to its integration tests
//! (`CARGO_BIN_EXE_<name>`), but these binaries belong to other packages,
//! and `cargo test -p vouch-e2e` does not build them. Looking for them next
//! to the test executable is not enough either: they may be missing, or
//! left over from before the last edit of the crate under test. So
//! [`binaries`] runs `cargo build --bins` for the four packages once per
//! test process, with the Cargo that runs the test, into the same target
//! directory and profile the test executable was built in (read from the
//! executable's own path: `<target>/[<triple>/]<profile>/deps/<test>`).
//! When everything is fresh that build is a no-op of about a second; after
//! an edit it rebuilds exactly what changed, with Cargo's progress on
//! standard error.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The packages whose binaries the tests drive; each binary is named after
/// its package.
pub const PACKAGES: [&str; 4] = [
    "vouch-registry",
    "vouch-issuer",
    "vouch-wallet",
    "vouch-verifier",
];

/// Paths of the four command-line programs, freshly built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// `vouch-registry`: chain node, witness, accreditation.
    pub registry: PathBuf,
    /// `vouch-issuer`: batch issuance and revocation.
    pub issuer: PathBuf,
    /// `vouch-wallet`: the holder's credentials and presentations.
    pub wallet: PathBuf,
    /// `vouch-verifier`: requests, verification, the web service.
    pub verifier: PathBuf,
}

/// Why the binaries could not be built or found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocateError {
    /// The path of the running test executable is unknown.
    #[error("cannot tell where this test executable is: {0}")]
    CurrentExe(#[source] std::io::Error),
    /// The test executable is not where Cargo puts test executables.
    #[error(
        "{0} is not in a Cargo target directory (expected \
         <target>/[<triple>/]<profile>/deps/, with CACHEDIR.TAG in <target>)"
    )]
    Layout(PathBuf),
    /// Cargo could not be started.
    #[error("starting {cargo:?}: {source}")]
    Spawn {
        /// The Cargo program.
        cargo: OsString,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The build failed (Cargo printed why on standard error).
    #[error("`{command}` failed ({status})")]
    Build {
        /// The command run.
        command: String,
        /// How it ended.
        status: ExitStatus,
    },
    /// The build succeeded but a binary is not where Cargo puts it.
    #[error("{} was not built", .0.display())]
    Missing(PathBuf),
}

/// Where Cargo put the running test executable, as a build of the
/// binaries needs to reproduce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildLayout {
    /// The target directory (holds `CACHEDIR.TAG`).
    pub target_dir: PathBuf,
    /// The target triple, when the test was built with `--target`.
    pub triple: Option<String>,
    /// The profile directory's name (`debug`, `release`, or a custom
    /// profile's name).
    pub profile_dir: String,
}

impl BuildLayout {
    /// Reads the layout from a test executable's path,
    /// `<target>/[<triple>/]<profile>/deps/<test>`.
    ///
    /// # Errors
    /// [`LocateError::Layout`] when the path does not have that shape or no
    /// `CACHEDIR.TAG` marks the target directory.
    pub fn of_test_executable(exe: &Path) -> Result<Self, LocateError> {
        let layout = || LocateError::Layout(exe.to_owned());
        let deps = exe.parent().ok_or_else(layout)?;
        if deps.file_name().is_none_or(|n| n != "deps") {
            return Err(layout());
        }
        let profile = deps.parent().ok_or_else(layout)?;
        let profile_dir = profile
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(layout)?
            .to_owned();
        let above = profile.parent().ok_or_else(layout)?;
        if above.join("CACHEDIR.TAG").is_file() {
            return Ok(Self {
                target_dir: above.to_owned(),
                triple: None,
                profile_dir,
            });
        }
        let target_dir = above.parent().ok_or_else(layout)?;
        let triple = above.file_name().and_then(|n| n.to_str());
        match triple {
            Some(triple) if target_dir.join("CACHEDIR.TAG").is_file() => Ok(Self {
                target_dir: target_dir.to_owned(),
                triple: Some(triple.to_owned()),
                profile_dir,
            }),
            _ => Err(layout()),
        }
    }

    /// The Cargo profile that builds into [`BuildLayout::profile_dir`]
    /// (`debug` is the `dev` profile's directory).
    pub fn profile(&self) -> &str {
        match self.profile_dir.as_str() {
            "debug" => "dev",
            other => other,
        }
    }

    /// The directory the binaries land in.
    pub fn bin_dir(&self) -> PathBuf {
        let mut dir = self.target_dir.clone();
        if let Some(triple) = &self.triple {
            dir.push(triple);
        }
        dir.push(&self.profile_dir);
        dir
    }

    /// The `cargo build` arguments that build the four binaries into this
    /// layout (the target directory is passed in `CARGO_TARGET_DIR`).
    pub fn build_args(&self, manifest: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "build".into(),
            "--manifest-path".into(),
            manifest.into(),
            "--profile".into(),
            self.profile().into(),
            "--bins".into(),
        ];
        if let Some(triple) = &self.triple {
            args.push("--target".into());
            args.push(triple.into());
        }
        for p in PACKAGES {
            args.push("-p".into());
            args.push(p.into());
        }
        args
    }
}

/// The four binaries, built (once per process) as the module docs say.
///
/// # Errors
/// A [`LocateError`] when the layout is not Cargo's, Cargo cannot run, the
/// build fails or a binary is missing afterwards; the same error for every
/// later call in the process.
pub fn binaries() -> Result<&'static Binaries, &'static LocateError> {
    static BINARIES: OnceLock<Result<Binaries, LocateError>> = OnceLock::new();
    BINARIES.get_or_init(build).as_ref()
}

fn build() -> Result<Binaries, LocateError> {
    let exe = std::env::current_exe().map_err(LocateError::CurrentExe)?;
    let layout = BuildLayout::of_test_executable(&exe)?;
    // The Cargo running this test sets CARGO; the one that compiled it is
    // the next best; then whatever `cargo` is on the PATH.
    let cargo = std::env::var_os("CARGO")
        .or_else(|| option_env!("CARGO").map(OsString::from))
        .unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("Cargo.toml");
    let args = layout.build_args(&manifest);
    let command = format!(
        "CARGO_TARGET_DIR={} {} {}",
        layout.target_dir.display(),
        cargo.to_string_lossy(),
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let status = Command::new(&cargo)
        .args(&args)
        .env("CARGO_TARGET_DIR", &layout.target_dir)
        .status()
        .map_err(|source| LocateError::Spawn {
            cargo: cargo.clone(),
            source,
        })?;
    if !status.success() {
        return Err(LocateError::Build { command, status });
    }
    let dir = layout.bin_dir();
    let path = |name: &str| {
        let p = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
        if p.is_file() {
            Ok(p)
        } else {
            Err(LocateError::Missing(p))
        }
    };
    Ok(Binaries {
        registry: path(PACKAGES[0])?,
        issuer: path(PACKAGES[1])?,
        wallet: path(PACKAGES[2])?,
        verifier: path(PACKAGES[3])?,
    })
}

/// A child process (a server the test started) that is killed and reaped
/// when dropped, so it never outlives the test, even one that fails.
#[derive(Debug)]
pub struct Running {
    name: String,
    child: Option<Child>,
}

impl Running {
    /// Starts `command`; `name` says which server it is in messages.
    ///
    /// # Errors
    /// When the process cannot be started.
    pub fn spawn(name: &str, command: &mut Command) -> std::io::Result<Self> {
        let child = command.spawn()?;
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id, while it runs.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it is still running (`None`), else how it ended.
    ///
    /// # Errors
    /// When the process cannot be asked.
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        match &mut self.child {
            Some(c) => c.try_wait(),
            None => Ok(None),
        }
    }

    /// Kills it the hard way (SIGKILL on Unix: no shutdown code runs) and
    /// waits for it to be gone.
    ///
    /// # Errors
    /// When it cannot be killed or reaped.
    pub fn kill(&mut self) -> std::io::Result<()> {
        if let Some(mut child) = self.child.take() {
            if child.try_wait()?.is_none() {
                child.kill()?;
            }
            child.wait()?;
        }
        Ok(())
    }

    /// Asks it to stop the way Ctrl-C does (SIGINT on Unix), then waits
    /// at most `grace` before killing it.
    ///
    /// # Errors
    /// When the signal cannot be sent or the process cannot be reaped.
    pub fn interrupt(&mut self, grace: Duration) -> std::io::Result<Option<ExitStatus>> {
        let Some(child) = &mut self.child else {
            return Ok(None);
        };
        #[cfg(unix)]
        {
            let status = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()?;
            if !status.success() {
                return Err(std::io::Error::other(format!(
                    "kill -INT {} failed ({status})",
                    child.id()
                )));
            }
            let until = Instant::now() + grace;
            while Instant::now() < until {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    return Ok(Some(status));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        #[cfg(not(unix))]
        let _ = grace;
        self.kill()?;
        Ok(None)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Best effort: a process that is already gone needs nothing.
        let _ = self.kill();
    }
}

/// Polls `check` every 50 ms until it returns `Some`, for at most
/// `timeout`.
pub fn wait_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(root: &Path) -> PathBuf {
        let t = root.join("target");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(
            t.join("CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55",
        )
        .unwrap();
        t
    }

    #[test]
    fn layout_of_a_debug_test() {
        let tmp = tempfile::tempdir().unwrap();
        let t = target(tmp.path());
        let l = BuildLayout::of_test_executable(&t.join("debug/deps/flow-0123")).unwrap();
        assert_eq!(
            l,
            BuildLayout {
                target_dir: t.clone(),
                triple: None,
                profile_dir: "debug".into()
            }
        );
        assert_eq!(l.profile(), "dev");
        assert_eq!(l.bin_dir(), t.join("debug"));
        let args = l.build_args(Path::new("/w/Cargo.toml"));
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "build",
                "--manifest-path",
                "/w/Cargo.toml",
                "--profile",
                "dev",
                "--bins",
                "-p",
                "vouch-registry",
                "-p",
                "vouch-issuer",
                "-p",
                "vouch-wallet",
                "-p",
                "vouch-verifier"
            ]
        );
    }

    #[test]
    fn layout_of_a_release_test_for_another_target() {
        let tmp = tempfile::tempdir().unwrap();
        let t = target(tmp.path());
        let exe = t.join("aarch64-unknown-linux-gnu/release/deps/flow-0123");
        let l = BuildLayout::of_test_executable(&exe).unwrap();
        assert_eq!(l.triple.as_deref(), Some("aarch64-unknown-linux-gnu"));
        assert_eq!(l.profile(), "release");
        assert_eq!(
            l.bin_dir(),
            t.join("aarch64-unknown-linux-gnu").join("release")
        );
        let args = l.build_args(Path::new("Cargo.toml"));
        assert!(args
            .windows(2)
            .any(|w| w[0] == "--target" && w[1] == "aarch64-unknown-linux-gnu"));
    }

    #[test]
    fn fail_paths_that_are_not_a_cargo_layout() {
        let tmp = tempfile::tempdir().unwrap();
        let t = target(tmp.path());
        for exe in [
            // Not in deps/.
            t.join("debug/flow"),
            // No CACHEDIR.TAG above the profile directory.
            tmp.path().join("elsewhere/debug/deps/flow"),
            // Too shallow.
            PathBuf::from("deps/flow"),
            PathBuf::from("flow"),
        ] {
            assert!(
                matches!(
                    BuildLayout::of_test_executable(&exe),
                    Err(LocateError::Layout(_))
                ),
                "{}",
                exe.display()
            );
        }
    }

    #[test]
    fn a_running_process_is_killed_when_dropped() {
        let mut sleeper = Running::spawn("sleeper", Command::new("sleep").arg("30")).unwrap();
        assert_eq!(sleeper.name(), "sleeper");
        let pid = sleeper.id().unwrap();
        assert!(sleeper.try_wait().unwrap().is_none());
        drop(sleeper);
        // Reaped: the pid no longer names our child.
        let alive = Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!alive.success());
    }

    #[test]
    fn wait_until_gives_up() {
        let start = Instant::now();
        assert_eq!(wait_until(Duration::from_millis(120), || None::<()>), None);
        assert!(start.elapsed() >= Duration::from_millis(120));
        let mut n = 0;
        assert_eq!(
            wait_until(Duration::from_secs(5), || {
                n += 1;
                (n == 3).then_some(n)
            }),
            Some(3)
        );
    }
}
