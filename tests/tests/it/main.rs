//! Twofold's integration tests, one module per file, in ONE test binary (`it`).
//!
//! Why one binary: each integration-test binary links aws-sdk-s3, s3s, compio and the
//! gateway unoptimised, about 70 MB apiece; 42 of them took about 3 GB of disk (CI's linker
//! died of it, SIGBUS) and 42 links on every change. One binary links once.
//!
//! Run one file's tests by its module path:
//!
//! ```sh
//! cargo test -p twofold-tests --test it gateway_etags::
//! cargo test -p twofold-tests --test it -- gateway_etags:: gateway_ranges::   # several
//! ```
//!
//! (A filter is a substring of the test's full name: `round_trip::` also matches
//! `gateway_round_trip::`; `--exact MODULE::TEST` names one test.)
//!
//! In one binary the tests of every file share one process, as the tests of one file always
//! did. The few that end or count something the whole process shares — the PKCS#11 module
//! (`twofold_tests::finalize_softhsm2_module`), or the metrics recorder every gateway of the
//! process counts into, where they check exact counts — each run in a child process of this
//! binary of their own ([`ran_in_own_process`], called first), as alone as in the binary of
//! their own their file had before; a new test of that kind calls it too.
//! `tests/run_side_by_side.py` runs this binary as one process per module, side by side;
//! `tests/backends/integration.sh` runs the modules it is given.

mod cli_decrypt;
mod gateway_auth;
mod gateway_checksums;
mod gateway_copy_multipart;
mod gateway_copy_v1;
mod gateway_deadlines;
mod gateway_etags;
mod gateway_faults;
mod gateway_framing;
mod gateway_grants;
mod gateway_hsm_gone;
mod gateway_hsm_gone_part_copy;
mod gateway_hygiene;
mod gateway_kek_ids;
mod gateway_key_hierarchy;
mod gateway_key_segments;
mod gateway_lingering_close;
mod gateway_malformed;
mod gateway_metadata;
mod gateway_metrics;
mod gateway_multipart_checksums;
mod gateway_multipart_shape;
mod gateway_named_keys;
mod gateway_payload;
mod gateway_post_upload;
mod gateway_process;
mod gateway_ranges;
mod gateway_readyz_cache;
mod gateway_readyz_hsm;
mod gateway_round_trip;
mod gateway_s3_edges;
mod gateway_sealed_metadata;
mod gateway_sse_c;
mod gateway_tls;
mod gateway_unaligned;
mod gateway_versions;
mod kek_rotation;
mod keys_rewrap;
mod keys_shredding;
mod reader_errors;
mod round_trip;
mod tamper;

/// Set in a process of this binary that runs only the tests whose full name is its value or
/// starts with its value and `::` (a test, or a whole module): those tests run in it as they
/// are, without a child of their own. [`ran_in_own_process`] sets it for its child;
/// `tests/run_side_by_side.py` sets it to the module each of its processes runs.
const OWN_PROCESS: &str = "TWOFOLD_IT_OWN_PROCESS";

/// For a test that must be alone in its process (it ends the PKCS#11 module for the whole
/// process, or counts the process's metrics exactly): runs the calling test again in a child
/// process of this binary (`--exact` its name, [`OWN_PROCESS`] set), echoes what the child
/// printed, panics if the child failed or did not run it, and returns `true`: the caller
/// then returns, its test done. Returns `false` in that child, or in a process that
/// [`OWN_PROCESS`] gives to this test or its module: the caller goes on and is the test.
///
/// ```ignore
/// #[tokio::test]
/// async fn counts_exactly() {
///     if crate::ran_in_own_process() {
///         return;
///     }
///     // ... the test
/// }
/// ```
///
/// Tests that took turns within their file (a lock) take the lock before calling this, so
/// their children take turns too.
pub(crate) fn ran_in_own_process() -> bool {
    // libtest names each test's thread after the test's full name (`module::test`).
    let test = std::thread::current()
        .name()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("a test thread is named after its test"));
    if let Ok(owner) = std::env::var(OWN_PROCESS)
        && (test == owner || test.starts_with(&format!("{owner}::")))
    {
        return false;
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("this test binary: {e}"));
    let out = std::process::Command::new(&exe)
        .args(["--exact", &test, "--include-ignored", "--test-threads=1"])
        .arg("--nocapture")
        .env(OWN_PROCESS, &test)
        // The child points SoftHSM2 at a token folder of its own, as every test process does.
        .env_remove("SOFTHSM2_CONF")
        .output()
        .unwrap_or_else(|e| panic!("running {} for {test}: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Into this test's captured output, shown as a test's own output is.
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{test} failed in a process of its own ({})",
        out.status
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{test} did not run in its own process"
    );
    true
}
