//! The signatures of concurrent checks, verified as one batch.
//!
//! A presentation carries two Ed25519 signatures (the issuer's JWT and the
//! holder's KB-JWT). Checked alone they cost one batch equation of two
//! signatures; checked with other presentations' in one equation, the
//! equation's fixed cost (its doublings) is shared and the issuer's key,
//! which repeats, is one term for the whole batch.
//!
//! [`SignatureBatcher`] gathers them from the threads that check
//! presentations at the same time ([`crate::Checker::check`]): each caller
//! [`SignatureBatcher::enter`]s before it prepares its presentation
//! ([`vouch_core::verify::prepare`]: every check but the two signatures)
//! and [`Entry::submit`]s the signatures. The first to submit opens a
//! batch; the others join it while it is open. The batch closes when it
//! holds [`BatchConfig::max`] presentations, when it has been open for
//! [`BatchConfig::window`], or (adaptive, the default) as soon as waiting
//! longer would leave a core idle: when no other caller is still preparing,
//! or fewer callers are busy than there are cores, or the batch holds two
//! presentations per core (its members idle while one core checks it).
//! The member whose arrival closes it (it is full, or waiting longer would
//! leave a core idle), or else the first member when its wait ends, checks
//! it ([`vouch_core::verify::check_batch`]) and wakes the others. Members
//! yield their core a few times before they sleep, and a wake-up is made
//! only for a member that sleeps: each sleep and wake-up is a hand-off
//! between threads, which costs about what checking a small batch saves.
//!
//! There is no worker thread: the callers do the work, so a lone caller
//! checks its own signatures at once, without a hand-off to another thread
//! and back, and several batches can be checked at the same time on
//! several cores. Nothing outlives the callers, so there is nothing to
//! shut down: a batch is always closed and checked by one of its own
//! members, and a member that panics while checking still wakes the
//! others, whose presentations are then checked alone.
//!
//! A batch that does not hold is narrowed down to its bad presentations
//! by halves ([`vouch_core::verify::check_batch`]); those left unmarked
//! are checked alone ([`vouch_core::verify::Prepared::finish`]). A bad
//! presentation thus costs the others in its batch time, never their
//! verdict; and a batch (or half) that holds holds exactly when each
//! presentation's own check would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use vouch_core::verify::{check_batch, Signatures};

/// How presentations are gathered into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Most presentations in one batch (at least 1; 1 checks each alone).
    pub max: usize,
    /// Longest a batch stays open for more presentations.
    pub window: Duration,
    /// Whether a batch closes as soon as waiting would leave a core idle
    /// (no other caller preparing, fewer busy callers than cores, or two
    /// presentations per core gathered already). When
    /// off, a batch waits for [`BatchConfig::max`] presentations or the
    /// whole [`BatchConfig::window`] (for tests that need a given batch).
    pub adaptive: bool,
}

impl BatchConfig {
    /// Batches of at most 64 presentations, open at most 2 ms, closed as
    /// soon as waiting would leave a core idle (so, adaptive, of at most
    /// two per core).
    pub const DEFAULT: BatchConfig = BatchConfig {
        max: 64,
        window: Duration::from_millis(2),
        adaptive: true,
    };
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What a [`SignatureBatcher`] has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BatchStats {
    /// Batches of two or more presentations checked as one equation.
    pub batches: u64,
    /// Presentations in those batches.
    pub presentations: u64,
    /// Those batches that did not hold (narrowed down by halves, those
    /// left then checked alone).
    pub failed: u64,
    /// Presentations submitted that made a batch of their own (checked
    /// alone when finished).
    pub alone: u64,
}

/// Gathers the signatures of concurrent checks into batches; see the
/// module documentation.
pub struct SignatureBatcher {
    config: BatchConfig,
    /// Cores the callers share.
    cores: usize,
    state: Mutex<State>,
    /// Signalled when a caller submits, stops preparing, or a batch has
    /// been checked: an open batch's first member may stop waiting.
    changed: Condvar,
}

impl std::fmt::Debug for SignatureBatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureBatcher")
            .field("config", &self.config)
            .field("cores", &self.cores)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    /// The batch open for more presentations, if any.
    open: Option<Open>,
    /// Callers between [`SignatureBatcher::enter`] and submitting.
    preparing: usize,
    /// Batches being checked.
    checking: usize,
    /// First members of batches sleeping on [`SignatureBatcher::changed`]
    /// (none: nobody needs waking there).
    first_sleeping: usize,
    stats: BatchStats,
}

struct Open {
    batch: Arc<Batch>,
    sets: Vec<Signatures>,
    opened: Instant,
}

/// Times a waiting member yields its core before it sleeps: checking a
/// small batch takes tens of microseconds, about what a sleep and a
/// wake-up cost, and a yield lets the thread checking it (or any other)
/// run meanwhile.
const YIELDS: usize = 64;

/// One batch's end, which its members wait for.
#[derive(Default)]
struct Batch {
    /// Set once the batch has been checked.
    checked: AtomicBool,
    /// Members sleeping on `done`.
    sleepers: Mutex<usize>,
    done: Condvar,
}

impl Batch {
    /// Returns once the batch has been checked: yields first, then sleeps.
    fn wait(&self) {
        for _ in 0..YIELDS {
            if self.checked.load(Ordering::Acquire) {
                return;
            }
            std::thread::yield_now();
        }
        let mut sleepers = self.sleepers.lock().unwrap_or_else(PoisonError::into_inner);
        *sleepers += 1;
        while !self.checked.load(Ordering::Acquire) {
            sleepers = self
                .done
                .wait(sleepers)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *sleepers -= 1;
    }

    /// Marks the batch checked and wakes its sleeping members (a wake-up
    /// only when some member sleeps).
    fn end(&self) {
        self.checked.store(true, Ordering::Release);
        // Under the lock, so a member between its last look and its sleep
        // is counted, and woken.
        let sleepers = self.sleepers.lock().unwrap_or_else(PoisonError::into_inner);
        if *sleepers > 0 {
            self.done.notify_all();
        }
    }
}

impl SignatureBatcher {
    /// A batcher gathering as `config` says (a `max` of 0 counts as 1).
    pub fn new(config: BatchConfig) -> Self {
        Self {
            config: BatchConfig {
                max: config.max.max(1),
                ..config
            },
            cores: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }

    /// How it gathers.
    pub fn config(&self) -> &BatchConfig {
        &self.config
    }

    /// What it has done so far.
    pub fn stats(&self) -> BatchStats {
        self.lock().stats
    }

    /// Counts the caller as preparing a presentation, until it submits its
    /// signatures or drops the [`Entry`]: an open batch may wait for it.
    pub fn enter(&self) -> Entry<'_> {
        self.lock().preparing += 1;
        Entry {
            batcher: self,
            submitted: false,
        }
    }

    // A panic elsewhere while holding the lock leaves the state whole
    // (every change under it is a counter or a push/take that does not
    // panic halfway): a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the first member of an open batch of `len` should wait for
    /// more.
    fn worth_waiting(&self, state: &State, len: usize) -> bool {
        if !self.config.adaptive {
            return true;
        }
        // Someone will submit, and waiting leaves no core idle: the busy
        // callers (preparing, or checking a batch) fill them. And the batch
        // stays small enough (two per core) that its members, idle until
        // it is checked on one core, leave others to keep the cores busy.
        state.preparing > 0
            && state.preparing + state.checking >= self.cores
            && len < 2 * self.cores
    }

    fn submit(&self, signatures: &Signatures) {
        let mut state = self.lock();
        state.preparing = state.preparing.saturating_sub(1);
        let max = self.config.max;
        // Join the open batch. The member whose arrival ends the wait
        // (the batch is full, or waiting longer would leave a core idle)
        // closes it and checks it: no hand-off to the first member.
        if let Some(open) = state.open.as_mut() {
            open.sets.push(signatures.clone());
            let batch = Arc::clone(&open.batch);
            let len = open.sets.len();
            if len >= max || !self.worth_waiting(&state, len) {
                let closed = self.close(&mut state);
                drop(state);
                self.check(closed);
            } else {
                drop(state);
            }
            batch.wait();
            return;
        }
        // Open one, and wait for others while it is worth it.
        let batch = Arc::new(Batch::default());
        state.open = Some(Open {
            batch: Arc::clone(&batch),
            sets: vec![signatures.clone()],
            opened: Instant::now(),
        });
        let mut yields = 0;
        let closed = loop {
            let Some(open) = state
                .open
                .as_ref()
                .filter(|o| Arc::ptr_eq(&o.batch, &batch))
            else {
                // A member closed it, and checks it.
                break None;
            };
            let waited = open.opened.elapsed();
            if open.sets.len() >= max
                || waited >= self.config.window
                || !self.worth_waiting(&state, open.sets.len())
            {
                break self.close(&mut state);
            }
            // Yield first (the others are about to submit), then sleep
            // until something changes.
            if yields < YIELDS {
                yields += 1;
                drop(state);
                std::thread::yield_now();
                state = self.lock();
                continue;
            }
            state.first_sleeping += 1;
            state = self
                .changed
                .wait_timeout(state, self.config.window - waited)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.first_sleeping -= 1;
        };
        drop(state);
        self.check(closed);
        batch.wait();
    }

    /// Wakes the batches' first members, when some sleep, to look again
    /// at whether to wait (called with the lock released).
    fn changed(&self, first_sleeping: usize) {
        if first_sleeping > 0 {
            self.changed.notify_all();
        }
    }

    /// Takes the open batch out, to be checked by the caller.
    fn close(&self, state: &mut State) -> Option<Open> {
        let open = state.open.take()?;
        state.checking += 1;
        Some(open)
    }

    /// Checks a closed batch, then wakes its members (also on a panic).
    fn check(&self, closed: Option<Open>) {
        let Some(open) = closed else {
            return;
        };
        struct Wake<'a> {
            batcher: &'a SignatureBatcher,
            batch: Arc<Batch>,
            outcome: Option<(usize, bool)>,
        }
        impl Drop for Wake<'_> {
            fn drop(&mut self) {
                let first_sleeping = {
                    let mut state = self.batcher.lock();
                    state.checking = state.checking.saturating_sub(1);
                    match self.outcome {
                        Some((n, held)) => {
                            state.stats.batches += 1;
                            state.stats.presentations += n as u64;
                            state.stats.failed += u64::from(!held);
                        }
                        None => state.stats.alone += 1,
                    }
                    state.first_sleeping
                };
                self.batch.end();
                self.batcher.changed(first_sleeping);
            }
        }
        let mut wake = Wake {
            batcher: self,
            batch: open.batch,
            outcome: None,
        };
        // One presentation alone is checked when it is finished: the same
        // equation, on its own thread.
        if open.sets.len() >= 2 {
            let held = check_batch(&open.sets);
            wake.outcome = Some((open.sets.len(), held));
        }
    }
}

/// A caller counted as preparing a presentation ([`SignatureBatcher::enter`]).
#[derive(Debug)]
pub struct Entry<'a> {
    batcher: &'a SignatureBatcher,
    submitted: bool,
}

impl Entry<'_> {
    /// Puts `signatures` in a batch and returns once that batch has been
    /// checked: then `signatures` are [`Signatures::verified`] when it
    /// held, and are to be checked alone when not
    /// ([`vouch_core::verify::Prepared::finish`] does either).
    pub fn submit(mut self, signatures: &Signatures) {
        self.submitted = true;
        self.batcher.submit(signatures);
    }
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        if !self.submitted {
            let first_sleeping = {
                let mut state = self.batcher.lock();
                state.preparing = state.preparing.saturating_sub(1);
                state.first_sleeping
            };
            self.batcher.changed(first_sleeping);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_max_of_zero_counts_as_one() {
        let b = SignatureBatcher::new(BatchConfig {
            max: 0,
            ..BatchConfig::DEFAULT
        });
        assert_eq!(b.config().max, 1);
    }

    #[test]
    fn an_entry_dropped_unsubmitted_stops_counting_as_preparing() {
        let b = SignatureBatcher::new(BatchConfig::DEFAULT);
        let e1 = b.enter();
        let e2 = b.enter();
        assert_eq!(b.lock().preparing, 2);
        drop(e1);
        drop(e2);
        assert_eq!(b.lock().preparing, 0);
        assert_eq!(b.stats(), BatchStats::default());
    }
}
