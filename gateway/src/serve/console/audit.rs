//! The console's audit log: one JSON line per login, logout, refusal and action, appended
//! to `STATE_DIR/audit.jsonl` (owner-only) and sent to the `twofold::audit` log target; the
//! last [`AUDIT_KEPT`] entries of this process are kept for the console's own page.

use serde::Serialize;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Entries the console shows (this process's newest).
pub const AUDIT_KEPT: usize = 200;
/// Longest detail kept in an entry, in bytes (a refused request's reason, a job's id).
const DETAIL_BYTES_MAX: usize = 512;

/// One audited event.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// When (RFC 3339).
    pub at: String,
    /// The operator (`-` before a login).
    pub operator: String,
    /// The client's address.
    pub remote: String,
    /// What was asked: `login`, `logout`, `job_start`, `job_pause`, `job_resume`, `view`...
    pub action: String,
    /// `ok` or `refused`.
    pub outcome: &'static str,
    /// More: why refused, which job.
    pub detail: String,
}

/// The audit log.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    recent: RefCell<VecDeque<Entry>>,
}

impl AuditLog {
    /// A log appending to `path`.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            recent: RefCell::new(VecDeque::new()),
        }
    }

    /// Records one event.
    pub fn record(
        &self,
        operator: &str,
        remote: std::net::SocketAddr,
        action: &str,
        ok: bool,
        detail: &str,
    ) {
        let mut detail = detail.to_owned();
        if detail.len() > DETAIL_BYTES_MAX {
            let mut cut = DETAIL_BYTES_MAX;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
        }
        let entry = Entry {
            at: crate::sigv4::format_rfc3339(crate::sigv4::unix_now()),
            operator: operator.to_owned(),
            remote: remote.to_string(),
            action: action.to_owned(),
            outcome: if ok { "ok" } else { "refused" },
            detail,
        };
        tracing::warn!(
            target: "twofold::audit",
            console_operator = %entry.operator,
            remote = %entry.remote,
            action = %entry.action,
            outcome = entry.outcome,
            detail = %entry.detail,
            "console"
        );
        if let Err(e) = self.append(&entry) {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write the console's audit log");
        }
        let mut recent = self.recent.borrow_mut();
        if recent.len() == AUDIT_KEPT {
            recent.pop_back();
        }
        recent.push_front(entry);
    }

    fn append(&self, entry: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)?;
        f.write_all(&line)
    }

    /// The newest entries first.
    pub fn recent(&self) -> Vec<Entry> {
        self.recent.borrow().iter().cloned().collect()
    }
}
