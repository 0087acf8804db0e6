#!/usr/bin/env python3
"""Browser and HTTP tests of the operators' web console (run by tests/console/run.sh).

Sets up `twofold serve --dev` in a temporary folder with its admin listener on HTTPS (a
self-signed certificate) and a [console] of two operators, `admin` (may act) and `viewer`
(read-only), whose sessions last 60 s; then, in order:

  a. logs in with the keyboard only (name, TAB, password, ENTER);
  b. makes predictable figures with boto3 (5 PUTs, 5 GETs, one integrity failure made on
     purpose by flipping stored bytes) and reads them on the overview;
  c. checks the custodians, keys and configuration pages;
  d. rotates the default key and rewraps the bucket from the jobs page, then counts the
     objects per KEK version with a report job from the keys page;
  e. pauses a rewrap and resumes it;
  f. makes refused requests (no login, wrong password, read-only, no CSRF token, expired
     session) and checks that nothing was done and that the audit log has each;
  g. checks that no secret of the set-up is in any page, asset, API answer or DOM;
  h. times the pages in the browser and the answers of the server;
  i. restarts the gateway without the named key of an object and checks that the key
     report shows that object's KEKs as a row of no configured key.

Prints PASS/FAIL per check and ends with `N passed, M failed`; exits 1 on any failure. A
check that expects the correct behaviour where the console has a known bug prints XFAIL
(not counted unless TWOFOLD_CONSOLE_STRICT=1) and XPASS once the bug is fixed.
Screenshots go to $TWOFOLD_CONSOLE_ARTIFACTS (default target/console-artifacts).
Environment: TWOFOLD_BIN (default target/release/twofold), TWOFOLD_CONSOLE_KEEP=1 keeps
the temporary folder.
"""

import concurrent.futures
import contextlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
from pathlib import Path

# Selenium Manager must never try to download a driver or a browser.
os.environ["SE_OFFLINE"] = "true"
# The S3 port is plain HTTP; the test makes its own SoftHSM2 tokens.
for _var in ("AWS_CA_BUNDLE", "SOFTHSM2_CONF", "AWS_PROFILE", "AWS_CONFIG_FILE",
             "AWS_SHARED_CREDENTIALS_FILE"):
    os.environ.pop(_var, None)

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TWOFOLD = Path(os.environ.get("TWOFOLD_BIN") or ROOT / "target/release/twofold")
ARTIFACTS = Path(os.environ.get("TWOFOLD_CONSOLE_ARTIFACTS") or ROOT / "target/console-artifacts")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--ignore-certificate-errors", "--window-size=1366,900",
]
SESSION_SECS = 60  # [console] session_secs: the minimum, so that expiry can be waited out
PAGES = ["overview", "custodians", "keys", "jobs", "configuration"]
APIS = ["session", "overview", "custodians", "keys", "jobs", "configuration", "audit"]
ASSETS = ["console.js", "console.css", "uplot.iife.min.js", "uplot.min.css"]
DEFAULT_KEY = "alias/twofold-default"
MIB = 1024 * 1024
# The server-side limit of the issue: every page (and the API answers it is built from)
# in under 200 ms from the appliance.
SERVER_MS_MAX = 200.0
BROWSER_DCL_MS_MAX = 200.0
BROWSER_LOADED_MS_MAX = 2000.0

# Installed in every document before its scripts run (DevTools, so outside the page's
# CSP): the time at which console.js marks the page loaded (body data-loaded="true").
LOADED_PROBE = """
(() => {
  const mark = () => {
    if (window.__loadedAt === undefined && document.body
        && document.body.dataset.loaded === 'true') {
      window.__loadedAt = performance.now();
    }
  };
  new MutationObserver(mark).observe(document,
    { subtree: true, attributes: true, attributeFilter: ['data-loaded'] });
})();
"""


# --------------------------------------------------------------------------- checks


STRICT = os.environ.get("TWOFOLD_CONSOLE_STRICT") == "1"


class Checks:
    """PASS/FAIL per named check; a failed check prints why and the run goes on. A check
    marked with a known console bug expects the correct behaviour: it fails as XFAIL (not
    counted, unless TWOFOLD_CONSOLE_STRICT=1), and passes as XPASS (remove the mark)."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.xfailed = 0
        self.failures = []

    @contextlib.contextmanager
    def check(self, name, known_bug=None):
        t0 = time.monotonic()
        try:
            yield
        except Exception as e:  # noqa: BLE001 - every failure is reported, the run goes on
            dt = time.monotonic() - t0
            text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            if known_bug and not STRICT:
                self.xfailed += 1
                print(f"XFAIL {name} ({dt:.1f} s) [known console bug: {known_bug}]", flush=True)
                lines = [f"{type(e).__name__}: {e}"]
            else:
                self.failed += 1
                self.failures.append(name)
                bug = f" [known console bug: {known_bug}]" if known_bug else ""
                print(f"FAIL {name} ({dt:.1f} s){bug}", flush=True)
                lines = text.rstrip().splitlines()[-25:]
            for line in lines:
                print("    " + line)
        else:
            self.passed += 1
            if known_bug:
                print(f"XPASS {name} ({time.monotonic() - t0:.1f} s) [known bug fixed? {known_bug}]", flush=True)
            else:
                print(f"PASS {name} ({time.monotonic() - t0:.1f} s)", flush=True)


def note(text):
    print("   " + text, flush=True)


class Fatal(Exception):
    """An error that waiting does not mend."""


def wait_for(what, fn, timeout=20.0, interval=0.2):
    """fn()'s first truthy value within timeout seconds (its exceptions, but Fatal, count
    as no)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = fn()
            if value:
                return value
        except Fatal:
            raise
        except Exception as e:  # noqa: BLE001 - a stale element, a page changing
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}"
                                 + (f" (last error: {last!r})" if last else ""))
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------ the gateway


class Response:
    def __init__(self, status, headers, body, ms):
        self.status = status
        self.headers = headers  # [(name, value)], names as sent
        self.body = body
        self.ms = ms

    def header(self, name):
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Gateway:
    """`twofold serve --dev` in `work`, its admin listener on HTTPS with a test [console]."""

    def __init__(self, work):
        self.work = work
        self.dev = work / ".twofold-dev"
        self.s3_port = free_port()
        self.admin_port = free_port()
        self.proc = None
        self.log = work / "server.log"
        self.passwords = {"admin": "adm-" + secrets.token_urlsafe(18),
                          "viewer": "vw-" + secrets.token_urlsafe(18)}
        self.hashes = {}
        self.ctx = None

    # --- set-up

    def twofold(self, *args, stdin=None, timeout=120):
        r = subprocess.run([str(TWOFOLD), *args], cwd=self.work, input=stdin, text=True,
                           capture_output=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError(f"twofold {' '.join(args)} exited {r.returncode}:\n"
                                 f"{r.stdout}{r.stderr}")
        return r.stdout + r.stderr

    def set_up(self):
        # First a plain dev start: the SoftHSM2 tokens, PIN and secret files, config.toml
        # and client.env; then the test's configuration in place of its [console].
        self.start(first=True)
        self.stop()
        for name, pw in self.passwords.items():
            self.hashes[name] = self.twofold("console-password", "--iterations", "100000",
                                             stdin=pw + "\n").strip().splitlines()[-1]
            assert self.hashes[name].startswith("pbkdf2-sha256$100000$"), self.hashes[name]
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-days", "30", "-keyout", str(self.dev / "admin.key"),
             "-out", str(self.dev / "admin.crt")],
            check=True, capture_output=True)
        config = self.dev / "config.toml"
        kept, keep = [], True
        for line in config.read_text().splitlines():
            s = line.strip()
            if s.startswith("["):
                keep = not re.match(r"^\[+\s*(console|admin)\b", s)
                # The comment just above a dropped table belongs to it.
                if not keep:
                    while kept and kept[-1].lstrip().startswith("#"):
                        kept.pop()
            if keep:
                kept.append(line)
        kept.append(f"""
[admin]
listen = "127.0.0.1:{self.admin_port}"
tls = {{ cert = "admin.crt", key = "admin.key" }}

[console]
state_dir = "console"
session_secs = {SESSION_SECS}

[[console.operator]]
name = "admin"
password_hash = "{self.hashes['admin']}"
act = true

[[console.operator]]
name = "viewer"
password_hash = "{self.hashes['viewer']}"
act = false
""")
        config.write_text("\n".join(kept))
        self.twofold("check-config", str(config))
        self.ctx = ssl.create_default_context(cafile=str(self.dev / "admin.crt"))
        self.start()

    def start(self, first=False):
        args = [str(TWOFOLD), "serve", "--dev", "--listen", f"127.0.0.1:{self.s3_port}"]
        if first:
            args += ["--admin-listen", f"127.0.0.1:{self.admin_port}"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(args, cwd=self.work, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

        def up():
            if self.proc.poll() is not None:
                raise Fatal(f"the gateway exited ({self.proc.returncode}):\n"
                                 + self.log.read_text()[-3000:])
            env = self.dev / "client.env"
            if not env.exists() or f":{self.s3_port}" not in env.read_text():
                return False
            if first:
                with socket.create_connection(("127.0.0.1", self.admin_port), 1):
                    return True
            return self.request("GET", "/readyz").status == 200

        wait_for("the gateway to start", up, timeout=120, interval=0.3)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def client_env(self):
        env = {}
        for line in (self.dev / "client.env").read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                env[k.strip()] = v.strip()
        return env

    def s3(self):
        env = self.client_env()
        return boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{self.s3_port}",
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
            # One attempt: a retried GET would count a second integrity failure.
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"max_attempts": 1, "mode": "standard"},
                          max_pool_connections=16))

    def rotate(self):
        out = self.twofold("keys", "rotate", DEFAULT_KEY, "--dev")
        note("keys rotate: " + " | ".join(out.strip().splitlines()))
        return out

    # --- the admin listener over HTTPS

    @property
    def base(self):
        return f"https://127.0.0.1:{self.admin_port}"

    def connection(self):
        return http.client.HTTPSConnection("127.0.0.1", self.admin_port, context=self.ctx,
                                           timeout=30)

    def request(self, method, path, body=None, session=None, csrf=None, headers=None,
                conn=None):
        """One request; no redirect followed. session: a Session (cookie and, for a POST,
        its CSRF token unless csrf says otherwise: False for none)."""
        h = {"Accept": "application/json"} | dict(headers or {})
        if session is not None:
            h["Cookie"] = f"twofold_console={session.token}"
            if method == "POST" and csrf is None:
                csrf = session.csrf
        if csrf:
            h["X-Twofold-CSRF"] = csrf
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        own = conn is None
        c = conn or self.connection()
        try:
            t0 = time.perf_counter()
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            ms = (time.perf_counter() - t0) * 1000
            return Response(r.status, r.getheaders(), data, ms)
        finally:
            if own:
                c.close()

    def login(self, name, password):
        """POST /console/login; the Response, and the Session when one was opened."""
        body = urllib.parse.urlencode({"name": name, "password": password}).encode()
        r = self.request("POST", "/console/login", body=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded",
                                  "Accept": "text/html"})
        cookie = r.header("set-cookie")
        if not cookie:
            return r, None
        m = re.match(r"twofold_console=([^;]*)", cookie)
        assert m, cookie
        s = Session(name, m.group(1), cookie)
        info = self.request("GET", "/console/api/session", session=s)
        assert info.status == 200, info
        s.csrf = info.json()["csrf"]
        return r, s

    def session(self, name):
        r, s = self.login(name, self.passwords[name])
        assert r.status == 303 and s, f"login of {name}: {r}"
        return s

    def api(self, what, session):
        r = self.request("GET", f"/console/api/{what}", session=session)
        assert r.status == 200, f"GET /console/api/{what}: {r}"
        return r.json()

    def jobs(self, session):
        return self.api("jobs", session)["jobs"]

    def job(self, session, job_id):
        return next(j for j in self.jobs(session) if j["id"] == job_id)

    # --- what the refusals must leave alone

    def audit_lines(self):
        path = self.dev / "console" / "audit.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def backend_snapshot(self):
        data = self.dev / "data"
        out = {}
        for p in sorted(data.rglob("*")):
            if p.is_file():
                st = p.stat()
                out[str(p.relative_to(data))] = (st.st_size, st.st_mtime_ns)
        return out


class Session:
    def __init__(self, operator, token, set_cookie):
        self.operator = operator
        self.token = token
        self.set_cookie = set_cookie
        self.csrf = None
        self.at = time.monotonic()


# --------------------------------------------------------------------------- browser


class Browser:
    def __init__(self, gw, name, work):
        self.gw = gw
        self.name = name
        self.profile = Path(tempfile.mkdtemp(prefix=f"chrome-{name}.", dir=work))
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in CHROME_ARGS:
            opts.add_argument(a)
        opts.add_argument(f"--user-data-dir={self.profile}")
        service = Service(executable_path=CHROMEDRIVER, log_output=str(work / f"chromedriver-{name}.log"))
        self.d = webdriver.Chrome(service=service, options=opts)
        self.d.set_page_load_timeout(30)
        self.d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": LOADED_PROBE})
        self.logged_in_at = None
        self.operator = None
        self.tokens = []  # every session token this browser got (for the secrets check)

    def quit(self):
        with contextlib.suppress(Exception):
            self.d.quit()

    def url(self, path):
        return self.gw.base + path

    def path(self):
        return urllib.parse.urlsplit(self.d.current_url).path

    def query(self):
        return urllib.parse.urlsplit(self.d.current_url).query

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def loaded(self):
        return self.js("return document.body && document.body.dataset.loaded === 'true'")

    def find(self, css):
        return self.d.find_element(By.CSS_SELECTOR, css)

    def finds(self, css):
        return self.d.find_elements(By.CSS_SELECTOR, css)

    def text(self, css):
        return self.find(css).text.strip()

    def shot(self, name):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.d.save_screenshot(str(path))
        return path

    def cookie(self):
        c = self.d.get_cookie("twofold_console")
        return c["value"] if c else None

    def login(self, operator, shot=None):
        """The login form with the keyboard only: the name field has the focus (autofocus;
        TAB until it has otherwise), type the name, TAB, type the password, ENTER."""
        self.d.delete_all_cookies()
        self.d.get(self.url("/console/login"))
        wait_for("the login form", lambda: self.find("#login-form"))
        if shot:
            self.shot(shot)
        active = lambda: self.d.switch_to.active_element.get_attribute("id")  # noqa: E731
        for _ in range(6):
            if active() == "login-name":
                break
            ActionChains(self.d).send_keys(Keys.TAB).perform()
        assert active() == "login-name", f"focus is on #{active()}, not the name field"
        ActionChains(self.d).send_keys(operator).send_keys(Keys.TAB).perform()
        assert active() == "login-password", f"TAB went to #{active()}, not the password"
        ActionChains(self.d).send_keys(self.gw.passwords[operator]).send_keys(Keys.ENTER).perform()
        wait_for("the overview after the login", lambda: self.path() == "/console/overview")
        wait_for("the overview to render", self.loaded)
        self.logged_in_at = time.monotonic()
        self.operator = operator
        self.tokens.append(self.cookie())

    def open(self, page, fresh_for=25):
        """Opens a console page (logged in again first when the session has less than
        fresh_for seconds left) and waits until it has rendered."""
        if self.operator and time.monotonic() - self.logged_in_at > SESSION_SECS - fresh_for:
            self.login(self.operator)
        self.d.get(self.url(f"/console/{page}"))
        assert self.path() == f"/console/{page}", f"{page}: landed on {self.d.current_url}"
        wait_for(f"the {page} page to render", self.loaded)
        assert self.d.title.startswith(page.capitalize()), self.d.title
        assert self.text("h1") == page.capitalize(), self.text("h1")

    def figure(self, name):
        return self.text(f'[data-figure="{name}"]')

    def job_row(self, job_id):
        rows = [r for r in self.finds("#jobs tr[data-job-id]") if r.get_attribute("data-job-id") == job_id]
        return rows[0] if rows else None

    def job_state(self, job_id):
        row = self.job_row(job_id)
        if row is None:
            return None
        cell = row.find_element(By.CSS_SELECTOR, "[data-job-state]")
        # The cell is marked by the attribute; the state is its text (README: "state cell
        # [data-job-state]"). An attribute that holds the state is taken too.
        return (cell.get_attribute("data-job-state") or cell.text).strip()


# ------------------------------------------------------------------------------ test


class ConsoleTest:
    def __init__(self, work):
        self.work = work
        self.gw = Gateway(work)
        self.c = Checks()
        self.browsers = []
        self.b = None
        self.bucket = "console-" + secrets.token_hex(4)
        self.objects = {}
        self.tampered = None
        self.tampered_request_id = None
        self.sessions = []  # every HTTP session opened (for the secrets check)
        self.timings = {}
        self.scanned = 0

    def browser(self, name):
        b = Browser(self.gw, name, self.work)
        self.browsers.append(b)
        return b

    def session(self, name):
        s = self.gw.session(name)
        self.sessions.append(s)
        return s

    def run(self):
        t0 = time.monotonic()
        c = self.c
        try:
            with c.check("set-up: twofold serve --dev, admin listener on HTTPS, two operators"):
                self.gw.set_up()
                note(f"gateway: S3 on 127.0.0.1:{self.gw.s3_port}, console on {self.gw.base}/console/")
                self.b = self.browser("main")
            if not self.b:
                return
            self.step_a_login()
            self.start_expiring_sessions()
            self.step_b_figures()
            self.step_c_pages()
            self.step_d_rewrap_and_report()
            self.step_e_pause_resume()
            self.step_f_refusals()
            self.step_g_secrets()
            self.step_h_speed()
            self.step_f_expiry()
            self.step_i_other_keks()
            with c.check("the gateway ran throughout"):
                assert self.gw.proc and self.gw.proc.poll() is None, "the gateway exited"
        finally:
            for b in self.browsers:
                b.quit()
            self.gw.stop()
            print(f"== console test took {time.monotonic() - t0:.0f} s")

    # ------------------------------------------------------------------------- a

    def step_a_login(self):
        with self.c.check("a. keyboard-only login as admin lands on the overview"):
            self.b.login("admin", shot="login")
            assert self.b.d.title == "Overview · Twofold console", self.b.d.title
            op = self.b.text("#session-operator")
            assert op == "admin", f"#session-operator says {op!r}"
            current = self.b.find('nav[aria-label="Console pages"] a[aria-current="page"]')
            assert current.get_attribute("data-page") == "overview"
            self.b.shot("overview-empty")

    def start_expiring_sessions(self):
        """Sessions left to expire while the other steps run (checked in f)."""
        with self.c.check("f. (set-up) sessions left to expire: HTTP, a page left open, a page to reload"):
            self.expiring = self.session("admin")
            # A browser whose page is left open (it polls, and must end on the login page
            # with the expiry message) ...
            self.open_b = self.browser("left-open")
            self.open_b.login("admin")
            # ... and one that leaves the console at once and comes back after the expiry
            # (a reload: the server must say the session expired).
            self.reload_b = self.browser("reload")
            self.reload_b.login("admin")
            self.reload_b.d.get("about:blank")

    # ------------------------------------------------------------------------- b

    def step_b_figures(self):
        gw, b = self.gw, self.b
        s3 = gw.s3()
        self.s3 = s3
        put_bytes = 0
        with self.c.check("b. boto3: a bucket, 5 PUTs (3 x 1 MiB, 2 x 1000 B), 5 GETs, same bytes"):
            s3.create_bucket(Bucket=self.bucket)
            self.objects = {f"big-{i}.bin": os.urandom(MIB) for i in (1, 2, 3)}
            self.objects |= {f"small-{i}.bin": os.urandom(1000) for i in (1, 2)}
            for key, data in self.objects.items():
                s3.put_object(Bucket=self.bucket, Key=key, Body=data)
                put_bytes += len(data)
            for key, data in self.objects.items():
                got = s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                assert got == data, f"{key}: {len(got)} bytes back, not the {len(data)} put"
        with self.c.check("b. an integrity failure on purpose: stored bytes flipped, the GET fails"):
            key = "big-2.bin"
            self.tampered = key
            stored = gw.dev / "data" / self.bucket / key
            assert stored.is_file(), f"no stored file {stored}"
            raw = bytearray(stored.read_bytes())
            size = len(raw)
            mid = size // 2
            for i in range(mid, mid + 16):
                raw[i] ^= 0xFF
            with open(stored, "r+b") as f:  # same file, same size
                f.seek(mid)
                f.write(raw[mid:mid + 16])
            assert stored.stat().st_size == size
            note(f"flipped 16 bytes at offset {mid} of {stored.relative_to(self.work)} ({size} bytes)")
            status, got, error = None, None, None
            try:
                r = s3.get_object(Bucket=self.bucket, Key=key)
                status = r["ResponseMetadata"]["HTTPStatusCode"]
                self.tampered_request_id = r["ResponseMetadata"]["HTTPHeaders"].get("x-amz-request-id")
                try:
                    got = r["Body"].read()
                except Exception as e:  # noqa: BLE001 - the body stops early
                    error = e
            except ClientError as e:
                status = e.response["ResponseMetadata"]["HTTPStatusCode"]
                self.tampered_request_id = e.response["ResponseMetadata"].get("HTTPHeaders", {}).get(
                    "x-amz-request-id") or e.response["ResponseMetadata"].get("RequestId")
                error = e
            note(f"GET of the tampered object: status {status}, request id {self.tampered_request_id}, "
                 + (f"error {type(error).__name__}: {str(error)[:160]}" if error else f"{len(got)} bytes"))
            assert self.tampered_request_id, "no x-amz-request-id on the answer"
            failed = status >= 400 or error is not None or (got is not None and len(got) < MIB)
            assert failed, "the tampered object was served whole: " + (
                "its bytes as stored!" if got != self.objects[key] else "the original bytes?")
        with self.c.check("b. the overview shows the figures: 5 written, 1 integrity failure, PutObject 5"):
            b.open("overview")

            def figures_there():
                return (b.figure("objects_written") == "5" and b.figure("integrity_failures") == "1"
                        and b.finds('[data-figure="errors.integrity"]'))
            # The overview polls every 3 s.
            wait_for("the overview's figures to include the failure", figures_there, timeout=15)
            assert b.figure("objects_written") == "5", b.figure("objects_written")
            assert b.figure("integrity_failures") == "1", b.figure("integrity_failures")
            assert b.figure("errors.integrity") == "1", b.figure("errors.integrity")
            put_row = b.find('#by-operation tr[data-operation="PutObject"] td')
            assert put_row.text.strip() == "5", f"PutObject {put_row.text!r}"
            received = int(b.figure("client_received_bytes"))
            assert received >= put_bytes, f"client_received_bytes {received} < {put_bytes} PUT"
            assert b.text("#ready") == "ready", b.text("#ready")
            rows = b.finds("#integrity-failures tbody tr")
            texts = [r.text for r in rows]
            assert any(self.tampered_request_id in t and self.tampered in t for t in texts), \
                f"no row of #integrity-failures names {self.tampered_request_id} and {self.tampered}: {texts}"
            # Charts need a second sample (3 s later): wait for them, for the screenshot.
            wait_for("the overview's charts", lambda: len(b.finds(".chart-area .uplot")) == 3, timeout=10)
            note(f"objects_written 5, integrity_failures 1, errors.integrity 1, PutObject 5, "
                 f"client_received_bytes {received} >= {put_bytes}; failure row: {texts[0]!r}")
            b.shot("overview")

    # ------------------------------------------------------------------------- c

    def step_c_pages(self):
        b = self.b
        with self.c.check("c. custodians: both reachable"):
            b.open("custodians")
            for layer in ("outer", "inner"):
                card = b.find(f"#custodian-{layer}")
                badges = [e.text for e in card.find_elements(By.CSS_SELECTOR, ".card-head .badge")]
                assert "reachable" in badges, f"{layer}: {badges}"
                keks = [r.get_attribute("data-key-id") for r in card.find_elements(By.CSS_SELECTOR, "tr[data-key-id]")]
                assert DEFAULT_KEY in keks, f"{layer} KEKs: {keks}"
            b.shot("custodians")
        with self.c.check("c. keys: the table lists alias/twofold-default"):
            b.open("keys")
            ids = [r.get_attribute("data-key-id") for r in b.finds("#keys tr[data-key-id]")]
            assert DEFAULT_KEY in ids, ids
            b.shot("keys-before-report")
        with self.c.check("c. configuration: masked text, check ok"):
            b.open("configuration")
            text = b.text("#config-text")
            assert "(masked)" in text, text[:500]
            assert "password_hash" in text and "pbkdf2" not in text
            badge = b.find("#check-config .badge").text.strip()
            assert badge == "ok", f"#check-config says {badge!r}: {b.text('#check-config')}"
            assert b.finds("#audit tbody tr"), "no audit rows"
            b.shot("configuration")

    # ------------------------------------------------------------------------- d

    def step_d_rewrap_and_report(self):
        gw, b = self.gw, self.b
        self.rewrap_id = None
        with self.c.check("d. rewrap from the jobs page after a rotation: done, 5 rewrapped"):
            gw.rotate()  # version 2 of the default key's KEKs
            b.open("jobs", fresh_for=50)
            field = b.find("#rewrap-bucket")
            field.click()
            # ENTER in the field submits the form (its submit button is #rewrap-start).
            field.send_keys(self.bucket, Keys.ENTER)
            status = wait_for("the rewrap's start message",
                              lambda: re.search(r"Started rewrap job (\S+?)\.?$", b.text("#action-status")))
            self.rewrap_id = status.group(1)
            note(f"rewrap job {self.rewrap_id}")
            wait_for("the rewrap job's row to say done",
                     lambda: b.job_state(self.rewrap_id) == "done", timeout=60, interval=0.3)
            row = b.job_row(self.rewrap_id).text
            # The 5 objects were all sealed under version 1 of the default key (before the
            # rotation). A rewrap reads only each object's header (in its metadata, by HEAD)
            # and copies the object onto itself on the backend with a new header: the body
            # is not read, so the tampered object, whose header is intact, moves like the
            # others. Hence 5 seen, 5 rewrapped, none current, none failed.
            for line in ("objects seen: 5", "rewrapped: 5", "already current: 0", "failed: 0"):
                assert line in row, f"the job's row lacks {line!r}:\n{row}"
            job = gw.job(self.session("admin"), self.rewrap_id)
            assert job["kind"] == "rewrap" and job["operator"] == "admin" and job["origin"] == "console", job
            assert job["params"].get("bucket") == self.bucket, job["params"]
            assert "rewrapped: 5" in job["result"], job["result"]
            note("result: " + "; ".join(job["result"]))
            b.shot("jobs-rewrap-done")
        with self.c.check("d. a report job from the keys page counts the 5 objects under .v2"):
            b.open("keys", fresh_for=50)
            start = b.find("#start-report")
            assert start.is_enabled()
            start.send_keys(Keys.ENTER)  # the keyboard: ENTER on the focused button
            wait_for("the report job to finish",
                     lambda: "finished" in b.text("#report-status"), timeout=60, interval=0.3)

            def v2_row():
                for r in b.finds(f'#key-report tr[data-key-id="{DEFAULT_KEY}"]'):
                    cells = [c.text.strip() for c in r.find_elements(By.CSS_SELECTOR, "th, td")]
                    if cells[1].endswith(".v2") and cells[2].endswith(".v2"):
                        return cells
                return None
            cells = wait_for("a report row of the default key under .v2", v2_row, timeout=10)
            assert cells[3] == "5", f"the .v2 row counts {cells[3]} objects: {cells}"
            others = [[c.text for c in r.find_elements(By.CSS_SELECTOR, "th, td")]
                      for r in b.finds("#key-report tbody tr")]
            note(f"key report: {others}")
            assert not any(c[1] and not c[1].endswith(".v2") and c[0] == DEFAULT_KEY for c in others), \
                f"objects of the default key under an older version: {others}"
            b.shot("keys")

    # ------------------------------------------------------------------------- e

    def step_e_pause_resume(self):
        gw, b = self.gw, self.b
        with self.c.check("e. a rewrap paused at once stays paused, resumes, ends done"):
            total = len(self.objects)
            more = 200
            job_id = None
            for attempt in range(1, 4):
                keys = [f"many/{attempt}-{i:05d}.bin" for i in range(more)]
                with concurrent.futures.ThreadPoolExecutor(8) as ex:
                    list(ex.map(lambda k: self.s3.put_object(Bucket=self.bucket, Key=k, Body=os.urandom(512)), keys))
                total += more
                gw.rotate()
                admin = self.session("admin")
                conn = gw.connection()
                try:
                    r = gw.request("POST", "/console/api/jobs", {"kind": "rewrap", "bucket": self.bucket},
                                   session=admin, conn=conn)
                    assert r.status == 201, r
                    job_id = r.json()["id"]
                    p = gw.request("POST", f"/console/api/jobs/{job_id}/pause", {}, session=admin, conn=conn)
                finally:
                    conn.close()
                if p.status == 409:  # already done
                    note(f"attempt {attempt}: the job ({total} objects) ended before the pause: {p.body!r}")
                    more *= 4
                    continue
                assert p.status == 200, p
                state = wait_for("the job to be paused or done", lambda: gw.job(admin, job_id)["state"]
                                 if gw.job(admin, job_id)["state"] in ("paused", "done", "failed") else None,
                                 timeout=10, interval=0.1)
                if state == "paused":
                    break
                note(f"attempt {attempt}: the job ({total} objects) ended {state} before it paused")
                more *= 4
            else:
                raise AssertionError("the rewrap always finished before it could be paused")
            note(f"job {job_id} paused with {total} objects in the bucket (attempt {attempt})")
            time.sleep(1.0)  # the objects already started when it paused finish
            # (No counters yet: paused before its first object.)
            seen = gw.job(admin, job_id)["progress"].get("seen", 0)
            time.sleep(2.0)
            job = gw.job(admin, job_id)
            assert job["state"] == "paused", job["state"]
            assert job["progress"].get("seen", 0) == seen, \
                f"seen went {seen} -> {job['progress'].get('seen')} while paused"
            assert seen < total, f"{seen} of {total} seen: paused only at the end?"
            note(f"paused at {seen} of {total} objects seen; still {seen} 2 s later")
            # The page shows it paused, with a Resume button: resume from there.
            b.open("jobs", fresh_for=40)
            wait_for("the page to show the job paused", lambda: b.job_state(job_id) == "paused", timeout=10)
            b.shot("jobs-paused")
            resume = b.job_row(job_id).find_element(By.CSS_SELECTOR, 'button[data-action="resume"]')
            assert resume.is_enabled()
            resume.click()
            wait_for("the resumed job to end done", lambda: b.job_state(job_id) == "done", timeout=120, interval=0.3)
            job = gw.job(self.session("admin"), job_id)
            assert job["state"] == "done", job
            # Every object of the bucket was under an older version than the one made just
            # before this job: all are rewrapped, none fails.
            for line in (f"objects seen: {total}", f"rewrapped: {total}", "failed: 0"):
                assert line in job["result"], f"{line!r} not in {job['result']}"
            note("result: " + "; ".join(job["result"][:3]))
            self.paused_job = job_id
            b.shot("jobs")

    # ------------------------------------------------------------------------- f

    @contextlib.contextmanager
    def nothing_done(self, expect_audit, admin=None):
        """The jobs list and the backend are the same after the block, and the audit log
        (its file and /console/api/audit) has a new refused entry for which
        expect_audit(entry) is true. admin: the session that looks (a new one by default)."""
        gw = self.gw
        admin = admin or self.session("admin")

        def jobs_now():
            return [(j["id"], j["state"], j.get("finished")) for j in gw.jobs(admin)]
        jobs, backend, lines = jobs_now(), gw.backend_snapshot(), len(gw.audit_lines())
        yield
        assert jobs_now() == jobs, "the jobs list changed"
        assert gw.backend_snapshot() == backend, "the backend changed"
        new = gw.audit_lines()[lines:]
        hits = [e for e in new if e["outcome"] == "refused" and expect_audit(e)]
        assert hits, f"no such refused entry in audit.jsonl; new entries: {new}"
        api = gw.api("audit", admin)["entries"]
        assert any(e == hits[-1] for e in api), f"{hits[-1]} not in /console/api/audit"

    def step_f_refusals(self):
        gw, b = self.gw, self.b
        admin = self.session("admin")
        nothing_done = self.nothing_done

        with self.c.check("f. no login: API 401, POST jobs 401, page 303 to the login page"):
            with nothing_done(lambda e: e["operator"] == "-" and e["action"] == "GET /console/api/overview"):
                r = gw.request("GET", "/console/api/overview")
                assert r.status == 401, r
            with nothing_done(lambda e: e["operator"] == "-" and e["action"] == "job_start"):
                r = gw.request("POST", "/console/api/jobs", {"kind": "rewrap", "bucket": self.bucket})
                assert r.status == 401, r
                r = gw.request("POST", "/console/api/jobs", {"kind": "rewrap", "bucket": self.bucket},
                               headers={"Cookie": "twofold_console=" + "0" * 64})
                assert r.status == 401, r
            r = gw.request("GET", "/console/overview", headers={"Accept": "text/html"})
            assert r.status == 303 and r.header("location") == "/console/login", (r, r.headers)
        with self.c.check("f. a wrong password: back to /console/login?failed=1, no cookie, audited"):
            with nothing_done(lambda e: e["operator"] == "admin" and e["action"] == "login"):
                r, s = gw.login("admin", gw.passwords["admin"] + "x")
                assert r.status == 303 and r.header("location") == "/console/login?failed=1", (r, r.headers)
                assert s is None and r.header("set-cookie") is None, r.headers
            # The same in the browser, with the keyboard: the form again, with the message.
            b.d.delete_all_cookies()
            b.d.get(b.url("/console/login"))
            wait_for("the login form", lambda: b.find("#login-form"))
            ActionChains(b.d).send_keys("admin", Keys.TAB, "not the password", Keys.ENTER).perform()
            wait_for("the login page again", lambda: b.query() == "failed=1")
            err = b.find("#login-error")
            assert err.is_displayed() and err.text == "Wrong name or password.", err.text
            assert b.cookie() is None
            b.shot("login-failed")
        with self.c.check("f. the read-only viewer: GET works, POST jobs and pause 403 read-only"):
            viewer = self.session("viewer")
            info = gw.api("session", viewer)
            assert info["operator"] == "viewer" and info["can_act"] is False, info
            assert gw.jobs(viewer) == gw.jobs(admin)
            with nothing_done(lambda e: e["operator"] == "viewer" and e["action"] == "job_start"):
                r = gw.request("POST", "/console/api/jobs", {"kind": "rewrap", "bucket": self.bucket}, session=viewer)
                assert r.status == 403 and "read-only" in r.json()["error"], r
            with nothing_done(lambda e: e["operator"] == "viewer" and e["action"] == "job_pause"):
                r = gw.request("POST", f"/console/api/jobs/{self.rewrap_id}/pause", {}, session=viewer)
                assert r.status == 403 and "read-only" in r.json()["error"], r
            with nothing_done(lambda e: e["operator"] == "viewer" and e["action"] == "job_resume"):
                r = gw.request("POST", f"/console/api/jobs/{self.rewrap_id}/resume", {}, session=viewer)
                assert r.status == 403, r
            self.viewer = viewer
        with self.c.check("f. an admin session without its CSRF token (or with another's): 403"):
            with nothing_done(lambda e: e["operator"] == "admin" and e["action"] == "job_start"
                              and "CSRF" in e["detail"]):
                r = gw.request("POST", "/console/api/jobs", {"kind": "report"}, session=admin, csrf=False)
                assert r.status == 403 and "CSRF" in r.json()["error"], r
            with nothing_done(lambda e: e["operator"] == "admin" and e["action"] == "job_start"):
                r = gw.request("POST", "/console/api/jobs", {"kind": "report"}, session=admin,
                               csrf=self.viewer.csrf)
                assert r.status == 403, r
        with self.c.check("f. the session cookie: HttpOnly, SameSite=Strict, Secure, Path=/console, no expiry"):
            attrs = [a.strip() for a in admin.set_cookie.split(";")]
            for a in ("HttpOnly", "SameSite=Strict", "Secure", "Path=/console"):
                assert a in attrs, f"{a} not in {admin.set_cookie!r}"
            # The server ends sessions; the cookie lives until the browser closes, so that a
            # page opened after the expiry can be told the session expired.
            assert not any(a.lower().startswith(("max-age", "expires")) for a in attrs), admin.set_cookie
            note("Set-Cookie: twofold_console=…; " + "; ".join(attrs[1:]))
        with self.c.check("f. the viewer in the browser: actions disabled, read-only shown"):
            vb = self.b
            vb.login("viewer")
            assert "read-only" in vb.text("#session-operator"), vb.text("#session-operator")
            vb.open("jobs")
            assert not vb.find("#rewrap-start").is_enabled()
            assert "read-only credential" in vb.text("#rewrap-form")
            vb.shot("jobs-viewer")
            vb.open("keys")
            assert not vb.find("#start-report").is_enabled()

    def step_f_expiry(self):
        """The sessions opened at the start, left to expire meanwhile."""
        b = self.b
        # While they expire, the overview sits open and its charts fill (a screenshot).
        live = None
        with contextlib.suppress(Exception):
            b.open("overview", fresh_for=45)
            live = time.monotonic() + 10
        with self.c.check("f. an expired session (HTTP): 401 saying it expired"):
            # The server remembers an expired session for one more lifetime, then its
            # cookie reads as "not logged in": the session that looks is young enough.
            if time.monotonic() > self.expiring.at + SESSION_SECS - 5:
                note("the session left to expire is too old (logins since may have dropped it): a new one")
                self.expiring = self.session("admin")
            admin = self.session("admin")
            left = self.expiring.at + SESSION_SECS + 2 - time.monotonic()
            note(f"waiting {left:.0f} s for the session to expire")
            if live and live < time.monotonic() + left and live < b.logged_in_at + SESSION_SECS - 3:
                # Some traffic for the charts meanwhile: a few small GETs and PUTs a second.
                with concurrent.futures.ThreadPoolExecutor(1) as ex:
                    ex.submit(self.light_traffic, live - time.monotonic() - 0.5)
                    time.sleep(max(0.0, live - time.monotonic()))
                with contextlib.suppress(Exception):
                    b.shot("overview-live")
            time.sleep(max(0.0, self.expiring.at + SESSION_SECS + 2 - time.monotonic()))
            with self.nothing_done(lambda e: e["action"] == "GET /console/api/jobs" and "expired" in e["detail"],
                                   admin=admin):
                r = self.gw.request("GET", "/console/api/jobs", session=self.expiring)
                assert r.status == 401 and "expired" in r.json()["error"], r
            r = self.gw.request("POST", "/console/api/jobs", {"kind": "report"}, session=self.expiring)
            assert r.status == 401, r
        with self.c.check("f. an expired session, page left open: it goes to the login page, expiry message"):
            ob = self.open_b
            assert ob.path() == "/console/overview" or \
                time.monotonic() > ob.logged_in_at + SESSION_SECS, f"left the overview early: {ob.d.current_url}"
            # The overview polls every 3 s: its first poll after the expiry gets a 401.
            wait_for("the open page to go to the login page", lambda: ob.path() == "/console/login",
                     timeout=max(1.0, ob.logged_in_at + SESSION_SECS + 8 - time.monotonic()))
            assert ob.query() == "expired=1", ob.d.current_url
            err = ob.find("#login-error")
            assert err.is_displayed() and "expired" in err.text, err.text
            ob.shot("login-expired")
        # The cookie outlives the session (it has no expiry of its own), so the reload
        # carries it and the server tells it has expired.
        with self.c.check("f. an expired session, page reloaded: the login page with the expiry message"):
            rb = self.reload_b
            left = rb.logged_in_at + SESSION_SECS + 2 - time.monotonic()
            if left > 0:
                time.sleep(left)
            jar = [c["name"] for c in rb.d.execute_cdp_cmd("Storage.getCookies", {})["cookies"]]
            rb.d.get(rb.url("/console/overview"))
            wait_for("the login page", lambda: rb.path() == "/console/login", timeout=10)
            err = rb.find("#login-error")
            note(f"session cookie in the browser before the reload: {'twofold_console' in jar}; "
                 f"the reload landed on {rb.d.current_url}")
            assert rb.query() == "expired=1" and err.is_displayed() and "expired" in err.text, \
                f"{rb.d.current_url}: #login-error {'shown' if err.is_displayed() else 'hidden'}: {err.text!r}"
        for b in (getattr(self, "open_b", None), getattr(self, "reload_b", None)):
            if b:
                b.quit()
                self.browsers.remove(b)

    def light_traffic(self, secs):
        """Small GETs and PUTs for secs seconds (at most 400 requests)."""
        deadline = time.monotonic() + secs
        for i in range(200):
            if time.monotonic() > deadline:
                break
            with contextlib.suppress(Exception):
                self.s3.get_object(Bucket=self.bucket, Key="small-1.bin")["Body"].read()
                self.s3.put_object(Bucket=self.bucket, Key=f"live/{i:03d}.bin", Body=os.urandom(4096 * (1 + i % 8)))
            time.sleep(0.05 + 0.1 * (i % 5 == 0))

    # ------------------------------------------------------------------------- g

    def step_g_secrets(self):
        gw = self.gw
        with self.c.check("g. no secret in any page, asset, API answer, DOM or /metrics"):
            secret = {}
            for name in ("outer.pin", "inner.pin", "so.pin", "backend.secret", "client.secret", "console.password"):
                secret[name] = (gw.dev / name).read_text().strip()
            for op, pw in gw.passwords.items():
                secret[f"password of {op}"] = pw
                _, _, salt, digest = gw.hashes[op].split("$")
                secret[f"salt of {op}"] = salt.rstrip("=")
                secret[f"hash of {op}"] = digest.rstrip("=")
                secret[f"password hash of {op}"] = gw.hashes[op]
            for k, v in secret.items():
                assert len(v) >= 16, f"{k} too short to search for: {v!r}"
            admin, viewer = self.session("admin"), self.session("viewer")
            sessions = list(self.sessions)
            tokens = {}  # token -> what it is
            for s in sessions:
                tokens[s.token] = f"session token of {s.operator}"
                tokens[s.csrf] = f"CSRF token of {s.operator}"
            for b in self.browsers:
                for t in b.tokens:
                    if t:
                        tokens[t] = f"session token of browser {b.name}"
            counts = {}

            def scan(who, what, body, own=()):
                text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
                found = [k for k, v in secret.items() if v in text]
                found += [w for t, w in tokens.items() if t not in own and t in text]
                assert not found, f"{what} (as {who}) shows: {found}"
                self.scanned += 1
                counts[who] = counts.get(who, 0) + 1

            paths = (["/console/login"] + [f"/console/{p}" for p in PAGES]
                     + [f"/console/assets/{a}" for a in ASSETS] + [f"/console/api/{a}" for a in APIS])
            for s in (admin, viewer):
                conn = gw.connection()
                try:
                    for p in paths:
                        r = gw.request("GET", p, session=s, conn=conn)
                        assert r.status == 200, f"{p}: {r}"
                        scan(s.operator, p, r.body, own=(s.token, s.csrf))
                finally:
                    conn.close()
            for p in ["/console/login"] + [f"/console/assets/{a}" for a in ASSETS] + ["/metrics", "/readyz", "/healthz"]:
                r = gw.request("GET", p)
                scan("nobody", p, r.body)
            for b, who in ((self.b, "admin"), (self.b, "viewer")):
                b.login(who)
                for p in PAGES:
                    b.open(p)
                    if p == "overview":
                        wait_for("a second overview sample", lambda: b.finds(".chart-area .uplot"), timeout=10)
                    scan(f"browser {who}", f"the DOM of {p}", b.d.page_source, own=(b.cookie(),))
            # The console's own files: its audit log, and what the gateway logged.
            scan("files", "audit.jsonl", (gw.dev / "console" / "audit.jsonl").read_text())
            scan("files", "server.log", gw.log.read_text())
            note(f"{len(secret)} secrets of the set-up and {len(tokens)} session/CSRF tokens searched in "
                 f"{self.scanned} answers: " + ", ".join(f"{k} {v}" for k, v in counts.items()))

    # ------------------------------------------------------------------------- h

    def step_h_speed(self):
        gw, b = self.gw, self.b
        rows = []
        with self.c.check("h. speed: the pages in the browser (DOMContentLoaded < 200 ms, loaded < 2 s)"):
            b.login("admin")
            for p in PAGES:
                runs = []
                for _ in range(3):
                    b.open(p, fresh_for=15)
                    loaded_at = wait_for("the loaded mark", lambda: b.js("return window.__loadedAt"), timeout=10)
                    nav = b.js("const n = performance.getEntriesByType('navigation')[0];"
                               "return [n.responseEnd - n.startTime, n.domContentLoadedEventEnd - n.startTime];")
                    runs.append((nav[0], nav[1], loaded_at))
                best = [min(r[i] for r in runs) for i in range(3)]
                med = [statistics.median(r[i] for r in runs) for i in range(3)]
                self.timings[p] = {"browser_best": best, "browser_median": med}
            bad = [(p, t["browser_best"]) for p, t in self.timings.items()
                   if t["browser_best"][1] >= BROWSER_DCL_MS_MAX or t["browser_best"][2] >= BROWSER_LOADED_MS_MAX]
            assert not bad, f"too slow in the browser: {bad}"
        with self.c.check("h. speed: every page and API answers in < 200 ms (server, best of 5, kept alive)"):
            admin = self.session("admin")
            conn = gw.connection()
            try:
                gw.request("GET", "/console/api/session", session=admin, conn=conn)  # the handshake
                for path in [f"/console/{p}" for p in PAGES] + [f"/console/api/{a}" for a in APIS]:
                    ms = []
                    for _ in range(5):
                        r = gw.request("GET", path, session=admin, conn=conn)
                        assert r.status == 200, f"{path}: {r}"
                        ms.append(r.ms)
                    rows.append((path, min(ms), statistics.median(ms), len(r.body)))
            finally:
                conn.close()
            print("   page            browser: responseEnd  DOMContentLoaded  loaded flag   (best / median of 3, ms)")
            for p, t in self.timings.items():
                bb, mm = t["browser_best"], t["browser_median"]
                print(f"   {p:<15} {bb[0]:>8.1f} / {mm[0]:<8.1f} {bb[1]:>7.1f} / {mm[1]:<8.1f} {bb[2]:>7.1f} / {mm[2]:<8.1f}")
            print("   server answer (GET, kept-alive HTTPS)   best ms   median ms   bytes")
            for path, best, med, size in rows:
                print(f"   {path:<38} {best:>8.2f} {med:>10.2f} {size:>8}")
            slow = [(p, b_) for p, b_, _, _ in rows if b_ >= SERVER_MS_MAX]
            assert not slow, f"answers over {SERVER_MS_MAX} ms: {slow}"
            self.server_rows = rows

    # ------------------------------------------------------------------------- i

    def step_i_other_keks(self):
        """The keys page's report lists objects whose KEK pair no configured key has in rows
        of their own, `tr[data-other]` (gateway/console/README.md): an object sealed under
        the dev configuration's named key, which the configuration then no longer lists."""
        gw, b = self.gw, self.b
        with self.c.check("i. the key report shows objects of no configured key as tr[data-other] rows"):
            named = "alias/twofold-dev-example"
            bucket = self.bucket + "-other"
            self.s3.create_bucket(Bucket=bucket)
            self.s3.put_object(Bucket=bucket, Key="named.bin", Body=os.urandom(2000),
                               ServerSideEncryption="aws:kms", SSEKMSKeyId=named)
            head = self.s3.head_object(Bucket=bucket, Key="named.bin")
            assert head.get("SSEKMSKeyId") == named, head
            gw.stop()
            config = gw.dev / "config.toml"
            kept, keep = [], True
            for line in config.read_text().splitlines():
                if line.strip().startswith("["):
                    keep = line.strip() != "[[named_key]]"
                    if not keep:
                        while kept and kept[-1].lstrip().startswith("#"):
                            kept.pop()
                if keep:
                    kept.append(line)
            config.write_text("\n".join(kept) + "\n")
            assert named not in config.read_text()
            gw.twofold("check-config", str(config))
            gw.start()
            b.login("admin")
            b.open("keys")
            ids = [r.get_attribute("data-key-id") for r in b.finds("#keys tr[data-key-id]")]
            assert ids == [DEFAULT_KEY], ids
            b.find("#start-report").send_keys(Keys.ENTER)
            wait_for("the report job to finish", lambda: "finished" in b.text("#report-status"),
                     timeout=60, interval=0.3)
            report = gw.api("keys", self.session("admin"))["report"]
            note(f"/console/api/keys report: {json.dumps(report)[:600]}")
            wait_for("the report table", lambda: b.finds("#key-report tbody tr td.num"), timeout=10)
            rows = [(r.get_attribute("data-key-id"), r.get_attribute("data-other"), r.text.replace("\n", " "))
                    for r in b.finds("#key-report tbody tr")]
            note(f"#key-report rows (data-key-id, data-other, text): {rows}")
            b.shot("keys-other")
            other = [r for r in rows if "twofold-dev-example-inner" in r[2]]
            assert other, f"no row of the named key's KEKs: {rows}"
            assert other[0][1] is not None, \
                f"the row of KEKs no configured key has is not tr[data-other]: {other[0]}"
            assert other[0][0] in (None, ""), f"it carries data-key-id={other[0][0]!r}"


def main():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if not TWOFOLD.is_file():
        print(f"no binary at {TWOFOLD}: build it (cargo build --release -p gateway)")
        return 2
    def stop(signum, _frame):  # a TERM or HUP ends the run as ^C does: cleaned up
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    work = Path(tempfile.mkdtemp(prefix="twofold-console."))
    test = ConsoleTest(work)
    try:
        test.run()
    except KeyboardInterrupt:
        print("interrupted")
        test.c.failed += 1
    finally:
        if os.environ.get("TWOFOLD_CONSOLE_KEEP") == "1" or test.c.failed:
            if os.environ.get("TWOFOLD_CONSOLE_KEEP") == "1":
                print(f"kept {work}")
            else:
                # Keep what explains a failure beside the screenshots; drop the tokens.
                for name in ("server.log",):
                    with contextlib.suppress(OSError):
                        shutil.copy(work / name, ARTIFACTS / name)
                shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if test.c.failures:
        print("failed: " + "; ".join(test.c.failures))
    if test.c.xfailed:
        print(f"{test.c.xfailed} check(s) XFAIL on known console bugs (TWOFOLD_CONSOLE_STRICT=1 counts them)")
    print(f"{test.c.passed} passed, {test.c.failed} failed")
    return 0 if test.c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
