// Storevisor's dashboard: the workloads table kept live from the daemon's event stream, the box
// panel, and per workload its log, events and CPU/memory charts. Plain ES module, no build step.
import uPlot from '/ui/vendor/uplot/dist/uPlot.esm.js';

const $ = (sel) => document.querySelector(sel);
const HISTORY_POINTS = 1560;  // the daemon's hour (360) and an hour of the page's 3 s samples
const REFRESH_MS = 3000;

const state = {
  csrf: '',
  workloads: new Map(),  // name -> status
  history: new Map(),    // name -> {t: [], cpu: [], mem: []}
  selected: null,
  logAbort: null,
  charts: [],
  events: [],
  console: null,  // {name, ws, term}
};

// ---------------------------------------------------------------------------------------------
// Requests: same-origin fetches carried by the session cookie; state changes send the CSRF token.

async function api(method, path, json, extraHeaders = {}) {
  const headers = { ...extraHeaders };
  if (method !== 'GET') headers['X-CSRF-Token'] = state.csrf;
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  const r = await fetch(path, { method, headers, body, credentials: 'same-origin', cache: 'no-store' });
  if (r.status === 401) {
    location.assign('/login');
    throw new Error('the session ended');
  }
  const text = await r.text();
  let answer = null;
  try { answer = JSON.parse(text); } catch { answer = null; }
  if (!r.ok) throw new Error(answer && answer.error ? answer.error : `HTTP ${r.status}`);
  return answer;
}

// Reads a streamed answer chunk by chunk until it ends or signal aborts it.
async function stream(path, signal, onText) {
  const r = await fetch(path, { credentials: 'same-origin', cache: 'no-store', signal });
  if (r.status === 401) { location.assign('/login'); return; }
  if (!r.ok || !r.body) throw new Error(`HTTP ${r.status}`);
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onText(value);
  }
}

// ---------------------------------------------------------------------------------------------
// Formatting

function bytes(n) {
  if (!n) return '0';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(n < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}

function duration(ms) {
  let s = Math.floor(ms / 1000);
  if (s <= 0) return '—';
  const d = Math.floor(s / 86400); s %= 86400;
  const h = Math.floor(s / 3600); s %= 3600;
  const m = Math.floor(s / 60); s %= 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
}

function say(text) { $('#status').textContent = text; }

// ---------------------------------------------------------------------------------------------
// Box panel

async function refreshBox() {
  const b = await api('GET', '/v1/box');
  $('#host').textContent = b.hostname ? `— ${b.hostname}` : '';
  const facts = [
    ['Profile', b.profile ? `${b.profile} (generation ${b.generation})` : 'none applied'],
    ['Workloads', String(b.workloads)],
    ['CPU', `${b.cpus} cores, load ${b.load.map((l) => l.toFixed(2)).join(' ')}`],
    ['Memory', `${bytes(b.memoryTotalBytes - b.memoryAvailableBytes)} used of ${bytes(b.memoryTotalBytes)}`],
    ['Disk (state)', `${bytes(b.diskTotalBytes - b.diskFreeBytes)} used of ${bytes(b.diskTotalBytes)}`],
    ['Uptime', duration(b.uptimeSeconds * 1000)],
    ['VM accelerator', b.accel, b.accelReason],
    ['KSM saves', bytes(b.ksmSavedBytes)],
    ['Version', `storevisord ${b.version}`],
    ['Kernel', b.kernel],
  ];
  const dl = $('#box-facts');
  dl.replaceChildren(...facts.map(([k, v, why]) =>
    el('div', { title: why || '' }, el('dt', { textContent: k }), el('dd', { textContent: v }))));
  dl.dataset.generation = String(b.generation);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Workloads table (rows updated in place: keyboard focus stays where it was)

const COLUMNS = ['name', 'kind', 'state', 'health', 'restarts', 'cpu', 'memory', 'address', 'ports', 'uptime', 'actions'];
const ACTIONS = [
  ['start', 'Start', (w) => w.state !== 'running' && w.state !== 'creating'],
  ['stop', 'Stop', (w) => w.state === 'running' || w.state === 'creating'],
  ['restart', 'Restart', (w) => w.state === 'running'],
  ['remove', 'Remove', () => true],
  ['console', 'Console', (w) => w.kind === 'microvm' && w.state === 'running'],
  ['screen', 'Screen', (w) => w.kind === 'legacy-vm' && w.state === 'running'],
];

function makeRow(name) {
  const tr = el('tr', { id: `w-${name}` });
  tr.dataset.name = name;
  for (const c of COLUMNS) {
    const td = el(c === 'name' ? 'th' : 'td', { className: c });
    if (c === 'name') {
      td.scope = 'row';
      td.append(el('button', {
        className: 'name', type: 'button', textContent: name,
        title: 'Show its log, events and charts', onclick: () => select(name),
      }));
    }
    if (c === 'actions') {
      for (const [verb, label] of ACTIONS) {
        td.append(el('button', {
          type: 'button', textContent: label, className: verb === 'remove' ? 'danger' : '',
          onclick: () => (verb === 'console' ? openConsole(name)
            : verb === 'screen' ? openScreen(name) : act(name, verb)),
          ariaLabel: `${label} ${name}`,
        }));
        td.lastChild.dataset.action = verb;
      }
    }
    tr.append(td);
  }
  return tr;
}

function renderWorkloads(list) {
  const body = $('#workload-rows');
  const seen = new Set();
  for (const w of list) {
    seen.add(w.name);
    state.workloads.set(w.name, w);
    let tr = body.querySelector(`tr[data-name="${CSS.escape(w.name)}"]`);
    if (!tr) { tr = makeRow(w.name); body.append(tr); }
    const running = w.state === 'running';
    const cells = {
      kind: w.role ? `${w.kind} (${w.role})` : w.kind,
      state: w.desired && w.desired !== 'running' && w.state !== w.desired ? `${w.state} (held ${w.desired})` : w.state,
      health: w.health,
      restarts: String(w.restarts),
      cpu: running ? `${w.cpuPercent.toFixed(1)} %` : '—',
      memory: running ? bytes(w.memoryBytes) : '—',
      address: w.address || '—',
      ports: w.ports && w.ports.length ? w.ports.join(' ') : '—',
      uptime: running ? duration(w.uptimeMs) : '—',
    };
    for (const [k, v] of Object.entries(cells)) {
      const td = tr.querySelector(`td.${k}`);
      if (td.textContent !== v) td.textContent = v;
    }
    tr.querySelector('td.state').className = `state state-${w.state}`;
    tr.querySelector('td.health').className = `health health-${w.health}`;
    tr.dataset.state = w.state;
    tr.dataset.health = w.health;
    tr.dataset.restarts = String(w.restarts);
    tr.title = w.lastError || '';
    for (const [verb, , enabled] of ACTIONS) {
      const button = tr.querySelector(`button[data-action="${verb}"]`);
      button.disabled = !enabled(w);
      if (verb === 'console') button.hidden = w.kind !== 'microvm';
      if (verb === 'screen') button.hidden = w.kind !== 'legacy-vm';
    }
    const h = state.history.get(w.name) || { t: [], cpu: [], mem: [] };
    h.t.push(Date.now() / 1000);
    h.cpu.push(running ? w.cpuPercent : null);
    h.mem.push(running ? w.memoryBytes / 1048576 : null);
    for (const k of ['t', 'cpu', 'mem']) if (h[k].length > HISTORY_POINTS) h[k].shift();
    state.history.set(w.name, h);
  }
  for (const tr of [...body.querySelectorAll('tr')]) {
    if (!seen.has(tr.dataset.name)) {
      state.workloads.delete(tr.dataset.name);
      tr.remove();
    }
  }
  if (state.selected) updateCharts();
}

let refreshing = null;
let again = false;
// One refresh at a time; a request for one while it runs is served right after.
async function refreshWorkloads() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    do {
      again = false;
      try {
        renderWorkloads(await api('GET', '/v1/workloads'));
      } catch (e) {
        say(`Could not read the workloads: ${e.message}`);
      }
    } while (again);
    refreshing = null;
  })();
  return refreshing;
}

// ---------------------------------------------------------------------------------------------
// Actions, confirmed in a dialog

function confirmAction(text) {
  const dialog = $('#confirm');
  $('#confirm-text').textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.returnValue = 'cancel';
    dialog.showModal();
    $('#confirm-cancel').focus();
  });
}

async function act(name, verb) {
  const words = {
    start: `Start ${name}?`,
    stop: `Stop ${name}? It stays stopped until started or the profile is applied again.`,
    restart: `Restart ${name}?`,
    remove: `Remove ${name}? It is stopped and its container or VM deleted until the profile is applied again.`,
  };
  if (!(await confirmAction(words[verb]))) return;
  say(`${verb} ${name}…`);
  try {
    if (verb === 'remove') await api('DELETE', `/v1/workloads/${encodeURIComponent(name)}`);
    else await api('POST', `/v1/workloads/${encodeURIComponent(name)}/${verb}`);
    say(`${verb} ${name}: done`);
  } catch (e) {
    say(`${verb} ${name} failed: ${e.message}`);
  }
  refreshWorkloads();
}

// ---------------------------------------------------------------------------------------------
// Events: the daemon's Server-Sent Events read with fetch (named events, which EventSource
// would need one listener per type for); each one refreshes the table.

function eventItem(e) {
  const t = new Date(e.time_ms);
  return el('li', {},
    el('time', { dateTime: t.toISOString(), textContent: t.toLocaleTimeString() }),
    `${e.workload ? e.workload + ': ' : ''}${e.message || e.type}`);
}

function renderEvents() {
  const recent = state.events.slice(-100).reverse();
  $('#event-list').replaceChildren(...recent.map(eventItem));
  if (state.selected) {
    const mine = recent.filter((e) => e.workload === state.selected);
    $('#detail-events').replaceChildren(...mine.map(eventItem));
  }
}

async function followEvents(since) {
  let last = since;
  let buffer = '';
  for (let delay = 500; ; delay = Math.min(delay * 2, 10000)) {
    try {
      $('#live').textContent = 'live';
      $('#live').className = 'pill live';
      await stream(`/v1/events?follow=1&since=${last}`, undefined, (text) => {
        buffer += text;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (!data) continue;
          try {
            const e = JSON.parse(data);
            last = Math.max(last, e.id);
            state.events.push(e);
            if (state.events.length > 500) state.events.shift();
          } catch { /* a partial or foreign line: skipped */ }
          delay = 500;
          scheduleEventRender();
        }
      });
    } catch (e) {
      say(`Live updates interrupted: ${e.message}`);
    }
    $('#live').textContent = 'reconnecting…';
    $('#live').className = 'pill';
    buffer = '';
    await new Promise((r) => setTimeout(r, delay));
  }
}

let renderPending = false;
function scheduleEventRender() {
  if (renderPending) return;
  renderPending = true;
  // Many events at once (an apply) cost one refresh.
  requestAnimationFrame(() => {
    renderPending = false;
    renderEvents();
    refreshWorkloads();
  });
}

// ---------------------------------------------------------------------------------------------
// Detail: live log, events and charts of one workload

function chart(target, label, unit) {
  const opts = {
    width: Math.min(460, target.parentElement.clientWidth - 20), height: 160, title: label,
    series: [{}, { label, stroke: '#1f5f8b', fill: 'rgba(31,95,139,.12)', value: (u, v) => v == null ? '—' : `${v.toFixed(1)} ${unit}` }],
    axes: [{}, { size: 60 }],
  };
  return new uPlot(opts, [[], []], target);
}

function updateCharts() {
  const h = state.history.get(state.selected);
  if (!h || state.charts.length !== 2) return;
  state.charts[0].setData([h.t, h.cpu]);
  state.charts[1].setData([h.t, h.mem]);
}

async function select(name) {
  state.selected = name;
  for (const tr of document.querySelectorAll('#workload-rows tr')) {
    tr.classList.toggle('selected', tr.dataset.name === name);
  }
  const detail = $('#detail');
  detail.hidden = false;
  $('#detail-title').textContent = `Workload ${name}`;
  for (const c of state.charts) c.destroy();
  state.charts = [chart($('#chart-cpu'), 'CPU', '%'), chart($('#chart-mem'), 'Memory', 'MiB')];
  // The daemon's last hour (a sample every 10 s), then what this page sampled since.
  try {
    const kept = await api('GET', `/ui/history/${encodeURIComponent(name)}`);
    const h = { t: [], cpu: [], mem: [] };
    for (const [t, cpu, mem] of kept.points) {
      h.t.push(t / 1000);
      h.cpu.push(cpu);
      h.mem.push(mem / 1048576);
    }
    const mine = state.history.get(name);
    const last = h.t.length ? h.t[h.t.length - 1] : 0;
    if (mine) {
      mine.t.forEach((t, i) => {
        if (t > last) { h.t.push(t); h.cpu.push(mine.cpu[i]); h.mem.push(mine.mem[i]); }
      });
    }
    state.history.set(name, h);
  } catch { /* no history kept yet: the page's own samples */ }
  if (state.selected !== name) return;
  updateCharts();
  renderEvents();
  if (state.logAbort) state.logAbort.abort();
  const abort = new AbortController();
  state.logAbort = abort;
  const log = $('#log');
  log.textContent = '';
  try {
    await stream(`/v1/workloads/${encodeURIComponent(name)}/logs?follow=1&tail=200`, abort.signal, (text) => {
      const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      let all = log.textContent + text;
      if (all.length > 200000) all = all.slice(-150000);
      log.textContent = all;
      if (stick) log.scrollTop = log.scrollHeight;
    });
  } catch (e) {
    if (!abort.signal.aborted) log.textContent += `\n[log stream ended: ${e.message}]`;
  }
}

// ---------------------------------------------------------------------------------------------
// Serial console of a microVM: xterm.js over a WebSocket the daemon relays to the console.

function closeConsole() {
  if (!state.console) return;
  state.console.ws.close();
  state.console.term.dispose();
  state.console = null;
  $('#console').hidden = true;
}

async function openConsole(name) {
  closeConsole();
  // xterm.js is loaded only when a console is opened: the first load stays small.
  const { Terminal } = await import('/ui/vendor/xterm/lib/xterm.mjs');
  const section = $('#console');
  section.hidden = false;
  $('#console-title').textContent = `Console of ${name}`;
  const term = new Terminal({ cols: 100, rows: 24, convertEol: false, fontSize: 14, scrollback: 2000 });
  term.open($('#term'));
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ui/ws/console/${encodeURIComponent(name)}`);
  ws.binaryType = 'arraybuffer';
  const encoder = new TextEncoder();
  ws.onopen = () => { term.focus(); section.dataset.connected = '1'; };
  ws.onmessage = (m) => term.write(new Uint8Array(m.data));
  ws.onclose = () => { term.write('\r\n[console closed]\r\n'); delete section.dataset.connected; };
  // Ctrl+] (telnet's escape) leaves the terminal for keyboard users.
  term.attachCustomKeyEventHandler((e) => {
    if (e.type === 'keydown' && e.ctrlKey && e.key === ']') { $('#console-close').focus(); return false; }
    return true;
  });
  term.onData((d) => { if (ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(d)); });
  state.console = { name, ws, term };
  section.scrollIntoView();
}

// ---------------------------------------------------------------------------------------------
// Screen of a legacy VM: noVNC over a WebSocket; the daemon logs in to QEMU's VNC itself, so
// no password is asked here (nor ever sent to the browser).

let screen = null;

function closeScreen() {
  if (!screen) return;
  screen.disconnect();
  screen = null;
  $('#screen').hidden = true;
  delete $('#screen').dataset.connected;
}

async function openScreen(name) {
  closeScreen();
  const { default: RFB } = await import('/ui/vendor/novnc/core/rfb.js');
  const section = $('#screen');
  section.hidden = false;
  $('#screen-title').textContent = `Screen of ${name}`;
  $('#screen-state').textContent = 'connecting…';
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ui/ws/display/${encodeURIComponent(name)}`;
  screen = new RFB($('#screen-view'), url, { wsProtocols: ['binary'] });
  screen.scaleViewport = true;
  screen.focusOnClick = true;
  screen.addEventListener('connect', () => {
    $('#screen-state').textContent = 'connected';
    section.dataset.connected = '1';
  });
  screen.addEventListener('disconnect', (e) => {
    $('#screen-state').textContent = e.detail.clean ? 'closed' : 'the connection was lost';
    delete section.dataset.connected;
  });
  section.scrollIntoView();
}

// The console's text as shown (the browser test reads it).
window.svConsoleText = () => {
  if (!state.console) return '';
  const b = state.console.term.buffer.active;
  const lines = [];
  for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true));
  return lines.join('\n');
};

// ---------------------------------------------------------------------------------------------
// Apply: a profile file read in the browser, its plan from /v1/diff, then /v1/apply once
// confirmed (with an idempotency key: a retried click stores no second generation).

const applying = { text: '', file: '' };

function showPlan(plan) {
  $('#plan-profile').textContent = plan.profile;
  const words = { create: 'create', update: 'update', replace: 'replace', delete: 'remove' };
  const steps = plan.steps.length ? plan.steps.map((st) => el('li', { textContent: `${words[st.action] || st.action} ${st.name}${st.reason ? ` (${st.reason})` : ''}` }))
    : [el('li', { textContent: 'nothing to change' })];
  $('#plan-steps').replaceChildren(...steps);
  $('#plan-held').textContent = plan.held && plan.held.length ? `Held by the operator (lifted by this apply): ${plan.held.join(', ')}` : '';
  $('#plan').hidden = false;
  $('#apply-button').focus();
}

async function planProfile() {
  const file = $('#profile-file').files[0];
  if (!file) return;
  $('#plan').hidden = true;
  $('#apply-status').textContent = 'reading the plan…';
  try {
    applying.text = await file.text();
    applying.file = file.name;
    showPlan(await api('POST', '/v1/diff', { profile: applying.text, file: applying.file }));
    $('#apply-status').textContent = '';
  } catch (e) {
    $('#apply-status').textContent = `The profile was refused: ${e.message}`;
  }
}

async function applyProfile() {
  if (!(await confirmAction(`Apply ${applying.file}? The steps of the plan are carried out now.`))) return;
  $('#apply-status').textContent = 'applying…';
  // getRandomValues, not randomUUID: the page may be served over plain HTTP off loopback.
  const key = `dash-${Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('')}`;
  try {
    const r = await api('POST', '/v1/apply', { profile: applying.text, file: applying.file }, { 'Idempotency-Key': key });
    $('#apply-status').textContent = `Applied: ${r.profile} generation ${r.generation}`;
    $('#plan').hidden = true;
    refreshBox();
    refreshWorkloads();
  } catch (e) {
    $('#apply-status').textContent = `The apply failed: ${e.message}`;
  }
}

// ---------------------------------------------------------------------------------------------

async function logout() {
  try { await fetch('/logout', { method: 'POST', headers: { 'X-CSRF-Token': state.csrf }, credentials: 'same-origin' }); } catch { /* gone anyway */ }
  location.assign('/login');
}

async function main() {
  $('#logout').addEventListener('click', logout);
  $('#console-close').addEventListener('click', closeConsole);
  $('#screen-close').addEventListener('click', closeScreen);
  $('#profile-file').addEventListener('change', () => { $('#plan-button').disabled = !$('#profile-file').files.length; });
  $('#plan-button').addEventListener('click', planProfile);
  $('#apply-button').addEventListener('click', applyProfile);
  $('#apply-cancel').addEventListener('click', () => { $('#plan').hidden = true; });
  const session = await api('GET', '/ui/session');
  state.csrf = session.csrf;
  const box = await refreshBox();
  await refreshWorkloads();
  // The last 50 events for the list, then every new one as it is stored.
  followEvents(Math.max(0, box.lastEventId - 50));
  setInterval(refreshWorkloads, REFRESH_MS);
  setInterval(() => refreshBox().catch((e) => say(`Could not read the box: ${e.message}`)), 10000);
  document.body.dataset.ready = '1';
}

main().catch((e) => say(`The dashboard could not start: ${e.message}`));
