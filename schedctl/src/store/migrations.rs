//! The store's schema, as numbered migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Each
//! migration runs in one transaction with the version bump, so a crash leaves
//! the schema at one version or the next, never between. Add a migration at
//! the end; never edit one that has shipped.

/// Every migration, in order; migration `n` (1-based) brings the schema to version `n`.
pub const MIGRATIONS: &[&str] = &[
    // 1: plans, applies with their hosts, rollbacks with their hosts, lease events.
    r"
    CREATE TABLE plans (
        id          INTEGER PRIMARY KEY,
        created_at  INTEGER NOT NULL,          -- Unix seconds
        created_by  TEXT    NOT NULL,
        source      TEXT    NOT NULL,          -- 'live' or 'snapshot <file>'
        summary     TEXT    NOT NULL,          -- one line for `history`
        body        TEXT    NOT NULL           -- JSON: the snapshot, the plan, each host's state and changes
    );
    CREATE TABLE applies (
        id          INTEGER PRIMARY KEY,
        plan_id     INTEGER NOT NULL REFERENCES plans(id),
        started_at  INTEGER NOT NULL,
        started_by  TEXT    NOT NULL,
        finished_at INTEGER,                   -- NULL while running, or after a crash
        status      TEXT    NOT NULL,          -- started | ok | rolled_back | failed | refused
        message     TEXT    NOT NULL DEFAULT ''
    );
    CREATE TABLE apply_hosts (
        apply_id       INTEGER NOT NULL REFERENCES applies(id),
        position       INTEGER NOT NULL,       -- place in the rollout order, from 1
        host           TEXT    NOT NULL,
        transport      TEXT    NOT NULL,
        digest_before  TEXT    NOT NULL,       -- the digest the write expects
        digest_after   TEXT,                   -- the digest the write left
        changes        TEXT    NOT NULL,       -- JSON [{job, schedule}]
        previous       TEXT    NOT NULL,       -- JSON [{job, schedule}]: the schedules before
        status         TEXT    NOT NULL,       -- pending | writing | written | failed | rolled_back | rollback_failed
        error          TEXT    NOT NULL DEFAULT '',
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (apply_id, host)
    );
    CREATE TABLE rollbacks (
        id          INTEGER PRIMARY KEY,
        apply_id    INTEGER NOT NULL REFERENCES applies(id),
        started_at  INTEGER NOT NULL,
        started_by  TEXT    NOT NULL,
        finished_at INTEGER,
        status      TEXT    NOT NULL,          -- started | ok | failed
        message     TEXT    NOT NULL DEFAULT ''
    );
    CREATE TABLE rollback_hosts (
        rollback_id    INTEGER NOT NULL REFERENCES rollbacks(id),
        host           TEXT    NOT NULL,
        digest_before  TEXT    NOT NULL,
        digest_after   TEXT,
        status         TEXT    NOT NULL,       -- restored | failed | skipped
        error          TEXT    NOT NULL DEFAULT '',
        updated_at     INTEGER NOT NULL,
        PRIMARY KEY (rollback_id, host)
    );
    CREATE TABLE lease_events (
        id        INTEGER PRIMARY KEY,
        at        INTEGER NOT NULL,
        host      TEXT    NOT NULL,
        job       TEXT    NOT NULL,
        started   INTEGER NOT NULL,            -- the run's start: (host, job, started) is one request
        event     TEXT    NOT NULL,            -- requested | granted | queued | released | expired
        lease_id  TEXT    NOT NULL DEFAULT '',
        detail    TEXT    NOT NULL DEFAULT ''
    );
    CREATE INDEX lease_events_at ON lease_events(at);
    CREATE INDEX applies_plan ON applies(plan_id);
    ",
];
