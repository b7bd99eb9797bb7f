//! Command line: `serve`, `scheduler`, `init`, `pvesh`; each returns an exit code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::api::AppState;
use crate::clock::Clock;
use crate::init::{self, InitOptions};
use crate::tree::Tree;
use crate::{pvesh, scheduler, server, tls};

/// A simulated Proxmox VE cluster on a real directory tree.
#[derive(Debug, Parser)]
#[command(name = "pve-sim", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the PVE HTTPS API (prints the listen address, certificate fingerprint and token).
    Serve(ServeOptions),
    /// Run only the simulated pvescheduler from --now until --until (simulated time).
    Scheduler {
        /// The simulated cluster's directory.
        #[arg(long)]
        root: PathBuf,
        /// Simulated seconds per real second.
        #[arg(long, default_value_t = 600.0)]
        speed: f64,
        /// Simulated start time (epoch seconds); default: the real time.
        #[arg(long)]
        now: Option<i64>,
        /// Simulated end time (epoch seconds); runs still going then are left running.
        #[arg(long)]
        until: i64,
    },
    /// Lay out a simulated cluster from a fixture directory.
    Init(InitOptions),
    /// Answer `pvesh get|set ...` on the tree, as root on one node.
    Pvesh {
        /// The simulated cluster's directory.
        #[arg(long)]
        root: PathBuf,
        /// The node pvesh runs on (default: the first).
        #[arg(long)]
        node: Option<String>,
        /// Simulated time (epoch seconds); default: the real time.
        #[arg(long)]
        now: Option<i64>,
        /// `get|set <api_path> [--key value ...] [--output-format json|json-pretty|text]`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<String>,
    },
}

/// Runs the command; prints errors as `error: ...` with their causes.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Pvesh {
            root,
            node,
            now,
            args,
        } => return run_pvesh(&root, node, now, &args),
        Command::Init(options) => run_init(options),
        Command::Serve(options) => run_serve(options),
        Command::Scheduler {
            root,
            speed,
            now,
            until,
        } => run_scheduler(&root, speed, now, until),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}

fn run_init(options: InitOptions) -> Result<()> {
    let config = init::init(&options)?;
    let names: Vec<String> = config
        .nodes
        .iter()
        .map(|n| format!("{} ({})", n.name, n.timezone))
        .collect();
    println!("root: {}", options.root.display());
    println!("nodes: {}", names.join(", "));
    println!("token: {}={}", config.token.id, config.token.secret);
    Ok(())
}

/// The arguments of `pve-sim serve`.
#[derive(Debug, clap::Args)]
struct ServeOptions {
    /// The simulated cluster's directory (made by `pve-sim init`).
    #[arg(long)]
    root: PathBuf,
    /// Nodes to simulate, in order (the first answers requests); default: every node of the tree.
    #[arg(long = "node")]
    nodes: Vec<String>,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8006")]
    listen: SocketAddr,
    /// Simulated seconds per real second (0 freezes the clock).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Simulated start time (epoch seconds); default: the real time.
    #[arg(long)]
    now: Option<i64>,
    /// Also run the simulated pvescheduler.
    #[arg(long)]
    scheduler: bool,
    /// Delay of 401 answers in milliseconds (Proxmox waits 3 s).
    #[arg(long, default_value_t = 3000)]
    auth_delay_ms: u64,
}

fn run_serve(options: ServeOptions) -> Result<()> {
    check_speed(options.speed)?;
    let tree = Tree::new(&options.root);
    let mut config = tree.read_config()?;
    if !options.nodes.is_empty() {
        let mut chosen = Vec::new();
        for name in &options.nodes {
            let node = config.node(name).cloned().with_context(|| {
                let known: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
                format!(
                    "node '{name}' is not in {}; its nodes are: {}",
                    tree.config_file().display(),
                    known.join(", ")
                )
            })?;
            chosen.push(node);
        }
        config.nodes = chosen;
    }
    init::lay_out(&tree, &config)?;
    tls::ensure_certificate(&tree)?;
    let (cert, key) = tls::load(&tree)?;
    let fingerprint = tls::fingerprint(&cert);
    let tls_config = tls::server_config(cert, key)?;
    let clock = Clock::new(options.now, options.speed);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = server::bind(options.listen).await?;
        let address = listener.local_addr()?;
        println!("listening: https://{address}");
        println!("fingerprint: {fingerprint}");
        println!("token: {}={}", config.token.id, config.token.secret);
        std::io::Write::flush(&mut std::io::stdout())?;
        if options.scheduler {
            let (tree, config, clock) = (tree.clone(), config.clone(), clock.clone());
            std::thread::spawn(move || {
                if let Err(err) = scheduler::run(&tree, &config, &clock, None) {
                    eprintln!("error: simulated pvescheduler stopped: {err:#}");
                }
            });
        }
        let state = Arc::new(AppState {
            tree,
            config,
            clock,
            auth_delay: Duration::from_millis(options.auth_delay_ms),
        });
        server::serve(listener, tls_config, state).await
    })
}

fn run_scheduler(root: &std::path::Path, speed: f64, now: Option<i64>, until: i64) -> Result<()> {
    check_speed(speed)?;
    if speed == 0.0 {
        bail!("--speed 0 would never reach --until; give a positive speed-up");
    }
    let tree = Tree::new(root);
    let config = tree.read_config()?;
    init::lay_out(&tree, &config)?;
    let clock = Clock::new(now, speed);
    scheduler::run(&tree, &config, &clock, Some(until))
}

fn check_speed(speed: f64) -> Result<()> {
    if !(speed.is_finite() && speed >= 0.0) {
        bail!("--speed {speed} is not a speed-up factor; give a number ≥ 0 (1 = real time, 600 = 10 min per second)");
    }
    Ok(())
}

fn run_pvesh(
    root: &std::path::Path,
    node: Option<String>,
    now: Option<i64>,
    args: &[String],
) -> ExitCode {
    let tree = Tree::new(root);
    let config = match tree.read_config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err:#}");
            return ExitCode::from(255);
        }
    };
    let call = match pvesh::parse_call(args) {
        Ok(call) => call,
        Err(message) => {
            eprintln!("400 Parameter verification failed.\n{message}");
            return ExitCode::from(255);
        }
    };
    let node = node.unwrap_or_else(|| config.local_node().name.clone());
    let now = now.unwrap_or_else(|| crate::clock::real_now() as i64);
    match pvesh::execute(&tree, &config, &node, now, &call) {
        Ok(data) => {
            print!("{}", pvesh::render(&data, &call.output_format));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprint!("{}", error.pvesh_text());
            ExitCode::from(255)
        }
    }
}
