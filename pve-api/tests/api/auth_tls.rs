//! The token header, a refused token, certificate pinning and CA trust,
//! unreachable and silent hosts.

use std::sync::Arc;
use std::time::Duration;

use pve_api::{Client, Config, Error, Trust};
use tokio::net::TcpListener;

use crate::server::{ServerCert, TestCa, TestServer};
use crate::{pinned_client, proxmox, Env, AUDITLESS_TOKEN, TOKEN};

#[tokio::test]
async fn the_token_goes_in_proxmox_header_and_is_accepted() {
    let env = Env::start().await;
    env.client.version().await.unwrap();
    let request = &env.server.requests()[0];
    assert_eq!(
        request.header("authorization"),
        Some(format!("PVEAPIToken={TOKEN}").as_str())
    );
    // Neither the client nor its configuration shows the secret in logs.
    let secret = TOKEN.split_once('=').unwrap().1;
    assert!(!format!("{:?}", env.client).contains(secret));
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_and_the_secret_stays_hidden() {
    let env = Env::start().await;
    let client = pinned_client(
        &env.server.base_url(),
        "stagger@pve!agent=wrong-secret-0000",
        &env.cert,
    );
    let err = client.backup_jobs().await.unwrap_err();
    match &err {
        Error::Unauthorized {
            token_id, message, ..
        } => {
            assert_eq!(token_id, "stagger@pve!agent");
            // Proxmox puts its message in the reason phrase.
            assert_eq!(message, "invalid token value!");
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("check the API token"), "{text}");
    assert!(!text.contains("wrong-secret"), "{text}");
    assert!(!format!("{err:?}").contains("wrong-secret"));
}

#[tokio::test]
async fn a_missing_privilege_is_named() {
    let env = Env::start().await;
    let client = pinned_client(&env.server.base_url(), AUDITLESS_TOKEN, &env.cert);
    let err = client
        .node_tasks("pihanga", &pve_api::TaskQuery::default())
        .await
        .unwrap_err();
    match &err {
        Error::Forbidden {
            path, privilege, ..
        } => {
            assert_eq!(path.as_deref(), Some("/nodes/pihanga"));
            assert_eq!(privilege.as_deref(), Some("Sys.Audit"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("API token stagger@pve!noaudit lacks privilege Sys.Audit on /nodes/pihanga"),
        "{err}"
    );
}

#[tokio::test]
async fn a_different_certificate_is_refused_with_the_fingerprint_to_pin() {
    let pinned = ServerCert::self_signed();
    let presented = ServerCert::self_signed();
    let server = TestServer::start(&presented, Arc::new(proxmox)).await;
    let client = pinned_client(&server.base_url(), TOKEN, &pinned);
    let err = client.version().await.unwrap_err();
    match &err {
        Error::FingerprintMismatch {
            host,
            seen,
            expected,
        } => {
            assert_eq!(host, &server.addr.to_string());
            assert_eq!(*seen, presented.fingerprint());
            assert_eq!(*expected, pinned.fingerprint());
        }
        other => panic!("unexpected {other:?}"),
    }
    let seen = presented.fingerprint().to_string();
    assert_eq!(
        err.to_string(),
        format!(
            "certificate of {} has fingerprint {seen}; expected {}; if this is the right host, set fingerprint = \"{seen}\" (compare with `pvenode cert info` on the host)",
            server.addr,
            pinned.fingerprint()
        )
    );
    // The token never left the client.
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_certificate_signed_by_the_configured_ca_is_accepted() {
    let ca = TestCa::new("cluster");
    let server = TestServer::start(&ca.leaf, Arc::new(proxmox)).await;
    let client = Client::new(Config {
        base_url: format!("https://localhost:{}", server.addr.port()),
        token: TOKEN.parse().unwrap(),
        trust: Trust::CaPem(ca.ca_pem.clone()),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    assert_eq!(client.version().await.unwrap().version, "9.1.2");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_with_a_hint() {
    let ca = TestCa::new("cluster");
    let other = TestCa::new("other");
    let server = TestServer::start(&ca.leaf, Arc::new(proxmox)).await;
    let client = Client::new(Config {
        base_url: format!("https://localhost:{}", server.addr.port()),
        token: TOKEN.parse().unwrap(),
        trust: Trust::CaPem(other.ca_pem),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let err = client.version().await.unwrap_err();
    match &err {
        Error::Tls { seen, message, .. } => {
            assert_eq!(*seen, Some(ca.leaf.fingerprint()));
            assert!(message.contains("UnknownIssuer"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err
        .to_string()
        .contains(&format!("fingerprint = \"{}\"", ca.leaf.fingerprint())));
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_refused_connection_names_the_url() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = pinned_client(
        &format!("https://{addr}"),
        TOKEN,
        &ServerCert::self_signed(),
    );
    let err = client.node_time("pihanga").await.unwrap_err();
    match &err {
        Error::Connect { url, .. } => {
            assert_eq!(url, &format!("https://{addr}/api2/json/nodes/pihanga/time"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err
        .to_string()
        .starts_with(&format!("cannot connect to https://{addr}/")));
}

#[tokio::test]
async fn a_silent_host_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept and hold connections without ever answering.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let client = Client::new(Config {
        base_url: format!("https://{addr}"),
        token: TOKEN.parse().unwrap(),
        trust: Trust::Fingerprint(ServerCert::self_signed().fingerprint()),
        timeout: Duration::from_millis(300),
    })
    .unwrap();
    let err = client.version().await.unwrap_err();
    holder.abort();
    assert!(
        matches!(err, Error::Timeout { timeout, .. } if timeout == Duration::from_millis(300)),
        "{err:?}"
    );
}

#[tokio::test]
async fn system_trust_refuses_a_self_signed_node() {
    let cert = ServerCert::self_signed();
    let server = TestServer::start(&cert, Arc::new(proxmox)).await;
    let client = Client::new(Config {
        base_url: format!("https://localhost:{}", server.addr.port()),
        token: TOKEN.parse().unwrap(),
        trust: Trust::System,
        timeout: Duration::from_secs(5),
    });
    match client {
        // A machine without a CA bundle says so up front.
        Err(err) => assert!(matches!(err, Error::NoSystemRoots { .. }), "{err:?}"),
        Ok(client) => {
            let err = client.version().await.unwrap_err();
            assert!(
                matches!(&err, Error::Tls { seen, .. } if *seen == Some(cert.fingerprint())),
                "{err:?}"
            );
            assert!(server.requests().is_empty());
        }
    }
}
