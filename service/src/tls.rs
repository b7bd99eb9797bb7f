//! The service's TLS identity: a self-signed certificate made on first start
//! and kept in the state directory, so its fingerprint — what clients pin —
//! stays the same across restarts.
//!
//! Files: `<dir>/cert.pem` (the certificate, world-readable: clients and
//! Prometheus' `ca_file` use it) and `<dir>/key.pem` (mode 0600). When only
//! one of the two exists the identity is refused rather than silently
//! replaced: a new certificate would break every client that pinned the old
//! one.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pve_api::Fingerprint;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};
use crate::files::write_atomic;

/// A certificate and its private key.
pub struct Identity {
    cert_pem: String,
    key_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: PrivateKeyDer<'static>,
}

impl Identity {
    /// Loads the identity kept in `dir`, or makes one for `subject_names`
    /// (host names and IP addresses the certificate is valid for) when `dir`
    /// holds none yet.
    pub fn load_or_create(dir: &Path, subject_names: &[String]) -> Result<Identity> {
        let (cert, key) = (cert_path(dir), key_path(dir));
        match (cert.exists(), key.exists()) {
            (true, true) => Identity::load(dir),
            (false, false) => Identity::create(dir, subject_names),
            (true, false) | (false, true) => Err(Error::Certificate {
                path: dir.to_path_buf(),
                message: "holds only one of cert.pem and key.pem; restore the missing file, or \
                          remove both to make a new certificate (clients must then pin its new \
                          fingerprint)"
                    .into(),
            }),
        }
    }

    /// Loads the identity kept in `dir`.
    pub fn load(dir: &Path) -> Result<Identity> {
        let cert = cert_path(dir);
        let cert_pem =
            fs::read_to_string(&cert).map_err(|source| Error::io("read", &cert, source))?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| {
            Error::Certificate {
                path: cert.clone(),
                message: format!("is not a PEM certificate: {e}"),
            }
        })?;
        let key = key_path(dir);
        let key_pem = fs::read_to_string(&key).map_err(|source| Error::io("read", &key, source))?;
        let key_der =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| Error::Certificate {
                path: key.clone(),
                message: format!("is not a PEM private key: {e}"),
            })?;
        Ok(Identity {
            cert_pem,
            key_pem,
            cert_der,
            key_der,
        })
    }

    fn generate(subject_names: &[String]) -> Result<Identity> {
        let failed = |e: rcgen::Error| Error::Certificate {
            path: PathBuf::new(),
            message: format!("cannot make a certificate for {subject_names:?}: {e}"),
        };
        let mut params = rcgen::CertificateParams::new(subject_names.to_vec()).map_err(failed)?;
        let common_name = subject_names
            .first()
            .cloned()
            .unwrap_or_else(|| "stagger".into());
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let key = rcgen::KeyPair::generate().map_err(failed)?;
        let cert = params.self_signed(&key).map_err(failed)?;
        let key_pem = key.serialize_pem();
        let key_der =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| Error::Certificate {
                path: PathBuf::new(),
                message: format!("the generated key does not read back: {e}"),
            })?;
        Ok(Identity {
            cert_pem: cert.pem(),
            key_pem,
            cert_der: cert.der().clone(),
            key_der,
        })
    }

    /// Makes a new identity and publishes it as `dir` in one step: both files
    /// are written into a staging directory beside `dir`, which is then
    /// renamed to `dir`. Of two processes starting at once (the daemon and
    /// `sched-agent fingerprint`, say) exactly one rename wins; the other finds
    /// the winner's identity and uses it, so all of them present the same
    /// certificate.
    fn create(dir: &Path, subject_names: &[String]) -> Result<Identity> {
        let identity = Identity::generate(subject_names)?;
        let staging = staging_path(dir);
        let _ = fs::remove_dir_all(&staging);
        let published = identity.write_into(&staging).and_then(|()| {
            fs::rename(&staging, dir).map_err(|source| Error::io("publish", dir, source))
        });
        match published {
            Ok(()) => {
                crate::files::sync_dir(dir)?;
                tracing::info!(
                    dir = %dir.display(),
                    fingerprint = %identity.fingerprint(),
                    "Made a new self-signed certificate; clients pin its fingerprint."
                );
                Ok(identity)
            }
            Err(error) => {
                let _ = fs::remove_dir_all(&staging);
                if cert_path(dir).exists() && key_path(dir).exists() {
                    Identity::load(dir)
                } else {
                    Err(error)
                }
            }
        }
    }

    fn write_into(&self, dir: &Path) -> Result<()> {
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).map_err(|source| Error::io("create", parent, source))?;
        }
        fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|source| Error::io("create", dir, source))?;
        write_atomic(&key_path(dir), self.key_pem.as_bytes(), 0o600)?;
        write_atomic(&cert_path(dir), self.cert_pem.as_bytes(), 0o644)
    }

    /// The certificate's SHA-256 fingerprint, as clients pin it (`AA:BB:…`).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_der(&self.cert_der)
    }

    /// The certificate in PEM form.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A rustls server configuration (ring, TLS 1.2 and 1.3, HTTP/1.1).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        let unusable = |message: String| Error::Certificate {
            path: PathBuf::new(),
            message,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| unusable(format!("TLS protocol versions: {e}")))?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der.clone()], self.key_der.clone_key())
            .map_err(|e| unusable(format!("the certificate and key do not match: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.fingerprint())
    }
}

/// `.<dir name>.new-<unique>` beside `dir`.
fn staging_path(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tls".into());
    dir.with_file_name(format!(".{name}.new-{}", crate::files::unique_suffix()))
}

/// `<dir>/cert.pem`.
pub fn cert_path(dir: &Path) -> PathBuf {
    dir.join("cert.pem")
}

/// `<dir>/key.pem`.
pub fn key_path(dir: &Path) -> PathBuf {
    dir.join("key.pem")
}
