//! Reports from every host at once: at most `concurrency` in flight, each
//! bounded by `timeout-secs`, results in configuration order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use scheduler_core::report::HostReport;
use tokio::sync::Semaphore;

use super::planned::Unreachable;
use crate::config::{Config, HostConfig, TransportKind};
use crate::transport::{self, HostTransport, TransportError};

/// What asking one host gave.
pub struct Outcome {
    /// The host.
    pub host: String,
    /// Its transport.
    pub kind: TransportKind,
    /// Its report, or why there is none.
    pub result: Result<HostReport, TransportError>,
    /// How long it took.
    pub elapsed: Duration,
}

/// The transports of `hosts`; a host whose transport cannot be set up is bad configuration.
pub fn transports(
    hosts: &[&HostConfig],
    config: &Config,
) -> Result<Vec<Arc<dyn HostTransport>>, transport::SetupError> {
    let timeout = Duration::from_secs(config.timeout_secs);
    hosts
        .iter()
        .map(|h| transport::for_host(h, timeout).map(Arc::from))
        .collect()
}

/// Asks every transport for its report, at most `concurrency` at once.
pub async fn reports(
    transports: &[Arc<dyn HostTransport>],
    concurrency: usize,
    timeout: Duration,
) -> Vec<Outcome> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, transport) in transports.iter().enumerate() {
        let transport = Arc::clone(transport);
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let started = Instant::now();
            let result = match tokio::time::timeout(timeout, transport.report()).await {
                Ok(result) => result.and_then(|report| check_name(transport.host(), report)),
                Err(_) => Err(TransportError::Unreachable {
                    host: transport.host().to_owned(),
                    detail: format!("no report within {} s (timeout-secs)", timeout.as_secs()),
                }),
            };
            (
                index,
                Outcome {
                    host: transport.host().to_owned(),
                    kind: transport.kind(),
                    result,
                    elapsed: started.elapsed(),
                },
            )
        });
    }
    let mut outcomes: Vec<Option<Outcome>> = (0..transports.len()).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, outcome)) = joined {
            outcomes[index] = Some(outcome);
        }
    }
    outcomes
        .into_iter()
        .zip(transports)
        .map(|(outcome, transport)| {
            outcome.unwrap_or_else(|| Outcome {
                host: transport.host().to_owned(),
                kind: transport.kind(),
                result: Err(TransportError::Failed {
                    host: transport.host().to_owned(),
                    detail: "the collection task stopped unexpectedly".to_owned(),
                }),
                elapsed: Duration::ZERO,
            })
        })
        .collect()
}

/// Reports of the hosts that answered, and the others with what failed.
pub fn split(outcomes: Vec<Outcome>) -> (Vec<(TransportKind, HostReport)>, Vec<Unreachable>) {
    let mut reports = Vec::new();
    let mut unreachable = Vec::new();
    for outcome in outcomes {
        match outcome.result {
            Ok(report) => reports.push((outcome.kind, report)),
            Err(err) => unreachable.push(Unreachable {
                host: outcome.host,
                hint: err.hint().to_owned(),
                error: err.to_string(),
            }),
        }
    }
    (reports, unreachable)
}

/// A report must be about the node it was asked for: the jobs it lists run there.
fn check_name(host: &str, report: HostReport) -> Result<HostReport, TransportError> {
    if report.host == host {
        Ok(report)
    } else {
        Err(TransportError::Protocol {
            host: host.to_owned(),
            detail: format!(
                "the host reports itself as node '{}'; a [[host]] name must be the Proxmox node name: rename it in schedctl.toml",
                report.host
            ),
        })
    }
}

/// A tokio runtime for one command (two worker threads: the machine's cores).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use scheduler_core::report::{ApplyRequest, ApplyResponse, JobsCfgState, REPORT_VERSION};

    use super::*;
    use crate::transport::{BoxFuture, Rollback};

    /// A host that answers after `delay` (or never), counting how many are asked at once.
    struct Slow {
        name: String,
        delay: Option<Duration>,
        in_flight: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }

    impl HostTransport for Slow {
        fn host(&self) -> &str {
            &self.name
        }
        fn kind(&self) -> TransportKind {
            TransportKind::Ssh
        }
        fn report(&self) -> BoxFuture<'_, Result<HostReport, TransportError>> {
            Box::pin(async move {
                let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                self.most.fetch_max(now, Ordering::SeqCst);
                match self.delay {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => std::future::pending::<()>().await,
                }
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok(HostReport {
                    version: REPORT_VERSION,
                    host: self.name.clone(),
                    timezone: "UTC".to_owned(),
                    clock: 0,
                    source: "test".to_owned(),
                    jobs_cfg: JobsCfgState {
                        digest: String::new(),
                        text: None,
                        warnings: Vec::new(),
                    },
                    jobs: Vec::new(),
                    load: None,
                    pressure: None,
                })
            })
        }
        fn apply<'a>(
            &'a self,
            _: &'a ApplyRequest,
        ) -> BoxFuture<'a, Result<ApplyResponse, TransportError>> {
            Box::pin(async { unreachable!("collection never writes") })
        }
        fn rollback<'a>(
            &'a self,
            _: &'a Rollback,
        ) -> BoxFuture<'a, Result<ApplyResponse, TransportError>> {
            Box::pin(async { unreachable!("collection never writes") })
        }
    }

    #[test]
    fn at_most_concurrency_hosts_are_asked_at_once_and_a_silent_one_times_out() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let transports: Vec<Arc<dyn HostTransport>> = (0..20)
            .map(|i| {
                Arc::new(Slow {
                    name: format!("h{i:02}"),
                    delay: (i != 7).then(|| Duration::from_millis(20)),
                    in_flight: Arc::clone(&in_flight),
                    most: Arc::clone(&most),
                }) as Arc<dyn HostTransport>
            })
            .collect();
        let outcomes = runtime().expect("runtime").block_on(reports(
            &transports,
            4,
            Duration::from_millis(300),
        ));
        assert!(
            most.load(Ordering::SeqCst) <= 4,
            "{} at once",
            most.load(Ordering::SeqCst)
        );
        let names: Vec<&str> = outcomes.iter().map(|o| o.host.as_str()).collect();
        let expected: Vec<String> = (0..20).map(|i| format!("h{i:02}")).collect();
        assert_eq!(
            names,
            expected.iter().map(String::as_str).collect::<Vec<_>>()
        );
        let silent = &outcomes[7];
        let err = silent.result.as_ref().expect_err("h07 never answers");
        assert!(
            err.to_string().contains("no report within 0 s")
                || err.to_string().contains("timeout-secs"),
            "{err}"
        );
        assert!(outcomes
            .iter()
            .enumerate()
            .all(|(i, o)| i == 7 || o.result.is_ok()));
    }
}
