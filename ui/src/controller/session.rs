//! The wallet session: locked or open, and the long operations that open
//! one (each runs the passphrase KDF, so the wiring runs them off the UI
//! thread).

use std::path::{Path, PathBuf};

use rand_core::CryptoRngCore;
use vouch_core::seal::Cost;
use vouch_wallet::backup::MAX_BACKUP_BYTES;
use vouch_wallet::keys::{KeyError, RecoveryPhrase};
use vouch_wallet::store::{Store, StoreError};
use vouch_wallet::{Wallet, WalletError};

use super::onboarding::{self, PassphraseError};

/// Why opening, creating or using the wallet failed, in words the views
/// show as they are.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The wallet is locked (auto-lock ran, or the Lock button).
    #[error("the wallet is locked; unlock it first")]
    Locked,
    /// Nothing typed in the passphrase field.
    #[error("type your passphrase")]
    EmptyPassphrase,
    /// The passphrase does not open the wallet.
    #[error("that passphrase does not open this wallet; check caps lock and try again")]
    WrongPassphrase,
    /// A new passphrase was refused.
    #[error(transparent)]
    NewPassphrase(#[from] PassphraseError),
    /// The recovery phrase typed for a restore.
    #[error("that is not a valid recovery phrase (a word is misspelt, missing, or not from the BIP-39 list)")]
    Phrase(#[source] KeyError),
    /// No backup file named for a restore.
    #[error("type the path of the backup file (made by Settings or `vouch-wallet backup`)")]
    NoBackupFile,
    /// The backup file could not be read.
    #[error("cannot read the backup file {path}: {source}")]
    BackupFile {
        /// The path as typed.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Any other wallet error.
    #[error(transparent)]
    Wallet(WalletError),
}

impl From<WalletError> for SessionError {
    fn from(e: WalletError) -> Self {
        match e {
            WalletError::Store(StoreError::WrongPassphrase) => SessionError::WrongPassphrase,
            other => SessionError::Wallet(other),
        }
    }
}

/// The wallet directory and, when unlocked, the open wallet.
#[derive(Debug)]
pub struct Session {
    dir: PathBuf,
    cost: Cost,
    wallet: Option<Wallet>,
}

impl Session {
    /// A locked session over the wallet in `dir`; new passphrases are
    /// stretched at `cost` ([`Cost::DEFAULT`] for real use).
    pub fn new(dir: PathBuf, cost: Cost) -> Session {
        Session {
            dir,
            cost,
            wallet: None,
        }
    }

    /// The wallet directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The KDF cost for new passphrases.
    pub fn cost(&self) -> Cost {
        self.cost
    }

    /// Whether `dir` holds a wallet yet (else the first-run view).
    pub fn exists(&self) -> bool {
        Store::exists(&self.dir)
    }

    /// Whether the wallet is unlocked.
    pub fn is_open(&self) -> bool {
        self.wallet.is_some()
    }

    /// Keeps `wallet` as the open wallet.
    pub fn set_open(&mut self, wallet: Wallet) {
        self.wallet = Some(wallet);
    }

    /// Locks: the open wallet (and its keys) is dropped.
    pub fn lock(&mut self) {
        self.wallet = None;
    }

    /// Takes the open wallet out (locking the session).
    pub fn take(&mut self) -> Option<Wallet> {
        self.wallet.take()
    }

    /// The open wallet.
    ///
    /// # Errors
    /// [`SessionError::Locked`].
    pub fn wallet(&self) -> Result<&Wallet, SessionError> {
        self.wallet.as_ref().ok_or(SessionError::Locked)
    }

    /// The open wallet, to change.
    ///
    /// # Errors
    /// [`SessionError::Locked`].
    pub fn wallet_mut(&mut self) -> Result<&mut Wallet, SessionError> {
        self.wallet.as_mut().ok_or(SessionError::Locked)
    }
}

/// Creates a wallet in `dir` under a new passphrase typed twice. Slow: the
/// KDF runs.
///
/// # Errors
/// [`SessionError::NewPassphrase`]; wallet errors (a wallet already there).
pub fn create(
    dir: &Path,
    passphrase: &str,
    again: &str,
    cost: Cost,
    rng: &mut impl CryptoRngCore,
) -> Result<(Wallet, RecoveryPhrase), SessionError> {
    onboarding::check_new(passphrase, again)?;
    Ok(Wallet::create(dir, passphrase, cost, rng)?)
}

/// Restores a wallet into an empty `dir` from a typed recovery phrase. Slow.
///
/// # Errors
/// [`SessionError::Phrase`], [`SessionError::NewPassphrase`]; wallet errors
/// (the directory holds a wallet).
pub fn restore(
    dir: &Path,
    phrase: &str,
    passphrase: &str,
    again: &str,
    cost: Cost,
    rng: &mut impl CryptoRngCore,
) -> Result<Wallet, SessionError> {
    let phrase = RecoveryPhrase::parse(phrase).map_err(SessionError::Phrase)?;
    onboarding::check_new(passphrase, again)?;
    Ok(Wallet::restore(dir, passphrase, cost, &phrase, rng)?)
}

/// Restores a wallet into an empty `dir` from a backup file at `path` (as
/// typed) made by [`Wallet::backup`]; the backup's passphrase becomes the
/// wallet's. Slow: scrypt opens the backup, then the KDF runs.
///
/// # Errors
/// [`SessionError::NoBackupFile`], [`SessionError::EmptyPassphrase`],
/// [`SessionError::BackupFile`]; wallet errors: not a backup, the wrong
/// passphrase, a damaged backup, a wallet already in `dir`. Nothing is
/// created then.
pub fn restore_backup(
    dir: &Path,
    path: &str,
    passphrase: &str,
    cost: Cost,
    rng: &mut impl CryptoRngCore,
) -> Result<Wallet, SessionError> {
    let typed = path.trim();
    if typed.is_empty() {
        return Err(SessionError::NoBackupFile);
    }
    if passphrase.is_empty() {
        return Err(SessionError::EmptyPassphrase);
    }
    let bytes = read_capped(Path::new(typed), MAX_BACKUP_BYTES).map_err(|source| {
        SessionError::BackupFile {
            path: typed.to_owned(),
            source,
        }
    })?;
    Ok(Wallet::restore_backup(dir, &bytes, passphrase, cost, rng)?)
}

/// At most `max` + 1 bytes of the file at `path`: one byte over is enough
/// for the reader to refuse it as too large without reading it all.
fn read_capped(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max.saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Opens the wallet in `dir`. Slow.
///
/// # Errors
/// [`SessionError::EmptyPassphrase`], [`SessionError::WrongPassphrase`];
/// wallet errors.
pub fn unlock(dir: &Path, passphrase: &str) -> Result<Wallet, SessionError> {
    if passphrase.is_empty() {
        return Err(SessionError::EmptyPassphrase);
    }
    Ok(Wallet::open(dir, passphrase)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn create_lock_and_unlock_with_the_right_passphrase_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("w");
        let mut rng = StdRng::seed_from_u64(1);
        let mut session = Session::new(dir.clone(), Cost::TEST);
        assert!(!session.exists());
        assert!(matches!(
            create(&dir, "long enough", "long enougH", Cost::TEST, &mut rng),
            Err(SessionError::NewPassphrase(PassphraseError::Differ))
        ));
        let (wallet, phrase) =
            create(&dir, "long enough", "long enough", Cost::TEST, &mut rng).unwrap();
        assert_eq!(phrase.words().len(), 24);
        session.set_open(wallet);
        assert!(session.exists() && session.is_open());
        session.lock();
        assert!(matches!(session.wallet(), Err(SessionError::Locked)));
        assert!(matches!(
            unlock(&dir, "wrong passphrase"),
            Err(SessionError::WrongPassphrase)
        ));
        assert!(matches!(
            unlock(&dir, ""),
            Err(SessionError::EmptyPassphrase)
        ));
        session.set_open(unlock(&dir, "long enough").unwrap());
        assert!(session.wallet().is_ok());
    }

    #[test]
    fn fail_restore_from_a_mistyped_phrase_then_restore_the_same_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(2);
        let (mut first, phrase) = create(
            &tmp.path().join("a"),
            "long enough",
            "long enough",
            Cost::TEST,
            &mut rng,
        )
        .unwrap();
        let did = first.receive(0, &mut rng).unwrap();
        let line = phrase.to_line();
        let mistyped = line.replacen(phrase.words()[3], "notaword", 1);
        let dir = tmp.path().join("b");
        assert!(matches!(
            restore(
                &dir,
                &mistyped,
                "long enough",
                "long enough",
                Cost::TEST,
                &mut rng
            ),
            Err(SessionError::Phrase(_))
        ));
        let mut back = restore(
            &dir,
            &line,
            "long enough",
            "long enough",
            Cost::TEST,
            &mut rng,
        )
        .unwrap();
        // The same keys: a credential issued to the DID handed out before
        // imports. A new DID is one not handed out before (the wallet
        // restored from cannot say which it gave out, so none is reused).
        let issued = crate::controller::tests_support::transcript(&did);
        back.import(&issued, None, 0, &mut rng).unwrap();
        assert_ne!(back.receive(0, &mut rng).unwrap(), did);
    }

    #[test]
    fn fail_restore_from_a_wrong_file_or_passphrase_then_restore_the_backup() {
        let (tmp, wallet, id) = crate::controller::tests_support::wallet_with_transcript();
        let mut rng = StdRng::seed_from_u64(3);
        let file = tmp.path().join("wallet.backup");
        std::fs::write(&file, wallet.backup("backup passphrase").unwrap()).unwrap();
        let not_a_backup = tmp.path().join("notes.txt");
        std::fs::write(&not_a_backup, "shopping list").unwrap();
        let dir = tmp.path().join("restored");
        let path = file.display().to_string();
        let other = not_a_backup.display().to_string();
        let refused = [
            ("  ", "backup passphrase", "type the path"),
            (path.as_str(), "", "type your passphrase"),
            (
                "/no/such/backup",
                "backup passphrase",
                "cannot read the backup file",
            ),
            (other.as_str(), "backup passphrase", "not a wallet backup"),
            (
                path.as_str(),
                "not the passphrase",
                "wrong backup passphrase",
            ),
        ];
        for (path, pass, why) in refused {
            let e = restore_backup(&dir, path, pass, Cost::TEST, &mut rng).unwrap_err();
            assert!(e.to_string().contains(why), "{why:?} in {e}");
            assert!(!dir.exists(), "nothing created after: {e}");
        }
        let typed = format!(" {path}\n");
        let back = restore_backup(&dir, &typed, "backup passphrase", Cost::TEST, &mut rng).unwrap();
        let ids: Vec<String> = back.list(0).unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(ids, [id]);
        drop(back);
        assert!(unlock(&dir, "backup passphrase").is_ok());
        // A second restore into the same directory is refused.
        let e = restore_backup(&dir, &path, "backup passphrase", Cost::TEST, &mut rng).unwrap_err();
        assert!(e.to_string().contains("already holds one"), "{e}");
    }
}
