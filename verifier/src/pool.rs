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
    /// The check was lost: the worker checking it panicked, or the pool
    /// was shut down first.
    #[error("the check was lost (its worker failed or the pool shut down)")]
    Lost,
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
    /// Set when the pool is dropped: the workers finish what is queued,
    /// then stop.
    closed: bool,
}

struct Shared {
    checker: Arc<Checker>,
    max: usize,
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
        Some(queue.jobs.drain(..share).collect())
    }

    fn work(&self) {
        while let Some(jobs) = self.take() {
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

    /// A pool of `workers` threads (at least 1; `None`: one per core)
    /// checking with `checker`, at most `max` presentations a batch (at
    /// least 1).
    ///
    /// # Errors
    /// The system refused a thread.
    pub fn new(
        checker: Arc<Checker>,
        workers: Option<usize>,
        max: usize,
    ) -> std::io::Result<CheckPool> {
        let workers = workers
            .unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            })
            .max(1);
        let shared = Arc::new(Shared {
            checker,
            max: max.max(1),
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

    /// Queues `presented` to be checked against `view` for `ask` (at the
    /// time a worker takes it), and returns at once.
    pub fn submit(&self, view: Arc<ChainView>, presented: Presented, ask: Ask) -> Pending {
        let (reply, answer) = oneshot::channel();
        self.shared.lock().jobs.push_back(Job {
            view,
            presented,
            ask,
            reply,
        });
        self.shared.ready.notify_one();
        Pending(answer)
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
