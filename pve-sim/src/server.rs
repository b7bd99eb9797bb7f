//! The HTTPS listener: TLS with the tree's certificate, HTTP/1.1, the API router.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api;

/// Binds `listen`.
pub async fn bind(listen: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}; is the port free?"))
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(
    listener: TcpListener,
    tls: std::sync::Arc<rustls::ServerConfig>,
    state: api::Shared,
) -> Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let app = api::router(state);
    loop {
        let (tcp, _peer) = listener.accept().await.context("accept failed")?;
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            // A client that fails the handshake (e.g. a refused certificate) just goes away.
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let service = TowerToHyperService::new(app);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
