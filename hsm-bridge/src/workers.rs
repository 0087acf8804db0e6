//! A small pool of dedicated HSM threads, each owning its own [`Session`],
//! running jobs sent to it over a channel; and [`Ticket`], the one-shot answer
//! that can be waited on or awaited.
//!
//! HSM calls block (tens of microseconds with SoftHSM2, a network round trip
//! with a network HSM), so they never run on an I/O thread.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;

use crate::module::lock;
use crate::{Error, Session, Token};

/// A job as the worker sees it; it returns true if the session looked dead
/// (the job failed with [`Error::TokenUnavailable`]).
type Job = Box<dyn FnOnce(&Session) -> bool + Send + 'static>;

/// A pool of HSM threads. Cheap to clone; the threads end when the last clone
/// is dropped (after finishing the jobs already sent to them).
#[derive(Clone)]
pub struct HsmWorkers {
    inner: Arc<Pool>,
}

struct Pool {
    token_label: String,
    senders: Vec<mpsc::Sender<Job>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next: AtomicUsize,
}

impl fmt::Debug for HsmWorkers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HsmWorkers")
            .field("token", &self.inner.token_label)
            .field("threads", &self.inner.senders.len())
            .finish()
    }
}

impl HsmWorkers {
    /// Starts `threads` threads, each of which first opens its own session on
    /// `token`. Fails (and ends the threads already started) if any cannot.
    pub fn start(token: &Token, threads: usize) -> Result<HsmWorkers, Error> {
        if threads == 0 {
            return Err(Error::InvalidArgument {
                detail: "an HSM worker pool needs at least one thread".to_owned(),
            });
        }
        let mut senders = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), Error>>();
        for i in 0..threads {
            let (job_tx, job_rx) = mpsc::channel::<Job>();
            let token = token.clone();
            let ready_tx = ready_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("hsm-worker-{i}"))
                .spawn(move || run_worker(&token, job_rx, ready_tx));
            match spawned {
                Ok(handle) => {
                    senders.push(job_tx);
                    handles.push(handle);
                }
                Err(_) => {
                    // Dropping the senders ends the threads already started.
                    drop(senders);
                    join_all(handles);
                    return Err(Error::WorkerGone);
                }
            }
        }
        drop(ready_tx);
        let mut failure = None;
        for _ in 0..threads {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    failure.get_or_insert(e);
                }
                Err(mpsc::RecvError) => {
                    failure.get_or_insert(Error::WorkerGone);
                }
            }
        }
        if let Some(e) = failure {
            drop(senders);
            join_all(handles);
            return Err(e);
        }
        Ok(HsmWorkers {
            inner: Arc::new(Pool {
                token_label: token.label().to_owned(),
                senders,
                threads: Mutex::new(handles),
                next: AtomicUsize::new(0),
            }),
        })
    }

    /// The number of worker threads.
    pub fn threads(&self) -> usize {
        self.inner.senders.len()
    }

    /// Sends a job to the next thread (round robin) and returns its answer to
    /// come. If that thread is gone, the ticket resolves to
    /// [`Error::WorkerGone`]. A job that panics resolves its ticket to
    /// `WorkerGone` too; the thread carries on.
    pub fn submit<R, F>(&self, job: F) -> Ticket<R>
    where
        R: Send + 'static,
        F: FnOnce(&Session) -> Result<R, Error> + Send + 'static,
    {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::Pending(None)),
            done: Condvar::new(),
        });
        let answer = Answer {
            shared: Arc::clone(&shared),
        };
        let job: Job = Box::new(move |session: &Session| {
            let result = job(session);
            let suspect = matches!(result, Err(Error::TokenUnavailable { .. }));
            answer.send(result);
            suspect
        });
        let n = self.inner.senders.len();
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % n.max(1);
        if let Some(sender) = self.inner.senders.get(i) {
            // On failure the job comes back and is dropped, and with it its
            // `Answer`, which resolves the ticket to `WorkerGone`.
            let _ = sender.send(job);
        }
        Ticket { shared }
    }
}

fn run_worker(token: &Token, jobs: mpsc::Receiver<Job>, ready: mpsc::Sender<Result<(), Error>>) {
    let mut session = match token.session() {
        Ok(session) => session,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if ready.send(Ok(())).is_err() {
        return;
    }
    drop(ready);
    while let Ok(job) = jobs.recv() {
        // A panicking job drops its `Answer` while unwinding, which resolves
        // its ticket to `WorkerGone`. Each job is self-contained PKCS#11
        // calls, so the session is left with no operation half done.
        let suspect = catch_unwind(AssertUnwindSafe(|| job(&session))).unwrap_or(false);
        if suspect {
            // The session may be dead (token removed and back, HSM
            // restarted): take a fresh one if the token gives one, else keep
            // the old one and try again after the next such failure.
            if let Ok(fresh) = token.session() {
                session = fresh;
            }
        }
    }
}

fn join_all(handles: Vec<JoinHandle<()>>) {
    let me = std::thread::current().id();
    for handle in handles {
        // The last clone may be dropped inside a job, on a worker thread:
        // that thread ends by itself once its channel is closed.
        if handle.thread().id() != me {
            let _ = handle.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the channels ends each thread's loop.
        self.senders.clear();
        let handles = std::mem::take(&mut *lock(&self.threads));
        join_all(handles);
    }
}

enum State<R> {
    /// Not answered yet; the waker of the task awaiting it, if any.
    Pending(Option<Waker>),
    Done(Result<R, Error>),
    /// The answer has been handed out.
    Taken,
}

struct Shared<R> {
    state: Mutex<State<R>>,
    done: Condvar,
}

/// The sending half: answers once, or `WorkerGone` if dropped unanswered.
struct Answer<R> {
    shared: Arc<Shared<R>>,
}

impl<R> Answer<R> {
    fn send(self, result: Result<R, Error>) {
        self.resolve(result);
    }

    fn resolve(&self, result: Result<R, Error>) {
        let waker = {
            let mut state = lock(&self.shared.state);
            match &mut *state {
                State::Pending(waker) => {
                    let waker = waker.take();
                    *state = State::Done(result);
                    waker
                }
                State::Done(_) | State::Taken => return,
            }
        };
        self.shared.done.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<R> Drop for Answer<R> {
    fn drop(&mut self) {
        // No-op if already answered.
        self.resolve(Err(Error::WorkerGone));
    }
}

/// The answer to a submitted job, to come.
///
/// [`Ticket::wait`] blocks the calling thread; an async task instead awaits
/// the ticket (it implements [`Future`]), which does not block its thread.
pub struct Ticket<R> {
    shared: Arc<Shared<R>>,
}

impl<R> fmt::Debug for Ticket<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &*lock(&self.shared.state) {
            State::Pending(_) => "pending",
            State::Done(_) => "done",
            State::Taken => "taken",
        };
        f.debug_struct("Ticket").field("state", &state).finish()
    }
}

impl<R> Ticket<R> {
    /// Blocks until the job has run, and returns its result.
    pub fn wait(self) -> Result<R, Error> {
        let mut state = lock(&self.shared.state);
        loop {
            match std::mem::replace(&mut *state, State::Taken) {
                State::Done(result) => return result,
                State::Taken => return Err(Error::WorkerGone),
                pending @ State::Pending(_) => {
                    *state = pending;
                    state = self
                        .shared
                        .done
                        .wait(state)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            }
        }
    }
}

impl<R> Future for Ticket<R> {
    type Output = Result<R, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = lock(&self.shared.state);
        match std::mem::replace(&mut *state, State::Taken) {
            State::Done(result) => Poll::Ready(result),
            // Polled again after it completed: a caller error, answered
            // rather than panicked on.
            State::Taken => Poll::Ready(Err(Error::WorkerGone)),
            State::Pending(waker) => {
                let waker = match waker {
                    Some(w) if w.will_wake(cx.waker()) => w,
                    _ => cx.waker().clone(),
                };
                *state = State::Pending(Some(waker));
                Poll::Pending
            }
        }
    }
}
