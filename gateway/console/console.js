// Twofold operator console: plain browser JavaScript, no framework, no build step.
//
// The server sends the same console.html for every page; this script reads
// location.pathname to know which page to render. login.html loads it too, and
// there it only shows the ?failed=1 / ?expired=1 message.
//
// Every string that comes from the server (bucket names, object keys, reasons,
// audit details, ...) is inserted with textContent or as a text node, never as
// HTML: some of them are chosen by whoever talks to the S3 port.
'use strict';

(function () {
  const OVERVIEW_POLL_MS = 3000;    // overview and its charts
  const JOBS_POLL_MS = 2000;        // jobs list on the jobs page
  const REPORT_POLL_MS = 2000;      // report job on the keys page, until it ends
  const CUSTODIANS_POLL_MS = 10000; // custodian health
  const CHART_POINTS = 100;         // overview samples kept for the charts
  const CHART_HEIGHT = 150;
  const AUDIT_ROWS = 200;           // newest audit entries shown
  const STATUS_CLEAR_MS = 15000;    // an accepted action's message fades after this
  const READ_ONLY_NOTE = 'read-only credential';

  const PAGES = {
    overview: { title: 'Overview', render: renderOverview },
    custodians: { title: 'Custodians', render: renderCustodians },
    keys: { title: 'Keys', render: renderKeys },
    jobs: { title: 'Jobs', render: renderJobs },
    configuration: { title: 'Configuration', render: renderConfiguration },
  };

  let session = null; // {operator, can_act, expires_at, csrf}

  // ---------------------------------------------------------------- helpers

  // el('td', {class: 'num', dataset: {figure: 'x'}}, child, 'text', ...):
  // strings become text nodes, null/undefined children are skipped.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = String(v);
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  const $ = (id) => document.getElementById(id);

  function badge(text, tone) {
    return el('span', { class: 'badge' + (tone ? ' badge-' + tone : '') }, text);
  }

  // A table with a header row; rows are appended to the returned tbody.
  function table(id, label, headers) {
    const tbody = el('tbody');
    const t = el('table', { id, 'aria-label': label },
      el('thead', {}, el('tr', {}, headers.map((h) => {
        const num = h.startsWith('#');
        return el('th', { scope: 'col', class: num ? 'num' : null }, num ? h.slice(1) : h);
      }))),
      tbody);
    return { table: t, tbody, wrap: el('div', { class: 'table-wrap' }, t) };
  }

  function emptyRow(tbody, cols, text) {
    tbody.append(el('tr', {}, el('td', { colspan: cols, class: 'empty' }, text)));
  }

  function fmtNum(n) {
    return n === null || n === undefined ? 'n/a' : Number(n).toLocaleString('en-US');
  }

  function fmtBytes(n) {
    if (n === null || n === undefined || !isFinite(n)) return 'n/a';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    let v = Math.abs(n);
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    const s = i === 0 ? String(Math.round(v)) : v.toFixed(v < 10 ? 2 : 1);
    return (n < 0 ? '-' : '') + s + ' ' + units[i];
  }

  function fmtRate(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return '–';
    return v.toFixed(digits === undefined ? 2 : digits);
  }

  function fmtDuration(secs) {
    secs = Math.max(0, Math.floor(secs || 0));
    const d = Math.floor(secs / 86400);
    const h = Math.floor((secs % 86400) / 3600);
    const m = Math.floor((secs % 3600) / 60);
    const s = secs % 60;
    if (d) return `${d} d ${h} h`;
    if (h) return `${h} h ${m} min`;
    if (m) return `${m} min ${s} s`;
    return `${s} s`;
  }

  // Server times are RFC 3339 UTC; show them as "2026-12-07 19:00:00 UTC".
  function fmtTime(iso) {
    if (!iso) return el('span', { class: 'muted' }, 'never');
    const text = String(iso).replace('T', ' ').replace(/\.\d+/, '').replace(/Z$/, ' UTC');
    return el('time', { datetime: String(iso) }, text);
  }

  function versions(list) {
    return Array.isArray(list) && list.length ? list.map((v) => 'v' + v).join(', ') : 'none';
  }

  // ------------------------------------------------------- messages and API

  function showMessage(id, text) {
    const e = $(id);
    if (!e) return;
    e.textContent = text || '';
    e.hidden = !text;
  }
  const loadError = (text) => showMessage('load-error', text);
  const actionError = (text) => {
    showMessage('action-error', text);
    if (text) showMessage('action-status', '');
  };
  let statusTimer = null;
  const actionStatus = (text) => {
    showMessage('action-status', text);
    if (text) showMessage('action-error', '');
    clearTimeout(statusTimer);
    if (text) statusTimer = setTimeout(() => showMessage('action-status', ''), STATUS_CLEAR_MS);
  };

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // GET when body is undefined, otherwise POST the body as JSON with the CSRF
  // header. A 401 sends the browser to the login page and never settles, so
  // callers simply stop there.
  async function api(path, body) {
    const init = { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.method = 'POST';
      init.headers['Content-Type'] = 'application/json';
      init.headers['X-Twofold-CSRF'] = session ? session.csrf : '';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'the gateway did not answer (' + e.message + ')');
    }
    if (res.status === 401) {
      location.href = '/console/login?expired=1';
      return new Promise(() => {});
    }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const reason = data && typeof data.error === 'string' ? data.error : 'HTTP ' + res.status;
      throw new ApiError(res.status, reason);
    }
    return data;
  }

  // Runs fn now and then every ms after each run has finished (no overlap).
  // fn's failures are shown in #load-error and cleared by the next success.
  function poll(ms, what, fn) {
    let timer = null;
    let stopped = false;
    const tick = async () => {
      try {
        await fn();
        loadError('');
      } catch (e) {
        loadError(`Could not load ${what}: ${e.message}`);
      }
      if (!stopped) timer = setTimeout(tick, ms);
    };
    tick();
    return () => { stopped = true; clearTimeout(timer); };
  }

  function markLoaded() {
    const loading = $('loading');
    if (loading) loading.remove();
    document.body.dataset.loaded = 'true';
  }

  // A button that POSTs; disabled (with a title) for a read-only credential.
  function actionButton(attrs, text) {
    const b = el('button', Object.assign({ type: 'button' }, attrs), text);
    if (!session.can_act) {
      b.disabled = true;
      b.title = READ_ONLY_NOTE;
    }
    return b;
  }

  function readOnlyNote() {
    return session.can_act ? null : el('span', { class: 'note-readonly' }, READ_ONLY_NOTE);
  }

  // ------------------------------------------------------------ login page

  function initLogin() {
    const params = new URLSearchParams(location.search);
    let text = '';
    if (params.has('failed')) text = 'Wrong name or password.';
    else if (params.has('expired')) text = 'Your session has expired; log in again.';
    showMessage('login-error', text);
  }

  // ------------------------------------------------------------ page shell

  async function initConsole() {
    const m = /^\/console\/([a-z]+)\/?$/.exec(location.pathname);
    const name = m && PAGES[m[1]] ? m[1] : 'overview';
    const page = PAGES[name];
    document.title = page.title + ' · Twofold console';
    $('page-title').textContent = page.title;
    for (const a of document.querySelectorAll('nav a[data-page]')) {
      if (a.dataset.page === name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    $('logout').addEventListener('click', logout);

    try {
      session = await api('/console/api/session');
    } catch (e) {
      $('loading').remove();
      loadError('Could not load the session: ' + e.message);
      return;
    }
    const op = $('session-operator');
    op.replaceChildren(el('span', {}, session.operator));
    if (!session.can_act) op.append(' ', badge('read-only', 'warn'));
    if (session.expires_at) {
      op.title = 'Session ends ' + new Date(session.expires_at * 1000).toLocaleString();
    }
    page.render($('page'));
  }

  async function logout() {
    let res;
    try {
      res = await fetch('/console/logout', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'X-Twofold-CSRF': session ? session.csrf : '' },
      });
    } catch (e) {
      actionError('Could not log out: the gateway did not answer.');
      return;
    }
    // 401: the session had already ended, which is as good as a logout.
    if (!res.ok && res.status !== 401) {
      let reason = 'HTTP ' + res.status;
      try { reason = (await res.json()).error || reason; } catch (e) { /* keep the status */ }
      actionError('Could not log out: ' + reason);
      return;
    }
    location.href = '/console/login';
  }

  // -------------------------------------------------------------- overview

  const TOTALS = [
    ['requests', 'Requests'],
    ['objects_written', 'Objects written'],
    ['client_received_bytes', 'Bytes received from clients', 'bytes'],
    ['client_sent_bytes', 'Bytes sent to clients', 'bytes'],
    ['sealed_bytes', 'Bytes sealed', 'bytes'],
    ['opened_bytes', 'Bytes opened', 'bytes'],
    ['integrity_failures', 'Integrity failures'],
    ['hsm_operations', 'HSM operations'],
    ['hsm_mean_ms', 'HSM mean latency (ms)', 'ms'],
    ['key_cache_hit_rate', 'Key cache hit rate', 'ratio'],
    ['connections_open', 'Open connections'],
  ];

  function figure(name, label, value, kind) {
    const human = (() => {
      if (value === null || value === undefined) return null;
      if (kind === 'bytes') return fmtBytes(value);
      if (kind === 'ratio') return (value * 100).toFixed(1) + ' %';
      return null;
    })();
    return el('div', {},
      el('dt', {}, label),
      el('dd', { dataset: { figure: name } }, value === null || value === undefined ? 'n/a' : String(value)),
      human ? el('dd', { class: 'human' }, human) : null);
  }

  function renderOverview(root) {
    const status = el('section', { class: 'card', 'aria-labelledby': 'h-status' });
    const rates = el('dl', { class: 'figures', id: 'rates' });
    const charts = el('div', { class: 'charts' });
    const totals = el('section', { class: 'card', 'aria-labelledby': 'h-totals' });
    const side = el('div', { class: 'grid grid-2' });
    const failures = el('section', { class: 'card', 'aria-labelledby': 'h-failures' });
    root.append(
      status,
      el('section', { class: 'card', 'aria-labelledby': 'h-rates' },
        el('div', { class: 'card-head' },
          el('h2', { id: 'h-rates' }, 'Rates'),
          el('span', { class: 'muted small' },
            `per second, from the change between polls every ${OVERVIEW_POLL_MS / 1000} s`)),
        rates, charts),
      totals, side, failures);

    // Charts: one uPlot per figure, created once two samples exist.
    const chartDefs = [
      { caption: 'Requests per second', series: [['requests/s', '#1f4fb8']], fmt: (v) => fmtRate(v) },
      { caption: 'Errors per second', series: [['errors/s', '#b42318']], fmt: (v) => fmtRate(v) },
      {
        caption: 'Client bytes per second',
        series: [['in', '#1a7f37'], ['out', '#8250df']],
        fmt: (v) => (v === null || v === undefined ? '–' : fmtBytes(v) + '/s'),
      },
    ];
    for (const def of chartDefs) {
      def.area = el('div', { class: 'chart-area' },
        el('p', { class: 'muted small' }, 'Waiting for a second sample…'));
      charts.append(el('figure', { class: 'chart' }, el('figcaption', {}, def.caption), def.area));
    }
    const samples = [];             // {t, totals}, last CHART_POINTS + 1
    const data = [[], [], [], [], []]; // t, requests/s, errors/s, in/s, out/s

    const errorSum = (t) => Object.values(t.errors_by_kind || {}).reduce((a, b) => a + (b || 0), 0);

    function addSample(ov) {
      const cur = { t: ov.at_ms / 1000, totals: ov.totals };
      const prev = samples[samples.length - 1];
      samples.push(cur);
      if (samples.length > CHART_POINTS) samples.shift();
      if (!prev) return;
      const dt = cur.t - prev.t;
      if (!(dt > 0)) return;
      // A counter that went down means the gateway restarted: leave a gap.
      const rate = (a, b) => (a >= b ? (a - b) / dt : null);
      const a = cur.totals;
      const b = prev.totals;
      data[0].push(cur.t);
      data[1].push(rate(a.requests, b.requests));
      data[2].push(rate(errorSum(a), errorSum(b)));
      data[3].push(rate(a.client_received_bytes, b.client_received_bytes));
      data[4].push(rate(a.client_sent_bytes, b.client_sent_bytes));
      if (data[0].length > CHART_POINTS) data.forEach((arr) => arr.shift());
    }

    function drawCharts() {
      const n = data[0].length;
      rates.replaceChildren(
        rateFig('requests', 'Requests/s', n ? fmtRate(data[1][n - 1]) : '–'),
        rateFig('errors', 'Errors/s', n ? fmtRate(data[2][n - 1]) : '–'),
        rateFig('in', 'Received from clients', n && data[3][n - 1] !== null ? fmtBytes(data[3][n - 1]) + '/s' : '–'),
        rateFig('out', 'Sent to clients', n && data[4][n - 1] !== null ? fmtBytes(data[4][n - 1]) + '/s' : '–'));
      if (!n || typeof uPlot === 'undefined') return;
      const cols = [[data[1]], [data[2]], [data[3], data[4]]];
      chartDefs.forEach((def, i) => {
        const d = [data[0], ...cols[i]];
        if (def.plot) { def.plot.setData(d); return; }
        def.area.replaceChildren();
        def.plot = new uPlot({
          width: Math.max(200, def.area.clientWidth),
          height: CHART_HEIGHT,
          series: [{}, ...def.series.map(([label, stroke]) => ({
            label, stroke, width: 1.5, value: (u, v) => def.fmt(v),
          }))],
          scales: { y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] } },
          axes: [
            { space: 90, values: (u, splits) => splits.map((t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false })) },
            { size: 80, values: (u, splits) => splits.map((v) => (i === 2 ? fmtBytes(v) : String(v))) },
          ],
        }, d, def.area);
      });
    }

    function rateFig(name, label, text) {
      return el('div', {}, el('dt', {}, label), el('dd', { dataset: { rate: name } }, text));
    }

    window.addEventListener('resize', () => {
      for (const def of chartDefs) {
        if (def.plot) def.plot.setSize({ width: Math.max(200, def.area.clientWidth), height: CHART_HEIGHT });
      }
    });

    function render(ov) {
      // Status: readiness, version, uptime, TLS.
      const tls = ov.tls;
      let tlsBody;
      if (!tls) {
        tlsBody = el('p', { id: 'tls' }, 'not configured (plain HTTP)');
      } else {
        const soon = tls.days_left < 30;
        tlsBody = el('div', { id: 'tls', class: soon ? 'alert alert-warn' : null, dataset: { expiresSoon: String(soon) } },
          el('dl', { class: 'pairs' },
            el('dt', {}, 'Subject'), el('dd', { class: 'mono' }, tls.subject),
            el('dt', {}, 'Expires'), el('dd', {}, fmtTime(tls.not_after), ' ',
              badge(`${tls.days_left} days left`, tls.days_left < 7 ? 'bad' : soon ? 'warn' : 'ok'))));
      }
      status.replaceChildren(
        el('div', { class: 'card-head' },
          el('h2', { id: 'h-status' }, 'Status'),
          el('span', { id: 'ready', class: 'badge ' + (ov.ready ? 'badge-ok' : 'badge-bad') }, ov.ready ? 'ready' : 'not ready'),
          el('span', { class: 'muted small' },
            `version ${ov.version} · up ${fmtDuration(ov.uptime_secs)} · updated ${new Date(ov.at_ms).toLocaleTimeString()}`)),
        el('div', { class: 'grid' },
          el('div', {}, el('h3', {}, 'Readiness'),
            el('ul', { id: 'readiness', class: 'lines' }, (ov.readiness || []).map((l) => el('li', {}, l)))),
          el('div', {}, el('h3', {}, 'TLS certificate'), tlsBody)));

      // Totals and errors by kind.
      const t = ov.totals || {};
      const known = new Set(TOTALS.map((x) => x[0]).concat(['requests_by_operation', 'errors_by_kind']));
      const extra = Object.keys(t).filter((k) => !known.has(k) && typeof t[k] !== 'object');
      totals.replaceChildren(
        el('h2', { id: 'h-totals' }, 'Totals since start'),
        el('dl', { class: 'figures', id: 'totals' },
          TOTALS.map(([k, label, kind]) => figure(k, label, t[k], kind)),
          extra.map((k) => figure(k, k.replace(/_/g, ' '), t[k]))),
        el('h3', {}, 'Errors by kind'),
        el('dl', { class: 'figures', id: 'errors-by-kind' },
          Object.entries(t.errors_by_kind || {}).map(([k, v]) => figure('errors.' + k, k, v))));

      // Requests by operation, and per-core health.
      const ops = table('by-operation', 'Requests by operation', ['Operation', '#Requests']);
      const entries = Object.entries(t.requests_by_operation || {}).sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1));
      for (const [op, n] of entries) {
        ops.tbody.append(el('tr', { dataset: { operation: op } },
          el('th', { scope: 'row' }, op), el('td', { class: 'num' }, String(n))));
      }
      if (!entries.length) emptyRow(ops.tbody, 2, 'no requests yet');
      const cores = table('cores', 'Per-core health', ['Core', 'Health', '#Last loop (ms)']);
      for (const c of ov.cores || []) {
        cores.tbody.append(el('tr', { dataset: { core: String(c.core) } },
          el('th', { scope: 'row' }, String(c.core)),
          el('td', {}, c.healthy ? badge('healthy', 'ok') : badge('unhealthy', 'bad')),
          el('td', { class: 'num' }, fmtNum(c.last_loop_ms))));
      }
      if (!(ov.cores || []).length) emptyRow(cores.tbody, 3, 'no cores reported');
      side.replaceChildren(
        el('section', { class: 'card', 'aria-labelledby': 'h-ops' }, el('h2', { id: 'h-ops' }, 'Requests by operation'), ops.wrap),
        el('section', { class: 'card', 'aria-labelledby': 'h-cores' }, el('h2', { id: 'h-cores' }, 'Cores'), cores.wrap));

      // Last integrity failures.
      const f = table('integrity-failures', 'Last integrity failures',
        ['Time', 'Request id', 'Operation', 'Bucket', 'Key', 'Reason']);
      for (const x of ov.integrity_failures || []) {
        f.tbody.append(el('tr', {},
          el('td', {}, fmtTime(x.at)), el('td', { class: 'mono' }, x.request_id), el('td', {}, x.operation),
          el('td', { class: 'wrap' }, x.bucket), el('td', { class: 'wrap mono' }, x.key), el('td', { class: 'wrap' }, x.reason)));
      }
      if (!(ov.integrity_failures || []).length) emptyRow(f.tbody, 6, 'none');
      failures.replaceChildren(el('h2', { id: 'h-failures' }, 'Last integrity failures'), f.wrap);
    }

    poll(OVERVIEW_POLL_MS, 'the overview', async () => {
      const ov = await api('/console/api/overview');
      addSample(ov);
      render(ov);
      drawCharts();
      markLoaded();
    });
  }

  // ------------------------------------------------------------ custodians

  function renderCustodians(root) {
    poll(CUSTODIANS_POLL_MS, 'the custodians', async () => {
      const res = await api('/console/api/custodians');
      const list = res.custodians || [];
      root.replaceChildren(...list.map(custodianSection));
      if (!list.length) root.append(el('p', { class: 'muted' }, 'No custodians configured.'));
      markLoaded();
    });
  }

  function custodianSection(c) {
    const layer = String(c.layer);
    const ok = c.status === 'ok';
    const keks = table(null, `Key-encryption keys of the ${layer} custodian`,
      ['Key id', 'Label', 'Versions', 'Current']);
    for (const k of c.keks || []) {
      keks.tbody.append(el('tr', { dataset: { keyId: k.key_id } },
        el('th', { scope: 'row' }, k.key_id), el('td', { class: 'mono' }, k.label),
        el('td', {}, versions(k.versions)), el('td', {}, k.current === null || k.current === undefined ? 'none' : 'v' + k.current)));
    }
    if (!(c.keks || []).length) emptyRow(keks.tbody, 4, 'no KEKs');
    const title = layer.charAt(0).toUpperCase() + layer.slice(1) + ' custodian';
    const hid = 'h-custodian-' + layer;
    return el('section', { class: 'card', id: 'custodian-' + layer, 'aria-labelledby': hid },
      el('div', { class: 'card-head' },
        el('h2', { id: hid }, title),
        c.reachable ? badge('reachable', 'ok') : badge('unreachable', 'bad')),
      el('dl', { class: 'pairs' },
        el('dt', {}, 'Kind'), el('dd', {}, c.kind),
        el('dt', {}, 'Device'), el('dd', { class: 'mono' }, c.describe),
        el('dt', {}, 'Status'), el('dd', { dataset: { status: '' } }, ok ? badge('ok', 'ok') : badge(String(c.status), 'bad')),
        el('dt', {}, 'Last success'), el('dd', {}, fmtTime(c.last_success)),
        el('dt', {}, 'Operations'), el('dd', { dataset: { figure: 'operations' } }, fmtNum(c.operations)),
        el('dt', {}, 'Errors'), el('dd', { dataset: { figure: 'errors' } }, fmtNum(c.errors))),
      el('h3', {}, 'Key-encryption keys'),
      keks.wrap);
  }

  // ------------------------------------------------------------------ keys

  function renderKeys(root) {
    const keysCard = el('section', { class: 'card', 'aria-labelledby': 'h-keys' });
    const reportBody = el('div');
    const reportStatus = el('p', { id: 'report-status', class: 'muted', role: 'status' });
    const start = actionButton({ id: 'start-report' }, 'Count objects per KEK version');
    root.append(keysCard,
      el('section', { class: 'card', 'aria-labelledby': 'h-report' },
        el('h2', { id: 'h-report' }, 'Objects per KEK version'),
        el('p', { class: 'muted small' },
          'A report job lists every object and counts which KEK versions wrap its key. ' +
          'Use it to see whether a version can be shredded.'),
        el('div', { class: 'actions' }, start, readOnlyNote()),
        reportStatus, reportBody));

    let watching = null; // id of the report job being followed

    async function load() {
      const res = await api('/console/api/keys');
      renderKeyTable(res.keys || []);
      renderReport(res.report);
      return res;
    }

    function renderKeyTable(keys) {
      const t = table('keys', 'Keys', ['Key id', 'Default', 'Buckets', 'Inner KEK', 'Inner versions', 'Outer KEK', 'Outer versions']);
      for (const k of keys) {
        let buckets = (k.buckets || []).join(', ');
        if (!buckets) buckets = k.is_default ? 'every bucket without its own key' : 'none';
        t.tbody.append(el('tr', { dataset: { keyId: k.id } },
          el('th', { scope: 'row' }, k.id),
          el('td', {}, k.is_default ? badge('default') : ''),
          el('td', { class: 'wrap' }, buckets),
          el('td', { class: 'mono' }, k.inner_label), el('td', {}, versions(k.inner_versions)),
          el('td', { class: 'mono' }, k.outer_label), el('td', {}, versions(k.outer_versions))));
      }
      if (!keys.length) emptyRow(t.tbody, 7, 'no keys configured');
      keysCard.replaceChildren(el('h2', { id: 'h-keys' }, 'Configured keys'), t.wrap);
    }

    function renderReport(report) {
      const t = table('key-report', 'Objects per KEK version', ['Key id', 'Inner KEK', 'Outer KEK', '#Objects', 'Buckets']);
      if (!report) {
        emptyRow(t.tbody, 5, 'no report yet: start one');
        reportBody.replaceChildren(t.wrap);
        return;
      }
      const bucketsCell = (r) => el('td', { class: 'small' }, (r.buckets || []).join(', '));
      for (const r of report.rows || []) {
        t.tbody.append(el('tr', { dataset: { keyId: r.key_id } },
          el('th', { scope: 'row' }, r.key_id), el('td', { class: 'mono' }, r.inner), el('td', { class: 'mono' }, r.outer),
          el('td', { class: 'num' }, String(r.objects)), bucketsCell(r)));
      }
      for (const r of report.other || []) {
        t.tbody.append(el('tr', { dataset: { other: 'true' } },
          el('th', { scope: 'row', class: 'muted' }, 'other'), el('td', { class: 'mono' }, r.inner), el('td', { class: 'mono' }, r.outer),
          el('td', { class: 'num' }, String(r.objects)), bucketsCell(r)));
      }
      if (!(report.rows || []).length && !(report.other || []).length) emptyRow(t.tbody, 5, 'no objects');
      reportBody.replaceChildren(el('p', { class: 'small' }, 'Counted at ', fmtTime(report.at),
        '. "other" rows are objects whose KEKs belong to no configured key.'), t.wrap);
    }

    // Follows a report job until it is done or failed, then re-reads the keys.
    async function follow(id) {
      if (watching === id) return;
      watching = id;
      start.disabled = true;
      for (;;) {
        let job;
        try {
          const res = await api('/console/api/jobs');
          job = (res.jobs || []).find((j) => j.id === id);
        } catch (e) {
          reportStatus.textContent = `Report job ${id}: could not read its state (${e.message}); retrying.`;
          await new Promise((r) => setTimeout(r, REPORT_POLL_MS));
          continue;
        }
        if (!job || job.state === 'done' || job.state === 'failed') {
          if (job && job.state === 'failed') {
            reportStatus.textContent = `Report job ${id} failed: ${job.error || 'no reason given'}`;
          } else {
            reportStatus.textContent = `Report job ${id} finished.`;
          }
          break;
        }
        reportStatus.textContent = `Report job ${id} is ${job.state}: ${job.progress_line || ''}`;
        await new Promise((r) => setTimeout(r, REPORT_POLL_MS));
      }
      watching = null;
      start.disabled = !session.can_act;
      try { await load(); } catch (e) { loadError('Could not load the keys: ' + e.message); }
    }

    start.addEventListener('click', async () => {
      actionError('');
      start.disabled = true;
      try {
        const job = await api('/console/api/jobs', { kind: 'report' });
        reportStatus.textContent = `Report job ${job.id} started.`;
        follow(job.id);
      } catch (e) {
        start.disabled = !session.can_act;
        actionError('Could not start the report: ' + e.message);
      }
    });

    (async () => {
      let res;
      try {
        res = await load();
      } catch (e) {
        loadError('Could not load the keys: ' + e.message);
        return;
      }
      markLoaded();
      // A report job that is still going (started here earlier or from the CLI).
      if (res.report_job) {
        try {
          const jobs = await api('/console/api/jobs');
          const job = (jobs.jobs || []).find((j) => j.id === res.report_job);
          if (job && (job.state === 'running' || job.state === 'paused')) follow(job.id);
        } catch (e) { /* the jobs page shows it; nothing to follow here */ }
      }
    })();
  }

  // ------------------------------------------------------------------ jobs

  const STATE_TONE = { running: 'ok', paused: 'warn', done: null, failed: 'bad' };

  function renderJobs(root) {
    const list = el('section', { class: 'card', 'aria-labelledby': 'h-jobs' });
    let lastJson = '';

    async function refresh() {
      const res = await api('/console/api/jobs');
      const json = JSON.stringify(res.jobs);
      if (json === lastJson) return; // nothing changed: keep the DOM (and focus) as is
      lastJson = json;
      // Remember the focused button so that a refresh does not lose it.
      const f = document.activeElement;
      const focusKey = f && f.closest && f.closest('tr[data-job-id]') && f.dataset.action
        ? [f.closest('tr').dataset.jobId, f.dataset.action] : null;
      const t = table('jobs', 'Jobs, newest first',
        ['Job', 'Started by', 'Parameters', 'State', 'Time', 'Progress and result', 'Actions']);
      for (const j of res.jobs || []) t.tbody.append(jobRow(j));
      if (!(res.jobs || []).length) emptyRow(t.tbody, 7, 'no jobs yet');
      list.replaceChildren(el('h2', { id: 'h-jobs' }, 'Recent jobs'), t.wrap);
      if (focusKey) {
        const b = [...t.tbody.querySelectorAll('button[data-action]')]
          .find((x) => x.closest('tr').dataset.jobId === focusKey[0]);
        if (b) b.focus();
      }
    }

    function jobRow(j) {
      const params = Object.entries(j.params || {}).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) =>
        el('li', {}, `${k}: ${v === null || v === undefined ? '—' : typeof v === 'object' ? JSON.stringify(v) : v}`));
      const progress = el('td', { class: 'wrap' });
      if (j.progress_line) progress.append(el('div', {}, j.progress_line));
      if (j.state === 'done' && Array.isArray(j.result) && j.result.length) {
        // A key report's lines are a fixed-width table: kept as they are.
        progress.append(el('ul', { class: j.kind === 'report' ? 'lines small mono pre' : 'lines small' },
          j.result.map((l) => el('li', {}, typeof l === 'string' ? l : JSON.stringify(l)))));
      }
      if (j.error) progress.append(el('div', { class: 'alert alert-bad small' }, j.error));
      let action = null;
      if (j.state === 'running' || j.state === 'paused') {
        const verb = j.state === 'running' ? 'pause' : 'resume';
        action = actionButton({
          class: 'small button-secondary',
          dataset: { action: verb },
          'aria-label': `${verb === 'pause' ? 'Pause' : 'Resume'} job ${j.id}`,
        }, verb === 'pause' ? 'Pause' : 'Resume');
        action.addEventListener('click', () => jobAction(j.id, verb, action));
      }
      return el('tr', { dataset: { jobId: j.id } },
        el('th', { scope: 'row' }, el('div', {}, j.kind), el('div', { class: 'mono small muted' }, j.id)),
        el('td', {}, el('div', {}, j.operator || '—'), el('div', { class: 'small muted' }, j.origin)),
        el('td', {}, el('ul', { class: 'plain small' }, params)),
        el('td', { dataset: { jobState: j.state } }, badge(j.state, STATE_TONE[j.state])),
        el('td', { class: 'small' }, el('div', {}, 'started ', fmtTime(j.started)),
          j.finished ? el('div', {}, 'finished ', fmtTime(j.finished)) : null),
        progress,
        el('td', {}, action, action ? readOnlyNote() : null));
    }

    async function jobAction(id, verb, button) {
      actionError('');
      button.disabled = true;
      try {
        await api(`/console/api/jobs/${encodeURIComponent(id)}/${verb}`, {});
        actionStatus(`Job ${id}: ${verb === 'pause' ? 'paused' : 'resumed'}.`);
      } catch (e) {
        button.disabled = false;
        actionError(`Could not ${verb} job ${id}: ${e.message}`);
      }
      try { await refresh(); } catch (e) { /* the next poll reports it */ }
      // The clicked button was disabled (losing focus) or replaced: put focus on
      // the job's new action button, or on its row's state cell when none is left.
      if (document.activeElement === document.body || !document.activeElement) {
        const row = [...document.querySelectorAll('#jobs tr[data-job-id]')].find((r) => r.dataset.jobId === id);
        const next = row && row.querySelector('button[data-action]');
        if (next && !next.disabled) next.focus();
      }
    }

    // Rewrap form.
    const rewrap = el('form', { id: 'rewrap-form', 'aria-labelledby': 'h-rewrap' },
      el('h2', { id: 'h-rewrap' }, 'Start a rewrap'),
      el('p', { class: 'muted small' },
        'Moves each object of the bucket that is not under its key\'s newest KEK versions to them, by a ' +
        'metadata-only copy on the backend: no object body passes through the gateway. A dry run only counts.'),
      field('rewrap-bucket', 'Bucket', { type: 'text', required: true, autocomplete: 'off', spellcheck: 'false' }),
      field('rewrap-key-id', 'Key id', { type: 'text', autocomplete: 'off', spellcheck: 'false' },
        'optional: only objects under this key'),
      el('div', { class: 'field field-check' },
        el('input', { id: 'rewrap-dry-run', type: 'checkbox' }),
        el('label', { for: 'rewrap-dry-run' }, 'Dry run (count only, move nothing)')),
      el('div', { class: 'actions' }, actionButton({ id: 'rewrap-start', type: 'submit' }, 'Start rewrap'), readOnlyNote()));
    rewrap.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const keyId = $('rewrap-key-id').value.trim();
      startJob(rewrap, {
        kind: 'rewrap',
        bucket: $('rewrap-bucket').value.trim(),
        key_id: keyId === '' ? null : keyId,
        dry_run: $('rewrap-dry-run').checked,
      });
    });

    // Shred form.
    const shred = el('form', { id: 'shred-form', 'aria-labelledby': 'h-shred' },
      el('h2', { id: 'h-shred' }, 'Shred a KEK version'),
      el('p', { class: 'small' },
        'Shredding destroys the version on both custodians, but only if no object names it any more: ' +
        'run a rewrap first, and a report to check. The newest version of a key is never destroyed.'),
      field('shred-key-id', 'Key id', { type: 'text', required: true, autocomplete: 'off', spellcheck: 'false' }),
      field('shred-version', 'Version', { type: 'number', required: true, min: '1', step: '1', inputmode: 'numeric' }),
      field('shred-confirm', 'Confirm', { type: 'text', required: true, autocomplete: 'off', spellcheck: 'false' },
        'type the key id again'),
      el('div', { class: 'actions' },
        actionButton({ id: 'shred-start', type: 'submit', class: 'button-danger' }, 'Shred version'), readOnlyNote()));
    shred.addEventListener('submit', (ev) => {
      ev.preventDefault();
      startJob(shred, {
        kind: 'shred',
        key_id: $('shred-key-id').value.trim(),
        version: Number($('shred-version').value),
        confirm: $('shred-confirm').value.trim(),
      });
    });

    async function startJob(form, body) {
      actionError('');
      const submit = form.querySelector('button[type="submit"]');
      submit.disabled = true;
      try {
        const job = await api('/console/api/jobs', body);
        actionStatus(`Started ${body.kind} job ${job && job.id ? job.id : ''}.`);
        form.reset();
        try { await refresh(); } catch (e) { /* the next poll reports it */ }
      } catch (e) {
        actionError(`Could not start the ${body.kind}: ${e.message}`);
      }
      submit.disabled = !session.can_act;
    }

    root.append(list, el('div', { class: 'grid grid-2' },
      el('section', { class: 'card' }, rewrap), el('section', { class: 'card' }, shred)));

    poll(JOBS_POLL_MS, 'the jobs', async () => {
      await refresh();
      markLoaded();
    });
  }

  function field(id, label, attrs, hint) {
    const hintId = hint ? id + '-hint' : null;
    return el('div', { class: 'field' },
      el('label', { for: id }, label),
      hint ? el('span', { class: 'hint', id: hintId }, hint) : null,
      el('input', Object.assign({ id, name: id, 'aria-describedby': hintId }, attrs)));
  }

  // --------------------------------------------------------- configuration

  function renderConfiguration(root) {
    (async () => {
      let cfg;
      let audit;
      try {
        [cfg, audit] = await Promise.all([api('/console/api/configuration'), api('/console/api/audit')]);
      } catch (e) {
        loadError('Could not load the configuration: ' + e.message);
        return;
      }
      const check = cfg.check || { ok: false, lines: [] };
      const a = table('audit', 'Audit log, newest first', ['Time', 'Operator', 'Remote', 'Action', 'Outcome', 'Detail']);
      const entries = (audit.entries || []).slice(0, AUDIT_ROWS);
      for (const x of entries) {
        const good = x.outcome === 'ok';
        a.tbody.append(el('tr', {},
          el('td', { class: 'small' }, fmtTime(x.at)), el('td', {}, x.operator), el('td', { class: 'mono small' }, x.remote),
          el('td', {}, x.action), el('td', {}, badge(x.outcome, good ? 'ok' : 'bad')), el('td', { class: 'wrap small' }, x.detail)));
      }
      if (!entries.length) emptyRow(a.tbody, 6, 'no entries');
      root.append(
        el('div', { class: 'grid grid-2 grid-top' },
          el('section', { class: 'card', 'aria-labelledby': 'h-config' },
            el('h2', { id: 'h-config' }, 'Configuration file'),
            el('pre', { id: 'config-text', class: 'config', tabindex: '0', 'aria-label': 'Configuration file' }, cfg.text || '')),
          el('section', { class: 'card', id: 'check-config', 'aria-labelledby': 'h-check' },
            el('div', { class: 'card-head' },
              el('h2', { id: 'h-check' }, 'Configuration check'),
              check.ok ? badge('ok', 'ok') : badge('failed', 'bad')),
            el('ul', { class: 'lines mono' }, (check.lines || []).map((l) => el('li', {}, l))))),
        el('section', { class: 'card', 'aria-labelledby': 'h-audit' },
          el('h2', { id: 'h-audit' }, 'Audit log'),
          entries.length < (audit.entries || []).length
            ? el('p', { class: 'muted small' }, `The newest ${AUDIT_ROWS} entries.`) : null,
          a.wrap));
      markLoaded();
    })();
  }

  // ----------------------------------------------------------------- start

  if (document.getElementById('login-form')) initLogin();
  else initConsole();
})();
