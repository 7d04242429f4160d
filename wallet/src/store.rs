//! The wallet's store: one sled `Db` in `<dir>/store` where every record is
//! sealed (XChaCha20-Poly1305) under a random data key, and the data key is
//! sealed under Argon2id of the passphrase.
//!
//! What is on disk in the clear: the format marker, the KDF parameters and
//! salt, the sealed data key, and each record's table letter and random or
//! sequential id. No claim, key, DID or credential-to-issuer link. A record's
//! table and id are bound into its seal, so records cannot be swapped or
//! moved between tables without failing to open.

use std::path::{Path, PathBuf};

use rand_core::CryptoRngCore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use vouch_core::seal::{self, Cost, Key, SealError};

/// The format marker, also the prefix of every associated-data string.
const FORMAT: &[u8] = b"vouch-wallet/1";
/// Largest sealed record read back (a credential is a few kB; a 1 MiB
/// SD-JWT is the largest core accepts).
const MAX_RECORD: usize = 2 << 20;
/// The start of the name of a store being built beside `<dir>/store`.
const NEW_STORE_PREFIX: &str = ".store.new-";

/// The kinds of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Credentials, by random id.
    Credentials,
    /// Holder keys handed out, by index.
    Keys,
    /// What was shared, by sequence number.
    Activity,
    /// Settings and counters, by name.
    Settings,
    /// The recovery phrase's entropy.
    Secrets,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 5] = [
        Table::Credentials,
        Table::Keys,
        Table::Activity,
        Table::Settings,
        Table::Secrets,
    ];

    /// The table's letter.
    pub fn letter(self) -> char {
        char::from(self.tag())
    }

    /// The table of a letter.
    pub fn from_letter(letter: char) -> Option<Table> {
        Self::ALL.into_iter().find(|t| t.letter() == letter)
    }

    fn tag(self) -> u8 {
        match self {
            Table::Credentials => b'c',
            Table::Keys => b'k',
            Table::Activity => b'a',
            Table::Settings => b's',
            Table::Secrets => b'x',
        }
    }
}

/// Why the store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No wallet in this directory.
    #[error("no wallet in {0} (create one with `vouch-wallet init`)")]
    NoWallet(PathBuf),
    /// A wallet already exists here.
    #[error("{0} already holds a wallet; refusing to overwrite it")]
    Exists(PathBuf),
    /// The passphrase does not open the data key.
    #[error("wrong passphrase (nothing was changed)")]
    WrongPassphrase,
    /// Another process has the wallet open.
    #[error("the wallet in {0} is open in another process")]
    Locked(PathBuf),
    /// A record would be larger, sealed, than a record may be.
    #[error("record {record} would be {bytes} bytes sealed; a wallet record may be at most {MAX_RECORD} bytes (nothing was changed)")]
    TooLarge {
        /// The record's table letter and id.
        record: String,
        /// Its sealed size.
        bytes: usize,
    },
    /// A record or the key header could not be opened or parsed.
    #[error("the wallet store is damaged: {0}")]
    Damaged(String),
    /// Sealing or deriving failed (bad KDF parameters, empty passphrase).
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The database.
    #[error("wallet database: {0}")]
    Sled(#[from] sled::Error),
    /// File system.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Serialize, Deserialize)]
struct KdfHeader {
    kdf: String,
    cost: Cost,
    salt: String,
}

/// An open wallet store.
pub struct Store {
    db: sled::Db,
    records: sled::Tree,
    data_key: Key,
    dir: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// One write of a batch: put a value, or remove the record.
pub enum Write<'a> {
    /// Seal and store `value` at (`table`, `id`).
    Put(Table, &'a [u8], Vec<u8>),
    /// Remove (`table`, `id`).
    Remove(Table, &'a [u8]),
}

impl Store {
    /// Whether `dir` holds a wallet store.
    pub fn exists(dir: &Path) -> bool {
        dir.join("store").join("db").is_file()
    }

    /// Creates a store in `dir` under `passphrase`, with a fresh data key.
    ///
    /// # Errors
    /// As [`Store::create_holding`].
    pub fn create(
        dir: &Path,
        passphrase: &str,
        cost: Cost,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Store, StoreError> {
        Self::create_holding(dir, passphrase, cost, &[], rng)
    }

    /// Creates a store in `dir` under `passphrase`, with a fresh data key,
    /// holding `records` from the start. The store is built in a new
    /// directory beside `<dir>/store` and renamed into place once it is
    /// whole and flushed, so a crash or a full disk leaves either no
    /// wallet (and `dir` free for another try) or the whole new one.
    ///
    /// # Errors
    /// [`StoreError::Exists`] when `dir` already holds one (or a `store`
    /// that is not one); [`StoreError::TooLarge`], sealing and I/O errors
    /// (no wallet then). Should syncing `dir` or reopening the store fail
    /// after the rename, the error is returned though the wallet is in
    /// place, whole: opening it says so.
    pub fn create_holding(
        dir: &Path,
        passphrase: &str,
        cost: Cost,
        records: &[Write<'_>],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Store, StoreError> {
        if Self::exists(dir) {
            return Err(StoreError::Exists(dir.to_owned()));
        }
        if passphrase.is_empty() {
            return Err(SealError::EmptyPassphrase.into());
        }
        cost.check()?;
        std::fs::create_dir_all(dir)?;
        let mut nonce = [0u8; 8];
        rng.fill_bytes(&mut nonce);
        let building = dir.join(format!("{NEW_STORE_PREFIX}{}", hex::encode(nonce)));
        let data_key = Key::random(rng);
        let built = (|| {
            let db = open_sled_at(&building, dir)?;
            let meta = db.open_tree("meta")?;
            let mut batch = sled::Batch::default();
            batch.insert(b"format".as_slice(), FORMAT);
            for (k, v) in wrap(&data_key, passphrase, cost, rng)? {
                batch.insert(k, v);
            }
            meta.apply_batch(batch)?;
            db.open_tree("records")?
                .apply_batch(sealed_batch(&data_key, records, rng)?)?;
            db.flush()?;
            drop(db);
            // The files in it are on disk before it is renamed into place.
            sync_dir(&building)?;
            Ok::<_, StoreError>(())
        })();
        let placed = built.and_then(|()| {
            // The database is closed (dropped above) before it moves.
            std::fs::rename(&building, dir.join("store")).map_err(|e| {
                if dir.join("store").exists() {
                    StoreError::Exists(dir.to_owned())
                } else {
                    e.into()
                }
            })
        });
        if let Err(e) = placed {
            // Best effort: what is left is never opened as a wallet.
            let _ = std::fs::remove_dir_all(&building);
            return Err(e);
        }
        sync_dir(dir)?;
        remove_unfinished(dir);
        let db = open_db(dir)?;
        let records = db.open_tree("records")?;
        Ok(Store {
            db,
            records,
            data_key,
            dir: dir.to_owned(),
        })
    }

    /// Opens the store in `dir` with `passphrase`. Reads only.
    ///
    /// # Errors
    /// [`StoreError::NoWallet`], [`StoreError::WrongPassphrase`],
    /// [`StoreError::Locked`], [`StoreError::Damaged`].
    pub fn open(dir: &Path, passphrase: &str) -> Result<Store, StoreError> {
        if !Self::exists(dir) {
            return Err(StoreError::NoWallet(dir.to_owned()));
        }
        let db = open_db(dir)?;
        let meta = db.open_tree("meta")?;
        if meta.get(b"format")?.as_deref() != Some(FORMAT) {
            return Err(StoreError::Damaged(
                "no vouch-wallet/1 format marker".into(),
            ));
        }
        let header = meta
            .get(b"kdf")?
            .ok_or_else(|| StoreError::Damaged("no KDF header".into()))?;
        let sealed = meta
            .get(b"data-key")?
            .ok_or_else(|| StoreError::Damaged("no data key".into()))?;
        let parsed: KdfHeader = serde_json::from_slice(&header)
            .map_err(|e| StoreError::Damaged(format!("KDF header: {e}")))?;
        if parsed.kdf != "argon2id" {
            return Err(StoreError::Damaged(format!(
                "KDF {:?} is not argon2id",
                parsed.kdf
            )));
        }
        let salt = hex::decode(&parsed.salt)
            .map_err(|_| StoreError::Damaged("KDF salt is not hex".into()))?;
        let kek = Key::derive(passphrase, &salt, parsed.cost)?;
        let bytes = kek.open(&key_aad(&header), &sealed).map_err(|e| match e {
            SealError::WrongKey => StoreError::WrongPassphrase,
            other => other.into(),
        })?;
        let bytes: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Damaged("data key is not 32 bytes".into()))?;
        let records = db.open_tree("records")?;
        Ok(Store {
            db,
            records,
            data_key: Key::from_bytes(bytes),
            dir: dir.to_owned(),
        })
    }

    /// The KDF cost the passphrase is wrapped under now.
    ///
    /// # Errors
    /// [`StoreError::Damaged`] when the header does not parse.
    pub fn cost(&self) -> Result<Cost, StoreError> {
        let header = self
            .db
            .open_tree("meta")?
            .get(b"kdf")?
            .ok_or_else(|| StoreError::Damaged("no KDF header".into()))?;
        let parsed: KdfHeader = serde_json::from_slice(&header)
            .map_err(|e| StoreError::Damaged(format!("KDF header: {e}")))?;
        Ok(parsed.cost)
    }

    /// The wallet's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Re-wraps the data key under `passphrase` (a new salt); records are
    /// untouched. Atomic: the old passphrase works until the new one does.
    ///
    /// # Errors
    /// Sealing and database errors; nothing changes on error.
    pub fn change_passphrase(
        &self,
        passphrase: &str,
        cost: Cost,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), StoreError> {
        let meta = self.db.open_tree("meta")?;
        let mut batch = sled::Batch::default();
        for (k, v) in wrap(&self.data_key, passphrase, cost, rng)? {
            batch.insert(k, v);
        }
        meta.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// Seals `value` as JSON at (`table`, `id`) and flushes.
    ///
    /// # Errors
    /// Database errors.
    pub fn put<T: Serialize>(
        &self,
        table: Table,
        id: &[u8],
        value: &T,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), StoreError> {
        self.write(&[Write::Put(table, id, to_json(value)?)], rng)
    }

    /// Applies `writes` atomically (all or none) and flushes before
    /// returning.
    ///
    /// # Errors
    /// Database errors; nothing is written then.
    pub fn write(
        &self,
        writes: &[Write<'_>],
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), StoreError> {
        let batch = sealed_batch(&self.data_key, writes, rng)?;
        self.records.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// The record at (`table`, `id`), if any.
    ///
    /// # Errors
    /// [`StoreError::Damaged`] when it does not open or parse.
    pub fn get<T: DeserializeOwned>(
        &self,
        table: Table,
        id: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.records.get(record_key(table, id))? {
            None => Ok(None),
            Some(sealed) => self.unseal(table, id, &sealed).map(Some),
        }
    }

    /// Every record of `table`, in id order.
    ///
    /// # Errors
    /// [`StoreError::Damaged`] for the first record that does not open.
    pub fn all<T: DeserializeOwned>(&self, table: Table) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        self.records
            .scan_prefix([table.tag()])
            .map(|item| {
                let (key, sealed) = item?;
                let id = key[1..].to_vec();
                let value = self.unseal(table, &id, &sealed)?;
                Ok((id, value))
            })
            .collect()
    }

    /// The next sequence number of `table`, whose ids are big-endian
    /// `u64`s: one past the last (0 when empty).
    ///
    /// # Errors
    /// Database errors; [`StoreError::Damaged`] for an id that is not 8
    /// bytes.
    pub fn next_number(&self, table: Table) -> Result<u64, StoreError> {
        match self.records.scan_prefix([table.tag()]).next_back() {
            None => Ok(0),
            Some(item) => {
                let (key, _) = item?;
                let id: [u8; 8] = key[1..]
                    .try_into()
                    .map_err(|_| StoreError::Damaged("a sequence id is not 8 bytes".into()))?;
                Ok(u64::from_be_bytes(id).saturating_add(1))
            }
        }
    }

    fn unseal<T: DeserializeOwned>(
        &self,
        table: Table,
        id: &[u8],
        sealed: &[u8],
    ) -> Result<T, StoreError> {
        let what = || format!("record {}", record_name(table, id));
        if sealed.len() > MAX_RECORD {
            return Err(StoreError::Damaged(format!(
                "{} is {} bytes",
                what(),
                sealed.len()
            )));
        }
        let json = self
            .data_key
            .open(&record_aad(table, id), sealed)
            .map_err(|e| StoreError::Damaged(format!("{} does not open: {e}", what())))?;
        serde_json::from_slice(&json).map_err(|e| StoreError::Damaged(format!("{}: {e}", what())))
    }
}

/// Serialises a record.
///
/// # Errors
/// [`StoreError::Damaged`] when the value does not serialise (a map with
/// non-string keys; none of the wallet's types has one).
pub fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Damaged(format!("serialising a record: {e}")))
}

fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    open_sled_at(&dir.join("store"), dir)
}

/// The sled database at `path`, for the wallet in `dir`.
fn open_sled_at(path: &Path, dir: &Path) -> Result<sled::Db, StoreError> {
    use vouch_registry::store::{open_sled, OpenError};
    open_sled(path, 64 << 20).map_err(|e| match e {
        OpenError::Locked => StoreError::Locked(dir.to_owned()),
        OpenError::Sled(e) => StoreError::Sled(e),
        other => StoreError::Damaged(other.to_string()),
    })
}

/// A record of the `meta` tree: its name and bytes.
type MetaRecord = (&'static [u8], Vec<u8>);

fn wrap(
    data_key: &Key,
    passphrase: &str,
    cost: Cost,
    rng: &mut impl CryptoRngCore,
) -> Result<[MetaRecord; 2], StoreError> {
    let salt = seal::new_salt(rng);
    let kek = Key::derive(passphrase, &salt, cost)?;
    let header = to_json(&KdfHeader {
        kdf: "argon2id".into(),
        cost,
        salt: hex::encode(salt),
    })?;
    let sealed = kek.seal(&key_aad(&header), data_key.as_bytes(), rng);
    Ok([(b"kdf", header), (b"data-key", sealed)])
}

fn key_aad(header: &[u8]) -> Vec<u8> {
    [FORMAT, b"\ndata-key\n", header].concat()
}

/// The batch that makes `writes`, each record sealed under `key`.
///
/// # Errors
/// [`StoreError::TooLarge`] for a record too large to be read back.
fn sealed_batch(
    key: &Key,
    writes: &[Write<'_>],
    rng: &mut impl CryptoRngCore,
) -> Result<sled::Batch, StoreError> {
    let mut batch = sled::Batch::default();
    for w in writes {
        match w {
            Write::Put(table, id, json) => {
                let sealed = key.seal(&record_aad(*table, id), json, rng);
                if sealed.len() > MAX_RECORD {
                    return Err(StoreError::TooLarge {
                        record: record_name(*table, id),
                        bytes: sealed.len(),
                    });
                }
                batch.insert(record_key(*table, id), sealed);
            }
            Write::Remove(table, id) => batch.remove(record_key(*table, id)),
        }
    }
    Ok(batch)
}

/// Removes what interrupted creations left in `dir` (best effort: a
/// directory another creation is still building makes that one fail,
/// which it would anyway, as `dir` now holds a wallet).
fn remove_unfinished(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(NEW_STORE_PREFIX))
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn record_name(table: Table, id: &[u8]) -> String {
    format!("{}/{}", table.letter(), hex::encode(id))
}

fn record_key(table: Table, id: &[u8]) -> Vec<u8> {
    [&[table.tag()], id].concat()
}

fn record_aad(table: Table, id: &[u8]) -> Vec<u8> {
    [FORMAT, b"\n", &[table.tag()], b"\n", id].concat()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn records_round_trip_and_wrong_passphrase_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        {
            let store = Store::create(dir.path(), "pw", Cost::TEST, &mut rng).unwrap();
            store
                .put(Table::Settings, b"registry", &"http://x", &mut rng)
                .unwrap();
        }
        assert!(matches!(
            Store::open(dir.path(), "nope"),
            Err(StoreError::WrongPassphrase)
        ));
        let store = Store::open(dir.path(), "pw").unwrap();
        assert_eq!(
            store
                .get::<String>(Table::Settings, b"registry")
                .unwrap()
                .unwrap(),
            "http://x"
        );
        assert_eq!(store.get::<String>(Table::Keys, b"registry").unwrap(), None);
        store
            .change_passphrase("new", Cost::TEST, &mut rng)
            .unwrap();
        drop(store);
        assert!(matches!(
            Store::open(dir.path(), "pw"),
            Err(StoreError::WrongPassphrase)
        ));
        let store = Store::open(dir.path(), "new").unwrap();
        assert_eq!(store.all::<String>(Table::Settings).unwrap().len(), 1);
        assert!(matches!(
            Store::create(dir.path(), "pw", Cost::TEST, &mut rng),
            Err(StoreError::Exists(_))
        ));
    }

    #[test]
    fn fail_swapped_record_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(4);
        let store = Store::create(dir.path(), "pw", Cost::TEST, &mut rng).unwrap();
        store.put(Table::Settings, b"a", &1u32, &mut rng).unwrap();
        let sealed = store
            .records
            .get(record_key(Table::Settings, b"a"))
            .unwrap()
            .unwrap();
        store
            .records
            .insert(record_key(Table::Settings, b"b"), sealed.clone())
            .unwrap();
        store
            .records
            .insert(record_key(Table::Keys, b"a"), sealed)
            .unwrap();
        assert!(matches!(
            store.get::<u32>(Table::Settings, b"b"),
            Err(StoreError::Damaged(_))
        ));
        assert!(matches!(
            store.get::<u32>(Table::Keys, b"a"),
            Err(StoreError::Damaged(_))
        ));
        assert_eq!(store.get::<u32>(Table::Settings, b"a").unwrap(), Some(1));
    }

    #[test]
    fn fail_a_record_too_large_to_read_back_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(5);
        let store = Store::create(dir.path(), "pw", Cost::TEST, &mut rng).unwrap();
        let huge = to_json(&"x".repeat(MAX_RECORD)).unwrap();
        let err = store
            .write(
                &[
                    Write::Put(Table::Settings, b"small", to_json(&1u32).unwrap()),
                    Write::Put(Table::Settings, b"huge", huge),
                ],
                &mut rng,
            )
            .unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
        assert!(store.all::<u32>(Table::Settings).unwrap().is_empty());
    }

    #[test]
    fn fail_a_create_that_fails_leaves_no_wallet_and_the_directory_free() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(6);
        // What a crash while building would leave behind.
        std::fs::create_dir_all(dir.path().join(".store.new-0011223344556677")).unwrap();
        let huge = to_json(&"x".repeat(MAX_RECORD)).unwrap();
        let refused = Store::create_holding(
            dir.path(),
            "pw",
            Cost::TEST,
            &[Write::Put(Table::Settings, b"huge", huge)],
            &mut rng,
        );
        assert!(matches!(refused, Err(StoreError::TooLarge { .. })));
        assert!(!Store::exists(dir.path()));
        let store = Store::create_holding(
            dir.path(),
            "pw",
            Cost::TEST,
            &[Write::Put(Table::Settings, b"a", to_json(&7u32).unwrap())],
            &mut rng,
        )
        .unwrap();
        assert_eq!(store.get::<u32>(Table::Settings, b"a").unwrap(), Some(7));
        drop(store);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["store"], "nothing but the store is left");
        let store = Store::open(dir.path(), "pw").unwrap();
        assert_eq!(store.get::<u32>(Table::Settings, b"a").unwrap(), Some(7));
    }

    #[test]
    fn fail_open_without_a_wallet() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Store::open(dir.path(), "pw"),
            Err(StoreError::NoWallet(_))
        ));
        assert!(
            !dir.path().join("store").exists(),
            "opening creates nothing"
        );
    }
}
