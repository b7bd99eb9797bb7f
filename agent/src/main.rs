//! `sched-agent`: parse the command line, set up logging, read the config, run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use sched_agent::config::Config;

/// Stagger's per-host daemon for Proxmox VE: measures I/O load and backup
/// runs, applies staggered schedules to /etc/pve/jobs.cfg safely, guards
/// backups with leases, serves Prometheus metrics.
#[derive(Debug, Parser)]
#[command(
    name = "sched-agent",
    version,
    propagate_version = true,
    after_help = "Examples:
  sched-agent run                              # the daemon (systemd: Type=notify)
  sched-agent --config /tmp/agent.toml check-config
  sched-agent fingerprint                      # pin this in schedctl's [host.agent]
  sched-agent hook install                     # set `script:` in /etc/vzdump.conf
  sched-agent hook job-start                   # what vzdump runs (via the installed wrapper)

Exit codes: 0 done, 1 failure, 2 bad configuration or usage, 3 refused."
)]
struct Cli {
    /// The agent's configuration file.
    #[arg(long, global = true, default_value = sched_agent::config::DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: sample I/O, follow backup runs, serve the API on `listen`.
    Run,
    /// Print the SHA-256 fingerprint of the agent's certificate (made on first use).
    #[command(after_help = "Examples:
  sched-agent fingerprint
  sched-agent fingerprint --format json")]
    Fingerprint {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Check the configuration file and print it with every default filled in.
    #[command(after_help = "Examples:
  sched-agent --config /etc/stagger/agent.toml check-config
  sched-agent check-config --format json | jq .backend")]
    CheckConfig {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// The vzdump hook: `hook <phase> [mode vmid]`, or `hook install|uninstall`.
    #[command(after_help = "Examples:
  sched-agent hook install                     # wrapper at hook-script, then `script:` in vzdump.conf
  sched-agent hook install --force             # replace another tool's `script:`
  sched-agent hook uninstall                   # remove the `script:` line, then the wrapper
  sched-agent hook job-start                   # vzdump's call; always exits 0")]
    Hook {
        #[command(subcommand)]
        action: HookAction,
    },
}

#[derive(Debug, Subcommand)]
enum HookAction {
    /// Install the hook: write the wrapper (mode 0755), then add `script:` to vzdump.conf.
    Install {
        /// Replace a `script:` that runs another tool's hook.
        #[arg(long)]
        force: bool,
        /// Where to put the wrapper (default: `hook-script` of the config).
        #[arg(long)]
        path: Option<PathBuf>,
    },
    /// Uninstall the hook: remove the `script:` line, then the wrapper.
    Uninstall {
        /// Uninstall even while jobs name the wrapper in their own `script` key.
        #[arg(long)]
        force: bool,
        /// Where the wrapper is (default: `hook-script` of the config).
        #[arg(long)]
        path: Option<PathBuf>,
    },
    /// A phase vzdump calls the hook for (`job-start`, `backup-end snapshot 100`, ...).
    #[command(external_subcommand)]
    Phase(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // vzdump fails the backup on a non-zero exit: a hook call never fails.
        Err(error) if is_hook_phase_call() => {
            println!(
                "stagger: unexpected hook arguments ({}); the backup goes ahead",
                error.kind()
            );
            return ExitCode::SUCCESS;
        }
        Err(error) => error.exit(),
    };
    match cli.command {
        Command::Hook {
            action: HookAction::Phase(args),
        } => {
            sched_agent::hook::run(&cli.config, &args);
            ExitCode::SUCCESS
        }
        Command::Hook { action } => hook_admin(&cli.config, action),
        Command::Run => run(&cli.config),
        Command::Fingerprint { format } => fingerprint(&cli.config, format),
        Command::CheckConfig { format } => match load(&cli.config) {
            Ok(config) => {
                match format {
                    Format::Text => match toml::to_string(&config) {
                        Ok(text) => print!("{text}"),
                        Err(error) => println!("{config:#?} ({error})"),
                    },
                    Format::Json => match serde_json::to_string_pretty(&config) {
                        Ok(text) => println!("{text}"),
                        Err(error) => {
                            eprintln!("error: {error}");
                            return ExitCode::from(1);
                        }
                    },
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
    }
}

/// Whether the arguments are a hook call by vzdump (not install/uninstall/help).
fn is_hook_phase_call() -> bool {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(position) = args.iter().position(|a| a == "hook") else {
        return false;
    };
    !matches!(
        args.get(position + 1).map(String::as_str),
        Some("install" | "uninstall" | "help" | "--help" | "-h")
    )
}

fn load(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|error| {
        eprintln!("error: {error}");
        ExitCode::from(2)
    })
}

fn report(error: &anyhow::Error) {
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

fn run(path: &Path) -> ExitCode {
    stagger_service::logging::init("sched-agent");
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let result = (|| -> anyhow::Result<()> {
        let address = config.listen.parse().map_err(|_| {
            anyhow::anyhow!("`listen` {:?} is not an address with a port", config.listen)
        })?;
        let listener = stagger_service::serve::bind(address)?;
        // One thread serves everything: the agent's work is small, and every
        // file transaction runs on the blocking pool anyway. Fewer threads,
        // less memory (the bench compares it with node_exporter).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(sched_agent::run(config, listener, stop_signal()))
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("The agent stopped: {error:#}");
            report(&error);
            ExitCode::from(1)
        }
    }
}

/// Completes on SIGTERM (systemd's stop) or SIGINT.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn fingerprint(path: &Path, format: Format) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match sched_agent::identity(&config) {
        Ok(identity) => {
            let fingerprint = identity.fingerprint().to_string();
            match format {
                Format::Text => println!("{fingerprint}"),
                Format::Json => println!("{}", serde_json::json!({ "fingerprint": fingerprint })),
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            report(&error);
            ExitCode::from(1)
        }
    }
}

fn hook_admin(path: &Path, action: HookAction) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let target = |wrapper: Option<PathBuf>| sched_agent::hook::install::Target {
        vzdump_conf: config.vzdump_conf.clone(),
        wrapper: wrapper.unwrap_or_else(|| config.hook_script.clone()),
        jobs_cfg: config.pve_root.join("jobs.cfg"),
    };
    let result = match action {
        HookAction::Install {
            force,
            path: wrapper,
        } => absolute_paths(path).and_then(|(binary, config_path)| {
            sched_agent::hook::install::install(&target(wrapper), &binary, &config_path, force)
        }),
        HookAction::Uninstall {
            force,
            path: wrapper,
        } => sched_agent::hook::install::uninstall(&target(wrapper), force),
        HookAction::Phase(_) => return ExitCode::SUCCESS,
    };
    match result {
        Ok(done) => {
            println!("{done}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            report(&error);
            // A refusal (another tool's hook, jobs still using it) is exit code 3.
            let refused = error
                .chain()
                .any(|cause| cause.is::<sched_agent::hook::install::Refused>());
            ExitCode::from(if refused { 3 } else { 1 })
        }
    }
}

/// This binary's and the config's absolute paths, for the wrapper.
fn absolute_paths(config: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let binary = std::env::current_exe()?.canonicalize()?;
    let config = config
        .canonicalize()
        .map_err(|e| anyhow::anyhow!("cannot resolve {}: {e}", config.display()))?;
    Ok((binary, config))
}
