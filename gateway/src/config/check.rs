//! `twofold check-config` and the console's configuration page: beyond parsing and
//! validation, the secrets the file names can be read, the custodians' modules and key
//! files exist, and the TLS files load as they would at start. Says what it configures;
//! never a secret.

use super::{BackendTransport, Config, ListenerTls};
use crate::envelope::aead::Layer;
use crate::keys::CustodianSpec;

/// Whether `config` would start, and a line per thing checked (the last one says why not).
pub fn check(config: &Config) -> (bool, Vec<String>) {
    let mut lines = Vec::new();
    match checked(config, &mut lines) {
        Ok(()) => {
            lines.push(format!("{}: ok", config.path.display()));
            (true, lines)
        }
        Err(e) => {
            lines.push(e);
            (false, lines)
        }
    }
}

fn checked(config: &Config, lines: &mut Vec<String>) -> Result<(), String> {
    for (layer, spec) in [(Layer::Outer, &config.outer), (Layer::Inner, &config.inner)] {
        match spec {
            CustodianSpec::Pkcs11 { pin, module, .. } => {
                pin.load()
                    .map_err(|e| format!("custodian.{layer}: the PIN: {e}"))?;
                if !module.exists() {
                    return Err(format!(
                        "custodian.{layer}.module: {} does not exist",
                        module.display()
                    ));
                }
            }
            CustodianSpec::KeyFile { path, .. } => {
                crate::keys::custodian::read_key_file(path, layer)
                    .map_err(|e| format!("custodian.{layer}.key_file: {e}"))?;
            }
        }
        lines.push(format!("{layer} layer: {}", spec.describe()));
    }
    let Some(s) = &config.serve else {
        lines.push("serve: not configured (no [server]/[backend])".into());
        return Ok(());
    };
    // The certificates and keys are loaded as at start (the key must match the leaf), and
    // the backend's trust roots too, so that a bad file fails here and not at the restart.
    let listener = tls_scheme(&s.listener_tls, "server.tls")?;
    let admin = tls_scheme(&s.admin_tls, "admin.tls")?;
    let backend = match &s.backend_transport {
        BackendTransport::Tls { ca_bundle, .. } => {
            crate::tls::client_config(ca_bundle.as_deref()).map_err(|e| format!("backend: {e}"))?;
            "https"
        }
        BackendTransport::PlainHttp => "http",
    };
    lines.push(format!(
        "serve: listen {listener}://{}, backend {backend}://{}, {} credential(s), admin {}",
        s.listen,
        s.backend_host,
        s.credentials.len(),
        s.admin_listen
            .map_or_else(|| "off".to_owned(), |a| format!("{admin}://{a}"))
    ));
    if let Some(c) = &s.console {
        let acting = c.operators.iter().filter(|o| o.act).count();
        lines.push(format!(
            "console: {} operator(s), {acting} who may act; sessions of {} s; state in {}",
            c.operators.len(),
            c.session.as_secs(),
            c.state_dir.display()
        ));
    }
    Ok(())
}

fn tls_scheme(tls: &ListenerTls, field: &str) -> Result<&'static str, String> {
    match tls {
        ListenerTls::Tls { cert, key } => {
            crate::tls::ServerTls::load(cert, key).map_err(|e| format!("{field}: {e}"))?;
            Ok("https")
        }
        ListenerTls::PlainHttp => Ok("http"),
    }
}
