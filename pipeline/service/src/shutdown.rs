//! Stopping on SIGINT (Ctrl-C) or SIGTERM (what process managers send): the batch being
//! applied commits, then the service ends. A signal that arrives while the service is busy
//! or asleep is kept until it looks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

/// Set once SIGINT or SIGTERM arrived.
#[derive(Clone)]
pub struct Shutdown {
    requested: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Shutdown {
    /// Listens for SIGINT and SIGTERM from now on.
    pub fn install() -> std::io::Result<Shutdown> {
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let shutdown = Shutdown {
            requested: Arc::new(AtomicBool::new(false)),
            notify: Arc::new(Notify::new()),
        };
        let s = shutdown.clone();
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            eprintln!("{name}: stopping after the current batch");
            s.requested.store(true, Ordering::SeqCst);
            s.notify.notify_waiters();
        });
        Ok(shutdown)
    }

    pub fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// The flag the pipeline checks between batches.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.requested.clone()
    }

    /// Resolves once a stop was asked for (at once if it already was).
    pub async fn wait(&self) {
        let notified = self.notify.notified();
        if self.requested() {
            return;
        }
        notified.await;
    }
}
