//! The gateway's deadlines and connection limits: the `[limits]` section of the
//! configuration as written ([`LimitsFile`]) and validated ([`Limits`]). Every value has a
//! named default with its reason next to it; docs/security.md lists them all.
//!
//! A connection that passes a deadline is closed (a request body or a backend exchange
//! that stalls gets its S3 error first where a response can still be written); a
//! connection above a cap is refused as soon as it is accepted.

use serde::Deserialize;
use std::time::Duration;

/// Default for the whole request head, from its first byte (or from accept, for a new
/// connection): nginx's `client_header_timeout` is 60 s; no S3 client takes more than a
/// moment to send a few KiB of head, so 20 s ends slow-head attacks three times sooner.
pub const REQUEST_HEAD_TIMEOUT_SECS_DEFAULT: u64 = 20;
/// Default wait for the next request on a keep-alive connection: SDK connection pools
/// keep idle connections 20–60 s; 60 s keeps theirs usable and bounds what idle
/// connections hold.
pub const KEEPALIVE_IDLE_TIMEOUT_SECS_DEFAULT: u64 = 60;
/// Default longest gap between two reads of a request body (nginx's
/// `client_body_timeout` is 60 s; S3 answers `RequestTimeout` after about 20 s of
/// silence).
pub const BODY_READ_TIMEOUT_SECS_DEFAULT: u64 = 30;
/// Default longest wait for a client to take response bytes (nginx's `send_timeout`).
pub const SEND_TIMEOUT_SECS_DEFAULT: u64 = 60;
/// Default open client connections per core: at a 64 KiB read buffer each while busy,
/// at most 128 MiB per core; idle ones hold no buffer.
pub const CONNECTIONS_PER_CORE_MAX_DEFAULT: usize = 2048;
/// Default open connections from one client address per core (0 = no limit). Behind a
/// load balancer in TCP mode every connection comes from its address: raise it there.
pub const CONNECTIONS_PER_CLIENT_PER_CORE_MAX_DEFAULT: usize = 256;
/// Default time to connect to the backend (and finish its TLS handshake).
pub const BACKEND_CONNECT_TIMEOUT_SECS_DEFAULT: u64 = 10;
/// Default wait for the backend's response head after the request was sent: a
/// server-side copy or a CompleteMultipartUpload of many parts can take minutes on a
/// loaded cluster before the head comes.
pub const BACKEND_RESPONSE_TIMEOUT_SECS_DEFAULT: u64 = 300;
/// Default longest gap between two reads of a backend body, or two writes to it.
pub const BACKEND_IO_TIMEOUT_SECS_DEFAULT: u64 = 60;
/// Default time a CompleteMultipartUpload (or a CopyObject that seals a format version 1
/// object again as version 2) may take before its answer is committed to `200 OK` and kept
/// alive with whitespace until its result (as S3 does): the rewrite at Complete has the
/// backend copy the whole object (about 8 s per GiB on a one-OSD Ceph), a conversion
/// passes it through the gateway, and SDKs give up on a silent connection after 60 s;
/// below 10 s the answer keeps every header (`x-amz-version-id` included).
pub const COMPLETE_KEEPALIVE_AFTER_SECS_DEFAULT: u64 = 10;
/// How often a kept-alive CompleteMultipartUpload or converting CopyObject sends a space.
pub const COMPLETE_KEEPALIVE_EVERY: Duration = Duration::from_secs(5);
/// Largest value any timeout may be set to.
pub const TIMEOUT_SECS_MAX: u64 = 3600;

/// `[limits]`: deadlines and connection caps, in seconds and counts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsFile {
    /// Seconds for a whole request head.
    pub request_head_timeout_secs: u64,
    /// Seconds an idle keep-alive connection waits for its next request.
    pub keepalive_idle_timeout_secs: u64,
    /// Longest gap, in seconds, between two reads of a request body.
    pub body_read_timeout_secs: u64,
    /// Longest wait, in seconds, for a client to take response bytes.
    pub send_timeout_secs: u64,
    /// Open client connections per core.
    pub connections_per_core_max: usize,
    /// Open connections from one client address per core; 0 = no limit.
    pub connections_per_client_per_core_max: usize,
    /// Seconds to connect to the backend (TLS handshake included).
    pub backend_connect_timeout_secs: u64,
    /// Seconds to wait for the backend's response head.
    pub backend_response_timeout_secs: u64,
    /// Longest gap, in seconds, between two reads of a backend body or two writes to it.
    pub backend_io_timeout_secs: u64,
    /// Seconds a CompleteMultipartUpload, or a CopyObject converting a format version 1
    /// object, may take before its answer is kept alive; 0 = at once.
    pub complete_keepalive_after_secs: u64,
}

impl Default for LimitsFile {
    fn default() -> Self {
        Self {
            request_head_timeout_secs: REQUEST_HEAD_TIMEOUT_SECS_DEFAULT,
            keepalive_idle_timeout_secs: KEEPALIVE_IDLE_TIMEOUT_SECS_DEFAULT,
            body_read_timeout_secs: BODY_READ_TIMEOUT_SECS_DEFAULT,
            send_timeout_secs: SEND_TIMEOUT_SECS_DEFAULT,
            connections_per_core_max: CONNECTIONS_PER_CORE_MAX_DEFAULT,
            connections_per_client_per_core_max: CONNECTIONS_PER_CLIENT_PER_CORE_MAX_DEFAULT,
            backend_connect_timeout_secs: BACKEND_CONNECT_TIMEOUT_SECS_DEFAULT,
            backend_response_timeout_secs: BACKEND_RESPONSE_TIMEOUT_SECS_DEFAULT,
            backend_io_timeout_secs: BACKEND_IO_TIMEOUT_SECS_DEFAULT,
            complete_keepalive_after_secs: COMPLETE_KEEPALIVE_AFTER_SECS_DEFAULT,
        }
    }
}

/// How long one side of a connection waits for its peer, by what it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Before the first byte of a request on a keep-alive connection (client side only).
    pub idle: Duration,
    /// For a whole head: a request head from its first byte, a response head from the
    /// end of the request.
    pub head: Duration,
    /// Longest gap between two reads of a body.
    pub read_gap: Duration,
    /// Longest wait for a write to make progress.
    pub write_gap: Duration,
}

/// The validated `[limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Client connections.
    pub client: Deadlines,
    /// Backend connections (`idle` unused).
    pub backend: Deadlines,
    /// Time to connect to the backend, TLS handshake included.
    pub backend_connect: Duration,
    /// Open client connections per core.
    pub connections_per_core_max: usize,
    /// Open connections per client address and core; 0 = no limit.
    pub connections_per_client_per_core_max: usize,
    /// How long a CompleteMultipartUpload, or a CopyObject converting a format version 1
    /// object, may take before its answer is kept alive.
    pub complete_keepalive_after: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        // The defaults are valid by construction.
        Self::from_file(&LimitsFile::default())
    }
}

impl Limits {
    /// The runtime form of a file section (unchecked: see [`LimitsFile::validate`]).
    fn from_file(f: &LimitsFile) -> Self {
        let secs = Duration::from_secs;
        Self {
            client: Deadlines {
                idle: secs(f.keepalive_idle_timeout_secs),
                head: secs(f.request_head_timeout_secs),
                read_gap: secs(f.body_read_timeout_secs),
                write_gap: secs(f.send_timeout_secs),
            },
            backend: Deadlines {
                idle: secs(f.backend_io_timeout_secs),
                head: secs(f.backend_response_timeout_secs),
                read_gap: secs(f.backend_io_timeout_secs),
                write_gap: secs(f.backend_io_timeout_secs),
            },
            backend_connect: secs(f.backend_connect_timeout_secs),
            connections_per_core_max: f.connections_per_core_max,
            connections_per_client_per_core_max: f.connections_per_client_per_core_max,
            complete_keepalive_after: secs(f.complete_keepalive_after_secs),
        }
    }
}

impl LimitsFile {
    /// Checks every value; the error names the field (`limits.NAME`) and what is wrong.
    pub fn validate(&self) -> Result<Limits, (String, String)> {
        let timeouts = [
            ("request_head_timeout_secs", self.request_head_timeout_secs),
            (
                "keepalive_idle_timeout_secs",
                self.keepalive_idle_timeout_secs,
            ),
            ("body_read_timeout_secs", self.body_read_timeout_secs),
            ("send_timeout_secs", self.send_timeout_secs),
            (
                "backend_connect_timeout_secs",
                self.backend_connect_timeout_secs,
            ),
            (
                "backend_response_timeout_secs",
                self.backend_response_timeout_secs,
            ),
            ("backend_io_timeout_secs", self.backend_io_timeout_secs),
        ];
        for (name, value) in timeouts {
            if value == 0 || value > TIMEOUT_SECS_MAX {
                return Err((
                    format!("limits.{name}"),
                    format!("must be from 1 to {TIMEOUT_SECS_MAX} seconds"),
                ));
            }
        }
        if self.complete_keepalive_after_secs > TIMEOUT_SECS_MAX {
            return Err((
                "limits.complete_keepalive_after_secs".into(),
                format!("must be from 0 to {TIMEOUT_SECS_MAX} seconds"),
            ));
        }
        if self.connections_per_core_max == 0 {
            return Err((
                "limits.connections_per_core_max".into(),
                "must be at least 1".into(),
            ));
        }
        Ok(Limits::from_file(self))
    }
}

/// Why a new connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The core holds [`Limits::connections_per_core_max`] connections.
    CoreLimit,
    /// The core holds [`Limits::connections_per_client_per_core_max`] connections from
    /// this client address.
    ClientLimit,
}

impl Refusal {
    /// The `reason` label of `twofold_connections_refused_total`.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::CoreLimit => "core_limit",
            Refusal::ClientLimit => "client_limit",
        }
    }
}

/// One core's open client connections, in total and by client address: what admission
/// decides on. Pure bookkeeping; the core holds one and calls it around each connection.
#[derive(Debug, Default)]
pub struct ConnectionTable {
    open: usize,
    by_client: std::collections::HashMap<std::net::IpAddr, usize>,
}

impl ConnectionTable {
    /// Admits a connection from `client` if both caps allow it, and counts it.
    pub fn admit(&mut self, client: std::net::IpAddr, limits: &Limits) -> Result<(), Refusal> {
        if self.open >= limits.connections_per_core_max {
            return Err(Refusal::CoreLimit);
        }
        let per_client = limits.connections_per_client_per_core_max;
        let n = self.by_client.entry(client).or_insert(0);
        if per_client > 0 && *n >= per_client {
            return Err(Refusal::ClientLimit);
        }
        *n += 1;
        self.open += 1;
        Ok(())
    }

    /// Forgets an admitted connection that has closed.
    pub fn release(&mut self, client: std::net::IpAddr) {
        if let Some(n) = self.by_client.get_mut(&client) {
            *n -= 1;
            if *n == 0 {
                self.by_client.remove(&client);
            }
            self.open -= 1;
        }
    }

    /// Open connections.
    pub fn open(&self) -> usize {
        self.open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_holds_both_caps_and_frees_a_slot_on_release() {
        let limits = Limits {
            connections_per_core_max: 3,
            connections_per_client_per_core_max: 2,
            ..Limits::default()
        };
        let a: std::net::IpAddr = [10, 0, 0, 1].into();
        let b: std::net::IpAddr = [10, 0, 0, 2].into();
        let mut t = ConnectionTable::default();
        assert_eq!(t.admit(a, &limits), Ok(()));
        assert_eq!(t.admit(a, &limits), Ok(()));
        assert_eq!(t.admit(a, &limits), Err(Refusal::ClientLimit));
        assert_eq!(t.admit(b, &limits), Ok(()));
        assert_eq!(t.admit(b, &limits), Err(Refusal::CoreLimit));
        assert_eq!(t.open(), 3);
        t.release(a);
        assert_eq!(t.admit(b, &limits), Ok(()));
        assert_eq!(t.admit(a, &limits), Err(Refusal::CoreLimit));
        // Releasing an address never admitted changes nothing.
        t.release([10, 0, 0, 9].into());
        assert_eq!(t.open(), 3);
        for c in [a, b, b] {
            t.release(c);
        }
        assert_eq!((t.open(), t.by_client.len()), (0, 0));
    }

    #[test]
    fn a_zero_client_cap_means_no_per_client_limit() {
        let limits = Limits {
            connections_per_core_max: 100,
            connections_per_client_per_core_max: 0,
            ..Limits::default()
        };
        let a: std::net::IpAddr = [127, 0, 0, 1].into();
        let mut t = ConnectionTable::default();
        for _ in 0..100 {
            assert_eq!(t.admit(a, &limits), Ok(()));
        }
        assert_eq!(t.admit(a, &limits), Err(Refusal::CoreLimit));
    }

    #[test]
    fn the_defaults_validate_to_the_default_limits() {
        assert_eq!(
            LimitsFile::default().validate().ok(),
            Some(Limits::default())
        );
        let l = Limits::default();
        assert_eq!(l.client.head, Duration::from_secs(20));
        assert_eq!(l.backend.head, Duration::from_secs(300));
        assert_eq!(l.connections_per_core_max, 2048);
    }

    #[test]
    fn a_zero_or_huge_timeout_and_a_zero_cap_are_refused_by_name() {
        let f = LimitsFile {
            body_read_timeout_secs: 0,
            ..Default::default()
        };
        assert_eq!(
            f.validate().err().map(|e| e.0),
            Some("limits.body_read_timeout_secs".into())
        );
        let f = LimitsFile {
            backend_response_timeout_secs: TIMEOUT_SECS_MAX + 1,
            ..Default::default()
        };
        assert!(f.validate().is_err());
        let f = LimitsFile {
            connections_per_core_max: 0,
            ..Default::default()
        };
        assert_eq!(
            f.validate().err().map(|e| e.0),
            Some("limits.connections_per_core_max".into())
        );
        // No per-client limit is allowed.
        let f = LimitsFile {
            connections_per_client_per_core_max: 0,
            ..Default::default()
        };
        assert!(f.validate().is_ok());
    }
}
