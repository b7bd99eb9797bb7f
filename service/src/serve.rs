//! Serving a router on a listener the caller bound: HTTPS with the service's
//! identity, or plain HTTP on a loopback address only.
//!
//! The caller binds (so a test can bind port 0 and learn the port, and a
//! daemon can report a busy port before it says it is ready) and hands over a
//! shutdown future; when it completes, the server stops accepting and gives
//! open requests [`DRAIN`] to finish.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use axum_server::Handle;

/// How long open requests may run on after shutdown was asked for.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Binds `address` (`0.0.0.0:8150`, `127.0.0.1:0`) with a message that says what to check.
pub fn bind(address: SocketAddr) -> io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind(address).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {address}: {e}; is another process using the port?"),
        )
    })
}

/// Serves `router` on `listener` until `shutdown` completes, over HTTPS when
/// `tls` is given. Plain HTTP is refused unless the listener is on a loopback
/// address: tokens must not cross a network in clear text.
pub async fn serve<F>(
    listener: std::net::TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let local = listener.local_addr()?;
    if tls.is_none() && !local.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("plain HTTP is only served on a loopback address, not on {local}"),
        ));
    }
    let handle: Handle<SocketAddr> = Handle::new();
    let drain = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        drain.graceful_shutdown(Some(DRAIN));
    });
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        Some(config) => {
            axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(config))?
                .handle(handle)
                .serve(app)
                .await
        }
        None => {
            axum_server::from_tcp(listener)?
                .handle(handle)
                .serve(app)
                .await
        }
    }
}
