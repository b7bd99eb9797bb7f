//! One module per subcommand; each turns its arguments into output.

pub mod apply;
pub mod calendar;
pub mod demo;
pub mod diff;
pub mod history;
pub mod jobs_cfg;
pub mod plan;
pub mod rollback;
pub mod serve;
pub mod simulate;
pub mod status;

use std::fmt::Write as _;
use std::io::{BufRead, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::cli::{Cli, Command};
use crate::config::{self, Config, HostConfig};
use crate::exit::{bad_input, refused, CommandError, CommandResult, Kind};
use crate::fleet::collect::{self, Outcome};
use crate::fleet::planned::{PlanBody, Unreachable};
use crate::store::{PlanRow, Store};

/// What every command may need besides its own arguments.
pub struct Context {
    /// `--config`, when given.
    pub config_path: Option<PathBuf>,
}

impl Context {
    /// The configuration file's path.
    pub fn path(&self) -> PathBuf {
        self.config_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH))
    }

    /// Reads the configuration; a missing or bad file is bad input.
    pub fn config(&self) -> Result<Config, CommandError> {
        let path = self.path();
        Config::load(&path).map_err(|e| {
            let hint = if self.config_path.is_none() && !path.exists() {
                " (give another file with --config; config.example.toml documents every key)"
            } else {
                ""
            };
            bad_input(anyhow::anyhow!("{e}{hint}"))
        })
    }

    /// The configuration when there is one: given with --config, or the default file exists.
    pub fn optional_config(&self) -> Result<Option<Config>, CommandError> {
        if self.config_path.is_none() && !Path::new(config::DEFAULT_PATH).exists() {
            return Ok(None);
        }
        self.config().map(Some)
    }
}

/// Opens the store of `config`.
pub fn open_store(config: &Config) -> Result<Store, CommandError> {
    Ok(Store::open(&config.store)?)
}

/// The plan `id` (the latest when `None`) and its body.
pub fn stored_plan(store: &Store, id: Option<i64>) -> Result<(PlanRow, PlanBody), CommandError> {
    let row = store.plan(id)?.ok_or_else(|| {
        bad_input(match id {
            Some(id) => anyhow::anyhow!(
                "there is no plan {id} in {}; `schedctl history` lists the plans",
                store.path().display()
            ),
            None => anyhow::anyhow!(
                "there is no plan yet in {}; make one with `schedctl plan`",
                store.path().display()
            ),
        })
    })?;
    let body: PlanBody = serde_json::from_str(&row.body).with_context(|| {
        format!(
            "plan {} in {} is not readable",
            row.id,
            store.path().display()
        )
    })?;
    Ok((row, body))
}

/// Every configured host's report, at most `concurrency` at once.
pub fn collect_all(config: &Config) -> Result<Vec<Outcome>, CommandError> {
    let hosts: Vec<&HostConfig> = config.hosts.iter().collect();
    collect_hosts(config, &hosts)
}

/// The reports of `hosts`.
pub fn collect_hosts(config: &Config, hosts: &[&HostConfig]) -> Result<Vec<Outcome>, CommandError> {
    let transports = collect::transports(hosts, config).map_err(bad_input)?;
    let runtime = collect::runtime()?;
    Ok(runtime.block_on(collect::reports(
        &transports,
        config.concurrency,
        Duration::from_secs(config.timeout_secs),
    )))
}

/// The error for hosts that could not be asked, each named with what failed and what to do.
pub fn unreachable_error(unreachable: &[Unreachable], command: &str) -> CommandError {
    let mut text = format!(
        "{} host(s) could not be asked, so {command} stopped:",
        unreachable.len()
    );
    for u in unreachable {
        let _ = write!(text, "\n  {}\n    what to do: {}", u.error, u.hint);
    }
    if command == "plan" {
        text.push_str("\nrun `schedctl plan --skip-unreachable` to plan without them");
    }
    CommandError::new(Kind::Failed, anyhow::anyhow!(text))
}

/// Asks `question` on stderr; anything but y or yes (or no answer) is a
/// refusal saying `unless` ("nothing was written").
pub fn confirm(question: &str, unless: &str) -> CommandResult {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let read = std::io::stdin().lock().read_line(&mut answer)?;
    if read == 0 || !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        return Err(refused(anyhow::anyhow!(
            "not confirmed, {unless} (answer y, or give --yes)"
        )));
    }
    Ok(())
}

/// Runs the chosen subcommand.
pub fn run(cli: Cli) -> CommandResult {
    let context = Context {
        config_path: cli.config,
    };
    match cli.command {
        Command::Status(args) => status::run(&context, &args),
        Command::Plan(args) => plan::run(&context, &args),
        Command::Diff(args) => diff::run(&context, &args),
        Command::Apply(args) => apply::run(&context, &args),
        Command::Rollback(args) => rollback::run(&context, &args),
        Command::History(args) => history::run(&context, &args),
        Command::Simulate(args) => simulate::run(&context, &args),
        Command::Calendar(args) => calendar::run(&args),
        Command::JobsCfg(command) => jobs_cfg::run(&command),
        Command::Serve(args) => serve::run(&context, &args),
        Command::Demo(args) => demo::run(&args),
    }
}
