//! The lease service under load: a real `schedctl serve` (HTTPS, pinned
//! certificate, bearer token) on 127.0.0.1, asked by many hooks at once.
//!
//! The fleet: `--hosts` hosts (one backup job each) writing to 20 PBS
//! datastores of capacity 4. Each worker plays the hooks of its share of
//! the hosts and keeps `--in-flight` backups going at once: a new backup
//! asks for its lease (granted at once, or queued), a queued one asks again
//! (same host, job and start: its place in the queue), a granted one
//! releases (the job ended) and the worker starts the next host's backup —
//! the mix a night of backups makes, without the hours in between. Every
//! HTTP call is timed, client overhead included.
//!
//! Phases:
//! 1. **paced** at `--rate` requests/s (open loop: a call's latency counts
//!    from when it was due, so a slow server cannot hide by slowing the
//!    load down) — the figure the target is about;
//! 2. **saturated**: every worker as fast as it can (the throughput ceiling);
//! 3. **new connections**: one TLS handshake and client per call, as a hook
//!    process makes.
//!
//! ```sh
//! ./scripts/bench-leases                  # 1000 hosts, 32 workers × 4 backups, 2500 requests/s for 10 s
//! ./scripts/bench-leases --hosts 3000 --rate 4000 --seconds 20
//! ```

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pve_api::{Fingerprint, Trust};
use scheduler_core::report::{LeaseRelease, LeaseRequest, LeaseResponse};
use stagger_service::client::{Client, Endpoint};
use stagger_service::token::Secret;

const TOKEN: &str = "bench-token-0123456789abcdef";
const DATASTORES: usize = 20;
const DATASTORE_CAPACITY: u32 = 4;

const WARMING_UP: u8 = 0;
const MEASURING: u8 = 1;
const STOPPING: u8 = 2;

#[derive(Debug, Clone)]
struct Options {
    hosts: usize,
    workers: usize,
    in_flight: usize,
    rate: f64,
    seconds: f64,
    fresh_seconds: f64,
}

fn options() -> Options {
    let mut options = Options {
        hosts: 1000,
        workers: 32,
        in_flight: 4,
        rate: 2500.0,
        seconds: 10.0,
        fresh_seconds: 3.0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        let known = match args[i].as_str() {
            "--hosts" => value.parse().map(|v| options.hosts = v).is_ok(),
            "--workers" => value.parse().map(|v| options.workers = v).is_ok(),
            "--in-flight" => value.parse().map(|v| options.in_flight = v).is_ok(),
            "--rate" => value.parse().map(|v| options.rate = v).is_ok(),
            "--seconds" => value.parse().map(|v| options.seconds = v).is_ok(),
            "--fresh-seconds" => value.parse().map(|v| options.fresh_seconds = v).is_ok(),
            // `cargo bench` adds `--bench`.
            _ => false,
        };
        i += if known { 2 } else { 1 };
    }
    options.hosts = options.hosts.max(1);
    options.workers = options.workers.clamp(1, options.hosts);
    options.in_flight = options.in_flight.max(1);
    options
}

fn host_name(i: usize) -> String {
    format!("pve{i:05}")
}

fn write_config(dir: &Path, hosts: usize) -> PathBuf {
    let token = dir.join("schedctl.token");
    std::fs::write(&token, format!("{TOKEN}\n")).expect("token written");
    let mut text = format!(
        "store = \"{}\"\n\n[serve]\nlisten = \"127.0.0.1:0\"\ntoken-file = \"{}\"\nstate-dir = \"{}\"\n",
        dir.join("schedctl.db").display(),
        token.display(),
        dir.join("state").display()
    );
    for i in 0..hosts {
        text.push_str(&format!(
            "\n[[host]]\nname = \"{}\"\n[host.agent]\nurl = \"http://127.0.0.1:9\"\ntoken-file = \"{}\"\n",
            host_name(i),
            token.display()
        ));
    }
    for d in 0..DATASTORES {
        text.push_str(&format!(
            "\n[[resource]]\nname = \"pbs-{d:02}\"\ncapacity = {DATASTORE_CAPACITY}\nstorages = [\"pbs-{d:02}\"]\n"
        ));
    }
    let path = dir.join("schedctl.toml");
    std::fs::write(&path, text).expect("config written");
    path
}

fn fingerprint(config: &Path) -> Fingerprint {
    let output = Command::new(env!("CARGO_BIN_EXE_schedctl"))
        .args(["serve", "--fingerprint", "--config"])
        .arg(config)
        .output()
        .expect("schedctl runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("a fingerprint")
}

fn start(config: &Path, log: &Path) -> (Child, String) {
    let log = std::fs::File::create(log).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_schedctl"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("schedctl serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reads");
    let url = line
        .trim()
        .strip_prefix("listening: ")
        .expect("listening: URL")
        .to_owned();
    (child, url)
}

fn client(url: &str, pin: &Fingerprint) -> Client {
    Client::new(Endpoint {
        url: url.to_owned(),
        token: Some(Secret::new(TOKEN).expect("valid token")),
        trust: Trust::Fingerprint(*pin),
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
    })
    .expect("client")
}

/// A backup in progress, as its hook sees it.
enum Hook {
    Queued(LeaseRequest),
    Granted(String),
}

/// What one call was.
#[derive(Clone, Copy)]
enum Call {
    GrantedAtOnce,
    Queued,
    AskedAgain,
    Released,
    Failed,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    asked: u64,
    granted_at_once: u64,
    queued: u64,
    asked_again: u64,
    released: u64,
    errors: u64,
}

impl Tally {
    fn count(&mut self, call: Call, took: Duration) {
        self.latencies_us
            .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        match call {
            Call::GrantedAtOnce => {
                self.asked += 1;
                self.granted_at_once += 1;
            }
            Call::Queued => {
                self.asked += 1;
                self.queued += 1;
            }
            Call::AskedAgain => self.asked_again += 1,
            Call::Released => self.released += 1,
            Call::Failed => self.errors += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.asked += other.asked;
        self.granted_at_once += other.granted_at_once;
        self.queued += other.queued;
        self.asked_again += other.asked_again;
        self.released += other.released;
        self.errors += other.errors;
    }
}

/// How a phase drives its workers.
#[derive(Clone, Copy)]
enum Load {
    /// Each worker's calls are due at fixed intervals.
    Paced(Duration),
    /// As fast as each worker can.
    Saturated,
}

/// The hooks of one worker's hosts.
struct Hooks {
    hosts: Vec<usize>,
    runs: Vec<i64>,
    next_host: usize,
    active: VecDeque<(usize, Hook)>,
}

impl Hooks {
    fn new(id: usize, options: &Options) -> Hooks {
        let hosts: Vec<usize> = (id..options.hosts).step_by(options.workers).collect();
        Hooks {
            runs: vec![0; hosts.len()],
            hosts,
            next_host: 0,
            active: VecDeque::new(),
        }
    }

    /// Makes the next call of this worker's hooks.
    async fn call(&mut self, client: &Client, in_flight: usize) -> Call {
        if self.active.len() < in_flight.min(self.hosts.len()) {
            let k = self.next_host;
            self.next_host = (self.next_host + 1) % self.hosts.len();
            self.runs[k] += 1;
            let host = self.hosts[k];
            let request = LeaseRequest {
                host: host_name(host),
                job: format!("backup-{}", host_name(host)),
                started: 1_800_000_000 + self.runs[k] * 86_400,
                wait_secs: 0,
                storage: Some(format!("pbs-{:02}", host % DATASTORES)),
            };
            return match client.post::<_, LeaseResponse>("/v1/lease", &request).await {
                Ok(answer) if answer.granted => {
                    self.active.push_back((k, Hook::Granted(answer.lease_id)));
                    Call::GrantedAtOnce
                }
                Ok(_) => {
                    self.active.push_back((k, Hook::Queued(request)));
                    Call::Queued
                }
                Err(_) => Call::Failed,
            };
        }
        let Some((k, hook)) = self.active.pop_front() else {
            return Call::Failed;
        };
        match hook {
            Hook::Queued(request) => {
                match client.post::<_, LeaseResponse>("/v1/lease", &request).await {
                    Ok(answer) if answer.granted => {
                        self.active.push_back((k, Hook::Granted(answer.lease_id)));
                        Call::AskedAgain
                    }
                    Ok(_) => {
                        self.active.push_back((k, Hook::Queued(request)));
                        Call::AskedAgain
                    }
                    Err(_) => {
                        self.active.push_back((k, Hook::Queued(request)));
                        Call::Failed
                    }
                }
            }
            Hook::Granted(lease_id) => {
                let release = LeaseRelease {
                    lease_id: lease_id.clone(),
                };
                match client
                    .post::<_, serde_json::Value>("/v1/lease/release", &release)
                    .await
                {
                    Ok(_) => Call::Released,
                    Err(_) => {
                        self.active.push_back((k, Hook::Granted(lease_id)));
                        Call::Failed
                    }
                }
            }
        }
    }
}

async fn worker(
    id: usize,
    options: Arc<Options>,
    url: String,
    pin: Fingerprint,
    load: Load,
    fresh: bool,
    stage: Arc<AtomicU8>,
) -> Tally {
    let mut hooks = Hooks::new(id, &options);
    let shared = client(&url, &pin);
    let mut tally = Tally::default();
    // Workers start their schedules spread over one interval, so the load
    // arrives evenly rather than in bursts of one call per worker.
    let began = tokio::time::Instant::now()
        + match load {
            Load::Paced(interval) => interval.mul_f64(id as f64 / options.workers as f64),
            Load::Saturated => Duration::ZERO,
        };
    let mut calls: u32 = 0;
    loop {
        let due = match load {
            Load::Paced(interval) => {
                let due = began + interval * calls;
                tokio::time::sleep_until(due).await;
                due.into_std()
            }
            Load::Saturated => Instant::now(),
        };
        calls = calls.saturating_add(1);
        let at_start = stage.load(Ordering::Relaxed);
        if at_start == STOPPING {
            return tally;
        }
        let client = if fresh {
            client(&url, &pin)
        } else {
            shared.clone()
        };
        let call = hooks.call(&client, options.in_flight).await;
        match (at_start, stage.load(Ordering::Relaxed)) {
            (MEASURING, MEASURING) => tally.count(call, due.elapsed()),
            (WARMING_UP, _) => tally = Tally::default(),
            // Calls that straddle the end of the window are not counted.
            _ => {}
        }
    }
}

async fn phase(
    options: Arc<Options>,
    url: &str,
    pin: &Fingerprint,
    load: Load,
    fresh: bool,
    seconds: f64,
) -> (Tally, Duration) {
    let stage = Arc::new(AtomicU8::new(WARMING_UP));
    let workers: Vec<_> = (0..options.workers)
        .map(|id| {
            tokio::spawn(worker(
                id,
                options.clone(),
                url.to_owned(),
                *pin,
                load,
                fresh,
                stage.clone(),
            ))
        })
        .collect();
    // Warm up: connections made, queues filled.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stage.store(MEASURING, Ordering::Relaxed);
    let began = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stage.store(STOPPING, Ordering::Relaxed);
    let elapsed = began.elapsed();
    let mut total = Tally::default();
    for worker in workers {
        total.merge(worker.await.expect("worker finished"));
    }
    (total, elapsed)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

fn report(title: &str, mut tally: Tally, elapsed: Duration) -> (f64, f64) {
    tally.latencies_us.sort_unstable();
    let calls = tally.latencies_us.len();
    let rate = calls as f64 / elapsed.as_secs_f64();
    let p99 = percentile(&tally.latencies_us, 99.0);
    println!("{title}");
    println!(
        "  {calls} requests in {:.1} s: {rate:.0} requests/s",
        elapsed.as_secs_f64()
    );
    println!(
        "  latency ms: p50 {:.2}  p90 {:.2}  p99 {p99:.2}  max {:.2}",
        percentile(&tally.latencies_us, 50.0),
        percentile(&tally.latencies_us, 90.0),
        percentile(&tally.latencies_us, 100.0)
    );
    println!(
        "  mix: {} asked ({} granted at once, {} queued), {} asked again, {} released, {} errors",
        tally.asked,
        tally.granted_at_once,
        tally.queued,
        tally.asked_again,
        tally.released,
        tally.errors
    );
    (rate, p99)
}

/// How many lease events reached the store, and whether its writer fell behind.
fn report_store(db: &Path, log: &Path) {
    let recorded: i64 = rusqlite::Connection::open(db)
        .and_then(|c| c.query_row("SELECT COUNT(*) FROM lease_events", [], |row| row.get(0)))
        .unwrap_or(-1);
    let said = std::fs::read_to_string(log).unwrap_or_default();
    let dropped = said
        .lines()
        .filter(|l| l.contains("lease events were not recorded"))
        .filter_map(|l| l.split("dropped=").nth(1))
        .filter_map(|n| n.split_whitespace().next()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    println!(
        "store: {recorded} lease events recorded; {} dropped when its writer fell behind",
        if dropped == 0 {
            "none".to_owned()
        } else {
            format!("at least {dropped}")
        }
    );
}

fn main() {
    let options = Arc::new(options());
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), options.hosts);
    let pin = fingerprint(&config);
    let log = dir.path().join("serve.log");
    let (mut child, url) = start(&config, &log);
    println!(
        "lease service: {url} (HTTPS, pinned certificate, bearer token); {} hosts, {DATASTORES} \
         datastores of capacity {DATASTORE_CAPACITY}; {} workers with {} backups each in flight",
        options.hosts, options.workers, options.in_flight
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let interval = Duration::from_secs_f64(options.workers as f64 / options.rate.max(1.0));
    let (paced, paced_time) = runtime.block_on(phase(
        options.clone(),
        &url,
        &pin,
        Load::Paced(interval),
        false,
        options.seconds,
    ));
    let title = format!("paced at {:.0} requests/s, connections kept:", options.rate);
    let (rate, p99) = report(&title, paced, paced_time);
    let (saturated, saturated_time) = runtime.block_on(phase(
        options.clone(),
        &url,
        &pin,
        Load::Saturated,
        false,
        options.seconds,
    ));
    report(
        "saturated (every worker as fast as it can), connections kept:",
        saturated,
        saturated_time,
    );
    if options.fresh_seconds > 0.0 {
        let (fresh, fresh_time) = runtime.block_on(phase(
            options.clone(),
            &url,
            &pin,
            Load::Saturated,
            true,
            options.fresh_seconds,
        ));
        report(
            "saturated, a new client and TLS connection per request (as a hook process):",
            fresh,
            fresh_time,
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    report_store(&dir.path().join("schedctl.db"), &log);
    let verdict = if rate >= 2000.0 && p99 < 10.0 {
        "met"
    } else {
        "MISSED"
    };
    println!("target: >= 2000 requests/s with p99 < 10 ms (paced phase): {verdict}");
}
