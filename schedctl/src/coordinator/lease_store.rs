//! Lease events into the store's `lease_events` table, off the request path.
//!
//! The lease service hands every event to [`sink`] while it holds its lock;
//! the sink only queues it (bounded), and one thread with its own SQLite
//! connection (WAL: the rounds' connection and `schedctl` commands read and
//! write beside it) writes the queue, what has gathered in it in one
//! transaction each time. A queue that overflows (the disk stalls) drops
//! events with a warning rather than holding up a backup's hook.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use super::lease_service::EventSink;
use super::leases::Event;
use anyhow::Context as _;

use crate::store::{LeaseEvent, Store};

/// Events queued for the writer at most.
const QUEUE: usize = 50_000;

/// Events written in one transaction at most.
const BATCH: usize = 4_096;

/// Opens a connection to the store at `path` and starts the writer thread;
/// the returned sink queues events for it.
pub fn sink(path: &Path) -> anyhow::Result<EventSink> {
    let mut store = Store::open(path)?;
    let (queue, events) = sync_channel::<LeaseEvent>(QUEUE);
    std::thread::Builder::new()
        .name("lease-events".to_owned())
        .spawn(move || write_all(&mut store, &events))
        .context("cannot start the thread that records lease events")?;
    let dropped = Arc::new(AtomicU64::new(0));
    Ok(Box::new(move |events: &[Event]| {
        for event in events {
            queue_one(&queue, &dropped, event);
        }
    }))
}

fn queue_one(queue: &SyncSender<LeaseEvent>, dropped: &AtomicU64, event: &Event) {
    let row = LeaseEvent {
        at: event.at.div_euclid(1000),
        host: event.host.clone(),
        job: event.job.clone(),
        started: event.started,
        event: event.kind.as_str().to_owned(),
        lease_id: event.lease_id.clone(),
        detail: event.detail.clone(),
    };
    match queue.try_send(row) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            let n = dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    dropped = n,
                    "The store falls behind: lease events were not recorded."
                );
            }
        }
        Err(TrySendError::Disconnected(_)) => {
            let n = dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 {
                tracing::error!(
                    "The lease-event writer stopped: lease events are no longer recorded."
                );
            }
        }
    }
}

/// Writes events as they come: waits for one, then takes what else has
/// gathered (up to [`BATCH`]) into the same transaction.
fn write_all(store: &mut Store, events: &Receiver<LeaseEvent>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Ok(first) = events.recv() {
        batch.push(first);
        batch.extend(events.try_iter().take(BATCH - 1));
        if let Err(error) = store.insert_lease_events(&batch) {
            tracing::error!(%error, events = batch.len(), "Could not record lease events in the store.");
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::leases::EventKind;

    #[test]
    fn every_event_reaches_the_lease_events_table() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("schedctl.db");
        let sink = sink(&path).expect("sink");
        let event = |kind, at| Event {
            kind,
            lease_id: "pihanga/backup-pihanga/100".into(),
            host: "pihanga".into(),
            job: "backup-pihanga".into(),
            started: 100,
            at,
            resources: vec!["host:pihanga".into(), "pbs-main".into()],
            detail: "holds host:pihanga, pbs-main".into(),
        };
        sink(&[
            event(EventKind::Queued, 1_000),
            event(EventKind::Granted { waited: 4_000 }, 5_000),
            event(EventKind::Released, 9_999),
        ]);
        let store = Store::open(&path).expect("store");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let events = store.lease_events(10).expect("read");
            if events.len() == 3 {
                let kinds: Vec<&str> = events.iter().rev().map(|e| e.event.as_str()).collect();
                assert_eq!(kinds, ["queued", "granted", "released"]);
                assert_eq!(events[0].at, 9);
                assert_eq!(events[0].started, 100);
                assert_eq!(events[0].lease_id, "pihanga/backup-pihanga/100");
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{events:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
