//! The SQLite store: every plan (with its snapshot), every apply with each
//! host's digests before and after, every rollback, and lease events.
//!
//! One file (`store` in schedctl.toml), WAL journal, versioned migrations
//! (`migrations.rs`). Safe across crashes by the order of writes: an apply
//! is recorded as `started` before the first host is written, each host as
//! `writing` before its write and with its result right after, and the apply
//! gets its final status only at the end. An apply still `started` later is
//! one that did not finish: [`Store::unfinished_applies`] finds it, with
//! exactly which hosts were written.

mod migrations;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Params, Row};
use scheduler_core::report::ScheduleChange;
use serde::{Deserialize, Serialize};

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or created.
    #[error("cannot open the store {path}: {source}; check `store` in schedctl.toml and that its directory exists and is writable")]
    Open {
        /// The file.
        path: PathBuf,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
    /// The database is newer than this schedctl.
    #[error("the store {path} has schema version {found}, newer than this schedctl knows ({known}); use a newer schedctl")]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// A query failed.
    #[error("store {path}: {source}")]
    Sql {
        /// The file.
        path: PathBuf,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
    /// A stored JSON body could not be read back.
    #[error("store {path}: {what} is not readable: {source}")]
    Body {
        /// The file.
        path: PathBuf,
        /// What was read.
        what: String,
        /// serde's reason.
        source: serde_json::Error,
    },
}

/// The store.
pub struct Store {
    path: PathBuf,
    conn: Connection,
}

/// A stored plan.
#[derive(Debug, Clone)]
pub struct PlanRow {
    /// Its id.
    pub id: i64,
    /// When it was made.
    pub created_at: i64,
    /// Who made it.
    pub created_by: String,
    /// `live` or `snapshot <file>`.
    pub source: String,
    /// One line.
    pub summary: String,
    /// The JSON body.
    pub body: String,
}

/// A stored apply.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyRow {
    /// Its id.
    pub id: i64,
    /// The plan it applied.
    pub plan_id: i64,
    /// When it started.
    pub started_at: i64,
    /// Who started it.
    pub started_by: String,
    /// When it finished (`None`: running, or it never finished).
    pub finished_at: Option<i64>,
    /// started | ok | rolled_back | failed | refused.
    pub status: String,
    /// What happened, in a sentence.
    pub message: String,
    /// Its hosts, in rollout order.
    pub hosts: Vec<ApplyHostRow>,
}

/// One host of an apply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyHostRow {
    /// Place in the rollout order, from 1.
    pub position: i64,
    /// The host.
    pub host: String,
    /// agent | ssh | pve-api.
    pub transport: String,
    /// The digest the write expects.
    pub digest_before: String,
    /// The digest the write left.
    pub digest_after: Option<String>,
    /// The schedules written.
    pub changes: Vec<ScheduleChange>,
    /// The schedules before.
    pub previous: Vec<ScheduleChange>,
    /// pending | writing | written | failed | rolled_back | rollback_failed.
    pub status: String,
    /// The error, when it failed.
    pub error: String,
}

/// A change of one host's row in an apply or a rollback.
#[derive(Debug, Clone, Copy)]
pub struct HostUpdate<'a> {
    /// The new status.
    pub status: &'a str,
    /// The digest before (kept when `None`).
    pub digest_before: Option<&'a str>,
    /// The digest after (kept when `None`).
    pub digest_after: Option<&'a str>,
    /// What went wrong, or empty.
    pub error: &'a str,
    /// When, Unix seconds.
    pub at: i64,
}

/// A stored rollback.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackRow {
    /// Its id.
    pub id: i64,
    /// The apply it undid.
    pub apply_id: i64,
    /// When it started.
    pub started_at: i64,
    /// Who started it.
    pub started_by: String,
    /// When it finished.
    pub finished_at: Option<i64>,
    /// started | ok | failed.
    pub status: String,
    /// What happened.
    pub message: String,
}

/// One lease event (written by the coordinator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseEvent {
    /// When, Unix seconds.
    pub at: i64,
    /// The host.
    pub host: String,
    /// The job.
    pub job: String,
    /// The run's start (identifies the request with host and job).
    pub started: i64,
    /// requested | granted | queued | released | expired.
    pub event: String,
    /// The lease id, once there is one.
    pub lease_id: String,
    /// Anything else worth keeping (the resources waited for).
    pub detail: String,
}

impl Store {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_error)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_error)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_error)?;
        let mut store = Store {
            path: path.to_path_buf(),
            conn,
        };
        store.migrate()?;
        Ok(store)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sql(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs one statement that changes rows.
    fn execute(&self, sql: &str, params: impl Params) -> Result<(), StoreError> {
        self.conn.execute(sql, params).map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Inserts one row; returns its id.
    fn insert(&self, sql: &str, params: impl Params) -> Result<i64, StoreError> {
        self.execute(sql, params)?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Every row of a query, each read by `read`.
    fn rows<T>(
        &self,
        sql: &str,
        params: impl Params,
        read: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params, read)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        Ok(rows)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version = self.schema_version()?;
        let known = i64::try_from(migrations::MIGRATIONS.len()).unwrap_or(i64::MAX);
        if version > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        let sql_error = |source| StoreError::Sql {
            path: self.path.clone(),
            source,
        };
        for (index, sql) in migrations::MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(version).unwrap_or(0))
        {
            let tx = self.conn.transaction().map_err(sql_error)?;
            tx.execute_batch(sql).map_err(sql_error)?;
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(index + 1).unwrap_or(i64::MAX),
            )
            .map_err(sql_error)?;
            tx.commit().map_err(sql_error)?;
        }
        Ok(())
    }

    /// The schema version (migrations applied).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| self.sql(e))
    }

    // --- plans -----------------------------------------------------------

    /// Stores a plan; returns its id.
    pub fn insert_plan(
        &self,
        at: i64,
        by: &str,
        source: &str,
        summary: &str,
        body: &str,
    ) -> Result<i64, StoreError> {
        self.insert(
            "INSERT INTO plans (created_at, created_by, source, summary, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![at, by, source, summary, body],
        )
    }

    /// The plan `id`, or the latest one.
    pub fn plan(&self, id: Option<i64>) -> Result<Option<PlanRow>, StoreError> {
        self.conn
            .query_row(
                "SELECT id, created_at, created_by, source, summary, body FROM plans
                 WHERE ?1 IS NULL OR id = ?1 ORDER BY id DESC LIMIT 1",
                [id],
                |row| {
                    Ok(PlanRow {
                        body: row.get(5)?,
                        ..read_plan(row)?
                    })
                },
            )
            .optional()
            .map_err(|e| self.sql(e))
    }

    /// Every plan, newest first, without bodies.
    pub fn plans(&self, limit: i64) -> Result<Vec<PlanRow>, StoreError> {
        self.rows(
            "SELECT id, created_at, created_by, source, summary FROM plans ORDER BY id DESC LIMIT ?1",
            [limit],
            read_plan,
        )
    }

    // --- applies ---------------------------------------------------------

    /// Records an apply as started, with its hosts in rollout order, before anything is written.
    pub fn start_apply(
        &mut self,
        plan_id: i64,
        at: i64,
        by: &str,
        hosts: &[ApplyHostRow],
    ) -> Result<i64, StoreError> {
        let sql_error = |source| StoreError::Sql {
            path: self.path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql_error)?;
        tx.execute(
            "INSERT INTO applies (plan_id, started_at, started_by, status) VALUES (?1, ?2, ?3, 'started')",
            params![plan_id, at, by],
        )
        .map_err(sql_error)?;
        let id = tx.last_insert_rowid();
        for host in hosts {
            tx.execute(
                "INSERT INTO apply_hosts (apply_id, position, host, transport, digest_before, changes, previous, status, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8)",
                params![
                    id,
                    host.position,
                    host.host,
                    host.transport,
                    host.digest_before,
                    to_json(&host.changes),
                    to_json(&host.previous),
                    at
                ],
            )
            .map_err(sql_error)?;
        }
        tx.commit().map_err(sql_error)?;
        Ok(id)
    }

    /// Records one host's state in an apply.
    pub fn set_apply_host(
        &self,
        apply_id: i64,
        host: &str,
        update: &HostUpdate<'_>,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE apply_hosts SET status = ?3, digest_before = COALESCE(?4, digest_before),
                 digest_after = COALESCE(?5, digest_after), error = ?6, updated_at = ?7
             WHERE apply_id = ?1 AND host = ?2",
            params![
                apply_id,
                host,
                update.status,
                update.digest_before,
                update.digest_after,
                update.error,
                update.at
            ],
        )
    }

    /// Gives an apply its final status.
    pub fn finish_apply(
        &self,
        apply_id: i64,
        status: &str,
        message: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE applies SET status = ?2, message = ?3, finished_at = ?4 WHERE id = ?1",
            params![apply_id, status, message, at],
        )
    }

    /// The apply `id`, with its hosts.
    pub fn apply(&self, id: i64) -> Result<Option<ApplyRow>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT id, plan_id, started_at, started_by, finished_at, status, message FROM applies WHERE id = ?1",
                [id],
                read_apply,
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        match row {
            Some(mut apply) => {
                apply.hosts = self.apply_hosts(apply.id)?;
                Ok(Some(apply))
            }
            None => Ok(None),
        }
    }

    /// Applies, newest first, with their hosts.
    pub fn applies(&self, limit: i64) -> Result<Vec<ApplyRow>, StoreError> {
        self.applies_where("1 = 1", limit)
    }

    /// Applies that never got a final status: a schedctl that died mid-rollout.
    pub fn unfinished_applies(&self) -> Result<Vec<ApplyRow>, StoreError> {
        self.applies_where("finished_at IS NULL", i64::MAX)
    }

    fn applies_where(&self, condition: &str, limit: i64) -> Result<Vec<ApplyRow>, StoreError> {
        let mut applies = self.rows(
            &format!(
                "SELECT id, plan_id, started_at, started_by, finished_at, status, message FROM applies
                 WHERE {condition} ORDER BY id DESC LIMIT ?1"
            ),
            [limit],
            read_apply,
        )?;
        for apply in &mut applies {
            apply.hosts = self.apply_hosts(apply.id)?;
        }
        Ok(applies)
    }

    fn apply_hosts(&self, apply_id: i64) -> Result<Vec<ApplyHostRow>, StoreError> {
        let raw = self.rows(
            "SELECT position, host, transport, digest_before, digest_after, changes, previous, status, error
             FROM apply_hosts WHERE apply_id = ?1 ORDER BY position",
            [apply_id],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, String>(7)?,
                    row.get::<_, String>(8)?,
                ))
            },
        )?;
        raw.into_iter()
            .map(
                |(position, host, transport, before, after, changes, previous, status, error)| {
                    Ok(ApplyHostRow {
                        position,
                        transport,
                        digest_before: before,
                        digest_after: after,
                        changes: self.read_body(
                            &changes,
                            &format!("apply {apply_id} host {host} changes"),
                        )?,
                        previous: self.read_body(
                            &previous,
                            &format!("apply {apply_id} host {host} previous schedules"),
                        )?,
                        host,
                        status,
                        error,
                    })
                },
            )
            .collect()
    }

    fn read_body<T: for<'de> Deserialize<'de>>(
        &self,
        text: &str,
        what: &str,
    ) -> Result<T, StoreError> {
        serde_json::from_str(text).map_err(|source| StoreError::Body {
            path: self.path.clone(),
            what: what.to_owned(),
            source,
        })
    }

    // --- rollbacks -------------------------------------------------------

    /// Records a rollback as started.
    pub fn start_rollback(&self, apply_id: i64, at: i64, by: &str) -> Result<i64, StoreError> {
        self.insert(
            "INSERT INTO rollbacks (apply_id, started_at, started_by, status) VALUES (?1, ?2, ?3, 'started')",
            params![apply_id, at, by],
        )
    }

    /// Records one host of a rollback (`digest_before`: jobs.cfg's digest when the rollback began).
    pub fn set_rollback_host(
        &self,
        rollback_id: i64,
        host: &str,
        update: &HostUpdate<'_>,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO rollback_hosts (rollback_id, host, digest_before, digest_after, status, error, updated_at)
             VALUES (?1, ?2, COALESCE(?3, ''), ?4, ?5, ?6, ?7)
             ON CONFLICT (rollback_id, host) DO UPDATE SET status = ?5, digest_after = ?4, error = ?6, updated_at = ?7",
            params![
                rollback_id,
                host,
                update.digest_before,
                update.digest_after,
                update.status,
                update.error,
                update.at
            ],
        )
    }

    /// Records one host's undo in both places: its status in the apply
    /// (`apply_status`, `apply_error`) and its row in the rollback, at the
    /// same time.
    pub fn record_undo(
        &self,
        apply_id: i64,
        rollback_id: i64,
        host: &str,
        (apply_status, apply_error): (&str, &str),
        rollback: &HostUpdate<'_>,
    ) -> Result<(), StoreError> {
        self.set_apply_host(
            apply_id,
            host,
            &HostUpdate {
                status: apply_status,
                digest_before: None,
                digest_after: None,
                error: apply_error,
                at: rollback.at,
            },
        )?;
        self.set_rollback_host(rollback_id, host, rollback)
    }

    /// Gives a rollback its final status.
    pub fn finish_rollback(
        &self,
        rollback_id: i64,
        status: &str,
        message: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE rollbacks SET status = ?2, message = ?3, finished_at = ?4 WHERE id = ?1",
            params![rollback_id, status, message, at],
        )
    }

    /// Rollbacks, newest first.
    pub fn rollbacks(&self, limit: i64) -> Result<Vec<RollbackRow>, StoreError> {
        self.rows(
            "SELECT id, apply_id, started_at, started_by, finished_at, status, message FROM rollbacks
             ORDER BY id DESC LIMIT ?1",
            [limit],
            |row| {
                Ok(RollbackRow {
                    id: row.get(0)?,
                    apply_id: row.get(1)?,
                    started_at: row.get(2)?,
                    started_by: row.get(3)?,
                    finished_at: row.get(4)?,
                    status: row.get(5)?,
                    message: row.get(6)?,
                })
            },
        )
    }

    // --- lease events ----------------------------------------------------

    /// Records lease events (for the coordinator's lease service), in one
    /// transaction: a busy lease service writes thousands a second.
    pub fn insert_lease_events(&mut self, events: &[LeaseEvent]) -> Result<(), StoreError> {
        let sql_error = |source| StoreError::Sql {
            path: self.path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql_error)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO lease_events (at, host, job, started, event, lease_id, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(sql_error)?;
            for event in events {
                insert
                    .execute(params![
                        event.at,
                        event.host,
                        event.job,
                        event.started,
                        event.event,
                        event.lease_id,
                        event.detail
                    ])
                    .map_err(sql_error)?;
            }
        }
        tx.commit().map_err(sql_error)
    }

    /// Lease events, newest first.
    pub fn lease_events(&self, limit: i64) -> Result<Vec<LeaseEvent>, StoreError> {
        self.rows(
            "SELECT at, host, job, started, event, lease_id, detail FROM lease_events ORDER BY id DESC LIMIT ?1",
            [limit],
            |row| {
                Ok(LeaseEvent {
                    at: row.get(0)?,
                    host: row.get(1)?,
                    job: row.get(2)?,
                    started: row.get(3)?,
                    event: row.get(4)?,
                    lease_id: row.get(5)?,
                    detail: row.get(6)?,
                })
            },
        )
    }
}

/// A plan's row without its body (the first five columns).
fn read_plan(row: &Row<'_>) -> rusqlite::Result<PlanRow> {
    Ok(PlanRow {
        id: row.get(0)?,
        created_at: row.get(1)?,
        created_by: row.get(2)?,
        source: row.get(3)?,
        summary: row.get(4)?,
        body: String::new(),
    })
}

fn read_apply(row: &Row<'_>) -> rusqlite::Result<ApplyRow> {
    Ok(ApplyRow {
        id: row.get(0)?,
        plan_id: row.get(1)?,
        started_at: row.get(2)?,
        started_by: row.get(3)?,
        finished_at: row.get(4)?,
        status: row.get(5)?,
        message: row.get(6)?,
        hosts: Vec::new(),
    })
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Serialising plain structs of strings cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "[]".to_owned())
}

/// Who runs this command, for the record: `SUDO_USER`, `USER` or `LOGNAME`,
/// else the name of the process's uid in /etc/passwd, else `uid N`.
pub fn current_user() -> String {
    if let Some(name) = ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    {
        return name;
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().next().map(str::to_owned))
        });
    let Some(uid) = uid else {
        return "unknown".to_owned();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            (fields.nth(1)? == uid).then(|| name.to_owned())
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(position: i64, name: &str) -> ApplyHostRow {
        ApplyHostRow {
            position,
            host: name.to_owned(),
            transport: "ssh".to_owned(),
            digest_before: "a".repeat(40),
            digest_after: None,
            changes: vec![ScheduleChange {
                job: "backup".to_owned(),
                schedule: "2:35 UTC".to_owned(),
            }],
            previous: vec![ScheduleChange {
                job: "backup".to_owned(),
                schedule: "02:00".to_owned(),
            }],
            status: "pending".to_owned(),
            error: String::new(),
        }
    }

    #[test]
    fn migrations_run_once_and_the_store_reopens() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("schedctl.db");
        let store = Store::open(&path).expect("opens");
        assert_eq!(store.schema_version().expect("version"), 1);
        let id = store
            .insert_plan(10, "root", "live", "2 moves", "{}")
            .expect("insert");
        drop(store);
        let store = Store::open(&path).expect("reopens");
        assert_eq!(store.plan(None).expect("read").map(|p| p.id), Some(id));
        let mode: String = store
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("journal mode");
        assert_eq!(mode, "wal");
    }

    #[test]
    fn an_apply_that_dies_midway_is_found_with_its_written_hosts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("schedctl.db");
        {
            let mut store = Store::open(&path).expect("opens");
            let plan = store
                .insert_plan(10, "root", "live", "", "{}")
                .expect("plan");
            let apply = store
                .start_apply(
                    plan,
                    11,
                    "root",
                    &[host(1, "hikurangi"), host(2, "ruapehu")],
                )
                .expect("start");
            store
                .set_apply_host(
                    apply,
                    "hikurangi",
                    &HostUpdate {
                        status: "written",
                        digest_before: None,
                        digest_after: Some(&"b".repeat(40)),
                        error: "",
                        at: 12,
                    },
                )
                .expect("host");
            store
                .set_apply_host(
                    apply,
                    "ruapehu",
                    &HostUpdate {
                        status: "writing",
                        digest_before: None,
                        digest_after: None,
                        error: "",
                        at: 13,
                    },
                )
                .expect("host");
            // The process dies here: no finish_apply.
        }
        let store = Store::open(&path).expect("reopens");
        let unfinished = store.unfinished_applies().expect("query");
        assert_eq!(unfinished.len(), 1);
        let hosts = &unfinished[0].hosts;
        assert_eq!(hosts[0].status, "written");
        assert_eq!(
            hosts[0].digest_after.as_deref(),
            Some("b".repeat(40).as_str())
        );
        assert_eq!(hosts[1].status, "writing");
        assert_eq!(hosts[1].previous[0].schedule, "02:00");
        store
            .finish_apply(unfinished[0].id, "rolled_back", "done", 20)
            .expect("finish");
        assert!(store.unfinished_applies().expect("query").is_empty());
    }

    #[test]
    fn lease_events_are_kept_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = Store::open(&dir.path().join("s.db")).expect("opens");
        let events: Vec<LeaseEvent> = [(1, "requested"), (2, "granted")]
            .into_iter()
            .map(|(at, event)| LeaseEvent {
                at,
                host: "pihanga".to_owned(),
                job: "backup".to_owned(),
                started: 1,
                event: event.to_owned(),
                lease_id: "l1".to_owned(),
                detail: String::new(),
            })
            .collect();
        store.insert_lease_events(&events).expect("insert");
        let events = store.lease_events(10).expect("read");
        assert_eq!(events[0].event, "granted");
        assert_eq!(events.len(), 2);
    }
}
