//! Rewrap, shredding and key-report runs ("jobs"), as the console and the command line
//! share them. Each run keeps a record, `STATE_DIR/jobs/ID.json`, rewritten (whole, then
//! renamed into place) as it goes, and reads `ID.control` (`pause` or `run`) between
//! objects: the console lists the records of every run on the appliance, whichever started
//! it, and pauses or resumes one by writing its control file. A record whose process has
//! gone while it said running or paused reads as `interrupted`.
//!
//! The record is the job's only state here; what a rewrap needs to resume is its own
//! checkpoint (see `twofold rewrap`). Records are written by Twofold, but are still read as
//! untrusted input: size-capped, parsed, and named only by ids of [`id_is_valid`] shape.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most job records the console lists (the newest).
pub const JOBS_LISTED_MAX: usize = 100;
/// Largest job record read back.
pub const JOB_RECORD_BYTES_MAX: u64 = 1024 * 1024;
/// Result lines kept in a record.
pub const JOB_RESULT_LINES_MAX: usize = 200;
/// How often a running job rewrites its record with its progress, at most.
pub const JOB_PROGRESS_INTERVAL: Duration = Duration::from_millis(500);
/// How often a running job reads its control file, at most.
pub const JOB_CONTROL_POLL: Duration = Duration::from_millis(250);

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// `twofold rewrap`: objects moved to their keys' newest KEK versions.
    Rewrap,
    /// `twofold keys destroy --version`: a KEK version destroyed once no object names it.
    Shred,
    /// `twofold keys report`: objects counted per KEK version.
    Report,
}

/// Where a job's state is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Working.
    Running,
    /// Paused between objects; resumes when told.
    Paused,
    /// Finished; `result` says what it did.
    Done,
    /// Stopped on an error; `error` says which.
    Failed,
    /// Its process ended while it ran (a rewrap resumes from its checkpoint when started
    /// again).
    Interrupted,
}

/// A job's parameters (those its kind uses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobParams {
    /// Rewrap: the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Rewrap: only objects under this key; shred: the key.
    #[serde(default)]
    pub key_id: Option<String>,
    /// Rewrap: count only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Shred: the KEK version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// Objects per KEK pair, as a report job found them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRow {
    /// The named key the pair belongs to (`None`: no configured key has it).
    pub key_id: Option<String>,
    /// Inner KEK label (with its version suffix).
    pub inner: String,
    /// Outer KEK label.
    pub outer: String,
    /// Objects that name it.
    pub objects: u64,
    /// Buckets they are in.
    pub buckets: Vec<String>,
}

/// A job's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// `YYYYMMDDTHHMMSSZ-` and 8 hex digits: sorts by start.
    pub id: String,
    /// What it does.
    pub kind: JobKind,
    /// `console` or `cli`.
    pub origin: String,
    /// Who started it (the console operator, or the user running the command).
    pub operator: String,
    /// Its parameters.
    pub params: JobParams,
    /// Where it is.
    pub state: JobState,
    /// When it started (RFC 3339).
    pub started: String,
    /// When it ended (RFC 3339).
    pub finished: Option<String>,
    /// Counters of its progress (for a rewrap: seen, rewrapped, current, failed...).
    pub progress: BTreeMap<String, u64>,
    /// Its progress in one line.
    pub progress_line: String,
    /// What it did, once done.
    pub result: Vec<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// A report's counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Vec<ReportRow>>,
    /// The process running it.
    pub pid: u32,
}

/// Whether `id` has the shape of a job id (and so names no other file).
pub fn id_is_valid(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The folder of job records.
#[derive(Debug, Clone)]
pub struct JobStore {
    dir: PathBuf,
}

impl JobStore {
    /// The job records under `state_dir`, the folder made (owner only) if missing.
    pub fn open(state_dir: &Path) -> std::io::Result<Self> {
        let dir = state_dir.join("jobs");
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&dir)?;
        Ok(Self { dir })
    }

    /// Starts the record of a new job, running, and returns its handle.
    pub fn create(
        &self,
        kind: JobKind,
        params: JobParams,
        origin: &str,
        operator: &str,
    ) -> std::io::Result<JobHandle> {
        let now = crate::sigv4::unix_now();
        let mut suffix = [0u8; 4];
        getrandom::fill(&mut suffix).map_err(|e| std::io::Error::other(e.to_string()))?;
        let stamp = crate::sigv4::format_rfc3339(now).replace(['-', ':'], "");
        let record = JobRecord {
            id: format!("{stamp}-{}", hex::encode(suffix)),
            kind,
            origin: origin.to_owned(),
            operator: operator.to_owned(),
            params,
            state: JobState::Running,
            started: crate::sigv4::format_rfc3339(now),
            finished: None,
            progress: BTreeMap::new(),
            progress_line: String::new(),
            result: Vec::new(),
            error: None,
            report: None,
            pid: std::process::id(),
        };
        let handle = JobHandle {
            store: self.clone(),
            state: Mutex::new(HandleState {
                record,
                written: Instant::now(),
                control_read: None,
            }),
        };
        handle.write(&handle.lock().record)?;
        let _ = std::fs::remove_file(self.control_path(&handle.id()));
        Ok(handle)
    }

    /// The newest [`JOBS_LISTED_MAX`] records, newest first.
    pub fn list(&self) -> Vec<JobRecord> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_suffix(".json")?;
                id_is_valid(id).then(|| id.to_owned())
            })
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.truncate(JOBS_LISTED_MAX);
        ids.iter().filter_map(|id| self.get(id)).collect()
    }

    /// The record of job `id`, if there is one that parses.
    pub fn get(&self, id: &str) -> Option<JobRecord> {
        if !id_is_valid(id) {
            return None;
        }
        let path = self.dir.join(format!("{id}.json"));
        let file = std::fs::File::open(path).ok()?;
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(file, JOB_RECORD_BYTES_MAX),
            &mut text,
        )
        .ok()?;
        let mut record: JobRecord = serde_json::from_str(&text).ok()?;
        if record.id != id {
            return None;
        }
        if matches!(record.state, JobState::Running | JobState::Paused)
            && !process_is_alive(record.pid)
        {
            record.state = JobState::Interrupted;
        }
        Some(record)
    }

    /// Tells job `id` to pause (`true`) or run on.
    pub fn set_paused(&self, id: &str, paused: bool) -> std::io::Result<()> {
        if !id_is_valid(id) {
            return Err(std::io::ErrorKind::InvalidInput.into());
        }
        let path = self.control_path(id);
        let tmp = path.with_extension("control.tmp");
        std::fs::write(&tmp, if paused { "pause\n" } else { "run\n" })?;
        std::fs::rename(tmp, path)
    }

    /// A file beside the records (a rewrap's checkpoint), named by the caller.
    pub fn checkpoint_path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn control_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.control"))
    }
}

/// Whether process `pid` still runs (or exists under another user).
fn process_is_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

struct HandleState {
    record: JobRecord,
    written: Instant,
    /// When the control file was last read (`None`: never, so the first look reads it).
    control_read: Option<Instant>,
}

/// A running job's record: progress, pauses and the end, written as they happen.
pub struct JobHandle {
    store: JobStore,
    state: Mutex<HandleState>,
}

impl std::fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JobHandle({})", self.id())
    }
}

impl JobHandle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HandleState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The job's id.
    pub fn id(&self) -> String {
        self.lock().record.id.clone()
    }

    /// The record as it is now.
    pub fn record(&self) -> JobRecord {
        self.lock().record.clone()
    }

    fn write(&self, record: &JobRecord) -> std::io::Result<()> {
        let path = self.store.dir.join(format!("{}.json", record.id));
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, path)
    }

    /// Notes the job's progress; the record is rewritten at most every
    /// [`JOB_PROGRESS_INTERVAL`].
    pub fn progress(&self, counters: &[(&str, u64)], line: String) {
        let mut state = self.lock();
        state.record.progress = counters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
        state.record.progress_line = line;
        if state.written.elapsed() >= JOB_PROGRESS_INTERVAL {
            state.written = Instant::now();
            let record = state.record.clone();
            drop(state);
            let _ = self.write(&record);
        }
    }

    /// Whether the job is to wait now: its control file says `pause`. Read at most every
    /// [`JOB_CONTROL_POLL`]; a change is written to the record at once.
    pub fn paused(&self) -> bool {
        let mut state = self.lock();
        let was = state.record.state == JobState::Paused;
        if state
            .control_read
            .is_some_and(|at| at.elapsed() < JOB_CONTROL_POLL)
        {
            return was;
        }
        state.control_read = Some(Instant::now());
        let said = std::fs::read_to_string(self.store.control_path(&state.record.id))
            .map(|t| t.trim() == "pause")
            .unwrap_or(false);
        if said != was {
            state.record.state = if said {
                JobState::Paused
            } else {
                JobState::Running
            };
            let record = state.record.clone();
            drop(state);
            let _ = self.write(&record);
        }
        said
    }

    /// Keeps a report's counts.
    pub fn set_report(&self, rows: Vec<ReportRow>) {
        self.lock().record.report = Some(rows);
    }

    /// Ends the job: done with its result lines, or failed with the reason.
    pub fn finish(&self, outcome: Result<Vec<String>, String>) -> JobRecord {
        let mut state = self.lock();
        match outcome {
            Ok(mut lines) => {
                lines.truncate(JOB_RESULT_LINES_MAX);
                state.record.result = lines;
                state.record.state = JobState::Done;
            }
            Err(e) => {
                state.record.error = Some(e);
                state.record.state = JobState::Failed;
            }
        }
        state.record.finished = Some(crate::sigv4::format_rfc3339(crate::sigv4::unix_now()));
        let record = state.record.clone();
        drop(state);
        let _ = self.write(&record);
        let _ = std::fs::remove_file(self.store.control_path(&record.id));
        record
    }
}

/// What the console asks for when it starts a job.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// What to do.
    pub kind: JobKind,
    /// Rewrap: the bucket.
    #[serde(default)]
    pub bucket: Option<String>,
    /// Rewrap: only this key's objects; shred: the key.
    #[serde(default)]
    pub key_id: Option<String>,
    /// Rewrap: count only.
    #[serde(default)]
    pub dry_run: bool,
    /// Shred: the version.
    #[serde(default)]
    pub version: Option<u32>,
    /// Shred: the key id typed again.
    #[serde(default)]
    pub confirm: Option<String>,
}

/// Starts jobs for the console (implemented where rewrap and shredding live).
pub trait Launcher: Send + Sync + std::fmt::Debug {
    /// Checks `request` and starts it on a thread of its own; the record as it starts.
    fn start(&self, request: JobRequest, operator: &str) -> Result<JobRecord, String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_is_recorded_paused_resumed_and_finished() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        let job = store
            .create(JobKind::Rewrap, JobParams::default(), "console", "alice")
            .unwrap();
        let id = job.id();
        assert!(id_is_valid(&id));
        assert_eq!(store.list().len(), 1);
        assert_eq!(store.get(&id).unwrap().state, JobState::Running);
        store.set_paused(&id, true).unwrap();
        std::thread::sleep(JOB_CONTROL_POLL);
        assert!(job.paused());
        assert_eq!(store.get(&id).unwrap().state, JobState::Paused);
        store.set_paused(&id, false).unwrap();
        std::thread::sleep(JOB_CONTROL_POLL);
        assert!(!job.paused());
        job.progress(&[("seen", 3)], "3 seen".into());
        let done = job.finish(Ok(vec!["3 seen".into()]));
        assert_eq!(done.state, JobState::Done);
        let read = store.get(&id).unwrap();
        assert_eq!(read, done);
        assert_eq!(read.progress["seen"], 3);
    }

    #[test]
    fn hostile_ids_and_records_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        for id in ["", "../x", "a/b", "a.json", &"a".repeat(65)] {
            assert!(!id_is_valid(id), "{id}");
            assert!(store.get(id).is_none());
            assert!(store.set_paused(id, true).is_err());
        }
        std::fs::write(dir.path().join("jobs/abc.json"), "not json").unwrap();
        assert!(store.get("abc").is_none());
        assert!(store.list().is_empty());
    }

    #[test]
    fn a_job_whose_process_is_gone_reads_as_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(dir.path()).unwrap();
        let job = store
            .create(JobKind::Report, JobParams::default(), "cli", "root")
            .unwrap();
        let mut record = job.record();
        record.pid = u32::MAX - 1;
        job.write(&record).unwrap();
        assert_eq!(store.get(&record.id).unwrap().state, JobState::Interrupted);
    }
}
