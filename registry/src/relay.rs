//! The relay: a small mailbox for encrypted presentations, apart from the
//! chain.
//!
//! Anyone may upload, so everything about it is bounded:
//!
//! - **Its own sled `Db`** (`<node dir>/relay`), not a tree of the chain's
//!   `Db`. A tree shares the chain's segment files, cache and flusher: bytes
//!   written there grow the chain's files, a write error from a full disk
//!   surfaces in the chain's next write, and sled's `size_on_disk` cannot tell
//!   relay bytes from chain bytes, so a quota could not be checked on disk. A
//!   separate `Db` has its own files whose size is measured before each upload.
//! - **A byte quota** over the items kept (each counted with a fixed overhead,
//!   so tiny items cannot hide), and a ceiling on the relay's files on disk
//!   (sled keeps some garbage until it rewrites a segment). When either is
//!   reached, uploads are refused with [`RelayError::Full`].
//! - **A per-client rate limit** ([`crate::rate`]): a fixed window per IP
//!   address (IPv6 by /64), with a bounded number of clients per window.
//! - **Expiry that frees space**: an index by expiry time lets
//!   [`Relay::sweep`] remove exactly the expired items; an upload that finds
//!   the quota full sweeps first.
//! - **Fetch-once is atomic**: a read-once item is taken with sled's `remove`,
//!   which returns the value to exactly one caller.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rand::RngCore as _;

use crate::rate::{RateError, RateLimit};

/// Bytes counted against the quota for each item on top of its blob: the
/// key, the header and the expiry index entry, rounded up.
pub const ITEM_OVERHEAD: u64 = 128;

/// The relay's bounds.
#[derive(Debug, Clone)]
pub struct RelayLimits {
    /// Largest blob, bytes.
    pub max_item_bytes: usize,
    /// Most bytes kept at once (blobs plus [`ITEM_OVERHEAD`] each).
    pub max_total_bytes: u64,
    /// Most bytes the relay's files may take on disk.
    pub max_disk_bytes: u64,
    /// Longest time an item is kept, seconds.
    pub max_ttl: u64,
    /// Uploads one client may make per window.
    pub puts_per_window: u32,
    /// The rate limit's window.
    pub window: Duration,
    /// Most distinct clients tracked per window; others are refused until
    /// the window ends.
    pub max_clients: usize,
    /// sled's page cache for the relay, bytes.
    pub cache_bytes: u64,
}

impl Default for RelayLimits {
    fn default() -> Self {
        Self {
            max_item_bytes: crate::wire::MAX_RELAY_BYTES,
            max_total_bytes: 256 << 20,
            max_disk_bytes: 1 << 30,
            max_ttl: crate::wire::MAX_RELAY_TTL,
            puts_per_window: 60,
            window: Duration::from_secs(60),
            max_clients: 10_000,
            cache_bytes: 16 << 20,
        }
    }
}

/// Why the relay refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The upload is empty.
    #[error("relay body is empty")]
    Empty,
    /// The upload is larger than [`RelayLimits::max_item_bytes`].
    #[error("relay body is {len} bytes; the limit is {limit}")]
    TooLarge {
        /// Bytes sent.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The time to keep it is 0 or over [`RelayLimits::max_ttl`].
    #[error("ttl must be 1..={max} seconds, not {ttl}")]
    BadTtl {
        /// Asked for.
        ttl: u64,
        /// The limit.
        max: u64,
    },
    /// The quota is used up.
    #[error("the relay is full ({what}); try again later")]
    Full {
        /// Which limit: the byte quota or the disk ceiling.
        what: &'static str,
    },
    /// This client has uploaded too often in this window.
    #[error("too many relay uploads from this address; at most {limit} per {window_secs} s")]
    RateLimited {
        /// Uploads per window.
        limit: u32,
        /// The window, seconds.
        window_secs: u64,
    },
    /// Too many different clients in this window.
    #[error("the relay is busy (too many clients); try again in {window_secs} s")]
    Busy {
        /// The window, seconds.
        window_secs: u64,
    },
    /// The relay's storage failed.
    #[error("relay storage: {0}")]
    Storage(#[from] sled::Error),
}

/// The relay store.
#[derive(Debug)]
pub struct Relay {
    db: sled::Db,
    /// id (16 bytes) → expires (i64 BE) | once (1 byte) | blob.
    items: sled::Tree,
    /// expires (i64 BE, clamped at 0) | id → nothing.
    by_expiry: sled::Tree,
    /// Bytes counted against the quota.
    used: Mutex<u64>,
    rate: RateLimit,
    limits: RelayLimits,
}

/// An item's header: expiry and whether it is read once.
fn header(value: &[u8]) -> (i64, bool) {
    let expires = value
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, i64::from_be_bytes);
    (expires, value.get(8) == Some(&1))
}

fn cost(value_len: usize) -> u64 {
    (value_len as u64).saturating_add(ITEM_OVERHEAD)
}

fn expiry_key(expires: i64, id: &[u8]) -> Vec<u8> {
    let mut k = expires.max(0).to_be_bytes().to_vec();
    k.extend_from_slice(id);
    k
}

impl Relay {
    /// Opens (or creates) the relay store in directory `dir`.
    ///
    /// # Errors
    /// [`RelayError::Storage`] when sled cannot open it (e.g. another process
    /// holds it).
    pub fn open(dir: &Path, limits: RelayLimits) -> Result<Self, RelayError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(limits.cache_bytes)
            .open()?;
        let items = db.open_tree("items")?;
        let by_expiry = db.open_tree("by_expiry")?;
        let mut used = 0u64;
        for item in items.iter() {
            let (_, v) = item?;
            used = used.saturating_add(cost(v.len()));
        }
        Ok(Self {
            db,
            items,
            by_expiry,
            used: Mutex::new(used),
            rate: RateLimit::new(limits.puts_per_window, limits.window, limits.max_clients),
            limits,
        })
    }

    /// The relay's limits.
    pub fn limits(&self) -> &RelayLimits {
        &self.limits
    }

    /// Bytes counted against the quota now.
    pub fn used(&self) -> u64 {
        *self
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Items kept now (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn release(&self, bytes: u64) {
        let mut used = self
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *used = used.saturating_sub(bytes);
    }

    /// Reserves `bytes` of the quota, or says it is full.
    fn reserve(&self, bytes: u64) -> bool {
        let mut used = self
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if used.saturating_add(bytes) > self.limits.max_total_bytes {
            return false;
        }
        *used += bytes;
        true
    }

    /// Counts one upload from `client` (`None` when the address is unknown,
    /// e.g. in-process calls: those share one counter).
    fn admit(&self, client: Option<IpAddr>) -> Result<(), RelayError> {
        self.rate.admit(client).map_err(|e| match e {
            RateError::Limited { limit, window_secs } => {
                RelayError::RateLimited { limit, window_secs }
            }
            RateError::Busy { window_secs } => RelayError::Busy { window_secs },
        })
    }

    /// Stores `blob` for `ttl` seconds from `now` (read once if `once`);
    /// returns its id and expiry time. Checks size, ttl, the client's rate
    /// and the quota before writing anything.
    ///
    /// # Errors
    /// [`RelayError`] naming the limit hit; nothing is stored then.
    pub fn put(
        &self,
        client: Option<IpAddr>,
        blob: &[u8],
        ttl: u64,
        once: bool,
        now: i64,
    ) -> Result<([u8; 16], i64), RelayError> {
        if blob.is_empty() {
            return Err(RelayError::Empty);
        }
        if blob.len() > self.limits.max_item_bytes {
            return Err(RelayError::TooLarge {
                len: blob.len(),
                limit: self.limits.max_item_bytes,
            });
        }
        if ttl == 0 || ttl > self.limits.max_ttl {
            return Err(RelayError::BadTtl {
                ttl,
                max: self.limits.max_ttl,
            });
        }
        self.admit(client)?;
        let expires = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
        let mut value = Vec::with_capacity(9 + blob.len());
        value.extend_from_slice(&expires.to_be_bytes());
        value.push(u8::from(once));
        value.extend_from_slice(blob);
        let bytes = cost(value.len());
        if self.db.size_on_disk()? > self.limits.max_disk_bytes {
            self.sweep(now)?;
            return Err(RelayError::Full {
                what: "disk ceiling",
            });
        }
        if !self.reserve(bytes) {
            self.sweep(now)?;
            if !self.reserve(bytes) {
                return Err(RelayError::Full { what: "byte quota" });
            }
        }
        let mut id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut id);
        // The index first: a crash between the two writes leaves an index
        // entry without an item, which the sweep drops harmlessly.
        let written = self
            .by_expiry
            .insert(expiry_key(expires, &id), &[])
            .and_then(|_| self.items.insert(id, value));
        if let Err(e) = written {
            self.release(bytes);
            return Err(e.into());
        }
        Ok((id, expires))
    }

    /// Writes everything to disk.
    ///
    /// # Errors
    /// [`RelayError::Storage`].
    pub async fn flush(&self) -> Result<(), RelayError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// Removes item `id`, releasing its quota; returns its value when this
    /// call removed it.
    fn remove(&self, id: &[u8]) -> Result<Option<sled::IVec>, RelayError> {
        let Some(value) = self.items.remove(id)? else {
            return Ok(None);
        };
        self.release(cost(value.len()));
        let (expires, _) = header(&value);
        self.by_expiry.remove(expiry_key(expires, id))?;
        Ok(Some(value))
    }

    /// The blob of item `id` if it is there and not expired at `now`. A
    /// read-once item is removed by this call and returned to this caller
    /// only.
    ///
    /// # Errors
    /// [`RelayError::Storage`].
    pub fn take(&self, id: &[u8; 16], now: i64) -> Result<Option<Vec<u8>>, RelayError> {
        let Some(value) = self.items.get(id)? else {
            return Ok(None);
        };
        let (expires, once) = header(&value);
        if expires < now {
            self.remove(id)?;
            return Ok(None);
        }
        let value = if once {
            // Whoever removes it gets it; a concurrent taker gets `None`.
            match self.remove(id)? {
                Some(v) => v,
                None => return Ok(None),
            }
        } else {
            value
        };
        Ok(value.get(9..).map(<[u8]>::to_vec))
    }

    /// Removes the items expired at `now`; returns how many.
    ///
    /// # Errors
    /// [`RelayError::Storage`].
    pub fn sweep(&self, now: i64) -> Result<usize, RelayError> {
        let mut removed = 0;
        let end = now.max(0).to_be_bytes();
        for item in self.by_expiry.range(..end.as_slice()) {
            let (k, _) = item?;
            if let Some(id) = k.get(8..) {
                if self.remove(id)?.is_some() {
                    removed += 1;
                }
            }
            self.by_expiry.remove(k)?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sweep_frees_the_quota_and_reopening_recounts_it() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("relay");
        let limits = RelayLimits {
            max_total_bytes: 3 * (ITEM_OVERHEAD + 9 + 100),
            ..RelayLimits::default()
        };
        {
            let relay = Relay::open(&dir, limits.clone()).unwrap();
            for _ in 0..3 {
                relay.put(None, &[1; 100], 10, true, 1000).unwrap();
            }
            assert!(matches!(
                relay.put(None, &[1; 100], 10, true, 1000),
                Err(RelayError::Full { .. })
            ));
            // Once they expire, the next upload sweeps them and fits.
            relay.put(None, &[1; 100], 10, true, 2000).unwrap();
            assert_eq!(relay.len(), 1);
            assert_eq!(relay.used(), ITEM_OVERHEAD + 9 + 100);
        }
        // sled releases its file lock from a background thread shortly
        // after the last handle is dropped.
        let mut tries = 0;
        let relay = loop {
            match Relay::open(&dir, limits.clone()) {
                Ok(r) => break r,
                Err(_) if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(relay.used(), ITEM_OVERHEAD + 9 + 100);
        assert_eq!(relay.sweep(5000).unwrap(), 1);
        assert_eq!(relay.used(), 0);
        assert!(relay.is_empty());
    }
}
