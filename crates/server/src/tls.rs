//! HTTPS for the API: the rustls server configuration from `[server] tls_cert` and
//! `tls_key` (PEM files), checked at start-up so that a missing file, a file without a
//! certificate or key, or a key that does not match the certificate stops the service with
//! the file named, instead of failing every handshake later.
//!
//! The crypto provider is named explicitly (aws-lc-rs, rustls' default, the only one the
//! binary compiles): a test build also has `ring` (through rcgen), and a provider chosen by
//! features alone would depend on what else is linked in.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::ServeError;

/// The TLS acceptor for the certificate chain at `cert` and the private key at `key`.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ServeError> {
    let problem = |field: &str, path: &Path, reason: String| ServeError::Config {
        field: field.to_string(),
        reason: format!("{}: {reason}", path.display()),
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|err| problem("server.tls_cert", cert, pem_reason(&err)))?
        .collect::<Result<_, _>>()
        .map_err(|err| problem("server.tls_cert", cert, pem_reason(&err)))?;
    if chain.is_empty() {
        return Err(problem(
            "server.tls_cert",
            cert,
            "no certificate in it (expected PEM `-----BEGIN CERTIFICATE-----` blocks)".into(),
        ));
    }
    let private_key = PrivateKeyDer::from_pem_file(key)
        .map_err(|err| problem("server.tls_key", key, pem_reason(&err)))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| problem("server.tls_cert", cert, err.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|err| {
            problem(
                "server.tls_key",
                key,
                format!(
                    "cannot be used with the certificate in {}: {err}",
                    cert.display()
                ),
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// What is wrong with a PEM file, for the operator.
fn pem_reason(err: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match err {
        Error::Io(err) => format!("cannot read it: {err}"),
        Error::NoItemsFound => {
            "no PEM item of the expected kind in it (a certificate for tls_cert, a private \
             key for tls_key)"
                .to_string()
        }
        other => format!("not a usable PEM file: {other}"),
    }
}
