//! Checks on a few worker threads, the signatures of the presentations
//! waiting checked as one batch.
//!
//! [`CheckPool::submit`] queues a presentation and returns at once; a
//! worker (one per core by default) takes what is waiting, up to its share
//! ([`CheckPool::new`]'s `max`, and no more than an even split of the queue
//! between the workers), checks it with [`Checker::check_many`] (every
//! check, the signatures of all of them as one Ed25519 batch equation) and
//! answers each [`Pending`]. Nobody waits for a batch to fill: a worker
//! takes whatever has queued while it checked the last batch, so batches
//! grow with the load and a lone presentation is checked at once.
//!
//! Against the [`crate::SignatureBatcher`] (the callers gather their
//! signatures themselves), the callers here do no work and block no
//! thread: an async caller awaits its answer, so the batch forms without
//! the hand-offs between threads that checking a small batch costs as much
//! as it saves. Each answer is [`Checker::check`]'s for the same input: a
//! bad signature costs the others in its batch time, never their verdict.
//!
//! Bounds: at most [`CheckPool::max_queued`] presentations wait (more are
//! refused at once, [`PoolError::Busy`]); one whose caller stopped waiting
//! before a worker took it is dropped unchecked (its nonce stays open).
//! Nonces are redeemed in the order presentations were submitted within a
//! batch; of two answering one request in different batches, whichever
//! batch concludes first redeems it. A panic while checking a batch (a bug)
//! loses that batch's answers ([`PoolError::Lost`]), not the worker.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use tokio::sync::oneshot;
use vouch_core::view::ChainView;

use crate::input::Presented;
use crate::verifier::{Ask, Checked, Checker, VerifierError};

/// Why a pooled check has no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The check failed as [`Checker::check`] fails.
    #[error(transparent)]
    Check(#[from] VerifierError),
    /// The check was lost: the check of its batch panicked (a bug; the
    /// batch's other presentations are lost with it, and those concluded
    /// before the panic may have had their nonces redeemed).
    #[error("the check was lost (the check of its batch failed)")]
    Lost,
    /// [`CheckPool::max_queued`] presentations wait already: try again
    /// later.
    #[error("{0} presentations are waiting to be checked already; try again later")]
    Busy(usize),
}

/// What a [`CheckPool`] has done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Batches checked (a lone presentation counts as one).
    pub batches: u64,
    /// Presentations in them.
    pub presentations: u64,
}

/// A presentation checked by a [`CheckPool`].
#[derive(Debug)]
pub struct Pending(oneshot::Receiver<Result<Checked, VerifierError>>);

impl Pending {
    /// Waits for the answer.
    ///
    /// # Errors
    /// [`PoolError::Check`] as [`Checker::check`]; [`PoolError::Lost`].
    pub async fn wait(self) -> Result<Checked, PoolError> {
        Ok(self.0.await.map_err(|_| PoolError::Lost)??)
    }

    /// Waits for the answer, blocking this thread (not from inside an
    /// async runtime: use [`Pending::wait`] there).
    ///
    /// # Errors
    /// As [`Pending::wait`].
    pub fn wait_blocking(self) -> Result<Checked, PoolError> {
        Ok(self.0.blocking_recv().map_err(|_| PoolError::Lost)??)
    }
}

struct Job {
    view: Arc<ChainView>,
    presented: Presented,
    ask: Ask,
    reply: oneshot::Sender<Result<Checked, VerifierError>>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Places held by [`Slot`]s not yet submitted (counted against
    /// [`CheckPool::max_queued`] with the jobs).
    reserved: usize,
    /// Set when the pool is dropped: the workers finish what is queued,
    /// then stop.
    closed: bool,
}

struct Shared {
    checker: Arc<Checker>,
    max: usize,
    max_queued: usize,
    workers: usize,
    queue: Mutex<Queue>,
    /// Signalled when a job is queued or the pool closes.
    ready: Condvar,
    batches: AtomicU64,
    presentations: AtomicU64,
}

impl Shared {
    // Every change under the lock is a push, a drain or a flag: a poisoned
    // lock holds a whole queue.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The jobs for one batch: waits for one, then takes up to `max`, and
    /// no more than an even share of the queue; `None` once closed and
    /// empty.
    fn take(&self) -> Option<Vec<Job>> {
        let mut queue = self.lock();
        while queue.jobs.is_empty() {
            if queue.closed {
                return None;
            }
            queue = self
                .ready
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let share = queue.jobs.len().div_ceil(self.workers).min(self.max);
        // A caller that stopped waiting (a client gone) has nobody to
        // answer: it is not checked, so its nonce stays open.
        Some(
            queue
                .jobs
                .drain(..share)
                .filter(|j| !j.reply.is_closed())
                .collect(),
        )
    }

    fn work(&self) {
        while let Some(jobs) = self.take() {
            if jobs.is_empty() {
                continue;
            }
            let now = crate::now();
            let items: Vec<(&ChainView, &Presented, &Ask)> = jobs
                .iter()
                .map(|j| (&*j.view, &j.presented, &j.ask))
                .collect();
            // A panic loses this batch's answers (their callers are told
            // so when the replies drop), not the worker.
            let results = catch_unwind(AssertUnwindSafe(|| self.checker.check_many(&items, now)));
            drop(items);
            self.batches.fetch_add(1, Ordering::Relaxed);
            self.presentations
                .fetch_add(jobs.len() as u64, Ordering::Relaxed);
            if let Ok(results) = results {
                for (job, result) in jobs.into_iter().zip(results) {
                    // A caller that stopped waiting does not want it.
                    let _ = job.reply.send(result);
                }
            }
        }
    }
}

/// Worker threads checking queued presentations in batches; see the
/// module documentation. Dropping it lets the workers finish what is
/// queued, and waits for them.
pub struct CheckPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for CheckPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckPool")
            .field("workers", &self.workers.len())
            .field("max", &self.shared.max)
            .finish_non_exhaustive()
    }
}

impl CheckPool {
    /// Most presentations a worker checks as one batch by default.
    pub const DEFAULT_MAX: usize = 64;
    /// Most presentations waiting by default: about a second's work on
    /// two cores.
    pub const DEFAULT_MAX_QUEUED: usize = 4096;
    /// Most worker threads.
    pub const MAX_WORKERS: usize = 256;

    /// A pool of `workers` threads (1 to [`CheckPool::MAX_WORKERS`];
    /// `None`: one per core) checking with `checker`, at most `max`
    /// presentations a batch (at least 1), with at most `max_queued`
    /// waiting (at least 1; more are refused as [`PoolError::Busy`]).
    ///
    /// # Errors
    /// The system refused a thread.
    pub fn new(
        checker: Arc<Checker>,
        workers: Option<usize>,
        max: usize,
        max_queued: usize,
    ) -> std::io::Result<CheckPool> {
        let workers = workers
            .unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            })
            .clamp(1, Self::MAX_WORKERS);
        let shared = Arc::new(Shared {
            checker,
            max: max.max(1),
            max_queued: max_queued.max(1),
            workers,
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            batches: AtomicU64::new(0),
            presentations: AtomicU64::new(0),
        });
        let mut pool = CheckPool {
            shared,
            workers: Vec::with_capacity(workers),
        };
        for i in 0..workers {
            let shared = Arc::clone(&pool.shared);
            // On an error here the pool built so far is dropped, which
            // stops and joins the workers already started.
            pool.workers.push(
                std::thread::Builder::new()
                    .name(format!("vouch-check-{i}"))
                    .spawn(move || shared.work())?,
            );
        }
        Ok(pool)
    }

    /// The checker the workers use.
    pub fn checker(&self) -> &Checker {
        &self.shared.checker
    }

    /// What it has done so far.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            batches: self.shared.batches.load(Ordering::Relaxed),
            presentations: self.shared.presentations.load(Ordering::Relaxed),
        }
    }

    /// Most presentations waiting at once.
    pub fn max_queued(&self) -> usize {
        self.shared.max_queued
    }

    /// Queues `presented` to be checked against `view` for `ask` (at the
    /// time a worker takes it), and returns at once. Dropping the
    /// [`Pending`] before a worker takes it withdraws it (it is not
    /// checked, and its nonce stays open).
    ///
    /// # Errors
    /// [`PoolError::Busy`] when [`CheckPool::max_queued`] wait already.
    pub fn submit(
        &self,
        view: Arc<ChainView>,
        presented: Presented,
        ask: Ask,
    ) -> Result<Pending, PoolError> {
        Ok(self.reserve()?.submit(view, presented, ask))
    }

    /// Holds a place in the queue, for a presentation still to be read
    /// (an image decoded, a relay item fetched): refused now, when the
    /// queue is full, rather than after reading it, when it cannot be read
    /// again (a relay item is served once).
    ///
    /// # Errors
    /// [`PoolError::Busy`] when [`CheckPool::max_queued`] wait or are
    /// held already.
    pub fn reserve(&self) -> Result<Slot<'_>, PoolError> {
        let mut queue = self.shared.lock();
        let held = queue.jobs.len() + queue.reserved;
        if held >= self.shared.max_queued {
            return Err(PoolError::Busy(held));
        }
        queue.reserved += 1;
        Ok(Slot { pool: self })
    }
}

/// A place held in a [`CheckPool`]'s queue ([`CheckPool::reserve`]);
/// dropped unused, it is given back.
#[derive(Debug)]
pub struct Slot<'a> {
    pool: &'a CheckPool,
}

impl Slot<'_> {
    /// Queues `presented` in this place: as [`CheckPool::submit`].
    pub fn submit(self, view: Arc<ChainView>, presented: Presented, ask: Ask) -> Pending {
        let (reply, answer) = oneshot::channel();
        let shared = &self.pool.shared;
        {
            let mut queue = shared.lock();
            queue.reserved = queue.reserved.saturating_sub(1);
            queue.jobs.push_back(Job {
                view,
                presented,
                ask,
                reply,
            });
        }
        // Given back above, not again on drop.
        std::mem::forget(self);
        shared.ready.notify_one();
        Pending(answer)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut queue = self.pool.shared.lock();
        queue.reserved = queue.reserved.saturating_sub(1);
    }
}

impl Drop for CheckPool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.ready.notify_all();
        for worker in self.workers.drain(..) {
            // A worker does not panic (each batch is caught).
            let _ = worker.join();
        }
    }
}
