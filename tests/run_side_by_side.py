#!/usr/bin/env python3
"""Runs the workspace's test binaries side by side: `cargo test --workspace`, but several
binaries at once instead of one after the other.

Each binary runs exactly as `cargo test` runs it (its own process, its tests in threads,
the package's folder as its working directory), so nothing about a test changes; many of
the integration tests mostly wait (on sockets, deadlines, child processes), which is why
running them side by side takes well under half the time on a 2-core machine. The
binaries that took longest last time start first (their times are kept in the target
folder); the output of a binary is printed only when it fails, and a line per binary gives
its time.

Usage: python3 tests/run_side_by_side.py [JOBS]   (JOBS: binaries at once; default CPUs + 2)
"""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

TIMES = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "side-by-side-times.json")


def test_binaries():
    """(name, executable, package folder) of every test binary of the workspace, built."""
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
        found.append((f"{os.path.basename(package)}/{target['name']}", msg["executable"], package))
    return found


def run(binary):
    name, exe, cwd = binary
    started = time.monotonic()
    proc = subprocess.run([exe], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
    # Longest first; binaries not timed yet (integration tests, most likely long) before
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
        f"\n{len(binaries)} test binaries, {jobs} at a time, in {time.monotonic() - started:.0f} s:"
        f" {len(failed)} failed"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
