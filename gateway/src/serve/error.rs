//! The one error of the request edge: every handler returns `Result<_, Failure>`, and the
//! typed errors of the layers below (a custodian's [`KeyError`], the backend's
//! [`BackendError`], an [`S3Error`] a parser chose) become one with `?`.
//!
//! A failure knows its [`Cause`]; [`Failure::from`] for each lower error is the single place
//! where that error becomes an S3 code and status, so the same error gets the same answer
//! in every operation (a custodian that is down is 503 ServiceUnavailable wherever it was
//! needed, never a 404 of the operation at hand).
//!
//! Whether the connection is closed after the answer follows from its state
//! (`serve_request`: the request body not read to its end, a response head already sent,
//! or the client asked for it); [`Failure::close`] is for the call sites that know more
//! than that state (a write that failed, a body abandoned mid-way whose framing cannot be
//! trusted, a backend exchange that broke).

use super::Request;
use super::backend::BackendError;
use crate::keys::KeyError;
use crate::s3::S3Error;

/// Where a failure comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// The client's request is not acceptable (any 4xx).
    Client,
    /// The storage backend failed, answered with bytes that are not HTTP, or was not
    /// reached in time.
    Backend,
    /// A key custodian (HSM or key file) failed or is unavailable.
    Custodian,
    /// A stored object failed verification.
    Integrity,
    /// A fault of the gateway itself.
    Internal,
}

impl Cause {
    /// The cause of an answer chosen without one: a 4xx is the client's, anything else
    /// the gateway's.
    fn of_status(status: u16) -> Self {
        if (400..500).contains(&status) {
            Cause::Client
        } else {
            Cause::Internal
        }
    }
}

/// An error answer, what caused it, and whether the connection must be closed after it
/// whatever its state says.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(super) error: S3Error,
    pub(super) cause: Cause,
    pub(super) close: bool,
}

impl Failure {
    /// An answer after which the connection may carry another request, if its state allows.
    pub(crate) fn keep(error: S3Error) -> Self {
        Self {
            cause: Cause::of_status(error.status),
            error,
            close: false,
        }
    }

    /// An answer after which the connection is closed whatever its state: for a call site
    /// that knows the stream is out of step (it stopped reading a body whose framing it
    /// cannot trust, or the backend exchange broke mid-way).
    pub(crate) fn close(error: S3Error) -> Self {
        Self {
            close: true,
            ..Self::keep(error)
        }
    }

    /// The same failure, closing the connection after the answer (see [`Failure::close`]).
    pub(crate) fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// A stored object that failed verification (counted and logged by the caller, which
    /// knows the object): 500, `detail` for the log.
    pub(crate) fn integrity(detail: impl std::fmt::Display) -> Self {
        Failure {
            error: S3Error::internal_error().with_detail(detail),
            cause: Cause::Integrity,
            close: false,
        }
    }

    /// A failure to open the keys an upload id carries: a header in the id that does not
    /// open or names an unconfigured KEK is the client's (the id is not one this gateway
    /// issued: 404 NoSuchUpload); any
    /// other key error is answered as everywhere else (a custodian outage is 503).
    pub(crate) fn upload_keys(e: KeyError) -> Self {
        match e {
            // A header this gateway did not issue: it does not open, or it names a KEK
            // that is not configured (refused before any custodian call).
            KeyError::Envelope(_) | KeyError::UnknownKek { .. } => {
                Failure::keep(S3Error::no_such_upload())
            }
            e => e.into(),
        }
    }
}

impl From<S3Error> for Failure {
    fn from(e: S3Error) -> Self {
        Failure::keep(e)
    }
}

impl From<KeyError> for Failure {
    /// A custodian that is unavailable: 503, nothing was changed, worth a retry. Any other
    /// key error (a key that does not unwrap, a key file that cannot be read): 500.
    fn from(e: KeyError) -> Self {
        if let Some(refused) = customer_key_refusal(&e) {
            return Failure::keep(refused);
        }
        if let KeyError::KekGone { kek_id, .. } = &e {
            metrics::counter!(crate::telemetry::SHREDDED_READS_TOTAL).increment(1);
            return Failure::keep(S3Error::new(
                400,
                crate::s3::S3Code::KmsInvalidState,
                format!(
                    "The key-encryption key version '{kek_id}' that protected this object was \
                     destroyed: the object can never be read again"
                ),
            ));
        }
        if let KeyError::Shredded { key_id } = &e {
            metrics::counter!(crate::telemetry::SHREDDED_READS_TOTAL).increment(1);
            return Failure::keep(S3Error::new(
                400,
                crate::s3::S3Code::KmsInvalidState,
                format!(
                    "The key '{key_id}' that protected this object was destroyed: the object \
                     can never be read again"
                ),
            ));
        }
        let error = if e.is_unavailable() {
            S3Error::service_unavailable().with_detail(format!(
                "A key custodian is unavailable; nothing was changed: {e}"
            ))
        } else {
            S3Error::internal_error()
                .with_detail(format!("The object's keys could not be opened: {e}"))
        };
        Failure {
            error,
            cause: Cause::Custodian,
            close: false,
        }
    }
}

/// S3's answers about customer-provided keys (SSE-C): 400 without the key an object needs
/// (or with one it has none of), 403 with a key that does not open it.
fn customer_key_refusal(e: &KeyError) -> Option<S3Error> {
    match e {
        KeyError::CustomerKeyRequired => Some(S3Error::invalid_request(
            "The object was stored using a form of Server Side Encryption. The correct \
             parameters must be provided to retrieve the object.",
        )),
        KeyError::CustomerKeyNotApplicable => Some(S3Error::invalid_request(
            "The encryption parameters are not applicable to this object.",
        )),
        KeyError::CustomerKeyWrong => Some(S3Error::new(
            403,
            crate::s3::S3Code::AccessDenied,
            "Access Denied: the customer-provided key does not open this object",
        )),
        _ => None,
    }
}

impl From<BackendError> for Failure {
    /// 504 for a backend that timed out, 502 otherwise; counted and logged by kind. Closes
    /// the client's connection: the exchange broke at a point the connection's state does
    /// not record (a request body may be part-forwarded, a response part-relayed).
    fn from(e: BackendError) -> Self {
        let kind = match &e {
            BackendError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => "refused",
            BackendError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => "timeout",
            BackendError::Io(_) => "connection",
            BackendError::Protocol(_) => "protocol",
            BackendError::Sign(_) => "signing",
            BackendError::Tls(_) => "tls",
        };
        metrics::counter!(crate::telemetry::BACKEND_ERRORS_TOTAL, "kind" => kind).increment(1);
        tracing::warn!(kind, error = %e, "backend exchange failed");
        let answer = if kind == "timeout" {
            S3Error::gateway_timeout()
        } else {
            S3Error::bad_gateway()
        };
        Failure {
            error: answer.with_detail(format!("Storage backend: {e}")),
            cause: Cause::Backend,
            close: true,
        }
    }
}

/// Counts and logs a stored object that failed verification.
pub(crate) fn integrity_failure(ctx: &Request<'_>, e: &crate::envelope::Error) {
    use crate::envelope::Error as E;
    let reason = match e {
        E::SegmentRejected { .. } => "segment_rejected",
        E::Truncated { .. } => "truncated",
        E::Framing { .. } => "framing",
        E::Layout(_) => "layout",
        E::Header(_) => "header",
        E::DataKeyRejected { .. } => "data_key_rejected",
        E::KeyCommitmentMismatch { .. } => "key_commitment",
        _ => "other",
    };
    report_integrity_failure(ctx, reason, e);
}

/// Counts and logs an integrity failure of a stored object under `reason` (the metric's
/// label).
pub(crate) fn report_integrity_failure(
    ctx: &Request<'_>,
    reason: &'static str,
    e: &dyn std::fmt::Display,
) {
    ctx.core.metrics.integrity_failure(reason);
    crate::telemetry::record_integrity_event(crate::telemetry::IntegrityEvent {
        at: crate::sigv4::unix_now(),
        request_id: ctx.rid.to_owned(),
        method: ctx.head.method.clone(),
        bucket: ctx.address.bucket.clone().unwrap_or_default(),
        key: ctx.address.key.clone().unwrap_or_default(),
        reason,
        detail: e.to_string(),
    });
    tracing::error!(
        target: "twofold::integrity",
        resource = %ctx.address.resource(),
        reason,
        error = %e,
        "stored object failed verification; nothing unverified was sent"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_follow_the_lower_error() {
        assert_eq!(Failure::from(S3Error::no_such_key()).cause, Cause::Client);
        assert_eq!(
            Failure::from(S3Error::internal_error()).cause,
            Cause::Internal
        );
        let f = Failure::from(BackendError::Protocol("x".into()));
        assert_eq!(
            (f.cause, f.error.status, f.close),
            (Cause::Backend, 502, true)
        );
        let f = Failure::from(BackendError::Io(std::io::ErrorKind::TimedOut.into()));
        assert_eq!(f.error.status, 504);
    }
}
