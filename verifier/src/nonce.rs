//! The nonce book: every presentation request this verifier issued, so a
//! nonce is accepted once, and only before its request expires.
//!
//! Two sled trees in the verifier's own `Db` (`<dir>/nonces`):
//! `open` (nonce → request text) for requests not yet answered, and `used`
//! (nonce → request text) for those answered, kept until they expire so a
//! replay is refused as a replay. [`NonceBook::redeem`] moves a nonce from
//! `open` to `used` with sled's `remove`, which returns the entry to exactly
//! one caller: two presentations racing with one nonce cannot both pass.
//! Open requests have a quota; expired entries are swept.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::rngs::OsRng;
use vouch_core::presentation_request::{fresh_nonce, PresentationRequest, RequestError};
use vouch_core::ClaimPath;

/// Why the book refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// The quota of open requests is used up (after sweeping expired ones).
    #[error("{open} presentation requests are open, the most this verifier keeps; try again when some expire")]
    Full {
        /// Requests open.
        open: usize,
    },
    /// The request could not be made (a bad audience or too many claims).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// Another process holds the nonce book (a `vouch-verifier serve` on
    /// the same directory, say).
    #[error("the nonce book in {dir} is in use: {why} (is `vouch-verifier serve` running on this directory?)")]
    Locked {
        /// The directory.
        dir: std::path::PathBuf,
        /// Why.
        why: String,
    },
    /// Storage failed.
    #[error("nonce storage: {0}")]
    Storage(#[from] sled::Error),
    /// A redemption could not be saved: the presentation is not accepted
    /// (each accepted in a batch whose redemptions were saved together is
    /// answered with this error). The nonce stays used in memory: sent
    /// again, the presentation reads as a replay.
    #[error("nonce storage: the redemptions could not be saved: {0}")]
    Unsaved(#[source] std::sync::Arc<sled::Error>),
}

/// What the book says about a nonce a presentation answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NonceState {
    /// Issued here, open, not expired: the request it belongs to.
    Open(PresentationRequest),
    /// Issued here and already answered: a replay.
    Used(PresentationRequest),
    /// Issued here, expired unanswered.
    Expired(PresentationRequest),
    /// Never issued here (or long expired and swept).
    Unknown,
}

/// The book.
#[derive(Debug)]
pub struct NonceBook {
    db: sled::Db,
    open: sled::Tree,
    used: sled::Tree,
    max_open: usize,
    /// How many entries `open` holds: sled's `Tree::len` walks the whole
    /// tree, which made issuing n requests take O(n²). Counted once at open,
    /// then kept by every insert and remove here.
    open_len: AtomicUsize,
}

fn read(value: &[u8]) -> Option<PresentationRequest> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|t| PresentationRequest::parse(t).ok())
}

impl NonceBook {
    /// Opens (creating) the book in `dir`, keeping at most `max_open` open
    /// requests.
    ///
    /// # Errors
    /// [`NonceError::Storage`].
    pub fn open(dir: &Path, max_open: usize) -> Result<Self, NonceError> {
        let db = vouch_registry::store::open_sled(dir, 4 << 20).map_err(|e| match e {
            vouch_registry::store::OpenError::Sled(e) => NonceError::from(e),
            other => NonceError::Locked {
                dir: dir.to_owned(),
                why: other.to_string(),
            },
        })?;
        let open = db.open_tree("open")?;
        let open_len = AtomicUsize::new(open.len());
        Ok(Self {
            open,
            used: db.open_tree("used")?,
            db,
            max_open,
            open_len,
        })
    }

    /// Issues a request from `aud` for `claims`, open for `ttl` seconds from
    /// `now`, with a fresh nonce, and records it.
    ///
    /// # Errors
    /// [`NonceError::Full`] when `max_open` requests are open after the
    /// expired ones are swept; [`NonceError::Request`]; storage.
    pub fn issue(
        &self,
        aud: &str,
        claims: Vec<ClaimPath>,
        ttl: u64,
        now: i64,
    ) -> Result<PresentationRequest, NonceError> {
        if self.open_count() >= self.max_open {
            self.sweep(now)?;
            let open = self.open_count();
            if open >= self.max_open {
                return Err(NonceError::Full { open });
            }
        }
        let expires = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
        let request = PresentationRequest::new(aud, fresh_nonce(&mut OsRng), expires, claims)?;
        let replaced = self
            .open
            .insert(request.nonce().as_bytes(), request.to_text().as_bytes())?;
        if replaced.is_none() {
            self.open_len.fetch_add(1, Ordering::Relaxed);
        }
        self.db.flush()?;
        Ok(request)
    }

    /// What the book knows about `nonce` at `now`, changing nothing.
    ///
    /// # Errors
    /// Storage.
    pub fn state(&self, nonce: &str, now: i64) -> Result<NonceState, NonceError> {
        if let Some(request) = self.open.get(nonce.as_bytes())?.and_then(|v| read(&v)) {
            return Ok(if request.is_expired(now) {
                NonceState::Expired(request)
            } else {
                NonceState::Open(request)
            });
        }
        Ok(
            match self.used.get(nonce.as_bytes())?.and_then(|v| read(&v)) {
                Some(request) => NonceState::Used(request),
                None => NonceState::Unknown,
            },
        )
    }

    /// Marks `nonce` used, at most once: the state it was in. Only an
    /// [`NonceState::Open`] answer means this caller redeemed it.
    ///
    /// # Errors
    /// Storage.
    pub fn redeem(&self, nonce: &str, now: i64) -> Result<NonceState, NonceError> {
        let (state, wrote) = self.redeem_unsaved(nonce, now)?;
        if wrote {
            self.save()?;
        }
        Ok(state)
    }

    /// As [`NonceBook::redeem`], without saving: also whether it wrote
    /// (then [`NonceBook::save`] must succeed before anyone is told the
    /// nonce was accepted).
    pub(crate) fn redeem_unsaved(
        &self,
        nonce: &str,
        now: i64,
    ) -> Result<(NonceState, bool), NonceError> {
        let Some(value) = self.open.remove(nonce.as_bytes())? else {
            return Ok((self.state(nonce, now)?, false));
        };
        self.open_len.fetch_sub(1, Ordering::Relaxed);
        let Some(request) = read(&value) else {
            return Ok((NonceState::Unknown, true));
        };
        self.used.insert(nonce.as_bytes(), value)?;
        Ok((
            if request.is_expired(now) {
                NonceState::Expired(request)
            } else {
                NonceState::Open(request)
            },
            true,
        ))
    }

    /// Writes what was redeemed to disk.
    ///
    /// # Errors
    /// Storage.
    pub(crate) fn save(&self) -> Result<(), sled::Error> {
        self.db.flush().map(|_| ())
    }

    /// Requests open now (expired ones included until swept).
    pub fn open_count(&self) -> usize {
        self.open_len.load(Ordering::Relaxed)
    }

    /// Removes every entry expired at `now`; returns how many.
    ///
    /// # Errors
    /// Storage.
    pub fn sweep(&self, now: i64) -> Result<usize, NonceError> {
        let mut removed = 0;
        for tree in [&self.open, &self.used] {
            let expired: Vec<sled::IVec> = tree
                .iter()
                .filter_map(Result::ok)
                .filter(|(_, v)| read(v).is_none_or(|r| r.is_expired(now)))
                .map(|(k, _)| k)
                .collect();
            for key in expired {
                if tree.remove(key)?.is_some() {
                    removed += 1;
                    if std::ptr::eq(tree, &self.open) {
                        self.open_len.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
        }
        self.db.flush()?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn book(name: &str, max: usize) -> (NonceBook, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("vouch-nonces-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (NonceBook::open(&dir, max).unwrap(), dir)
    }

    #[test]
    fn a_nonce_is_redeemed_once() {
        let (b, dir) = book("once", 10);
        let r = b.issue("hr", Vec::new(), 60, 1000).unwrap();
        assert_eq!(
            b.state(r.nonce(), 1001).unwrap(),
            NonceState::Open(r.clone())
        );
        assert_eq!(
            b.redeem(r.nonce(), 1001).unwrap(),
            NonceState::Open(r.clone())
        );
        assert_eq!(
            b.redeem(r.nonce(), 1002).unwrap(),
            NonceState::Used(r.clone())
        );
        assert_eq!(
            b.state("nope-nope-nope-nope", 1002).unwrap(),
            NonceState::Unknown
        );
        drop(b);
        // Durable.
        let b = NonceBook::open(&dir, 10).unwrap();
        assert_eq!(b.state(r.nonce(), 1003).unwrap(), NonceState::Used(r));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_expired_request_is_refused_and_swept() {
        let (b, dir) = book("expiry", 10);
        let r = b.issue("hr", Vec::new(), 60, 1000).unwrap();
        assert_eq!(
            b.state(r.nonce(), 1060).unwrap(),
            NonceState::Expired(r.clone())
        );
        assert_eq!(b.sweep(1060).unwrap(), 1);
        assert_eq!(b.redeem(r.nonce(), 1061).unwrap(), NonceState::Unknown);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_open_count_follows_issue_redeem_sweep_and_reopen() {
        let (b, dir) = book("count", 10);
        let r1 = b.issue("hr", Vec::new(), 60, 1000).unwrap();
        let _r2 = b.issue("hr", Vec::new(), 60, 1000).unwrap();
        let _r3 = b.issue("hr", Vec::new(), 120, 1000).unwrap();
        assert_eq!(b.open_count(), 3);
        b.redeem(r1.nonce(), 1001).unwrap();
        b.redeem(r1.nonce(), 1002).unwrap();
        assert_eq!(b.open_count(), 2);
        // r2 expires at 1060 (r1, used, goes too); r3 stays.
        assert_eq!(b.sweep(1060).unwrap(), 2);
        assert_eq!(b.open_count(), 1);
        assert_eq!(b.open_count(), b.open.len());
        drop(b);
        let b = NonceBook::open(&dir, 10).unwrap();
        assert_eq!(b.open_count(), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn fail_over_quota() {
        let (b, dir) = book("quota", 2);
        b.issue("hr", Vec::new(), 60, 1000).unwrap();
        b.issue("hr", Vec::new(), 60, 1000).unwrap();
        assert!(matches!(
            b.issue("hr", Vec::new(), 60, 1000),
            Err(NonceError::Full { open: 2 })
        ));
        // Once they expire, the sweep frees room.
        assert!(b.issue("hr", Vec::new(), 60, 1100).is_ok());
        assert!(matches!(
            b.issue("", Vec::new(), 60, 1100),
            Err(NonceError::Request(_))
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}
