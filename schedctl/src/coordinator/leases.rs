//! The lease manager: who may start a backup now, and who waits for whom.
//!
//! Pure: every operation is handed the time ("now", Unix milliseconds) and
//! returns what happened as [`Event`]s; the HTTP layer (`http.rs`) holds
//! requests open, reads the clock, counts and logs the events.
//!
//! # Rules (CONTRACTS.md, "The lease service")
//!
//! * A job's **resources** are `host:<host>` (capacity: `[[host]] capacity`)
//!   and every `[[resource]]` whose `storages` list the job's storage. The
//!   storage is the one the request names (vzdump's `STOREID`: what the run
//!   really writes to), else the one of the latest report. A capacity of 0
//!   counts as 1: a resource no backup may ever use would hold every hook
//!   until it gives up.
//! * A request is identified by `(host, job, started)`: asking again refers
//!   to the same entry, queued or granted. Its lease id is made of the three.
//! * **Grant at once** when every resource has room and no earlier waiting
//!   request wants one of them. Waiting requests are served in `started`
//!   order, ties by host, then job; none overtakes an earlier one that waits
//!   for a resource it shares (an earlier one waits for *all* its resources,
//!   so a later one cannot slip into a resource it still needs).
//! * A grant **expires** at grant time + the job's reserved duration (from the
//!   current plan, else `policy.unknown-duration-minutes`) + the lease
//!   margin. Release frees at once; expiry frees too. Either wakes the next.
//! * A job the coordinator **knows nothing about** (its host is not
//!   configured, or no report lists it and the request names no storage) is
//!   granted at once and holds nothing; the reason says so.
//! * A waiting request that nobody asks about any more (the hook gave up and
//!   let the backup go) is **abandoned** [`ABANDON_AFTER_MS`] after its last
//!   ask ended, so it does not hold the queue forever.
//! * A request granted while it waited must be **collected**: a hook that
//!   still waits is told at once (it holds a request open) or when it asks
//!   again, within seconds. A grant that no ask collects within
//!   [`ABANDON_AFTER_MS`] (the hook gave up, or died, between its last ask and
//!   the grant) ends then, instead of holding its resources for the whole
//!   reserved duration for a backup that is not waiting for it.
//! * A new run of a job (same host and job, later `started`) ends the entry
//!   of its earlier run: one job never runs twice at once on a node, so the
//!   earlier run's release was lost.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;

use scheduler_core::report::{LeaseRequest, LeaseResponse};

use crate::config::Config;

/// Unix time in milliseconds.
pub type Millis = i64;

/// How long a waiting request survives after its last ask ended, and how
/// long a grant made while it waited waits for an ask to collect it.
pub const ABANDON_AFTER_MS: Millis = 90_000;

/// How long an ended lease is remembered, so that a late release or a
/// repeated request still gets its answer.
pub const ENDED_RETENTION_MS: Millis = 48 * 3_600_000;

/// The most ended leases remembered (the oldest are forgotten first).
pub const ENDED_MAX: usize = 200_000;

/// What the manager needs from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Configured hosts with their capacity (backups at once on the host).
    pub hosts: Vec<(String, u32)>,
    /// Shared resources.
    pub resources: Vec<ResourceSpec>,
    /// Added to a grant's reserved duration before it expires, seconds.
    pub margin_secs: i64,
    /// The reserved duration of a job the plan does not know, seconds.
    pub unknown_duration_secs: i64,
}

/// A shared resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSpec {
    /// Its name (`pbs-main`).
    pub name: String,
    /// Backups it takes at once.
    pub capacity: u32,
    /// The storages whose jobs use it.
    pub storages: Vec<String>,
}

impl Settings {
    /// The lease settings of a schedctl configuration.
    pub fn from_config(config: &Config) -> Settings {
        Settings {
            hosts: config
                .hosts
                .iter()
                .map(|h| (h.name.clone(), h.capacity))
                .collect(),
            resources: config
                .resources
                .iter()
                .map(|r| ResourceSpec {
                    name: r.name.clone(),
                    capacity: r.capacity,
                    storages: r.storages.clone(),
                })
                .collect(),
            margin_secs: i64::try_from(config.serve.lease_margin_minutes.saturating_mul(60))
                .unwrap_or(i64::MAX / 4),
            unknown_duration_secs: (config.policy.unknown_duration_minutes * 60.0).round() as i64,
        }
    }
}

/// What the coordinator knows about one job (from reports and the plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownJob {
    /// The host it runs on.
    pub host: String,
    /// Its id.
    pub job: String,
    /// The storage it writes to, when the report names one.
    pub storage: Option<String>,
    /// The duration the current plan reserves for it, seconds.
    pub reserved_secs: Option<i64>,
}

/// Something that happened to a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The lease.
    pub lease_id: String,
    /// Its host.
    pub host: String,
    /// Its job.
    pub job: String,
    /// When its run started, Unix seconds.
    pub started: i64,
    /// When it happened.
    pub at: Millis,
    /// The resources it holds (granted) or frees (released, expired).
    pub resources: Vec<String>,
    /// A sentence for the log and the store.
    pub detail: String,
}

/// The kinds of [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A request had to wait.
    Queued,
    /// A request was granted after waiting `waited` milliseconds.
    Granted {
        /// Time from the first ask to the grant.
        waited: Millis,
    },
    /// The hook released its lease, or withdrew its waiting request.
    Released,
    /// The lease ended without a release: it expired, its waiting request was
    /// abandoned, or a later run of its job started.
    Expired,
}

impl EventKind {
    /// The word the store and the log use.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Queued => "queued",
            EventKind::Granted { .. } => "granted",
            EventKind::Released => "released",
            EventKind::Expired => "expired",
        }
    }
}

/// The answer to a request, and what it caused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The answer for the hook.
    pub response: LeaseResponse,
    /// What happened, the request's own events included.
    pub events: Vec<Event>,
}

/// A release named no lease the manager knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no lease \"{0}\" is known (it never existed, or ended more than 48 hours ago)")]
pub struct UnknownLease(pub String);

/// The lease manager's state.
#[derive(Debug)]
pub struct Leases {
    settings: Settings,
    /// Resource names by index; `host:<name>` first, then the shared ones.
    names: Vec<String>,
    capacity: Vec<u32>,
    held: Vec<u32>,
    index: HashMap<String, usize>,
    storage_resources: HashMap<String, Vec<usize>>,
    jobs: HashMap<(String, String), KnownJob>,
    entries: HashMap<String, Entry>,
    /// Waiting entries in service order, with their lease ids.
    queue: BTreeMap<QueueKey, String>,
    /// The current entry of each (host, job).
    by_job: HashMap<(String, String), String>,
    ended: HashMap<String, Ended>,
    ended_order: VecDeque<(Millis, String)>,
    granted: usize,
    /// No entry ends on its own before this (a lower bound: [`Leases::tick`]
    /// scans the entries only once it has passed).
    next_due: Millis,
}

type QueueKey = (i64, String, String);

#[derive(Debug, Clone)]
struct Entry {
    host: String,
    job: String,
    started: i64,
    resources: Vec<usize>,
    asked_at: Millis,
    state: State,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Waiting {
        alive_until: Millis,
    },
    Granted {
        expires: Millis,
        /// A grant made while the request waited, not yet told to any ask:
        /// it ends at this time unless an ask collects it.
        unclaimed_until: Option<Millis>,
    },
}

#[derive(Debug, Clone)]
struct Ended {
    /// When it ended.
    at: Millis,
    /// When its grant would have expired; `None`: it was never granted.
    expires: Option<Millis>,
    reason: String,
}

impl Leases {
    /// An empty manager for `settings`.
    pub fn new(settings: Settings) -> Leases {
        let mut leases = Leases {
            settings: settings.clone(),
            names: Vec::new(),
            capacity: Vec::new(),
            held: Vec::new(),
            index: HashMap::new(),
            storage_resources: HashMap::new(),
            jobs: HashMap::new(),
            entries: HashMap::new(),
            queue: BTreeMap::new(),
            by_job: HashMap::new(),
            ended: HashMap::new(),
            ended_order: VecDeque::new(),
            granted: 0,
            next_due: Millis::MAX,
        };
        for (host, capacity) in &settings.hosts {
            leases.add_resource(host_resource(host), *capacity);
        }
        for resource in &settings.resources {
            let at = leases.add_resource(resource.name.clone(), resource.capacity);
            for storage in &resource.storages {
                leases
                    .storage_resources
                    .entry(storage.clone())
                    .or_default()
                    .push(at);
            }
        }
        leases
    }

    fn add_resource(&mut self, name: String, capacity: u32) -> usize {
        if let Some(&at) = self.index.get(&name) {
            return at;
        }
        let at = self.names.len();
        self.index.insert(name.clone(), at);
        self.names.push(name);
        self.capacity.push(capacity.max(1));
        self.held.push(0);
        at
    }

    /// Replaces what is known about the fleet's jobs (after a collection or a new plan).
    /// Entries already queued or granted keep their resources.
    pub fn set_jobs(&mut self, jobs: impl IntoIterator<Item = KnownJob>) {
        self.jobs = jobs
            .into_iter()
            .map(|job| ((job.host.clone(), job.job.clone()), job))
            .collect();
    }

    /// Every resource with its running backups and capacity, `host:` ones first.
    pub fn occupancy(&self) -> impl Iterator<Item = (&str, u32, u32)> + '_ {
        self.names
            .iter()
            .zip(self.held.iter().zip(&self.capacity))
            .map(|(name, (&held, &capacity))| (name.as_str(), held, capacity))
    }

    /// Running backups and capacity of the resource `name`.
    pub fn resource(&self, name: &str) -> Option<(u32, u32)> {
        let &at = self.index.get(name)?;
        Some((self.held[at], self.capacity[at]))
    }

    /// Granted leases that have not ended.
    pub fn active(&self) -> usize {
        self.granted
    }

    /// Requests waiting for a grant.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// No entry ends on its own (expires, is abandoned) before this time;
    /// `None` when nothing is pending.
    pub fn next_deadline(&self) -> Option<Millis> {
        (self.next_due != Millis::MAX).then_some(self.next_due)
    }

    fn due_by(&mut self, deadline: Millis) {
        self.next_due = self.next_due.min(deadline);
    }

    /// A request from a hook that will hold its connection open for `hold` ms.
    pub fn request(&mut self, request: &LeaseRequest, hold: Millis, now: Millis) -> Outcome {
        let mut events = self.tick(now);
        let id = lease_id(&request.host, &request.job, request.started);
        if let Some(entry) = self.entries.get_mut(&id) {
            if let State::Waiting { alive_until } = &mut entry.state {
                *alive_until = (*alive_until).max(now + hold.max(0) + ABANDON_AFTER_MS);
            }
            let response = self.answer(&id, now);
            return Outcome { response, events };
        }
        match self.ended.get(&id) {
            // The run was granted once: it has started; its lease is over.
            Some(ended) if ended.expires.is_some() => {
                let response = ended_response(&id, ended);
                return Outcome { response, events };
            }
            // Withdrawn or abandoned while waiting, and asked about again:
            // the hook still waits, so it queues afresh.
            Some(_) => {
                self.ended.remove(&id);
            }
            None => {}
        }
        let key = (request.host.clone(), request.job.clone());
        if let Some(current) = self.by_job.get(&key).cloned() {
            let current_started = self.entries.get(&current).map_or(i64::MIN, |e| e.started);
            if current_started > request.started {
                let response = LeaseResponse {
                    granted: true,
                    lease_id: id,
                    expires: None,
                    reason: format!(
                        "a later run of job \"{}\" on host \"{}\" (started {current_started}) is \
                         already known; this earlier run holds nothing",
                        request.job, request.host
                    ),
                };
                return Outcome { response, events };
            }
            let detail = format!(
                "a later run of the job started at {}; the release of this one was lost",
                request.started
            );
            events.extend(self.end(&current, EventKind::Expired, detail, now));
        }
        match self.resources_of(request) {
            Err(unknown) => {
                let expires = now + 1000 * (self.settings.unknown_duration_secs + self.margin());
                let entry = Entry {
                    host: request.host.clone(),
                    job: request.job.clone(),
                    started: request.started,
                    resources: Vec::new(),
                    asked_at: now,
                    state: State::Granted {
                        expires,
                        unclaimed_until: None,
                    },
                };
                self.entries.insert(id.clone(), entry);
                self.by_job.insert(key, id.clone());
                self.granted += 1;
                self.due_by(expires);
                let reason = format!("{unknown}: granted at once, holding nothing");
                events.push(self.event(&id, EventKind::Granted { waited: 0 }, reason.clone(), now));
                // What an ended earlier run freed.
                events.extend(self.dispatch(now));
                let response = LeaseResponse {
                    granted: true,
                    lease_id: id,
                    expires: Some(ceil_secs(expires)),
                    reason,
                };
                Outcome { response, events }
            }
            Ok(resources) => {
                let alive_until = now + hold.max(0) + ABANDON_AFTER_MS;
                self.due_by(alive_until);
                let entry = Entry {
                    host: request.host.clone(),
                    job: request.job.clone(),
                    started: request.started,
                    resources,
                    asked_at: now,
                    state: State::Waiting { alive_until },
                };
                self.entries.insert(id.clone(), entry);
                self.by_job.insert(key, id.clone());
                self.queue.insert(queue_key(request), id.clone());
                events.extend(self.dispatch(now));
                let response = self.answer(&id, now);
                if !response.granted {
                    events.push(self.event(&id, EventKind::Queued, response.reason.clone(), now));
                }
                Outcome { response, events }
            }
        }
    }

    /// The state of lease `id` now, as the hook that asked is answered (a
    /// grant it learns of this way is collected).
    pub fn lookup(&mut self, id: &str, now: Millis) -> Option<LeaseResponse> {
        if self.entries.contains_key(id) {
            return Some(self.answer(id, now));
        }
        self.ended.get(id).map(|ended| ended_response(id, ended))
    }

    /// The hook's release (job end or abort) of lease `id`, granted or waiting.
    /// Releasing an ended lease again changes nothing.
    pub fn release(&mut self, id: &str, now: Millis) -> Result<Vec<Event>, UnknownLease> {
        let mut events = self.tick(now);
        if self.entries.contains_key(id) {
            let detail = match self.entries[id].state {
                State::Granted { .. } => "released by the hook".to_owned(),
                State::Waiting { .. } => "withdrawn by the hook while waiting".to_owned(),
            };
            events.extend(self.end(id, EventKind::Released, detail, now));
            events.extend(self.dispatch(now));
            return Ok(events);
        }
        if self.ended.contains_key(id) {
            return Ok(events);
        }
        Err(UnknownLease(id.to_owned()))
    }

    /// Ends what is due by `now` (expired grants, abandoned requests) and
    /// grants what that frees.
    pub fn tick(&mut self, now: Millis) -> Vec<Event> {
        self.forget_ended(now);
        if now < self.next_due {
            return Vec::new();
        }
        let due: Vec<(String, String)> = self
            .entries
            .iter()
            .filter_map(|(id, e)| match e.state {
                State::Granted { expires, .. } if expires <= now => Some((
                    id.clone(),
                    format!(
                        "expired after its reserved duration and the {} min margin without a release",
                        self.margin() / 60
                    ),
                )),
                State::Granted {
                    unclaimed_until: Some(until),
                    ..
                } if until <= now => Some((
                    id.clone(),
                    format!(
                        "granted while it waited, but no hook asked for it within {} s (the hook gave up waiting)",
                        ABANDON_AFTER_MS / 1000
                    ),
                )),
                State::Waiting { alive_until } if alive_until <= now => Some((
                    id.clone(),
                    format!(
                        "abandoned: not asked about for {} s (the hook gave up waiting)",
                        ABANDON_AFTER_MS / 1000
                    ),
                )),
                _ => None,
            })
            .collect();
        let mut events = Vec::new();
        for (id, detail) in &due {
            events.extend(self.end(id, EventKind::Expired, detail.clone(), now));
        }
        if !due.is_empty() {
            events.extend(self.dispatch(now));
        }
        self.next_due = self
            .entries
            .values()
            .map(|e| match e.state {
                State::Waiting { alive_until } => alive_until,
                State::Granted {
                    expires,
                    unclaimed_until,
                } => unclaimed_until.map_or(expires, |until| until.min(expires)),
            })
            .min()
            .unwrap_or(Millis::MAX);
        events
    }

    fn margin(&self) -> i64 {
        self.settings.margin_secs
    }

    /// The resources of a request's job, or why the job is unknown.
    fn resources_of(&self, request: &LeaseRequest) -> Result<Vec<usize>, String> {
        let Some(&host) = self.index.get(&host_resource(&request.host)) else {
            return Err(format!(
                "host \"{}\" is not in the coordinator's configuration",
                request.host
            ));
        };
        let known = self.jobs.get(&(request.host.clone(), request.job.clone()));
        let storage = request
            .storage
            .as_deref()
            .or_else(|| known.and_then(|j| j.storage.as_deref()));
        if known.is_none() && storage.is_none() {
            return Err(format!(
                "no report lists job \"{}\" on host \"{}\" and the request names no storage",
                request.job, request.host
            ));
        }
        let mut resources = vec![host];
        if let Some(shared) = storage.and_then(|s| self.storage_resources.get(s)) {
            resources.extend(shared.iter().copied().filter(|&r| r != host));
        }
        Ok(resources)
    }

    /// Grants, in queue order, every waiting entry that may start now.
    fn dispatch(&mut self, now: Millis) -> Vec<Event> {
        let mut blocked = vec![false; self.names.len()];
        let mut grants = Vec::new();
        for id in self.queue.values() {
            let Some(entry) = self.entries.get(id) else {
                continue;
            };
            let waits_behind = entry.resources.iter().any(|&r| blocked[r]);
            let has_room = entry
                .resources
                .iter()
                .all(|&r| self.held[r] < self.capacity[r]);
            if !waits_behind && has_room {
                for &r in &entry.resources {
                    self.held[r] += 1;
                }
                grants.push(id.clone());
            } else {
                for &r in &entry.resources {
                    blocked[r] = true;
                }
            }
        }
        let mut events = Vec::with_capacity(grants.len());
        for id in grants {
            let reserved = self.reserved_secs(&id);
            let Some(entry) = self.entries.get_mut(&id) else {
                continue;
            };
            let expires = now + 1000 * (reserved + self.settings.margin_secs);
            let unclaimed_until = now + ABANDON_AFTER_MS;
            entry.state = State::Granted {
                expires,
                unclaimed_until: Some(unclaimed_until),
            };
            self.next_due = self.next_due.min(expires).min(unclaimed_until);
            let waited = now - entry.asked_at;
            self.queue
                .remove(&(entry.started, entry.host.clone(), entry.job.clone()));
            self.granted += 1;
            let detail = format!(
                "holds {} for up to {} min",
                self.resource_list(&id),
                (reserved + self.settings.margin_secs + 59) / 60
            );
            events.push(self.event(&id, EventKind::Granted { waited }, detail, now));
        }
        events
    }

    fn reserved_secs(&self, id: &str) -> i64 {
        self.entries
            .get(id)
            .and_then(|e| self.jobs.get(&(e.host.clone(), e.job.clone())))
            .and_then(|j| j.reserved_secs)
            .unwrap_or(self.settings.unknown_duration_secs)
    }

    /// Ends entry `id` (granted or waiting) and frees what it held; the caller
    /// dispatches once its whole change is made.
    fn end(&mut self, id: &str, kind: EventKind, detail: String, now: Millis) -> Vec<Event> {
        let events = vec![self.event(id, kind, detail.clone(), now)];
        let Some(entry) = self.entries.remove(id) else {
            return events;
        };
        let key = (entry.host.clone(), entry.job.clone());
        if self.by_job.get(&key).is_some_and(|current| current == id) {
            self.by_job.remove(&key);
        }
        let expires = match entry.state {
            State::Granted { expires, .. } => {
                for &r in &entry.resources {
                    self.held[r] = self.held[r].saturating_sub(1);
                }
                self.granted -= 1;
                Some(expires)
            }
            State::Waiting { .. } => {
                self.queue.remove(&(entry.started, entry.host, entry.job));
                None
            }
        };
        self.ended.insert(
            id.to_owned(),
            Ended {
                at: now,
                expires,
                reason: format!("{} at {}: {detail}", kind.as_str(), now / 1000),
            },
        );
        self.ended_order.push_back((now, id.to_owned()));
        events
    }

    fn forget_ended(&mut self, now: Millis) {
        while let Some((at, _)) = self.ended_order.front() {
            if *at + ENDED_RETENTION_MS > now && self.ended_order.len() <= ENDED_MAX {
                break;
            }
            if let Some((at, id)) = self.ended_order.pop_front() {
                // A request asked afresh and ended again is remembered from its later end.
                if self.ended.get(&id).is_some_and(|ended| ended.at == at) {
                    self.ended.remove(&id);
                }
            }
        }
    }

    fn event(&self, id: &str, kind: EventKind, detail: String, now: Millis) -> Event {
        let (host, job, started, resources) = match self.entries.get(id) {
            Some(e) => (
                e.host.clone(),
                e.job.clone(),
                e.started,
                e.resources.iter().map(|&r| self.names[r].clone()).collect(),
            ),
            None => (String::new(), String::new(), 0, Vec::new()),
        };
        Event {
            kind,
            lease_id: id.to_owned(),
            host,
            job,
            started,
            at: now,
            resources,
            detail,
        }
    }

    fn resource_list(&self, id: &str) -> String {
        self.entries.get(id).map_or_else(String::new, |e| {
            e.resources
                .iter()
                .map(|&r| self.names[r].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
    }

    /// The answer for the ask of a live entry: a grant told is collected.
    fn answer(&mut self, id: &str, now: Millis) -> LeaseResponse {
        let response = self.response_of(id, now);
        if let Some(Entry {
            state: State::Granted {
                unclaimed_until, ..
            },
            ..
        }) = self.entries.get_mut(id)
        {
            *unclaimed_until = None;
        }
        response
    }

    /// The answer for a live entry.
    fn response_of(&self, id: &str, now: Millis) -> LeaseResponse {
        let Some(entry) = self.entries.get(id) else {
            return LeaseResponse {
                granted: true,
                lease_id: id.to_owned(),
                expires: None,
                reason: "the lease is not known".to_owned(),
            };
        };
        match entry.state {
            State::Granted { expires, .. } => LeaseResponse {
                granted: true,
                lease_id: id.to_owned(),
                expires: Some(ceil_secs(expires)),
                reason: if entry.resources.is_empty() {
                    "granted at once: the coordinator knows nothing this job would share".to_owned()
                } else {
                    format!("holds {}", self.resource_list(id))
                },
            },
            State::Waiting { .. } => LeaseResponse {
                granted: false,
                lease_id: id.to_owned(),
                expires: None,
                reason: self.waiting_reason(entry, now),
            },
        }
    }

    /// Who holds what this entry waits for, and its place in line.
    fn waiting_reason(&self, entry: &Entry, now: Millis) -> String {
        let mut text = String::from("waiting");
        let mut full = entry
            .resources
            .iter()
            .filter(|&&r| self.held[r] >= self.capacity[r])
            .peekable();
        if full.peek().is_some() {
            text.push_str(" for ");
            let parts: Vec<String> = full
                .map(|&r| {
                    let holders: Vec<String> = self
                        .entries
                        .values()
                        .filter(|e| {
                            matches!(e.state, State::Granted { .. }) && e.resources.contains(&r)
                        })
                        .map(|e| {
                            let secs = match e.state {
                                State::Granted { expires, .. } => (expires - now).max(0) / 1000,
                                State::Waiting { .. } => 0,
                            };
                            format!("{} on {} (expires in {} min)", e.job, e.host, secs / 60)
                        })
                        .collect();
                    format!("{} (held by {})", self.names[r], holders.join(", "))
                })
                .collect();
            text.push_str(&parts.join(" and "));
        }
        let own = (entry.started, entry.host.clone(), entry.job.clone());
        let ahead: Vec<String> = self
            .queue
            .range(..own)
            .filter_map(|(_, id)| {
                let other = self.entries.get(id)?;
                let shares = other.resources.iter().any(|r| entry.resources.contains(r));
                shares.then(|| format!("{} on {}", other.job, other.host))
            })
            .collect();
        let place = ahead.len() + 1;
        let _ = write!(text, "; number {place} in line");
        if !ahead.is_empty() {
            let _ = write!(text, " behind {}", ahead.join(", "));
        }
        text
    }
}

/// The lease id of a request: its host, job and start.
pub fn lease_id(host: &str, job: &str, started: i64) -> String {
    format!("{host}/{job}/{started}")
}

/// The implicit resource of a host.
pub fn host_resource(host: &str) -> String {
    format!("host:{host}")
}

fn queue_key(request: &LeaseRequest) -> QueueKey {
    (request.started, request.host.clone(), request.job.clone())
}

fn ceil_secs(ms: Millis) -> i64 {
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
}

fn ended_response(id: &str, ended: &Ended) -> LeaseResponse {
    LeaseResponse {
        granted: ended.expires.is_some(),
        lease_id: id.to_owned(),
        expires: ended.expires.map(ceil_secs),
        reason: format!("this lease has ended ({})", ended.reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: Millis = 1_767_232_800_000; // 2026-01-01 02:00 UTC

    /// hikurangi, ruapehu, pihanga (capacity 1 each) and one PBS datastore
    /// (capacity 1) for the storage `pbs`; 10 min reserved, 5 min margin.
    fn homelab() -> Leases {
        Leases::new(Settings {
            hosts: ["hikurangi", "ruapehu", "pihanga"]
                .into_iter()
                .map(|h| (h.to_owned(), 1))
                .collect(),
            resources: vec![ResourceSpec {
                name: "pbs-main".into(),
                capacity: 1,
                storages: vec!["pbs".into()],
            }],
            margin_secs: 300,
            unknown_duration_secs: 600,
        })
    }

    fn ask(host: &str, job: &str, started: i64, storage: Option<&str>) -> LeaseRequest {
        LeaseRequest {
            host: host.into(),
            job: job.into(),
            started,
            wait_secs: 0,
            storage: storage.map(Into::into),
        }
    }

    fn granted(events: &[Event]) -> Vec<&str> {
        events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Granted { .. }))
            .map(|e| e.job.as_str())
            .collect()
    }

    #[test]
    fn a_free_resource_is_granted_at_once_until_reserved_plus_margin() {
        let mut leases = homelab();
        let outcome = leases.request(&ask("hikurangi", "backup-h", 100, Some("pbs")), 0, T0);
        assert!(outcome.response.granted, "{:?}", outcome.response);
        assert_eq!(outcome.response.lease_id, "hikurangi/backup-h/100");
        assert_eq!(outcome.response.expires, Some(T0 / 1000 + 600 + 300));
        assert_eq!(leases.resource("pbs-main"), Some((1, 1)));
        assert_eq!(leases.resource("host:hikurangi"), Some((1, 1)));
        assert_eq!(granted(&outcome.events), ["backup-h"]);
    }

    #[test]
    fn a_busy_resource_queues_naming_the_holder_and_a_release_wakes_the_next() {
        let mut leases = homelab();
        leases.request(&ask("hikurangi", "backup-h", 100, Some("pbs")), 0, T0);
        let second = leases.request(&ask("ruapehu", "backup-r", 200, Some("pbs")), 0, T0 + 1);
        assert!(!second.response.granted);
        let reason = &second.response.reason;
        assert!(
            reason.contains("pbs-main (held by backup-h on hikurangi"),
            "{reason}"
        );
        assert!(reason.contains("number 1 in line"), "{reason}");
        assert_eq!(second.events[0].kind, EventKind::Queued);

        let events = leases
            .release("hikurangi/backup-h/100", T0 + 5_000)
            .expect("known");
        assert_eq!(events[0].kind, EventKind::Released);
        assert_eq!(events[1].kind, EventKind::Granted { waited: 4_999 });
        assert_eq!(events[1].job, "backup-r");
        let now = leases
            .lookup("ruapehu/backup-r/200", T0 + 5_000)
            .expect("known");
        assert!(now.granted);
        assert_eq!(now.expires, Some((T0 + 5_000) / 1000 + 900));
    }

    #[test]
    fn asking_again_keeps_the_place_in_the_queue() {
        let mut leases = homelab();
        leases.request(&ask("hikurangi", "backup-h", 100, Some("pbs")), 0, T0);
        let first = leases.request(&ask("ruapehu", "backup-r", 200, Some("pbs")), 0, T0);
        let again = leases.request(
            &ask("ruapehu", "backup-r", 200, Some("pbs")),
            0,
            T0 + 60_000,
        );
        assert_eq!(first.response.lease_id, again.response.lease_id);
        assert!(again.events.is_empty(), "{:?}", again.events);
        assert_eq!(leases.waiting(), 1);
        // The grant is also answered again, unchanged.
        let holder = leases.request(&ask("hikurangi", "backup-h", 100, Some("pbs")), 0, T0 + 1);
        assert!(holder.response.granted);
        assert_eq!(holder.response.expires, Some(T0 / 1000 + 900));
    }

    #[test]
    fn waiting_requests_are_served_in_start_order_not_asking_order() {
        let mut leases = homelab();
        leases.request(&ask("hikurangi", "backup-h", 100, Some("pbs")), 0, T0);
        leases.request(&ask("pihanga", "backup-p", 300, Some("pbs")), 0, T0 + 1);
        leases.request(&ask("ruapehu", "backup-r", 200, Some("pbs")), 0, T0 + 2);
        let events = leases
            .release("hikurangi/backup-h/100", T0 + 3)
            .expect("known");
        assert_eq!(granted(&events), ["backup-r"]);
        let events = leases
            .release("ruapehu/backup-r/200", T0 + 4)
            .expect("known");
        assert_eq!(granted(&events), ["backup-p"]);
    }

    #[test]
    fn no_request_overtakes_an_earlier_one_that_waits_for_a_shared_resource() {
        let mut leases = homelab();
        // ruapehu's backup holds the datastore; pihanga's first job waits for it
        // (and for its host); pihanga's second job, started later, needs only
        // the host, which is free, but must not take it before the first.
        leases.request(&ask("ruapehu", "backup-r", 100, Some("pbs")), 0, T0);
        let first = leases.request(&ask("pihanga", "backup-p1", 200, Some("pbs")), 0, T0);
        assert!(!first.response.granted);
        let second = leases.request(&ask("pihanga", "backup-p2", 300, Some("local")), 0, T0);
        assert!(!second.response.granted, "{:?}", second.response);
        assert!(
            second
                .response
                .reason
                .contains("behind backup-p1 on pihanga"),
            "{}",
            second.response.reason
        );
        // A job sharing nothing with the waiting ones goes at once.
        let other = leases.request(&ask("hikurangi", "backup-h", 400, Some("local")), 0, T0);
        assert!(other.response.granted);
        let events = leases
            .release("ruapehu/backup-r/100", T0 + 1)
            .expect("known");
        assert_eq!(granted(&events), ["backup-p1"]);
        let events = leases
            .release("pihanga/backup-p1/200", T0 + 2)
            .expect("known");
        assert_eq!(granted(&events), ["backup-p2"]);
    }

    #[test]
    fn an_expired_grant_frees_its_resources_and_is_counted_as_expired() {
        let mut leases = homelab();
        leases.request(&ask("hikurangi", "backup-h", 100, Some("pbs")), 0, T0);
        assert!(leases.tick(T0 + 899_999).is_empty());
        assert_eq!(leases.next_deadline(), Some(T0 + 900_000));
        leases.request(
            &ask("ruapehu", "backup-r", 200, Some("pbs")),
            60_000,
            T0 + 850_000,
        );
        let events = leases.tick(T0 + 900_000);
        assert_eq!(events[0].kind, EventKind::Expired);
        assert_eq!(events[0].job, "backup-h");
        assert_eq!(granted(&events), ["backup-r"]);
        // A late release of the expired lease is answered, and changes nothing.
        assert_eq!(
            leases.release("hikurangi/backup-h/100", T0 + 950_000),
            Ok(vec![])
        );
    }

    #[test]
    fn the_reserved_duration_of_the_plan_sets_the_expiry() {
        let mut leases = homelab();
        leases.set_jobs([KnownJob {
            host: "pihanga".into(),
            job: "backup-p".into(),
            storage: Some("pbs".into()),
            reserved_secs: Some(2400),
        }]);
        // The storage comes from the report when the request names none.
        let outcome = leases.request(&ask("pihanga", "backup-p", 100, None), 0, T0);
        assert!(outcome.response.granted);
        assert_eq!(outcome.response.expires, Some(T0 / 1000 + 2400 + 300));
        assert_eq!(leases.resource("pbs-main"), Some((1, 1)));
    }

    #[test]
    fn an_unknown_job_is_granted_at_once_holding_nothing_and_says_why() {
        let mut leases = homelab();
        let stranger = leases.request(&ask("tongariro", "backup-t", 100, Some("pbs")), 0, T0);
        assert!(stranger.response.granted);
        assert!(
            stranger
                .response
                .reason
                .contains("host \"tongariro\" is not in the coordinator's configuration"),
            "{}",
            stranger.response.reason
        );
        let unreported = leases.request(&ask("pihanga", "backup-x", 100, None), 0, T0);
        assert!(unreported.response.granted);
        assert!(
            unreported
                .response
                .reason
                .contains("no report lists job \"backup-x\""),
            "{}",
            unreported.response.reason
        );
        assert_eq!(leases.resource("pbs-main"), Some((0, 1)));
        assert_eq!(leases.resource("host:pihanga"), Some((0, 1)));
        assert_eq!(leases.active(), 2);
        assert!(leases.release("pihanga/backup-x/100", T0 + 1).is_ok());
    }

    #[test]
    fn a_grant_made_after_its_hook_gave_up_ends_unless_an_ask_collects_it() {
        let mut leases = homelab();
        leases.request(&ask("hikurangi", "backup-h", 100, Some("pbs")), 0, T0);
        // Ruapehu's hook asks once and gives up (it let its backup go);
        // Pihanga's keeps asking.
        leases.request(&ask("ruapehu", "backup-r", 200, Some("pbs")), 30_000, T0);
        leases.request(&ask("pihanga", "backup-p", 300, Some("pbs")), 30_000, T0);
        let events = leases
            .release("hikurangi/backup-h/100", T0 + 10_000)
            .expect("known");
        assert_eq!(granted(&events), ["backup-r"]);
        leases.request(
            &ask("pihanga", "backup-p", 300, Some("pbs")),
            30_000,
            T0 + 40_000,
        );
        // Nobody collects Ruapehu's grant: it ends, and Pihanga's turn comes,
        // instead of waiting out Ruapehu's 10 reserved + 5 margin minutes.
        assert!(leases.tick(T0 + 10_000 + ABANDON_AFTER_MS - 1).is_empty());
        let events = leases.tick(T0 + 10_000 + ABANDON_AFTER_MS);
        assert_eq!(events[0].kind, EventKind::Expired);
        assert_eq!(events[0].job, "backup-r");
        assert!(
            events[0].detail.contains("no hook asked for it"),
            "{}",
            events[0].detail
        );
        assert_eq!(granted(&events), ["backup-p"]);
        // A grant the waiting hook was told of is held for its reserved time.
        let told = leases
            .lookup("pihanga/backup-p/300", T0 + 10_000 + ABANDON_AFTER_MS)
            .expect("known");
        assert!(told.granted);
        assert!(leases.tick(T0 + 10_000 + 3 * ABANDON_AFTER_MS).is_empty());
        assert_eq!(leases.resource("pbs-main"), Some((1, 1)));
    }

    #[test]
    fn a_waiting_request_nobody_asks_about_is_abandoned_and_may_queue_again() {
        let mut leases = homelab();
        leases.request(&ask("hikurangi", "backup-h", 100, Some("pbs")), 0, T0);
        leases.request(&ask("ruapehu", "backup-r", 200, Some("pbs")), 30_000, T0);
        let events = leases.tick(T0 + 30_000 + ABANDON_AFTER_MS);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::Expired);
        assert!(
            events[0].detail.contains("abandoned"),
            "{}",
            events[0].detail
        );
        assert_eq!(leases.waiting(), 0);
        let again = leases.request(
            &ask("ruapehu", "backup-r", 200, Some("pbs")),
            0,
            T0 + 200_000,
        );
        assert!(!again.response.granted);
        assert_eq!(leases.waiting(), 1);
    }

    #[test]
    fn releasing_a_lease_never_known_is_an_error_and_a_second_release_is_not() {
        let mut leases = homelab();
        assert!(leases.release("pihanga/backup-p/1", T0).is_err());
        leases.request(&ask("pihanga", "backup-p", 1, Some("pbs")), 0, T0);
        assert_eq!(
            leases
                .release("pihanga/backup-p/1", T0 + 1)
                .map(|e| e.len()),
            Ok(1)
        );
        assert_eq!(leases.release("pihanga/backup-p/1", T0 + 2), Ok(vec![]));
        let asked_again = leases.request(&ask("pihanga", "backup-p", 1, Some("pbs")), 0, T0 + 3);
        assert!(asked_again.response.granted);
        assert!(
            asked_again.response.reason.contains("ended"),
            "{}",
            asked_again.response.reason
        );
        assert_eq!(leases.resource("pbs-main"), Some((0, 1)));
    }

    #[test]
    fn withdrawing_a_waiting_request_lets_the_one_behind_it_go() {
        let mut leases = homelab();
        leases.request(&ask("ruapehu", "backup-r", 100, Some("pbs")), 0, T0);
        leases.request(&ask("pihanga", "backup-p1", 200, Some("pbs")), 0, T0);
        let behind = leases.request(&ask("pihanga", "backup-p2", 300, Some("local")), 0, T0);
        assert!(!behind.response.granted);
        let events = leases
            .release("pihanga/backup-p1/200", T0 + 1)
            .expect("known");
        assert_eq!(events[0].kind, EventKind::Released);
        assert_eq!(granted(&events), ["backup-p2"]);
    }

    #[test]
    fn a_later_run_of_the_same_job_ends_the_earlier_runs_lease() {
        let mut leases = homelab();
        leases.request(&ask("pihanga", "backup-p", 100, Some("pbs")), 0, T0);
        let next = leases.request(&ask("pihanga", "backup-p", 86_500, Some("pbs")), 0, T0 + 1);
        assert!(next.response.granted, "{:?}", next.response);
        assert_eq!(next.events[0].kind, EventKind::Expired);
        assert_eq!(next.events[0].lease_id, "pihanga/backup-p/100");
        assert_eq!(leases.active(), 1);
        assert_eq!(leases.resource("pbs-main"), Some((1, 1)));
    }

    // ---- properties ---------------------------------------------------

    #[derive(Debug, Clone)]
    enum Op {
        Ask {
            host: usize,
            job: usize,
            started: i64,
            storage: usize,
        },
        Release {
            pick: usize,
        },
        Advance {
            secs: i64,
        },
    }

    const HOSTS: [&str; 4] = ["h0", "h1", "h2", "h3"];
    const STORAGES: [Option<&str>; 3] = [Some("pbs-a"), Some("pbs-b"), None];

    /// Four hosts (capacities 1, 1, 2, 1), two datastores (capacities 1 and
    /// 2) and one uplink (capacity 2) that both datastores go through.
    fn fleet() -> Leases {
        let mut leases = Leases::new(Settings {
            hosts: HOSTS
                .iter()
                .zip([1, 1, 2, 1])
                .map(|(h, c)| ((*h).to_owned(), c))
                .collect(),
            resources: vec![
                ResourceSpec {
                    name: "pbs-a".into(),
                    capacity: 1,
                    storages: vec!["pbs-a".into()],
                },
                ResourceSpec {
                    name: "pbs-b".into(),
                    capacity: 2,
                    storages: vec!["pbs-b".into()],
                },
                ResourceSpec {
                    name: "uplink".into(),
                    capacity: 2,
                    storages: vec!["pbs-a".into(), "pbs-b".into()],
                },
            ],
            margin_secs: 300,
            unknown_duration_secs: 600,
        });
        // Jobs 0..3 of every host are known (some with their storage), job 3 is not.
        leases.set_jobs(HOSTS.iter().flat_map(|h| {
            (0..3).map(move |j| KnownJob {
                host: (*h).to_owned(),
                job: format!("job{j}"),
                storage: (j == 0).then(|| "pbs-a".to_owned()),
                reserved_secs: Some(300 + 300 * j),
            })
        }));
        leases
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..4usize, 0..4usize, 0..40i64, 0..3usize).prop_map(|(host, job, started, storage)| {
                Op::Ask { host, job, started, storage }
            }),
            2 => (0..64usize).prop_map(|pick| Op::Release { pick }),
            1 => (0..1500i64).prop_map(|secs| Op::Advance { secs }),
        ]
    }

    fn request(host: usize, job: usize, started: i64, storage: usize) -> LeaseRequest {
        LeaseRequest {
            host: HOSTS[host].to_owned(),
            job: format!("job{job}"),
            started,
            wait_secs: 60,
            storage: STORAGES[storage].map(str::to_owned),
        }
    }

    /// Capacity holds, `held` matches the grants, and the dispatch is both
    /// fair (no grant while an earlier sharer waits) and complete (nothing
    /// waits that the rule would let go).
    fn check_invariants(leases: &Leases, granted_now: &[String]) -> Result<(), TestCaseError> {
        let mut held = vec![0u32; leases.names.len()];
        for entry in leases.entries.values() {
            if let State::Granted { .. } = entry.state {
                for &r in &entry.resources {
                    held[r] += 1;
                }
            }
        }
        prop_assert_eq!(&held, &leases.held);
        for (r, &h) in held.iter().enumerate() {
            prop_assert!(h <= leases.capacity[r], "{} over capacity", leases.names[r]);
        }
        for id in granted_now {
            let Some(g) = leases.entries.get(id) else {
                continue;
            };
            let g_key = (g.started, g.host.clone(), g.job.clone());
            for (w_key, w_id) in &leases.queue {
                let w = &leases.entries[w_id];
                let shares = w.resources.iter().any(|r| g.resources.contains(r));
                prop_assert!(
                    !(shares && *w_key < g_key),
                    "{id} overtook the earlier {w_id}"
                );
            }
        }
        let mut blocked = vec![false; leases.names.len()];
        for id in leases.queue.values() {
            let w = &leases.entries[id];
            let behind = w.resources.iter().any(|&r| blocked[r]);
            let room = w
                .resources
                .iter()
                .all(|&r| leases.held[r] < leases.capacity[r]);
            prop_assert!(behind || !room, "{id} waits although it could go");
            for &r in &w.resources {
                blocked[r] = true;
            }
        }
        Ok(())
    }

    fn granted_ids(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Granted { .. }))
            .map(|e| e.lease_id.clone())
            .collect()
    }

    /// Runs `ops`; returns the manager, the time and every request still waiting.
    fn replay(ops: &[Op]) -> Result<(Leases, Millis), TestCaseError> {
        let mut leases = fleet();
        let mut now = T0;
        let mut seen: Vec<String> = Vec::new();
        for op in ops {
            let events = match *op {
                Op::Ask {
                    host,
                    job,
                    started,
                    storage,
                } => {
                    let r = request(host, job, started, storage);
                    let outcome = leases.request(&r, 60_000, now);
                    seen.push(outcome.response.lease_id.clone());
                    outcome.events
                }
                Op::Release { pick } if !seen.is_empty() => {
                    let id = seen[pick % seen.len()].clone();
                    leases.release(&id, now).unwrap_or_default()
                }
                Op::Release { .. } => Vec::new(),
                Op::Advance { secs } => {
                    now += secs * 1000;
                    leases.tick(now)
                }
            };
            check_invariants(&leases, &granted_ids(&events))?;
        }
        Ok((leases, now))
    }

    /// Re-asks every waiting request (the hooks keep asking) and advances a minute.
    fn keep_waiting(leases: &mut Leases, now: &mut Millis) -> Vec<Event> {
        let waiting: Vec<LeaseRequest> = leases
            .queue
            .keys()
            .map(|(started, host, job)| LeaseRequest {
                host: host.clone(),
                job: job.clone(),
                started: *started,
                wait_secs: 60,
                storage: None,
            })
            .collect();
        let mut events = Vec::new();
        for r in &waiting {
            events.extend(leases.request(r, 60_000, *now).events);
        }
        *now += 60_000;
        events.extend(leases.tick(*now));
        events
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn capacity_holds_and_nobody_overtakes(ops in proptest::collection::vec(op(), 1..80)) {
            replay(&ops)?;
        }

        #[test]
        fn every_waiting_request_is_granted_once_holders_release(
            ops in proptest::collection::vec(op(), 1..80)
        ) {
            let (mut leases, mut now) = replay(&ops)?;
            let waiting: Vec<String> = leases.queue.values().cloned().collect();
            let mut rounds = 0;
            while !leases.queue.is_empty() {
                rounds += 1;
                prop_assert!(rounds <= waiting.len() + 1, "no progress: {:?}", leases.queue);
                let holders: Vec<String> = leases
                    .entries
                    .iter()
                    .filter(|(_, e)| matches!(e.state, State::Granted { .. }))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in holders {
                    let events = leases.release(&id, now).unwrap_or_default();
                    check_invariants(&leases, &granted_ids(&events))?;
                }
                now += 1;
            }
            for id in &waiting {
                let answer = leases.lookup(id, now);
                prop_assert!(answer.is_some_and(|a| a.granted), "{id} never granted");
            }
        }

        #[test]
        fn every_waiting_request_is_granted_once_holders_expire(
            ops in proptest::collection::vec(op(), 1..60)
        ) {
            let (mut leases, mut now) = replay(&ops)?;
            let waiting: Vec<String> = leases.queue.values().cloned().collect();
            let mut ever: std::collections::HashSet<String> = std::collections::HashSet::new();
            // Longest grant: 900 s reserved + 300 s margin = 20 one-minute rounds.
            for _ in 0..(20 * (waiting.len() + 1)) {
                if leases.queue.is_empty() {
                    break;
                }
                let events = keep_waiting(&mut leases, &mut now);
                check_invariants(&leases, &granted_ids(&events))?;
                ever.extend(granted_ids(&events));
            }
            prop_assert!(leases.queue.is_empty(), "still waiting: {:?}", leases.queue);
            for id in &waiting {
                prop_assert!(ever.contains(id), "{id} never granted");
            }
        }
    }
}
