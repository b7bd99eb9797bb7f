//! `schedctl serve`: run the coordinator (the lease service and `/metrics`)
//! until SIGTERM or Ctrl-C; `--fingerprint` prints the certificate's
//! fingerprint for the agents' `[coordinator] fingerprint`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};
use clap::Args;
use stagger_service::tls::Identity;
use stagger_service::token::Token;

use super::Context;
use crate::config::Config;
use crate::coordinator::{Coordinator, SetupError};
use crate::exit::{bad_input, CommandError, CommandResult};
use crate::output;

/// Run the coordinator.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Print the SHA-256 fingerprint of the coordinator's certificate (made on
    /// first use in `[serve] state-dir`) and exit: the value agents pin.
    #[arg(long)]
    pub fingerprint: bool,
}

/// What `serve` needs, checked before anything starts.
struct ServeSettings {
    listen: SocketAddr,
    plain_http: bool,
    token_file: PathBuf,
    state_dir: PathBuf,
}

/// Runs `schedctl serve`.
pub fn run(context: &Context, args: &ServeArgs) -> CommandResult {
    let config = context.config()?;
    let settings = resolve(&config, &context.path())?;
    if args.fingerprint {
        return print_fingerprint(&settings);
    }
    stagger_service::logging::init("schedctl");
    let token = Token::load(&settings.token_file).map_err(bad_input)?;
    let tls = if settings.plain_http {
        None
    } else {
        let identity = identity(&settings).map_err(CommandError::from)?;
        tracing::info!(fingerprint = %identity.fingerprint(), "Loaded the coordinator's certificate.");
        Some(
            identity
                .server_config()
                .context("cannot use the certificate")?,
        )
    };
    let coordinator = Coordinator::new(config, token).map_err(|e| match e {
        SetupError::Config(e) => bad_input(e),
        SetupError::Failed(e) => CommandError::from(e),
    })?;
    let listener = stagger_service::serve::bind(settings.listen)?;
    // The address as bound (port 0 picks one), for whoever started us.
    let scheme = if tls.is_some() { "https" } else { "http" };
    output::print_text(&format!(
        "listening: {scheme}://{}\n",
        listener.local_addr()?
    ))?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        // Listening for the signals before systemd hears "ready": a stop
        // right after the start then drains instead of killing.
        let stop = shutdown_signal()?;
        coordinator.serve(listener, tls, stop).await
    })?;
    Ok(())
}

fn resolve(config: &Config, path: &Path) -> Result<ServeSettings, CommandError> {
    let serve = &config.serve;
    let listen: SocketAddr = serve.listen.parse().map_err(|_| {
        bad_input(anyhow!(
            "{}: serve.listen: {:?} is not an address with a port; write e.g. \"0.0.0.0:8151\"",
            path.display(),
            serve.listen
        ))
    })?;
    if serve.plain_http && !listen.ip().is_loopback() {
        return Err(bad_input(anyhow!(
            "{}: serve.plain-http: plain HTTP is only served on a loopback address, not on {listen}; \
             remove plain-http to serve HTTPS",
            path.display()
        )));
    }
    Ok(ServeSettings {
        listen,
        plain_http: serve.plain_http,
        token_file: serve.token_file.clone(),
        state_dir: serve.state_dir.clone(),
    })
}

fn print_fingerprint(settings: &ServeSettings) -> CommandResult {
    if settings.plain_http {
        return Err(bad_input(anyhow!(
            "serve.plain-http = true: the coordinator serves no certificate, so there is no fingerprint to pin"
        )));
    }
    let identity = identity(settings)?;
    output::print_text(&format!("{}\n", identity.fingerprint()))?;
    Ok(())
}

/// The certificate in `<state-dir>/coordinator-tls/`, made on first use for the
/// names clients use. Its own directory: the state directory also holds the
/// store, and on a machine that runs an agent too, the agent's files.
fn identity(settings: &ServeSettings) -> anyhow::Result<Identity> {
    let mut names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    if let Some(host) = host_name() {
        names.push(host);
    }
    let ip = settings.listen.ip();
    if !ip.is_unspecified() && ip != IpAddr::from([127, 0, 0, 1]) {
        names.push(ip.to_string());
    }
    let dir = settings.state_dir.join("coordinator-tls");
    Identity::load_or_create(&dir, &names).with_context(|| {
        format!(
            "cannot load or make the coordinator's certificate in {} (under serve.state-dir)",
            dir.display()
        )
    })
}

/// The machine's name, for the certificate (the unit hides /proc/sys: then /etc/hostname).
fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
}

/// A future that completes on SIGTERM or Ctrl-C (SIGINT); the handlers are
/// in place when this returns.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
