//! Background work that must keep running while the server serves (the
//! scan scheduler, the delivery worker): each runs under the [`Supervisor`],
//! which restarts it after an error or a panic — logged, counted in
//! `wa_smile_worker_restarts_total{worker}` — after a short back-off, and
//! keeps every worker's liveness for `/readyz`.
//!
//! Short-lived background tasks (the status settler) use [`guard`]: one
//! iteration's panic becomes an error the task can log and recover from.

use futures::FutureExt;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// What one worker is doing, as `/readyz` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerState {
    /// None while it runs; otherwise why it does not.
    pub down: Option<String>,
    /// How often it failed and was (or is about to be) started again.
    pub restarts: u64,
}

/// How long a failed worker waits before it is started again.
#[derive(Debug, Clone)]
pub enum Backoff {
    /// `first`, doubled after each failure in a row, at most `max`; a run
    /// that lasted longer than `max` starts the count again.
    Doubling { first: Duration, max: Duration },
    /// Until the gate is opened (`notify_one`), once per restart: tests
    /// decide when the worker comes back instead of timing it.
    Gate(Arc<Notify>),
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::Doubling {
            first: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

/// The one owner of background workers' liveness. Cheap to share (`Arc`).
pub struct Supervisor {
    workers: watch::Sender<BTreeMap<&'static str, WorkerState>>,
    stopping: watch::Sender<bool>,
    backoff: Backoff,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new(Backoff::default())
    }
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("workers", &*self.workers.borrow())
            .finish()
    }
}

impl Supervisor {
    pub fn new(backoff: Backoff) -> Self {
        Self {
            workers: watch::channel(BTreeMap::new()).0,
            stopping: watch::channel(false).0,
            backoff,
        }
    }

    /// Runs `work()` as the worker `name` until it returns `Ok` (it stopped
    /// because it was asked to) or [`Supervisor::shutdown`]; an `Err` or a
    /// panic starts a fresh `work()` after the back-off.
    pub fn spawn<F, Fut>(self: &Arc<Self>, name: &'static str, mut work: F) -> JoinHandle<()>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.update(name, |w| w.down = Some("starting".into()));
        let sup = self.clone();
        tokio::spawn(async move {
            let mut failures_in_a_row = 0u32;
            loop {
                if *sup.stopping.borrow() {
                    break;
                }
                sup.update(name, |w| w.down = None);
                let started = tokio::time::Instant::now();
                let reason = match AssertUnwindSafe(work()).catch_unwind().await {
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => format!("failed: {e:#}"),
                    Err(panic) => format!("panicked: {}", panic_message(&*panic)),
                };
                tracing::error!(worker = name, error = %reason, "background worker stopped; restarting it");
                metrics::counter!(crate::metrics::WORKER_RESTARTS, "worker" => name).increment(1);
                sup.update(name, |w| {
                    w.down = Some(format!("{reason} (restarting)"));
                    w.restarts += 1;
                });
                if let Backoff::Doubling { max, .. } = sup.backoff {
                    if started.elapsed() > max {
                        failures_in_a_row = 0;
                    }
                }
                if !sup.wait_before_restart(failures_in_a_row).await {
                    break;
                }
                failures_in_a_row = failures_in_a_row.saturating_add(1);
            }
            sup.update(name, |w| w.down = Some("stopped".into()));
        })
    }

    /// False when the supervisor is shutting down instead.
    async fn wait_before_restart(&self, failures_in_a_row: u32) -> bool {
        let mut stopping = self.stopping.subscribe();
        let wait = async {
            match &self.backoff {
                Backoff::Doubling { first, max } => {
                    let factor = 2u32.saturating_pow(failures_in_a_row.min(16));
                    tokio::time::sleep(first.saturating_mul(factor).min(*max)).await;
                }
                Backoff::Gate(gate) => gate.notified().await,
            }
        };
        tokio::select! {
            _ = wait => !*self.stopping.borrow(),
            _ = stopping.wait_for(|s| *s) => false,
        }
    }

    /// Tells the workers to stop (see [`Supervisor::stop_signal`]) and stops
    /// restarting them.
    pub fn shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Becomes true at [`Supervisor::shutdown`]: a worker's cue to finish
    /// what it is doing and return `Ok`.
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Every worker with its state, in name order.
    pub fn workers(&self) -> BTreeMap<&'static str, WorkerState> {
        self.workers.borrow().clone()
    }

    /// One line per worker that is not running, saying why.
    pub fn not_running(&self) -> Vec<String> {
        self.workers
            .borrow()
            .iter()
            .filter_map(|(name, w)| w.down.as_ref().map(|why| format!("{name} {why}")))
            .collect()
    }

    /// Waits until `ready` holds for the workers' states (tests, and
    /// anything that must see a restart happen).
    pub async fn wait_until(&self, ready: impl Fn(&BTreeMap<&'static str, WorkerState>) -> bool) {
        let mut rx = self.workers.subscribe();
        let _ = rx.wait_for(|w| ready(w)).await;
    }

    fn update(&self, name: &'static str, f: impl FnOnce(&mut WorkerState)) {
        self.workers.send_modify(|w| f(w.entry(name).or_default()));
    }
}

/// Runs one iteration of a short-lived background task, turning its panic
/// into an error (logged and counted as a restart of `name`), so the task
/// can clean up and go on.
pub async fn guard<T>(
    name: &'static str,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(r) => r,
        Err(panic) => {
            let reason = panic_message(&*panic);
            tracing::error!(worker = name, error = %reason, "background task panicked");
            metrics::counter!(crate::metrics::WORKER_RESTARTS, "worker" => name).increment(1);
            Err(anyhow::anyhow!("{name} panicked: {reason}"))
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker that runs until told to fail, then panics.
    fn flaky(
        fail: Arc<Notify>,
    ) -> impl FnMut() -> futures::future::BoxFuture<'static, anyhow::Result<()>> {
        move || {
            let fail = fail.clone();
            Box::pin(async move {
                fail.notified().await;
                panic!("boom");
            })
        }
    }

    #[tokio::test]
    async fn a_panicking_worker_is_restarted_and_counted() {
        let gate = Arc::new(Notify::new());
        let sup = Arc::new(Supervisor::new(Backoff::Gate(gate.clone())));
        let fail = Arc::new(Notify::new());
        let handle = sup.spawn("flaky", flaky(fail.clone()));
        sup.wait_until(|w| w["flaky"].down.is_none()).await;
        assert!(sup.not_running().is_empty());

        fail.notify_one();
        sup.wait_until(|w| w["flaky"].restarts == 1).await;
        assert_eq!(
            sup.not_running(),
            vec!["flaky panicked: boom (restarting)".to_owned()]
        );

        gate.notify_one();
        sup.wait_until(|w| w["flaky"].down.is_none()).await;
        assert_eq!(sup.workers()["flaky"].restarts, 1);

        // An error return is a failure too.
        let mut runs = 0;
        let errs = sup.spawn("erring", move || {
            runs += 1;
            let first = runs == 1;
            async move {
                if first {
                    anyhow::bail!("no database")
                }
                std::future::pending().await
            }
        });
        sup.wait_until(|w| w["erring"].restarts == 1).await;
        assert!(sup.workers()["erring"]
            .down
            .as_deref()
            .is_some_and(|d| d.contains("failed: no database")));

        // Shutdown ends the back-off and the loop.
        sup.shutdown();
        errs.await.unwrap();
        assert_eq!(sup.workers()["erring"].down.as_deref(), Some("stopped"));
        handle.abort();
    }

    #[tokio::test]
    async fn a_worker_that_returns_ok_has_stopped() {
        let sup = Arc::new(Supervisor::default());
        sup.spawn("once", || async { Ok(()) }).await.unwrap();
        assert_eq!(sup.not_running(), vec!["once stopped".to_owned()]);
        assert_eq!(sup.workers()["once"].restarts, 0);
    }

    #[tokio::test]
    async fn guard_turns_a_panic_into_an_error() {
        let r: anyhow::Result<()> = guard("settler", async { panic!("bad status") }).await;
        assert_eq!(r.unwrap_err().to_string(), "settler panicked: bad status");
        assert_eq!(guard("settler", async { Ok(7) }).await.unwrap(), 7);
    }
}
