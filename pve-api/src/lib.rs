//! A small typed async client for the Proxmox VE HTTP API, and readers for
//! Proxmox's task records.
//!
//! Stagger talks to a handful of endpoints (`/version`, `/nodes/{node}/time`,
//! `/cluster/backup`, tasks, `/cluster/jobs/schedule-analyze`) with an API
//! token, trusting each host by its pinned certificate fingerprint the way
//! Proxmox's own tools do. Proxmox's error answers become [`Error`] variants
//! that say what to do (a bad token, a missing privilege, a missing job, a
//! parameter Proxmox refused).
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`client`] | [`Client`], [`Config`], [`ApiToken`]; requests and the mapping of Proxmox's error shapes |
//! | [`tls`] | [`Fingerprint`], [`Trust`]; the rustls (ring) configuration and the pinning verifier |
//! | [`types`] | typed bodies: [`BackupJob`], [`JobUpdate`], [`TaskQuery`], [`TaskSummary`], [`TaskState`], … |
//! | [`upid`] | [`Upid`], Proxmox's task id: parse and print |
//! | [`tasks`] | pure readers of `tasks/index`, `tasks/active` and job state files; [`TaskStatus`] |
//! | [`error`] | the crate's one [`Error`] |
//!
//! ```no_run
//! # async fn demo() -> Result<(), pve_api::Error> {
//! use pve_api::{Client, Config, Trust};
//! let client = Client::new(Config {
//!     base_url: "https://pve1.example.org:8006".into(),
//!     token: "stagger@pve!agent=0b4e9c1e-7d5f-4b8a-9a51-2f0e6c3d4b7a".parse()?,
//!     trust: Trust::Fingerprint(
//!         "3F:A0:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E".parse()?,
//!     ),
//!     timeout: std::time::Duration::from_secs(10),
//! })?;
//! for job in client.backup_jobs().await? {
//!     println!("{} {:?}", job.id, job.schedule);
//! }
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod client;
pub mod error;
pub mod tasks;
pub mod tls;
pub mod types;
pub mod upid;

pub use client::{ApiToken, Client, Config};
pub use error::{Error, Result};
pub use tasks::{ActiveRecord, JobPhase, JobState, TaskRecord, TaskStatus};
pub use tls::{Fingerprint, Trust};
pub use types::{
    BackupJob, JobUpdate, NodeTime, RunState, ScheduleEvent, TaskFields, TaskList, TaskQuery,
    TaskSource, TaskState, TaskSummary, Version,
};
pub use upid::Upid;
