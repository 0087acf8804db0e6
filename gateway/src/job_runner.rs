//! Jobs started from the console, run in the gateway's process on a thread of their own
//! (off the cores and the admin listener): a rewrap of a bucket (`crate::rewrap`), the
//! shredding of a KEK version once no object names it, and a report of the objects per KEK
//! version (`crate::inventory`). They do what `twofold rewrap`, `twofold keys destroy
//! --version` (without `--force`: the console never makes objects unreadable) and `twofold
//! keys report` do, with the gateway's own custodians, and keep the same records
//! (`crate::jobs`) as those commands.

use crate::config::{Config, ServeSettings};
use crate::jobs::{JobHandle, JobKind, JobParams, JobRecord, JobRequest, JobStore, ReportRow};
use crate::keys::{Custodian, Keyring};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Console jobs running at once; more are refused until one ends.
pub const CONSOLE_JOBS_RUNNING_MAX: usize = 2;
/// Objects a console rewrap moves at once (the command's `--parallel` default).
const REWRAP_IN_FLIGHT: usize = 8;

/// Starts console jobs with the gateway's configuration and custodians.
#[derive(Debug)]
pub struct Runner {
    config: Arc<Config>,
    serve: Arc<ServeSettings>,
    inner: Custodian,
    outer: Custodian,
    store: JobStore,
    running: Arc<AtomicUsize>,
}

impl Runner {
    /// A runner keeping its records in `store`, reaching the backend with `serve` (the
    /// settings the gateway runs with).
    pub fn new(
        config: Arc<Config>,
        serve: ServeSettings,
        (inner, outer): (Custodian, Custodian),
        store: JobStore,
    ) -> Self {
        Self {
            config,
            serve: Arc::new(serve),
            inner,
            outer,
            store,
            running: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// Gives a running slot back when its job ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl crate::jobs::Launcher for Runner {
    fn start(&self, request: JobRequest, operator: &str) -> Result<JobRecord, String> {
        let params = check(&self.config, &request)?;
        if self.running.fetch_add(1, Ordering::SeqCst) >= CONSOLE_JOBS_RUNNING_MAX {
            self.running.fetch_sub(1, Ordering::SeqCst);
            return Err(format!(
                "{CONSOLE_JOBS_RUNNING_MAX} console jobs are running: wait for one to end"
            ));
        }
        let slot = Slot(self.running.clone());
        let job = self
            .store
            .create(request.kind, params, "console", operator)
            .map_err(|e| format!("the job record: {e}"))?;
        let record = job.record();
        let work = Work {
            config: self.config.clone(),
            serve: self.serve.clone(),
            inner: self.inner.clone(),
            outer: self.outer.clone(),
            state_dir: self.store.clone(),
        };
        std::thread::Builder::new()
            .name("twofold-job".into())
            .spawn(move || {
                let _slot = slot;
                let outcome = work.run(&job);
                let record = job.finish(outcome);
                tracing::warn!(
                    target: "twofold::audit",
                    action = "console_job_ended",
                    job = %record.id,
                    state = ?record.state,
                    "console job ended"
                );
            })
            .map_err(|e| format!("starting the job's thread: {e}"))?;
        Ok(record)
    }
}

/// The parameters of a request that may run, or why it may not.
fn check(config: &Config, r: &JobRequest) -> Result<JobParams, String> {
    let key = |id: &str| {
        config
            .named_keys
            .resolve(id)
            .map(|k| k.id.to_owned())
            .ok_or_else(|| format!("{id:?} is no key of this configuration"))
    };
    match r.kind {
        JobKind::Rewrap => {
            let bucket = r.bucket.as_deref().unwrap_or_default();
            if !(3..=63).contains(&bucket.len())
                || !bucket
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
            {
                return Err("a rewrap needs a bucket name (3 to 63 of a-z 0-9 . -)".into());
            }
            let key_id = match r.key_id.as_deref().filter(|k| !k.is_empty()) {
                Some(k) => Some(key(k)?),
                None => None,
            };
            Ok(JobParams {
                bucket: Some(bucket.to_owned()),
                key_id,
                dry_run: r.dry_run,
                version: None,
            })
        }
        JobKind::Shred => {
            let id = key(r.key_id.as_deref().unwrap_or_default())?;
            let version = r
                .version
                .filter(|v| (1..=crate::keys::versions::KEK_VERSION_MAX).contains(v))
                .ok_or("a shredding needs the KEK version to destroy")?;
            if r.confirm.as_deref() != Some(id.as_str()) {
                return Err("not confirmed: type the key id again to destroy its version".into());
            }
            Ok(JobParams {
                bucket: None,
                key_id: Some(id),
                dry_run: false,
                version: Some(version),
            })
        }
        JobKind::Report => Ok(JobParams::default()),
    }
}

/// What a job thread needs.
struct Work {
    config: Arc<Config>,
    serve: Arc<ServeSettings>,
    inner: Custodian,
    outer: Custodian,
    state_dir: JobStore,
}

impl Work {
    fn run(&self, job: &JobHandle) -> Result<Vec<String>, String> {
        let serve = &self.serve;
        let record = job.record();
        match record.kind {
            JobKind::Rewrap => self.rewrap(job, &record.params, serve),
            JobKind::Shred => self.shred(&record.params, serve),
            JobKind::Report => {
                let inventory = crate::inventory::scan(serve, &[])?;
                job.set_report(report_rows(&inventory, &self.config.named_keys));
                Ok(inventory.lines(&self.config.named_keys))
            }
        }
    }

    fn rewrap(
        &self,
        job: &JobHandle,
        params: &JobParams,
        serve: &ServeSettings,
    ) -> Result<Vec<String>, String> {
        let bucket = params.bucket.clone().unwrap_or_default();
        let keyring = Keyring::new(self.inner.clone(), self.outer.clone(), self.config.keyring)
            .with_named_keys(self.config.named_keys.clone());
        let state = self
            .state_dir
            .checkpoint_path(&format!("rewrap.{bucket}.state"));
        let plan = crate::rewrap::Plan {
            bucket,
            prefix: None,
            key_id: params.key_id.clone(),
            dry_run: params.dry_run,
            in_flight: REWRAP_IN_FLIGHT,
            page: crate::rewrap::REWRAP_PAGE_MAX,
            state: (!params.dry_run).then_some(state),
            copy_object_max: crate::rewrap::COPY_OBJECT_BYTES_MAX,
        };
        let progress = |s: &crate::rewrap::Summary| {
            job.progress(&s.counters(), s.progress_line(plan.dry_run));
        };
        let paused = || job.paused();
        let hooks = crate::rewrap::Hooks {
            progress: &progress,
            paused: &paused,
        };
        let summary = crate::rewrap::run(serve, &keyring, &plan, &hooks)?;
        job.progress(&summary.counters(), summary.progress_line(plan.dry_run));
        match summary.failed {
            0 => Ok(summary.lines(plan.dry_run)),
            n => Err(format!(
                "{n} object(s) failed; start the rewrap again to retry them: {}",
                summary.lines(plan.dry_run).join("; ")
            )),
        }
    }

    fn shred(&self, params: &JobParams, serve: &ServeSettings) -> Result<Vec<String>, String> {
        let key_id = params.key_id.as_deref().unwrap_or_default();
        let version = params.version.unwrap_or_default();
        let key = self
            .config
            .named_keys
            .resolve(key_id)
            .ok_or_else(|| format!("{key_id:?} is no key of this configuration"))?;
        let (inner, outer) = crate::rotation::version_labels(key, version);
        let naming = crate::inventory::scan(serve, &[])?.naming(&inner, &outer);
        let line = crate::rotation::naming_line(&naming, key, version);
        if naming.objects > 0 {
            return Err(format!("{line} Not destroyed: rewrap their buckets first."));
        }
        let (mut lines, done) = crate::rotation::destroy_on_tokens(&self.config, key, version);
        done.map_err(|e| e.to_string())?;
        lines.insert(0, line);
        Ok(lines)
    }
}

/// A report's rows: objects per KEK pair, with the key that names the pair.
pub fn report_rows(
    inventory: &crate::inventory::Inventory,
    keys: &crate::keys::named::NamedKeys,
) -> Vec<ReportRow> {
    inventory
        .by_keks
        .iter()
        .map(|((inner, outer), t)| ReportRow {
            key_id: keys.id_of(inner, outer).map(str::to_owned),
            inner: inner.clone(),
            outer: outer.clone(),
            objects: t.objects,
            buckets: t.buckets.iter().cloned().collect(),
        })
        .collect()
}

/// The record of a job the command line runs, when the configuration has a console (so
/// that the console lists it and can pause it); `None`, with a warning, when its folder
/// cannot be written.
pub fn cli_job(config: &Config, kind: JobKind, params: JobParams) -> Option<JobHandle> {
    let console = config.serve.as_ref()?.console.as_ref()?;
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self")
                .map_or_else(|_| "-".into(), |m| format!("uid {}", m.uid()))
        });
    match JobStore::open(&console.state_dir).and_then(|s| s.create(kind, params, "cli", &user)) {
        Ok(job) => {
            eprintln!("the console lists this run as job {}", job.id());
            Some(job)
        }
        Err(e) => {
            eprintln!(
                "warning: the console will not list this run ({}: {e})",
                console.state_dir.display()
            );
            None
        }
    }
}
