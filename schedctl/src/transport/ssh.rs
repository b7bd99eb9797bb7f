//! The SSH transport: russh to the host's sshd, the host key pinned, and
//! there `pvesh get|set` plus jobs.cfg's bytes (`cat`) for its digest and diff.
//!
//! Each operation opens one connection, authenticates with the configured
//! key and runs its commands, each on its own channel. Arguments are quoted
//! for the remote shell ([`quote`]); the `pvesh` setting is a command line
//! put in front as written (it is the admin's own configuration).
//!
//! A write is `pvesh set /cluster/backup/<id> --schedule <event>` per changed
//! job, after checking right before the first that jobs.cfg still has the
//! plan's digest; Proxmox then rewrites the whole file in its canonical form.
//! If a later `set` fails, the ones already made are set back before the error
//! is returned. The file is read again afterwards: its new digest, and each
//! changed job's schedule as Proxmox now reads it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::ChannelMsg;
use scheduler_core::jobs_cfg::{Digest, JobsCfg};
use scheduler_core::report::{
    ApplyRequest, ApplyResponse, HostReport, JobReport, JobsCfgState, ScheduleChange,
};

use super::proxmox_writes::{effective_changes, set_each, ProxmoxWrites, SetSchedule};
use super::runs;
use super::{SetupError, TransportError};
use crate::config::{SshTransport, TransportKind};

/// vzdump tasks asked for per report.
const TASKS_LIMIT: u32 = 500;

/// A host reached over SSH.
pub struct SshHost {
    host: String,
    config: SshTransport,
    key: Arc<PrivateKey>,
    timeout: Duration,
}

/// What a remote command gave.
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    status: Option<u32>,
}

impl Output {
    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_owned()
    }
}

impl SshHost {
    /// Checks the settings and loads the key; does not connect.
    pub fn new(
        host: &str,
        config: &SshTransport,
        timeout: Duration,
    ) -> Result<SshHost, SetupError> {
        let setup = |message: String| SetupError {
            host: host.to_owned(),
            message,
        };
        if !config.host_key.starts_with("SHA256:") {
            return Err(setup(format!(
                "ssh.host-key \"{}\" is not a SHA-256 fingerprint; give it as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints it on the host (SHA256:...)",
                config.host_key
            )));
        }
        let key = russh::keys::load_secret_key(&config.key_file, None).map_err(|e| {
            setup(format!(
                "cannot load the SSH key {}: {e}; give an unencrypted OpenSSH private key (ssh-keygen -t ed25519 -N '')",
                config.key_file.display()
            ))
        })?;
        Ok(SshHost {
            host: host.to_owned(),
            config: config.clone(),
            key: Arc::new(key),
            timeout,
        })
    }

    fn unreachable(&self, detail: impl Into<String>) -> TransportError {
        TransportError::Unreachable {
            host: self.host.clone(),
            detail: detail.into(),
        }
    }

    /// Connects, checks the host key, authenticates.
    async fn connect(&self) -> Result<Handle<Client>, TransportError> {
        let seen = Arc::new(Mutex::new(None));
        let handler = Client {
            pin: self.config.host_key.clone(),
            seen: Arc::clone(&seen),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: Some(self.timeout),
            nodelay: true,
            ..client::Config::default()
        });
        let address = self.config.address.clone();
        let connecting = client::connect(config, address.as_str(), handler);
        let mut handle = match tokio::time::timeout(self.timeout, connecting).await {
            Err(_) => {
                return Err(self.unreachable(format!(
                    "no SSH answer from {address} within {} s",
                    self.timeout.as_secs()
                )))
            }
            Ok(Err(err)) => {
                let presented = seen.lock().map(|s| s.clone()).unwrap_or(None);
                return Err(match presented {
                    Some(key) if key != self.config.host_key => TransportError::Identity {
                        host: self.host.clone(),
                        detail: format!(
                            "refusing {address}: its SSH host key is {key}, but {} is pinned (ssh.host-key); \
                             if the host was reinstalled or its key rotated, check the key on the host's console \
                             (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`) and pin the new one; otherwise \
                             someone may be in the way",
                            self.config.host_key
                        ),
                    },
                    _ => self.unreachable(format!("cannot connect to {address} over SSH: {err}")),
                });
            }
            Ok(Ok(handle)) => handle,
        };
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .map_err(|e| self.unreachable(format!("SSH negotiation with {address} failed: {e}")))?
            .flatten();
        let auth = handle
            .authenticate_publickey(
                self.config.user.clone(),
                PrivateKeyWithHashAlg::new(Arc::clone(&self.key), hash),
            )
            .await
            .map_err(|e| {
                self.unreachable(format!("SSH authentication with {address} failed: {e}"))
            })?;
        if !auth.success() {
            return Err(TransportError::Refused {
                host: self.host.clone(),
                message: format!(
                    "{address} refused the key {} for user {}; add its public key to that user's authorized_keys on the host",
                    self.config.key_file.display(),
                    self.config.user
                ),
            });
        }
        Ok(handle)
    }

    /// Runs `command` on its own channel and collects its output.
    async fn run(&self, handle: &Handle<Client>, command: &str) -> Result<Output, TransportError> {
        let work = async {
            let mut channel = handle.channel_open_session().await.map_err(|e| {
                self.unreachable(format!("cannot open an SSH session channel: {e}"))
            })?;
            channel
                .exec(true, command)
                .await
                .map_err(|e| self.unreachable(format!("cannot run a command over SSH: {e}")))?;
            let mut output = Output {
                stdout: Vec::new(),
                stderr: Vec::new(),
                status: None,
            };
            while let Some(message) = channel.wait().await {
                match message {
                    ChannelMsg::Data { data } => output.stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, .. } => output.stderr.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => output.status = Some(exit_status),
                    _ => {}
                }
            }
            Ok(output)
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| {
                self.unreachable(format!(
                    "a command over SSH did not finish within {} s",
                    self.timeout.as_secs()
                ))
            })?
    }

    /// Runs a `pvesh` call; its stdout on success.
    async fn pvesh(
        &self,
        handle: &Handle<Client>,
        args: &[&str],
    ) -> Result<Vec<u8>, TransportError> {
        let quoted: Vec<String> = args.iter().map(|a| quote(a)).collect();
        let command = format!("{} {}", self.config.pvesh, quoted.join(" "));
        let output = self.run(handle, &command).await?;
        if output.status != Some(0) {
            return Err(TransportError::Failed {
                host: self.host.clone(),
                detail: format!(
                    "`pvesh {}` exited with {}: {}",
                    args.join(" "),
                    output
                        .status
                        .map_or("no status".to_owned(), |s| s.to_string()),
                    output.stderr_text()
                ),
            });
        }
        Ok(output.stdout)
    }

    /// jobs.cfg's bytes as text.
    async fn read_jobs_cfg(&self, handle: &Handle<Client>) -> Result<String, TransportError> {
        let path = self.config.jobs_cfg.to_string_lossy().into_owned();
        let output = self
            .run(handle, &format!("cat -- {}", quote(&path)))
            .await?;
        if output.status != Some(0) {
            return Err(TransportError::Failed {
                host: self.host.clone(),
                detail: format!("cannot read {path}: {}", output.stderr_text()),
            });
        }
        String::from_utf8(output.stdout).map_err(|_| TransportError::Protocol {
            host: self.host.clone(),
            detail: format!("{path} is not UTF-8 text"),
        })
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        bytes: &[u8],
        what: &str,
    ) -> Result<T, TransportError> {
        serde_json::from_slice(bytes).map_err(|e| TransportError::Protocol {
            host: self.host.clone(),
            detail: format!("`pvesh get {what}` printed something that is not its JSON: {e}"),
        })
    }
}

impl ProxmoxWrites for SshHost {
    const KIND: TransportKind = TransportKind::Ssh;

    fn name(&self) -> &str {
        &self.host
    }

    async fn read_report(&self) -> Result<HostReport, TransportError> {
        let handle = self.connect().await?;
        let time_path = format!("/nodes/{}/time", self.host);
        let tasks_path = format!("/nodes/{}/tasks", self.host);
        let limit = TASKS_LIMIT.to_string();
        let time_args = ["get", time_path.as_str(), "--output-format", "json"];
        let tasks_args = [
            "get",
            tasks_path.as_str(),
            "--typefilter",
            "vzdump",
            "--source",
            "all",
            "--limit",
            limit.as_str(),
            "--output-format",
            "json",
        ];
        let (text, time, tasks) = tokio::join!(
            self.read_jobs_cfg(&handle),
            self.pvesh(&handle, &time_args),
            self.pvesh(&handle, &tasks_args),
        );
        let (text, time, tasks) = (text?, time?, tasks?);
        let time: pve_api::NodeTime = self.json(&time, &time_path)?;
        let tasks: Vec<pve_api::TaskSummary> = self.json(&tasks, &tasks_path)?;
        disconnect(handle).await;
        Ok(report_from(
            &self.host,
            &self.config.jobs_cfg,
            &text,
            &time,
            &tasks,
            "ssh pvesh",
        ))
    }

    async fn write(&self, request: &ApplyRequest) -> Result<ApplyResponse, TransportError> {
        let handle = self.connect().await?;
        let text = self.read_jobs_cfg(&handle).await?;
        let cfg = JobsCfg::parse(&text);
        let previous_digest = cfg.digest().to_string();
        if previous_digest != request.digest {
            return Err(TransportError::Stale {
                host: self.host.clone(),
                current_digest: previous_digest,
            });
        }
        let jobs = node_jobs(&cfg, &self.host);
        check_changes(&self.host, &cfg, &jobs, &request.changes)?;
        let current = |id: &str| jobs.iter().find(|j| j.id == id).map(|j| j.schedule.clone());
        let changes = effective_changes(&request.changes, current);
        let session = Session {
            ssh: self,
            handle: &handle,
        };
        set_each(&session, &self.host, &changes).await?;
        let after = self.read_jobs_cfg(&handle).await?;
        disconnect(handle).await;
        let after_cfg = JobsCfg::parse(&after);
        verify(
            &self.host,
            &after_cfg,
            changes
                .iter()
                .map(|(c, _)| (c.job.as_str(), c.schedule.trim())),
        )?;
        Ok(ApplyResponse {
            previous_digest,
            digest: after_cfg.digest().to_string(),
            changed: changes.into_iter().map(|(c, _)| c.clone()).collect(),
        })
    }
}

/// One connection's `pvesh set`.
struct Session<'a> {
    ssh: &'a SshHost,
    handle: &'a Handle<Client>,
}

impl SetSchedule for Session<'_> {
    type Error = TransportError;

    async fn set_schedule(&self, job: &str, schedule: &str) -> Result<(), TransportError> {
        let path = format!("/cluster/backup/{job}");
        self.ssh
            .pvesh(self.handle, &["set", &path, "--schedule", schedule])
            .await
            .map(drop)
    }

    fn failed(&self, error: TransportError) -> TransportError {
        error
    }
}

async fn disconnect(handle: Handle<Client>) {
    // The commands are done; a failed goodbye changes nothing.
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
}

/// The russh handler: accepts only the pinned host key, and remembers the one presented.
struct Client {
    pin: String,
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let fingerprint = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                key.fingerprint(HashAlg::Sha256).to_string()
            }
            PublicKeyOrCertificate::Certificate(cert) => {
                cert.public_key().fingerprint(HashAlg::Sha256).to_string()
            }
        };
        let accepted = fingerprint == self.pin;
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(fingerprint);
        }
        Ok(accepted)
    }
}

/// Quotes `arg` for a POSIX shell: single quotes, each `'` as `'\''`.
pub fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\\''"))
}

/// The vzdump jobs of `node` (its own and those without `node`).
pub(super) fn node_jobs(cfg: &JobsCfg, node: &str) -> Vec<scheduler_core::jobs_cfg::VzdumpJob> {
    cfg.vzdump_jobs()
        .into_iter()
        .filter(|j| j.node.as_deref().is_none_or(|n| n == node))
        .collect()
}

/// Refuses changes to unknown jobs, to jobs of other nodes, and schedules
/// the lossless codec would not write (the same checks the agent makes).
fn check_changes(
    host: &str,
    cfg: &JobsCfg,
    jobs: &[scheduler_core::jobs_cfg::VzdumpJob],
    changes: &[ScheduleChange],
) -> Result<(), TransportError> {
    let refused = |message: String| TransportError::Refused {
        host: host.to_owned(),
        message,
    };
    let mut trial = cfg.clone();
    for change in changes {
        if !jobs.iter().any(|j| j.id == change.job) {
            let other = cfg.vzdump_jobs().into_iter().find(|j| j.id == change.job);
            return Err(refused(match other.and_then(|j| j.node) {
                Some(node) => format!("job '{}' runs on node '{node}', not on {host}", change.job),
                None => format!("there is no vzdump job '{}' in jobs.cfg", change.job),
            }));
        }
        trial
            .set_schedule(&change.job, &change.schedule)
            .map_err(|e| refused(format!("job '{}': {e}", change.job)))?;
    }
    Ok(())
}

/// Checks that jobs.cfg as read back has each expected schedule.
fn verify<'a>(
    host: &str,
    cfg: &JobsCfg,
    expected: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<(), TransportError> {
    let jobs = cfg.vzdump_jobs();
    for (job, schedule) in expected {
        let now = jobs
            .iter()
            .find(|j| j.id == job)
            .map(|j| j.schedule.as_str());
        if now != Some(schedule) {
            return Err(TransportError::Protocol {
                host: host.to_owned(),
                detail: format!(
                    "after the write, jobs.cfg has schedule {now:?} for job '{job}', not '{schedule}'; look at the file on the host"
                ),
            });
        }
    }
    Ok(())
}

/// A report from jobs.cfg's text, the node's time and its vzdump tasks.
pub(super) fn report_from(
    host: &str,
    path: &std::path::Path,
    text: &str,
    time: &pve_api::NodeTime,
    tasks: &[pve_api::TaskSummary],
    source: &str,
) -> HostReport {
    let cfg = JobsCfg::parse(text);
    let reading = cfg.proxmox_reading(&path.to_string_lossy());
    let jobs = node_jobs(&cfg, host)
        .into_iter()
        .map(|j| JobReport {
            id: j.id,
            schedule: j.schedule,
            enabled: j.enabled,
            node: j.node,
            storage: j.storage,
            runs: Vec::new(),
            stats: None,
        })
        .collect();
    let jobs_cfg = JobsCfgState {
        digest: Digest::of(text.as_bytes()).to_string(),
        text: Some(text.to_owned()),
        warnings: reading.warnings.into_iter().map(|w| w.message).collect(),
    };
    runs::host_report(host, jobs, time, tasks, source, jobs_cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_every_shell_metacharacter() {
        assert_eq!(quote("02:35 UTC"), "'02:35 UTC'");
        assert_eq!(quote("a'b"), "'a'\\''b'");
        assert_eq!(quote("$(rm -rf /); `x` \"y\""), "'$(rm -rf /); `x` \"y\"'");
    }
}
