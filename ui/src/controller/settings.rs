//! Settings: the auto-lock time and a passphrase change.

use std::time::{Duration, Instant};

use rand_core::CryptoRngCore;
use vouch_wallet::store::Table;
use vouch_wallet::{Wallet, WalletError};

use super::onboarding::{self, PassphraseError};
use super::session::{self, Session, SessionError};

/// Auto-lock minutes when none is set.
pub const DEFAULT_AUTO_LOCK_MINUTES: u32 = 5;
/// Largest auto-lock time offered.
pub const MAX_AUTO_LOCK_MINUTES: u32 = 240;
/// The settings record the auto-lock time is kept in (sealed in the
/// wallet's store, read after unlocking).
const AUTO_LOCK_KEY: &[u8] = b"app.auto-lock-minutes";

/// Locks the wallet after a time without use.
#[derive(Debug, Clone)]
pub struct AutoLock {
    minutes: u32,
    last_use: Instant,
}

impl AutoLock {
    /// Locks after `minutes` without use; 0 never locks.
    pub fn new(minutes: u32, now: Instant) -> AutoLock {
        AutoLock {
            minutes: minutes.min(MAX_AUTO_LOCK_MINUTES),
            last_use: now,
        }
    }

    /// The time set, in minutes (0: never).
    pub fn minutes(&self) -> u32 {
        self.minutes
    }

    /// Sets the time (capped at [`MAX_AUTO_LOCK_MINUTES`]).
    pub fn set_minutes(&mut self, minutes: u32) {
        self.minutes = minutes.min(MAX_AUTO_LOCK_MINUTES);
    }

    /// The wallet was used at `now`.
    pub fn touch(&mut self, now: Instant) {
        self.last_use = now;
    }

    /// Whether it is time to lock.
    pub fn due(&self, now: Instant) -> bool {
        self.minutes > 0
            && now.saturating_duration_since(self.last_use)
                >= Duration::from_secs(u64::from(self.minutes) * 60)
    }
}

/// The auto-lock time kept in the wallet, else the default.
///
/// # Errors
/// Store errors.
pub fn auto_lock_minutes(wallet: &Wallet) -> Result<u32, WalletError> {
    Ok(wallet
        .store()
        .get::<u32>(Table::Settings, AUTO_LOCK_KEY)?
        .unwrap_or(DEFAULT_AUTO_LOCK_MINUTES)
        .min(MAX_AUTO_LOCK_MINUTES))
}

/// Keeps the auto-lock time in the wallet.
///
/// # Errors
/// Store errors.
pub fn set_auto_lock_minutes(
    wallet: &Wallet,
    minutes: u32,
    rng: &mut impl CryptoRngCore,
) -> Result<(), WalletError> {
    wallet.store().put(
        Table::Settings,
        AUTO_LOCK_KEY,
        &minutes.min(MAX_AUTO_LOCK_MINUTES),
        rng,
    )?;
    Ok(())
}

/// Changes the passphrase after checking the current one. The wallet
/// library has no passphrase check on an open wallet, so the open wallet is
/// closed and reopened with `current` (the store allows one opener); if
/// `current` is wrong the session stays locked and the error says so.
/// Slow: the KDF runs twice.
///
/// # Errors
/// [`SessionError::NewPassphrase`] (nothing changed, still open);
/// [`SessionError::WrongPassphrase`] (locked); store errors.
pub fn change_passphrase(
    session: &mut Session,
    current: &str,
    new: &str,
    again: &str,
    rng: &mut impl CryptoRngCore,
) -> Result<(), SessionError> {
    onboarding::check_new(new, again).map_err(SessionError::NewPassphrase)?;
    if current == new {
        return Err(SessionError::NewPassphrase(PassphraseError::Same));
    }
    session.wallet()?;
    drop(session.take());
    let wallet = session::unlock(session.dir(), current)?;
    wallet.change_passphrase(new, session.cost(), rng)?;
    session.set_open(wallet);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use vouch_core::seal::Cost;

    #[test]
    fn auto_lock_after_the_minutes_set_and_never_at_zero() {
        let start = Instant::now();
        let mut lock = AutoLock::new(5, start);
        assert!(!lock.due(start + Duration::from_secs(299)));
        assert!(lock.due(start + Duration::from_secs(300)));
        lock.touch(start + Duration::from_secs(200));
        assert!(!lock.due(start + Duration::from_secs(400)));
        lock.set_minutes(0);
        assert!(!lock.due(start + Duration::from_secs(100_000)));
        lock.set_minutes(10_000);
        assert_eq!(lock.minutes(), MAX_AUTO_LOCK_MINUTES);
    }

    #[test]
    fn auto_lock_time_is_kept_in_the_wallet() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let dir = tmp.path().join("w");
        let (wallet, _) = Wallet::create(&dir, "long enough", Cost::TEST, &mut rng).unwrap();
        assert_eq!(
            auto_lock_minutes(&wallet).unwrap(),
            DEFAULT_AUTO_LOCK_MINUTES
        );
        set_auto_lock_minutes(&wallet, 12, &mut rng).unwrap();
        drop(wallet);
        let wallet = Wallet::open(&dir, "long enough").unwrap();
        assert_eq!(auto_lock_minutes(&wallet).unwrap(), 12);
    }

    #[test]
    fn fail_change_with_a_wrong_current_passphrase_then_change_it() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(2);
        let dir = tmp.path().join("w");
        let mut session = Session::new(dir.clone(), Cost::TEST);
        let (wallet, _) = Wallet::create(&dir, "long enough", Cost::TEST, &mut rng).unwrap();
        session.set_open(wallet);
        assert!(matches!(
            change_passphrase(
                &mut session,
                "long enough",
                "new one!",
                "new one?",
                &mut rng
            ),
            Err(SessionError::NewPassphrase(PassphraseError::Differ))
        ));
        assert!(session.is_open());
        assert!(matches!(
            change_passphrase(
                &mut session,
                "not it at all",
                "new one!",
                "new one!",
                &mut rng
            ),
            Err(SessionError::WrongPassphrase)
        ));
        assert!(!session.is_open());
        session.set_open(session::unlock(&dir, "long enough").unwrap());
        change_passphrase(
            &mut session,
            "long enough",
            "new one!",
            "new one!",
            &mut rng,
        )
        .unwrap();
        assert!(session.is_open());
        session.lock();
        assert!(session::unlock(&dir, "long enough").is_err());
        assert!(session::unlock(&dir, "new one!").is_ok());
    }
}
