//! The API certificate: generated once per tree (self-signed, like a fresh
//! node's `pve-ssl.pem`), loaded on every start, and its SHA-256 fingerprint
//! in Proxmox's form (`AA:BB:...`, 32 upper-case pairs of the DER bytes).

use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::tree::Tree;

/// Creates `pve-ssl.pem`/`pve-ssl.key` unless both exist.
pub fn ensure_certificate(tree: &Tree) -> Result<()> {
    if tree.cert_file().exists() && tree.key_file().exists() {
        return Ok(());
    }
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let generated =
        rcgen::generate_simple_self_signed(names).context("cannot generate the API certificate")?;
    if let Some(dir) = tree.cert_file().parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(tree.cert_file(), generated.cert.pem())
        .with_context(|| format!("cannot write {}", tree.cert_file().display()))?;
    std::fs::write(tree.key_file(), generated.signing_key.serialize_pem())
        .with_context(|| format!("cannot write {}", tree.key_file().display()))?;
    Ok(())
}

/// The certificate (DER) and its key, read from the tree.
pub fn load(tree: &Tree) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
    let cert = CertificateDer::from_pem_file(tree.cert_file())
        .with_context(|| format!("cannot read the certificate {}", tree.cert_file().display()))?;
    let key = PrivateKeyDer::from_pem_file(tree.key_file())
        .with_context(|| format!("cannot read the key {}", tree.key_file().display()))?;
    Ok((cert, key))
}

/// `AA:BB:...`: SHA-256 of the DER certificate, as `pvenode cert info` prints it.
pub fn fingerprint(der: &[u8]) -> String {
    pve_api::Fingerprint::of_der(der).to_string()
}

/// A TLS server config (ring provider, TLS 1.2 and 1.3) for the certificate.
pub fn server_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .context("the certificate and key do not form a usable TLS identity")?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_keeps_its_certificate_and_fingerprint() {
        let dir = tempfile::tempdir().expect("temp dir");
        let tree = Tree::new(dir.path());
        ensure_certificate(&tree).expect("generated");
        let (first, _) = load(&tree).expect("loaded");
        ensure_certificate(&tree).expect("kept");
        let (second, key) = load(&tree).expect("loaded again");
        assert_eq!(first, second);
        let print = fingerprint(&first);
        assert_eq!(print.len(), 32 * 3 - 1);
        assert!(print.split(':').all(|pair| pair.len() == 2
            && pair
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())));
        server_config(second, key).expect("usable identity");
    }
}
