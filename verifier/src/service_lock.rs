//! The claim a running `vouch-verifier serve` holds on its directory.
//!
//! A service keeps the directory's stores (the replica, the nonce book)
//! open for as long as it runs, and sled lets one process at a time open a
//! store: a CLI on the same directory would wait on sled's lock and fail.
//! So the service takes an exclusive advisory lock (`flock`) on
//! `<dir>/service.lock`, before it opens the stores, and writes its URL
//! there once it listens; [`ServiceLock::check_free`] sees the lock at once
//! and names the service. The kernel drops the lock when the process ends,
//! however it ends: a file left behind by a killed service means nothing.
//!
//! The file is never removed (a service removing it while another opens it
//! could leave two services each holding a lock on a different file).

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use fs2::FileExt;

/// The lock file in a verifier's directory.
pub const SERVICE_LOCK_FILE: &str = "service.lock";

/// Longest URL read back from the lock file, in bytes.
const MAX_URL_BYTES: u64 = 1024;

/// Why the directory cannot be used, or the lock not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceLockError {
    /// A `vouch-verifier serve` runs on the directory.
    #[error(
        "{} is in use by a running `vouch-verifier serve`{}, which holds its replica and \
         nonce book: verify through the service ({}) or stop it first",
        dir.display(),
        url.as_deref().map(|u| format!(" at {u}")).unwrap_or_default(),
        url.as_deref().map_or_else(
            || "its page, or POST /api/verify".to_owned(),
            |u| format!("its page {u}/, or POST {u}/api/verify")
        )
    )]
    Served {
        /// The directory.
        dir: PathBuf,
        /// The service's URL, once it listens.
        url: Option<String>,
    },
    /// The lock file could not be opened, locked or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The lock a service holds on its directory, released when dropped (or
/// when the process ends).
#[derive(Debug)]
pub struct ServiceLock {
    file: File,
    path: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ServiceLockError + '_ {
    move |source| ServiceLockError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Whether `e` says another process holds the lock.
fn contended(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock
        || e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
}

/// The URL a service wrote in its lock file, if any that reads.
fn url_in(file: &mut File) -> Option<String> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(MAX_URL_BYTES).read_to_string(&mut text).ok()?;
    let url = text.trim();
    (!url.is_empty()).then(|| url.to_owned())
}

impl ServiceLock {
    /// Takes the lock on `dir` for a service.
    ///
    /// # Errors
    /// [`ServiceLockError::Served`] when another service holds it;
    /// [`ServiceLockError::Io`].
    pub fn acquire(dir: &Path) -> Result<Self, ServiceLockError> {
        let path = dir.join(SERVICE_LOCK_FILE);
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        // Called through the trait: std's `File` has lock methods of its own
        // (Rust 1.89), newer than this workspace's minimum Rust.
        // A CLI checking the directory holds a shared lock for an instant:
        // try a few times before calling it another service.
        let mut attempts = 0;
        loop {
            match FileExt::try_lock_exclusive(&file) {
                Ok(()) => break,
                Err(e) if contended(&e) && attempts < 10 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) if contended(&e) => {
                    return Err(ServiceLockError::Served {
                        dir: dir.to_owned(),
                        url: url_in(&mut file),
                    })
                }
                Err(e) => return Err(io(&path)(e)),
            }
        }
        // A URL left by a service that ended is no longer true.
        file.set_len(0).map_err(io(&path))?;
        Ok(Self { file, path })
    }

    /// Records the URL the service listens on, for a CLI to name.
    ///
    /// # Errors
    /// [`ServiceLockError::Io`].
    pub fn publish(&mut self, url: &str) -> Result<(), ServiceLockError> {
        let path = self.path.clone();
        self.file.set_len(0).map_err(io(&path))?;
        self.file.rewind().map_err(io(&path))?;
        self.file.write_all(url.as_bytes()).map_err(io(&path))?;
        self.file.flush().map_err(io(&path))
    }

    /// Checks that no service runs on `dir`, without waiting.
    ///
    /// # Errors
    /// [`ServiceLockError::Served`] when one does;
    /// [`ServiceLockError::Io`] when the lock file cannot be read.
    pub fn check_free(dir: &Path) -> Result<(), ServiceLockError> {
        let path = dir.join(SERVICE_LOCK_FILE);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            // No service ever ran here.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(&path)(e)),
        };
        // A shared lock is enough to tell, and two CLIs checking at once
        // do not see each other as a service.
        match FileExt::try_lock_shared(&file) {
            Ok(()) => {
                // Closing the file drops the lock too; an explicit unlock
                // failing changes nothing.
                let _ = FileExt::unlock(&file);
                Ok(())
            }
            Err(e) if contended(&e) => Err(ServiceLockError::Served {
                dir: dir.to_owned(),
                url: url_in(&mut file),
            }),
            Err(e) => Err(io(&path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_held_lock_is_seen_at_once_and_names_the_url() {
        let dir = tempfile::tempdir().unwrap();
        ServiceLock::check_free(dir.path()).unwrap();
        let mut lock = ServiceLock::acquire(dir.path()).unwrap();
        match ServiceLock::check_free(dir.path()) {
            Err(ServiceLockError::Served { url: None, .. }) => {}
            other => panic!("{other:?}"),
        }
        lock.publish("http://127.0.0.1:7500").unwrap();
        let err = ServiceLock::check_free(dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("in use by a running `vouch-verifier serve` at http://127.0.0.1:7500"),
            "{text}"
        );
        assert!(
            text.contains("POST http://127.0.0.1:7500/api/verify"),
            "{text}"
        );
        // A second service is refused the same way.
        assert!(matches!(
            ServiceLock::acquire(dir.path()),
            Err(ServiceLockError::Served { url: Some(_), .. })
        ));
        drop(lock);
        // Released: the file stays, and means nothing.
        ServiceLock::check_free(dir.path()).unwrap();
        let again = ServiceLock::acquire(dir.path()).unwrap();
        match ServiceLock::check_free(dir.path()) {
            // The old URL was cleared when the lock was taken again.
            Err(ServiceLockError::Served { url: None, .. }) => {}
            other => panic!("{other:?}"),
        }
        drop(again);
    }

    #[test]
    fn fail_a_directory_that_does_not_exist() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/dir");
        // Nothing runs there; taking the lock there fails with the path.
        ServiceLock::check_free(&missing).unwrap();
        let err = ServiceLock::acquire(&missing).unwrap_err();
        assert!(err.to_string().contains("service.lock"), "{err}");
    }
}
