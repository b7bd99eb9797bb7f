//! TLS for talking to pveproxy: certificate pinning by SHA-256 fingerprint,
//! or validation against a CA, always on rustls with the ring provider (no
//! OpenSSL, no aws-lc).
//!
//! Proxmox nodes usually present a certificate signed by the cluster's own
//! CA, so Proxmox's own clients pin the SHA-256 fingerprint of the DER
//! certificate instead of validating a chain; a pin replaces CA and host name
//! checks, and the handshake signature is still verified. The verifier
//! remembers the fingerprint of the last certificate it was shown
//! ([`CertObserver`]), so that a refused handshake can tell the user which
//! fingerprint to pin. Trusting a CA ([`Trust::CaPem`], [`Trust::System`])
//! checks chain and host name with webpki instead.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The SHA-256 fingerprint of a DER certificate, as Proxmox shows and pins
/// it: 32 colon-separated upper-case hex pairs.
///
/// ```
/// use pve_api::Fingerprint;
/// let fp: Fingerprint = "ab:CD:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89"
///     .parse()
///     .unwrap();
/// assert!(fp.to_string().starts_with("AB:CD:EF:01:"));
/// assert_eq!(fp, fp.to_string().replace(':', "").to_lowercase().parse().unwrap());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        let digest = Sha256::digest(der);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&digest);
        Fingerprint(bytes)
    }

    /// The 32 bytes of the digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = Error;

    /// Accepts upper or lower case, with colons between every pair or none.
    fn from_str(input: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidFingerprint {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let text = input.trim();
        let hex_text: String = if text.contains(':') {
            let pairs: Vec<&str> = text.split(':').collect();
            if pairs.len() != 32 || pairs.iter().any(|p| p.len() != 2) {
                return Err(invalid("colons must separate 32 pairs of hex digits"));
            }
            pairs.concat()
        } else {
            text.to_string()
        };
        if hex_text.len() != 64 {
            return Err(invalid(&format!(
                "has {} hex digits, a SHA-256 fingerprint has 64",
                hex_text.len()
            )));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&hex_text, &mut bytes)
            .map_err(|_| invalid("contains a character that is not a hex digit"))?;
        Ok(Fingerprint(bytes))
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How the client decides to trust the server's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Accept exactly the certificate with this SHA-256 fingerprint (what
    /// `pvenode cert info` prints); host names and chains are not checked.
    Fingerprint(Fingerprint),
    /// Validate the chain against these PEM CA certificates (e.g. the
    /// cluster's `/etc/pve/pve-root-ca.pem`) and check the host name.
    CaPem(String),
    /// Validate the chain against the system's CA certificates and check the
    /// host name: for nodes with a publicly trusted (e.g. ACME) certificate.
    /// The certificates are read when the client is built.
    System,
}

/// Remembers the fingerprint of the last certificate a server presented, so
/// that a failed handshake can be explained.
#[derive(Clone, Debug, Default)]
pub struct CertObserver {
    seen: Arc<Mutex<Option<Fingerprint>>>,
}

impl CertObserver {
    /// The fingerprint of the last certificate presented, if any.
    pub fn last_seen(&self) -> Option<Fingerprint> {
        // A poisoned lock only means another thread panicked mid-store of a
        // plain `Copy` value: the value is still whole.
        match self.seen.lock() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    fn record(&self, fp: Fingerprint) {
        match self.seen.lock() {
            Ok(mut guard) => *guard = Some(fp),
            Err(poisoned) => *poisoned.into_inner() = Some(fp),
        }
    }
}

/// The rustls configuration for one [`Trust`] plus the observer of the
/// certificates its verifier sees.
pub struct TlsSetup {
    /// The client configuration to hand to the HTTP client.
    pub config: rustls::ClientConfig,
    /// Shared with the verifier inside `config`.
    pub observer: CertObserver,
}

/// Builds the rustls client configuration (ring provider, TLS 1.2 and 1.3)
/// for `trust`.
pub fn client_config(trust: &Trust) -> Result<TlsSetup> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let observer = CertObserver::default();
    let check = match trust {
        Trust::Fingerprint(pin) => Check::Pin(*pin),
        Trust::CaPem(pem) => Check::Ca(ca_verifier(pem_roots(pem)?, provider.clone())?),
        Trust::System => Check::Ca(ca_verifier(system_roots()?, provider.clone())?),
    };
    let verifier = Arc::new(Verifier {
        check,
        provider: provider.clone(),
        observer: observer.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::ClientBuild {
            message: format!("TLS protocol versions: {e}"),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(TlsSetup { config, observer })
}

fn pem_roots(pem: &str) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| Error::InvalidCaPem {
            reason: format!("unreadable PEM: {e}"),
        })?;
        roots.add(cert).map_err(|e| Error::InvalidCaPem {
            reason: format!("certificate rejected: {e}"),
        })?;
    }
    if roots.is_empty() {
        return Err(Error::InvalidCaPem {
            reason: "no CERTIFICATE block found".to_string(),
        });
    }
    Ok(roots)
}

/// The system's CA certificates; unreadable ones are skipped as long as some
/// remain (a CA bundle often holds a few that webpki cannot use).
fn system_roots() -> Result<RootCertStore> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (_added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if roots.is_empty() {
        let errors: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
        return Err(Error::NoSystemRoots {
            reason: if errors.is_empty() {
                "none found".to_string()
            } else {
                errors.join("; ")
            },
        });
    }
    Ok(roots)
}

fn ca_verifier(
    roots: RootCertStore,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| Error::InvalidCaPem {
            reason: e.to_string(),
        })
}

enum Check {
    Pin(Fingerprint),
    Ca(Arc<WebPkiServerVerifier>),
}

struct Verifier {
    check: Check,
    provider: Arc<CryptoProvider>,
    observer: CertObserver,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.check {
            Check::Pin(pin) => write!(f, "Verifier(pin {pin})"),
            Check::Ca(_) => write!(f, "Verifier(CA)"),
        }
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = Fingerprint::of_der(end_entity);
        self.observer.record(seen);
        match &self.check {
            Check::Pin(pin) if *pin == seen => Ok(ServerCertVerified::assertion()),
            Check::Pin(_) => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
            Check::Ca(inner) => {
                inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls error somewhere in the chain. An I/O error hides the error it
/// wraps from `source()` (it returns the wrapped error's source), so step
/// into I/O errors with `get_ref()` instead.
pub fn find_rustls_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = match err.downcast_ref::<std::io::Error>() {
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => std::error::Error::source(io),
            },
            None => err.source(),
        };
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    const FP: &str = "3F:A0:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E";

    #[test]
    fn fingerprint_round_trips_and_accepts_other_spellings() {
        let fp: Fingerprint = FP.parse().unwrap();
        assert_eq!(fp.to_string(), FP);
        assert_eq!(fp, FP.to_lowercase().parse().unwrap());
        assert_eq!(fp, FP.replace(':', "").parse().unwrap());
        assert_eq!(
            fp,
            format!("  {}\n", FP.to_lowercase().replace(':', ""))
                .parse()
                .unwrap()
        );
    }

    #[test]
    fn fingerprint_rejects_wrong_lengths_and_characters() {
        for bad in [
            "",
            &FP[..FP.len() - 3],
            &format!("{FP}:00"),
            &FP.replace("3F", "3G"),
            &FP.replacen(':', "", 1),
            &FP.replace(':', "-"),
        ] {
            let err = bad.parse::<Fingerprint>().unwrap_err();
            assert!(
                matches!(err, Error::InvalidFingerprint { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("32 colon-separated hex pairs"));
        }
    }

    #[test]
    fn fingerprint_of_der_is_sha256_of_the_bytes() {
        // SHA-256 of the empty string.
        assert_eq!(
            Fingerprint::of_der(b"").to_string(),
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
        );
    }

    #[test]
    fn a_ca_pem_without_certificates_is_refused() {
        let err = client_config(&Trust::CaPem("not a pem".into()))
            .err()
            .unwrap();
        assert!(matches!(err, Error::InvalidCaPem { .. }), "{err}");
    }
}
