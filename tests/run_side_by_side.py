#!/usr/bin/env python3
"""Runs the workspace's test binaries side by side: `cargo test --workspace`, but several
processes at once instead of one binary after the other.

Each binary runs as `cargo test` runs it (its own process, its tests in threads, the
package's folder as its working directory), so nothing about a test changes; many of the
integration tests mostly wait (on sockets, deadlines, child processes), which is why
running them side by side takes well under half the time on a 2-core machine. The
integration tests are one binary (tests/tests/it, one module per file): it runs as one
process per module, given that module's tests (`--exact`, from `it --list`) and
TWOFOLD_IT_OWN_PROCESS naming the module, so each file's tests have a process of their
own as when each file was a binary. The binaries and modules that took longest last time
start first (their times are kept in the target folder); the output of a process is
printed only when it fails, and a line per process gives its time.

Usage: python3 tests/run_side_by_side.py [JOBS]   (JOBS: processes at once; default CPUs + 2)
"""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

TIMES = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "side-by-side-times.json")
# The integration tests' one binary (tests/tests/it/main.rs), run as one process per module.
SPLIT_TARGET = "it"
# Set to the module a process of that binary runs: its tests that need a process of their
# own run in it as they are (tests/tests/it/main.rs, `ran_in_own_process`).
OWN_PROCESS = "TWOFOLD_IT_OWN_PROCESS"


def test_binaries():
    """(name, executable, package folder, arguments, environment) of every test process to
    run: each test binary of the workspace, built, with no arguments; the integration tests'
    binary once per module, with that module's tests."""
    out = subprocess.run(
        ["cargo", "test", "--workspace", "--locked", "--no-run", "--message-format=json"],
        check=True,
        stdout=subprocess.PIPE,
    ).stdout
    found = []
    for line in out.decode().splitlines():
        msg = json.loads(line)
        if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
            continue
        if not msg.get("profile", {}).get("test"):
            continue
        target = msg["target"]
        package = os.path.dirname(msg["manifest_path"])
        name = f"{os.path.basename(package)}/{target['name']}"
        exe = msg["executable"]
        if target["name"] == SPLIT_TARGET and "test" in target.get("kind", []):
            found.extend(
                (f"{name}::{module}", exe, package, ["--exact", *tests], {OWN_PROCESS: module})
                for module, tests in modules(exe, package).items()
            )
        else:
            found.append((name, exe, package, [], {}))
    return found


def modules(exe, cwd):
    """The tests of binary `exe` by module (the first part of each test's path)."""
    listed = subprocess.run(
        [exe, "--list"], cwd=cwd, check=True, stdout=subprocess.PIPE
    ).stdout.decode()
    by_module = {}
    for line in listed.splitlines():
        if line.endswith(": test"):
            test = line[: -len(": test")]
            by_module.setdefault(test.split("::")[0], []).append(test)
    return by_module


def run(binary):
    name, exe, cwd, args, env = binary
    started = time.monotonic()
    proc = subprocess.run(
        [exe, *args],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return name, proc.returncode, time.monotonic() - started, proc.stdout.decode(errors="replace")


def load_times():
    try:
        with open(TIMES) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def main():
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else (os.cpu_count() or 2) + 2
    times = load_times()
    # Longest first; processes not timed yet (integration tests, most likely long) before
    # the rest.
    binaries = sorted(
        test_binaries(),
        key=lambda b: -times.get(b[0], 1000.0 if "/tests/" in b[1] or b[0].startswith("tests/") else 0.0),
    )
    started = time.monotonic()
    failed = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for done in as_completed([pool.submit(run, b) for b in binaries]):
            name, code, took, output = done.result()
            times[name] = round(took, 1)
            passed = [l for l in output.splitlines() if l.startswith("test result:")]
            print(f"{'ok    ' if code == 0 else 'FAILED'} {took:6.1f}s  {name}  {' '.join(passed)}", flush=True)
            if code != 0:
                failed.append((name, output))
    try:
        with open(TIMES, "w") as f:
            json.dump(times, f, indent=0, sort_keys=True)
    except OSError:
        pass
    for name, output in failed:
        print(f"\n===== {name} =====\n{output}")
    print(
        f"\n{len(binaries)} test processes, {jobs} at a time, in {time.monotonic() - started:.0f} s:"
        f" {len(failed)} failed"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
