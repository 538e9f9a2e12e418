//! `/events`: tells open pages when the store changed (a pipeline batch, a clerk's action,
//! an acknowledgement), as server-sent events. One task per server reads the store's change
//! count and every open page listens to it, so the store's load does not grow with the
//! number of pages open. Every instance reads the same store: a standby's pages hear the
//! active instance's commits.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use tokio::sync::watch;

use crate::server::AppState;
use crate::store::Store;

/// How often the store's change count is read.
const POLL: Duration = Duration::from_millis(750);

/// The store's change count, shared by every open page of this server.
#[derive(Clone)]
pub struct ChangeFeed {
    store: Store,
    changes: Arc<std::sync::OnceLock<watch::Sender<Option<String>>>>,
}

impl ChangeFeed {
    pub fn new(store: Store) -> ChangeFeed {
        ChangeFeed {
            store,
            changes: Default::default(),
        }
    }

    /// A receiver of the change count; the first one starts the reader.
    fn subscribe(&self) -> watch::Receiver<Option<String>> {
        self.changes
            .get_or_init(|| {
                let (tx, _) = watch::channel(None);
                let (store, sender) = (self.store.clone(), tx.clone());
                tokio::spawn(async move {
                    // The first read is where the count stands, not a change.
                    let mut first = true;
                    loop {
                        if let Ok(now) = store.meta("change_seq").await {
                            sender.send_if_modified(|seen| {
                                let changed = *seen != now && !first;
                                *seen = now.clone();
                                changed
                            });
                            first = false;
                        }
                        tokio::time::sleep(POLL).await;
                    }
                });
                tx
            })
            .subscribe()
    }
}

/// `event: change` with the store's change count, each time it moves.
pub async fn stream(
    State(s): State<AppState>,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let mut rx = s.changes.subscribe();
    rx.mark_unchanged();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        let seq = rx.borrow_and_update().clone().unwrap_or_default();
        Some((Ok(Event::default().event("change").data(seq)), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
