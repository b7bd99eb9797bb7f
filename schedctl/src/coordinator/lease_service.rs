//! The lease manager behind the HTTP edge: the clock, open requests that
//! wait for a grant, and one place where every lease event is logged and
//! counted.
//!
//! The pure [`Leases`] sits behind a std `Mutex` held only for one
//! operation, never across an `.await`. A request that waits registers a
//! [`Notify`] under its lease id before it looks at its state, so a grant
//! made in between is never missed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scheduler_core::report::{LeaseRequest, LeaseResponse};
use tokio::sync::{watch, Notify};

use super::leases::{Event, EventKind, KnownJob, Leases, Millis, Settings, UnknownLease};
use super::metrics::{Metrics, ResourceLabel};

/// The longest the service holds a request open, whatever the hook asks.
pub const MAX_HOLD: Duration = Duration::from_secs(60);

/// Receives every lease event after it was counted (the store, in `serve`).
pub type EventSink = Box<dyn Fn(&[Event]) + Send + Sync>;

/// The lease service's shared state.
pub struct LeaseService {
    leases: Mutex<Leases>,
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
    metrics: Arc<Metrics>,
    sink: Option<EventSink>,
    stopping: watch::Receiver<bool>,
}

impl LeaseService {
    /// A service for `settings`; waiting requests are answered at once when
    /// `stopping` turns true.
    pub fn new(
        settings: Settings,
        metrics: Arc<Metrics>,
        sink: Option<EventSink>,
        stopping: watch::Receiver<bool>,
    ) -> LeaseService {
        let leases = Leases::new(settings);
        for (name, held, capacity) in leases.occupancy() {
            let label = ResourceLabel {
                resource: name.to_owned(),
            };
            metrics
                .resource_capacity
                .get_or_create(&label)
                .set(i64::from(capacity));
            metrics
                .resource_running
                .get_or_create(&label)
                .set(i64::from(held));
        }
        LeaseService {
            leases: Mutex::new(leases),
            waiters: Mutex::new(HashMap::new()),
            metrics,
            sink,
            stopping,
        }
    }

    fn leases(&self) -> MutexGuard<'_, Leases> {
        // A panic while holding the lock leaves the manager in a state that is
        // still consistent (each operation mutates only at its end); go on.
        self.leases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces what is known about the fleet's jobs.
    pub fn set_jobs(&self, jobs: Vec<KnownJob>) {
        self.leases().set_jobs(jobs);
    }

    /// Answers a lease request, holding it open up to `min(wait_secs, 60)` s
    /// until it is granted.
    pub async fn request(&self, request: &LeaseRequest) -> LeaseResponse {
        let hold = Duration::from_secs(request.wait_secs).min(MAX_HOLD);
        let outcome = {
            let mut leases = self.leases();
            let outcome = leases.request(request, millis(hold), now_ms());
            self.record(&leases, &outcome.events);
            outcome
        };
        if outcome.response.granted || hold.is_zero() || *self.stopping.borrow() {
            return outcome.response;
        }
        self.wait(outcome.response, hold).await
    }

    /// Releases lease `id`.
    pub fn release(&self, id: &str) -> Result<(), UnknownLease> {
        let mut leases = self.leases();
        let events = leases.release(id, now_ms())?;
        self.record(&leases, &events);
        Ok(())
    }

    /// Ends what is due and grants what that frees; returns when to look again.
    pub fn tick(&self) -> Duration {
        let mut leases = self.leases();
        let now = now_ms();
        let events = leases.tick(now);
        self.record(&leases, &events);
        let next = leases
            .next_deadline()
            .map_or(1000, |at| (at - now).clamp(10, 1000));
        Duration::from_millis(u64::try_from(next).unwrap_or(1000))
    }

    /// Runs [`Self::tick`] until `stopping` turns true.
    pub async fn run_ticks(self: Arc<Self>) {
        let mut stopping = self.stopping.clone();
        loop {
            let pause = self.tick();
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = stopping.wait_for(|stop| *stop) => return,
            }
        }
    }

    /// Waits until lease `first.lease_id` is granted, `hold` passes or the service stops.
    async fn wait(&self, first: LeaseResponse, hold: Duration) -> LeaseResponse {
        let id = first.lease_id.clone();
        let deadline = tokio::time::Instant::now() + hold;
        let mut stopping = self.stopping.clone();
        let mut last = first;
        loop {
            let notify = self.waiter(&id);
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.leases().lookup(&id, now_ms());
            match now {
                Some(response) if response.granted => {
                    last = response;
                    break;
                }
                Some(response) => last = response,
                None => break,
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(deadline) => break,
                _ = stopping.wait_for(|stop| *stop) => break,
            }
        }
        self.forget_waiter(&id);
        last
    }

    fn waiter(&self, id: &str) -> Arc<Notify> {
        let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        waiters.entry(id.to_owned()).or_default().clone()
    }

    fn forget_waiter(&self, id: &str) {
        let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        // Only this request's clone and the map's remain: nobody else waits.
        if waiters.get(id).is_some_and(|n| Arc::strong_count(n) <= 2) {
            waiters.remove(id);
        }
    }

    /// Logs, counts and hands on `events`; wakes the requests granted.
    fn record(&self, leases: &Leases, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let mut touched: Vec<&str> = Vec::new();
        for event in events {
            self.count(event);
            log(event);
            touched.extend(event.resources.iter().map(String::as_str));
            if matches!(event.kind, EventKind::Granted { .. }) {
                let waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(notify) = waiters.get(&event.lease_id) {
                    notify.notify_waiters();
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for name in touched {
            if let Some((held, _)) = leases.resource(name) {
                self.metrics
                    .resource_running
                    .get_or_create(&ResourceLabel {
                        resource: name.to_owned(),
                    })
                    .set(i64::from(held));
            }
        }
        self.metrics
            .leases_active
            .set(i64::try_from(leases.active()).unwrap_or(i64::MAX));
        if let Some(sink) = &self.sink {
            sink(events);
        }
    }

    fn count(&self, event: &Event) {
        let metrics = &self.metrics;
        match event.kind {
            EventKind::Queued => {
                metrics.leases_queued.inc();
            }
            EventKind::Granted { waited } => {
                metrics.leases_granted.inc();
                metrics.lease_wait.observe(waited.max(0) as f64 / 1000.0);
            }
            EventKind::Released => {
                metrics.leases_released.inc();
            }
            EventKind::Expired => {
                metrics.leases_expired.inc();
            }
        }
    }
}

fn log(event: &Event) {
    let (host, job, lease) = (&event.host, &event.job, &event.lease_id);
    match event.kind {
        EventKind::Granted { waited } if waited > 0 => tracing::info!(
            host,
            job,
            lease,
            waited_secs = waited / 1000,
            "Granted a lease after a wait: {}.",
            event.detail
        ),
        EventKind::Granted { .. } | EventKind::Released => tracing::debug!(
            host,
            job,
            lease,
            event = event.kind.as_str(),
            "Lease {}: {}.",
            event.kind.as_str(),
            event.detail
        ),
        EventKind::Queued => tracing::info!(
            host,
            job,
            lease,
            "A backup waits for its lease: {}.",
            event.detail
        ),
        EventKind::Expired => tracing::warn!(
            host,
            job,
            lease,
            "A lease ended without a release: {}.",
            event.detail
        ),
    }
}

/// The real time, Unix milliseconds.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn millis(duration: Duration) -> Millis {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
