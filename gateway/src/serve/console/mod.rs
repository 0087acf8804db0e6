//! The operators' web console, on the admin listener (docs/operations.md, "Console").
//!
//! Pages are static files built into the binary ([`assets`]); what they show comes from
//! JSON answers under `/console/api/`, built here from what the gateway already has: the
//! Prometheus text of `/metrics` ([`figures`]), the readiness probe and the cores'
//! heartbeats (through [`Live`], which the admin listener implements), the custodians, the
//! configuration as read at start ([`mask`]) and the job records (`crate::jobs`).
//!
//! Every request but the login page and its assets needs a session ([`auth`]); every
//! action (`POST`) also needs the session's CSRF token, and jobs need an operator allowed to
//! act. Logins, logouts, actions and every refusal go to the audit log ([`audit`]).

pub mod assets;
pub mod audit;
pub mod auth;
pub mod figures;
pub mod mask;

use crate::config::{Config, ConsoleSettings};
use crate::jobs::{JobKind, JobRequest, JobState, JobStore, Launcher};
use crate::keys::Custodian;
use serde_json::{Value, json};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Largest request body the console reads (a login form, a job request).
pub const CONSOLE_BODY_BYTES_MAX: u64 = 8 * 1024;
/// The header every action carries the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-twofold-csrf";
/// Headers of every console answer: nothing from elsewhere runs, nothing frames the
/// console, nothing is cached or sniffed.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
         frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

/// What the console needs of the running gateway, handed to the admin thread.
#[derive(Debug, Clone)]
pub struct ConsoleParts {
    /// The configuration as loaded at start.
    pub config: Arc<Config>,
    /// Starts jobs (rewrap, shredding, reports).
    pub launcher: Arc<dyn Launcher>,
}

/// What the admin listener knows that the console shows.
pub(crate) trait Live {
    /// Whether the gateway is ready, and a line per part probed.
    async fn readiness(&self) -> (bool, Vec<String>);
    /// Per core: milliseconds since it last went round its loop, and whether that is
    /// within the stall limit of `/healthz`.
    fn cores(&self) -> Vec<(u64, bool)>;
    /// The Prometheus text of `/metrics`.
    fn metrics(&self) -> String;
}

/// A request to the console.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) cookie: Option<&'a str>,
    pub(crate) csrf: Option<&'a str>,
    pub(crate) body: &'a [u8],
    pub(crate) remote: SocketAddr,
}

/// An answer of the console.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        let headers = SECURITY_HEADERS
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect();
        Self {
            status,
            content_type,
            headers,
            body: body.into(),
        }
    }

    fn json(status: u16, value: &Value) -> Self {
        Self::new(status, "application/json", value.to_string())
    }

    fn error(status: u16, message: &str) -> Self {
        Self::json(status, &json!({ "error": message }))
    }

    fn redirect(to: &str) -> Self {
        let mut a = Self::new(303, "text/plain; charset=utf-8", format!("see {to}\n"));
        a.headers.push(("location", to.to_owned()));
        a
    }

    fn html(body: &'static str) -> Self {
        Self::new(200, "text/html; charset=utf-8", body)
    }
}

/// The console of one admin listener.
pub(crate) struct Console {
    settings: ConsoleSettings,
    config: Arc<Config>,
    launcher: Arc<dyn Launcher>,
    store: Result<JobStore, String>,
    sessions: RefCell<auth::Sessions>,
    audit: audit::AuditLog,
    masked_config: String,
    inner: Custodian,
    outer: Custodian,
    secure_cookie: bool,
    started: Instant,
}

impl Console {
    /// The console for `settings`; `secure_cookie` when the admin listener speaks HTTPS.
    pub(crate) fn new(
        settings: ConsoleSettings,
        parts: ConsoleParts,
        custodians: (Custodian, Custodian),
        secure_cookie: bool,
    ) -> Self {
        // Opening the store makes the state folder (owner-only), where the audit log goes too.
        let store = JobStore::open(&settings.state_dir)
            .map_err(|e| format!("{}: {e}", settings.state_dir.display()));
        if let Err(e) = &store {
            tracing::error!(error = %e, "the console cannot keep job records");
        }
        let masked_config = match std::fs::read_to_string(&parts.config.path) {
            Ok(text) => mask::masked(&text),
            Err(e) => format!("# cannot read {}: {e}\n", parts.config.path.display()),
        };
        Self {
            sessions: RefCell::new(auth::Sessions::new(settings.session)),
            audit: audit::AuditLog::new(settings.state_dir.join("audit.jsonl")),
            settings,
            config: parts.config,
            launcher: parts.launcher,
            store,
            masked_config,
            inner: custodians.0,
            outer: custodians.1,
            secure_cookie,
            started: Instant::now(),
        }
    }

    /// Answers one request under `/console`.
    pub(crate) async fn handle(&self, req: &Request<'_>, live: &impl Live) -> Answer {
        match (req.method, req.path) {
            ("GET", "/console" | "/console/") => Answer::redirect("/console/overview"),
            ("GET", "/console/login") => Answer::html(assets::LOGIN_HTML),
            ("POST", "/console/login") => self.login(req).await,
            ("GET", p) if p.starts_with("/console/assets/") => {
                match assets::asset(&p["/console/assets/".len()..]) {
                    Some((ct, body)) => Answer::new(200, ct, body),
                    None => Answer::error(404, "no such asset"),
                }
            }
            _ => self.with_session(req, live).await,
        }
    }

    /// The requests that need a session.
    async fn with_session(&self, req: &Request<'_>, live: &impl Live) -> Answer {
        let api = req.path.starts_with("/console/api/");
        let token = req.cookie.and_then(|c| auth::cookie(c, auth::COOKIE));
        let session = match token.map(|t| self.sessions.borrow_mut().get(t)) {
            Some(Ok(s)) => s,
            failed => {
                let expired = matches!(failed, Some(Err(true)));
                let why = if expired {
                    "the session has expired; log in again"
                } else {
                    "not logged in"
                };
                if api || req.method != "GET" {
                    self.audit
                        .record("-", req.remote, &action_of(req), false, why);
                    return Answer::error(401, why);
                }
                return Answer::redirect(if expired {
                    "/console/login?expired=1"
                } else {
                    "/console/login"
                });
            }
        };
        if req.method == "POST" {
            if !req.csrf.is_some_and(|c| {
                crate::envelope::constant_time_eq(c.as_bytes(), session.csrf.as_bytes())
            }) {
                let why = "the request lacks the session's CSRF token";
                self.audit
                    .record(&session.operator, req.remote, &action_of(req), false, why);
                return Answer::error(403, why);
            }
            if req.path == "/console/logout" {
                if let Some(t) = token {
                    self.sessions.borrow_mut().close(t);
                }
                self.audit
                    .record(&session.operator, req.remote, "logout", true, "");
                let mut a = Answer::json(200, &json!({ "ok": true }));
                a.headers.push(("set-cookie", self.cookie("")));
                return a;
            }
            if !session.act {
                let why = "this operator's credential is read-only";
                self.audit
                    .record(&session.operator, req.remote, &action_of(req), false, why);
                return Answer::error(403, why);
            }
            return self.act(req, &session).await;
        }
        if req.method != "GET" {
            return Answer::error(405, "only GET and POST");
        }
        self.view(req, &session, live).await
    }

    /// The pages and the read-only answers.
    async fn view(&self, req: &Request<'_>, session: &auth::Session, live: &impl Live) -> Answer {
        let Some(what) = req.path.strip_prefix("/console/api/") else {
            let page = &req.path["/console/".len().min(req.path.len())..];
            return match assets::PAGES.contains(&page) {
                true => Answer::html(assets::CONSOLE_HTML),
                false => Answer::error(404, "no such page"),
            };
        };
        let value = match what {
            "session" => json!({
                "operator": session.operator,
                "can_act": session.act,
                "expires_at": session.expires_unix,
                "csrf": session.csrf,
            }),
            "overview" => self.overview(live).await,
            "custodians" => self.custodians(live).await,
            "keys" => self.keys().await,
            "jobs" => json!({ "jobs": self.jobs() }),
            "configuration" => {
                let (ok, lines) = crate::config::check(&self.config);
                json!({ "text": self.masked_config, "check": { "ok": ok, "lines": lines } })
            }
            "audit" => json!({ "entries": self.audit.recent() }),
            _ => return Answer::error(404, "no such answer"),
        };
        Answer::json(200, &value)
    }

    /// `POST /console/login`: a form of `name` and `password`.
    async fn login(&self, req: &Request<'_>) -> Answer {
        let ip = req.remote.ip();
        if self.sessions.borrow_mut().throttled(ip) {
            self.audit
                .record("-", req.remote, "login", false, "too many failed logins");
            return Answer::redirect("/console/login?failed=1");
        }
        let form = form_fields(req.body);
        let name = form
            .iter()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.clone());
        let password = form
            .iter()
            .find(|(k, _)| k == "password")
            .map(|(_, v)| zeroize::Zeroizing::new(v.clone()));
        let (Some(name), Some(password)) = (name, password) else {
            return Answer::redirect("/console/login?failed=1");
        };
        let operator = self.settings.operators.iter().find(|o| o.name == name);
        // An unknown name costs the same PBKDF2 as a known one.
        let hash = operator
            .map_or(&self.settings.operators[0].hash, |o| &o.hash)
            .clone();
        let verified =
            compio::runtime::spawn_blocking(move || hash.verify(password.as_str())).await;
        let good = operator.filter(|_| verified.unwrap_or(false));
        let Some(operator) = good else {
            self.sessions.borrow_mut().failed(ip);
            let shown = if operator.is_some() {
                name.as_str()
            } else {
                "-"
            };
            self.audit
                .record(shown, req.remote, "login", false, "wrong name or password");
            return Answer::redirect("/console/login?failed=1");
        };
        let opened = self
            .sessions
            .borrow_mut()
            .open(&operator.name, operator.act);
        match opened {
            Ok((token, _)) => {
                self.audit.record(
                    &operator.name,
                    req.remote,
                    "login",
                    true,
                    if operator.act { "may act" } else { "read-only" },
                );
                let mut a = Answer::redirect("/console/overview");
                a.headers.push(("set-cookie", self.cookie(&token)));
                a
            }
            Err(e) => Answer::error(500, &e),
        }
    }

    /// The session cookie (`token` empty: one that clears it). It has no expiry of its own
    /// ([`auth`]).
    fn cookie(&self, token: &str) -> String {
        format!(
            "{}={token}; Path=/console;{} HttpOnly; SameSite=Strict{}",
            auth::COOKIE,
            if token.is_empty() { " Max-Age=0;" } else { "" },
            if self.secure_cookie { "; Secure" } else { "" }
        )
    }

    /// The actions: start, pause and resume jobs.
    async fn act(&self, req: &Request<'_>, session: &auth::Session) -> Answer {
        let action = action_of(req);
        let result = match req.path {
            "/console/api/jobs" => self.start_job(req.body, &session.operator),
            p => match p
                .strip_prefix("/console/api/jobs/")
                .and_then(|rest| rest.rsplit_once('/'))
            {
                Some((id, "pause")) => self.pause(id, true),
                Some((id, "resume")) => self.pause(id, false),
                _ => Err((404, "no such action".to_owned())),
            },
        };
        match result {
            Ok((status, record)) => {
                let id = record["id"].as_str().unwrap_or_default().to_owned();
                self.audit
                    .record(&session.operator, req.remote, &action, true, &id);
                Answer::json(status, &record)
            }
            Err((status, why)) => {
                self.audit
                    .record(&session.operator, req.remote, &action, false, &why);
                Answer::error(status, &why)
            }
        }
    }

    fn start_job(&self, body: &[u8], operator: &str) -> Result<(u16, Value), (u16, String)> {
        let request: JobRequest =
            serde_json::from_slice(body).map_err(|e| (400, format!("not a job request: {e}")))?;
        if self.store.is_err() {
            return Err((503, "the console cannot keep job records".into()));
        }
        let record = self
            .launcher
            .start(request, operator)
            .map_err(|e| (409, e))?;
        Ok((201, serde_json::to_value(record).unwrap_or_default()))
    }

    fn pause(&self, id: &str, paused: bool) -> Result<(u16, Value), (u16, String)> {
        let store = self.store.as_ref().map_err(|e| (503, e.clone()))?;
        let record = store.get(id).ok_or((404, "no such job".to_owned()))?;
        if !matches!(record.state, JobState::Running | JobState::Paused) {
            return Err((409, format!("the job is {:?}", record.state).to_lowercase()));
        }
        store
            .set_paused(id, paused)
            .map_err(|e| (500, format!("the job's control file: {e}")))?;
        Ok((200, serde_json::to_value(record).unwrap_or_default()))
    }

    fn jobs(&self) -> Vec<crate::jobs::JobRecord> {
        self.store.as_ref().map(JobStore::list).unwrap_or_default()
    }

    async fn overview(&self, live: &impl Live) -> Value {
        let (ready, readiness) = live.readiness().await;
        let samples = figures::parse(&live.metrics());
        let cores: Vec<Value> = live
            .cores()
            .into_iter()
            .enumerate()
            .map(|(core, (ms, healthy))| json!({ "core": core, "last_loop_ms": ms, "healthy": healthy }))
            .collect();
        let failures: Vec<Value> = crate::telemetry::integrity_events()
            .into_iter()
            .map(|e| {
                json!({
                    "at": crate::sigv4::format_rfc3339(e.at),
                    "request_id": e.request_id,
                    "operation": e.method,
                    "bucket": e.bucket,
                    "key": e.key,
                    "reason": format!("{}: {}", e.reason, e.detail),
                })
            })
            .collect();
        json!({
            "at_ms": crate::sigv4::unix_now() * 1000,
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_secs": self.started.elapsed().as_secs(),
            "ready": ready,
            "readiness": readiness,
            "cores": cores,
            "tls": self.certificate(),
            "totals": figures::totals(&samples),
            "integrity_failures": failures,
        })
    }

    /// The client-facing certificate: subject, expiry, days left.
    fn certificate(&self) -> Value {
        let Some(serve) = &self.config.serve else {
            return Value::Null;
        };
        let crate::config::ListenerTls::Tls { cert, .. } = &serve.listener_tls else {
            return Value::Null;
        };
        match crate::tls::leaf_validity(cert) {
            Ok((subject, not_after)) => {
                let now = i64::try_from(crate::sigv4::unix_now()).unwrap_or(i64::MAX);
                json!({
                    "subject": subject,
                    "not_after": crate::sigv4::format_rfc3339(u64::try_from(not_after).unwrap_or(0)),
                    "days_left": (not_after - now).div_euclid(86_400),
                })
            }
            Err(e) => {
                json!({ "subject": format!("cannot read {}: {e}", cert.display()), "not_after": null, "days_left": null })
            }
        }
    }

    async fn custodians(&self, live: &impl Live) -> Value {
        let (_, readiness) = live.readiness().await;
        let samples = figures::parse(&live.metrics());
        let mut out = Vec::new();
        for (custodian, spec) in [
            (&self.outer, &self.config.outer),
            (&self.inner, &self.config.inner),
        ] {
            let layer = custodian.layer().to_string();
            let prefix = format!("custodian {layer}: ");
            let status = readiness
                .iter()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or("not probed")
                .to_owned();
            let (operations, errors, last) = figures::custodian(&samples, &layer);
            let mut keks = Vec::new();
            for key in self.all_keys() {
                let base = if layer == "inner" {
                    &key.inner_kek
                } else {
                    &key.outer_kek
                };
                let versions = custodian.versions(base).await.unwrap_or_default();
                keks.push(json!({
                    "key_id": key.id,
                    "label": base,
                    "versions": versions,
                    "current": versions.last(),
                }));
            }
            out.push(json!({
                "layer": layer,
                "kind": match spec { crate::keys::CustodianSpec::Pkcs11 { .. } => "pkcs11", _ => "key-file" },
                "describe": spec.describe(),
                "reachable": status == "ok",
                "status": status,
                "last_success": last.map(crate::sigv4::format_rfc3339),
                "operations": operations,
                "errors": errors,
                "keks": keks,
            }));
        }
        json!({ "custodians": out })
    }

    fn all_keys(&self) -> Vec<&crate::keys::named::NamedKey> {
        let named = &self.config.named_keys;
        std::iter::once(&named.default)
            .chain(named.keys.iter().filter(|k| !k.destroyed))
            .collect()
    }

    async fn keys(&self) -> Value {
        let named = &self.config.named_keys;
        let mut keys = Vec::new();
        for key in self.all_keys() {
            let buckets: Vec<&str> = named
                .bucket_defaults
                .iter()
                .filter(|(_, id)| *id == key.id)
                .map(|(b, _)| b.as_str())
                .collect();
            keys.push(json!({
                "id": key.id,
                "is_default": key.id == named.default.id,
                "buckets": buckets,
                "inner_label": key.inner_kek,
                "outer_label": key.outer_kek,
                "inner_versions": self.inner.versions(&key.inner_kek).await.unwrap_or_default(),
                "outer_versions": self.outer.versions(&key.outer_kek).await.unwrap_or_default(),
            }));
        }
        let jobs = self.jobs();
        let reports = jobs.iter().filter(|j| j.kind == JobKind::Report);
        let running = reports
            .clone()
            .find(|j| matches!(j.state, JobState::Running | JobState::Paused));
        let report = reports
            .clone()
            .find(|j| j.state == JobState::Done)
            .map(|j| {
                let (rows, other): (Vec<_>, Vec<_>) =
                    j.report.iter().flatten().partition(|r| r.key_id.is_some());
                json!({ "at": j.finished, "rows": rows, "other": other, "lines": j.result })
            });
        json!({ "keys": keys, "report": report, "report_job": running.map(|j| &j.id) })
    }
}

/// The audit log's name of a request.
fn action_of(req: &Request<'_>) -> String {
    let path = req.path.strip_prefix("/console/").unwrap_or(req.path);
    match (req.method, path) {
        ("POST", "api/jobs") => "job_start".to_owned(),
        ("POST", p) if p.ends_with("/pause") => "job_pause".to_owned(),
        ("POST", p) if p.ends_with("/resume") => "job_resume".to_owned(),
        ("POST", "logout") => "logout".to_owned(),
        (m, p) => format!("{m} /console/{}", p.chars().take(64).collect::<String>()),
    }
}

/// The fields of an `application/x-www-form-urlencoded` body (undecodable ones left out).
fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    body.split(|&b| b == b'&')
        .filter_map(|pair| {
            let mut it = pair.splitn(2, |&b| b == b'=');
            let k = crate::sigv4::canonical::percent_decode(it.next()?, true)?;
            let v = crate::sigv4::canonical::percent_decode(it.next().unwrap_or(b""), true)?;
            Some((String::from_utf8(k).ok()?, String::from_utf8(v).ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode() {
        let f = form_fields(b"name=al%20ice&password=a+b%26c&bad=%zz");
        assert_eq!(f[0], ("name".into(), "al ice".into()));
        assert_eq!(f[1], ("password".into(), "a b&c".into()));
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn actions_are_named_for_the_audit_log() {
        let req = |method, path| Request {
            method,
            path,
            cookie: None,
            csrf: None,
            body: b"",
            remote: "127.0.0.1:1".parse().unwrap(),
        };
        assert_eq!(action_of(&req("POST", "/console/api/jobs")), "job_start");
        assert_eq!(
            action_of(&req("POST", "/console/api/jobs/x/pause")),
            "job_pause"
        );
        assert_eq!(
            action_of(&req("GET", "/console/api/keys")),
            "GET /console/api/keys"
        );
    }
}
