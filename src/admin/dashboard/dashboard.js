// The pool dashboard in the browser: takes the admin token from the URL fragment (or a pasted one),
// polls GET /status every 2 s, renders every server, sends drain/resume/block/unblock, and charts
// bindings per server over the last 10 minutes with uPlot (loaded before this module as a global).
/* global document, window, location, history, sessionStorage, fetch, AbortController, uPlot */
import { ACTIONS, BindingHistory, DrainProgress, actionsFor, poolHeading, poolsOf, refusalOf, rowOf } from './model.js';

const POLL_INTERVAL_MS = 2000;
const HISTORY_MS = 10 * 60 * 1000;
// GET /status asks every server for its own status (1 s timeout each): give it room before calling the API gone.
const REQUEST_TIMEOUT_MS = 8000;
const TOKEN_KEY = 'dnslb.adminToken';
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
// No pool column: every server sits under its pool's heading.
const COLUMNS = ['server', 'pid', 'admin', 'state', 'available', 'hlb', 'primary', 'backup', 'dialogs', 'version'];

const element = (id) => document.getElementById(id);
const clockTime = (ms) => new Date(ms).toLocaleTimeString();

/**
 * The token arrives in the fragment (`#token=…`), which browsers never send to a server nor put in a
 * Referer. Keep it for this tab only (sessionStorage, not localStorage) and take it out of the address
 * bar and the history at once, so that it is not bookmarked, shared or shown over a shoulder.
 */
function tokenFromFragment() {
  const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (match) {
    if (match[1]) sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

let token = tokenFromFragment();
const bindings = new BindingHistory(HISTORY_MS);
let plot;
let plotNames = '';
let pollTimer;
let polling = false;
let pollAgain = false;
let lastAnswerAtMs;
let failingSinceMs;

async function call(method, path, body) {
  const controller = new AbortController();
  const timer = window.setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  try {
    const response = await fetch(path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      signal: controller.signal,
    });
    const parsed = await response.json().catch(() => null);
    return { status: response.status, body: parsed };
  } finally {
    window.clearTimeout(timer);
  }
}

function showLogin(why) {
  window.clearTimeout(pollTimer);
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  element('main').hidden = true;
  element('banner').hidden = true;
  element('login-why').textContent = why;
  element('login').hidden = false;
  element('token-input').focus();
}

function startWith(newToken) {
  token = newToken;
  element('login').hidden = true;
  element('main').hidden = false;
  void pollNow();
}

// --- polling -------------------------------------------------------------------------------------

function schedule(delayMs) {
  window.clearTimeout(pollTimer);
  pollTimer = window.setTimeout(() => void pollNow(), delayMs);
}

/** One poll at a time; a request for another while one runs (after an action) runs right after it. */
async function pollNow() {
  if (polling) {
    pollAgain = true;
    return;
  }
  polling = true;
  const startedMs = Date.now();
  try {
    const { status, body } = await call('GET', '/status');
    if (status === 401) return showLogin('The admin API refused this token. Paste the one in the data dir (admin-token).');
    if (status !== 200) throw new Error(refusalOf(status, body).text);
    answered(body);
  } catch (error) {
    notAnswering(error);
  } finally {
    polling = false;
  }
  if (!token) return;
  if (pollAgain) {
    pollAgain = false;
    return pollNow();
  }
  schedule(Math.max(0, POLL_INTERVAL_MS - (Date.now() - startedMs)));
}

function answered(status) {
  const nowMs = Date.now();
  lastAnswerAtMs = nowMs;
  failingSinceMs = undefined;
  document.body.dataset.connection = 'ok';
  element('banner').hidden = true;
  element('servers-section').hidden = false;
  const dns = status.dns ? `DNS ${status.dns.state}, pid ${status.dns.pid ?? '-'}` : 'DNS not a child of this node';
  element('topology-version').textContent = String(status.topologyVersion);
  element('store-revision').textContent = String(status.revision);
  element('dns').textContent = dns;
  element('updated').textContent = clockTime(nowMs);
  renderServers(status.servers, status.pools);
  bindings.add(nowMs, status.servers);
  drawChart();
}

/**
 * The API stopped answering (the system was stopped, or the network is gone): say so plainly and
 * take the table away, because numbers that silently stop changing look like a healthy idle pool.
 */
function notAnswering(error) {
  const nowMs = Date.now();
  failingSinceMs ??= nowMs;
  document.body.dataset.connection = 'lost';
  const reason = error.name === 'AbortError' ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s` : error.message;
  const last = lastAnswerAtMs ? `last answer at ${clockTime(lastAnswerAtMs)}` : 'no answer yet';
  element('banner').textContent = `The admin API is not answering since ${clockTime(failingSinceMs)} (${reason}); ${last}. The system may be stopped. Retrying every ${POLL_INTERVAL_MS / 1000} s.`;
  element('banner').hidden = false;
  element('servers-section').hidden = true;
  element('message').hidden = true;
  for (const id of ['topology-version', 'store-revision', 'dns']) element(id).textContent = '-';
  bindings.add(nowMs, null);
  drawChart();
}

// --- the table -----------------------------------------------------------------------------------

/** Rows are kept per server and updated in place, so a button under the pointer survives a refresh. */
const rows = new Map();
/** One heading row per pool, above its servers. */
const poolRows = new Map();
const drains = new DrainProgress();

function makePoolRow(pool) {
  const tr = document.createElement('tr');
  tr.className = 'pool';
  tr.dataset.pool = pool;
  const td = document.createElement('td');
  td.colSpan = COLUMNS.length + 2;
  tr.append(td);
  return { tr, cell: td };
}

/**
 * A drain's progress in its own cell: a bar and "handed over / to hand over" (or what is left when
 * the server keeps no record), with the detail as a tooltip. Empty when the server is not draining.
 */
function showDrain(cell, progress) {
  let bar = cell.querySelector('progress');
  let label = cell.querySelector('span');
  if (!progress) {
    bar?.remove();
    label?.remove();
    delete cell.dataset.fraction;
    return;
  }
  if (!bar) {
    bar = document.createElement('progress');
    bar.className = 'drain';
    bar.max = 1;
    label = document.createElement('span');
    label.className = 'drain-label';
    cell.append(bar, label);
  }
  bar.value = progress.fraction;
  cell.dataset.fraction = String(progress.fraction);
  const percent = `${Math.round(progress.fraction * 100)} %`;
  if (progress.handedOver !== undefined) {
    label.textContent = `${progress.handedOver}/${progress.handedOver + progress.left}`;
    bar.title = `${percent}: ${progress.handedOver} users handed over; ${progress.left} bindings and dialogs left`;
  } else {
    label.textContent = percent;
    bar.title = progress.left === undefined ? `${percent} drained; the server does not answer` : `${percent} drained; ${progress.left} bindings and dialogs left`;
  }
  bar.setAttribute('aria-label', bar.title);
}

function makeRow(server) {
  const tr = document.createElement('tr');
  tr.dataset.server = server;
  const cells = {};
  for (const column of COLUMNS) {
    const td = document.createElement('td');
    td.dataset.field = column;
    tr.append(td);
    cells[column] = td;
    if (column === 'state') {
      cells.drain = document.createElement('td');
      cells.drain.dataset.field = 'drain';
      tr.append(cells.drain);
    }
  }
  const actions = document.createElement('td');
  actions.className = 'actions';
  const buttons = {};
  for (const action of ACTIONS) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = action;
    button.dataset.action = action;
    button.addEventListener('click', () => void act(server, action, false));
    actions.append(button);
    buttons[action] = button;
  }
  tr.append(actions);
  return { tr, cells, buttons };
}

function renderServers(servers, poolList) {
  const body = element('servers-body');
  const names = new Set(servers.map((entry) => entry.server));
  for (const [name, row] of rows) {
    if (names.has(name)) continue;
    row.tr.remove();
    rows.delete(name);
  }
  const pools = poolsOf(servers, poolList);
  for (const [pool, row] of poolRows) {
    if (pools.some((group) => group.pool === pool)) continue;
    row.tr.remove();
    poolRows.delete(pool);
  }
  // Pool by pool, each under its heading, servers in the API's order (appending an attached row moves it).
  for (const group of pools) {
    let heading = poolRows.get(group.pool);
    if (!heading) {
      heading = makePoolRow(group.pool);
      poolRows.set(group.pool, heading);
    }
    body.append(heading.tr);
    heading.cell.textContent = poolHeading(group);
    heading.tr.dataset.runs = String(group.runs);
    for (const entry of group.servers) {
      let row = rows.get(entry.server);
      if (!row) {
        row = makeRow(entry.server);
        rows.set(entry.server, row);
      }
      body.append(row.tr);
      const view = rowOf(entry);
      for (const column of COLUMNS) row.cells[column].textContent = view[column];
      row.cells.admin.title = view.adminNote;
      row.cells.state.title = view.error;
      // HAProxy's first word (UP, DRAIN, DOWN, MAINT) colours the HLB cell; its checks' detail is in the tooltip.
      row.cells.hlb.dataset.word = view.hlb.split(/[(/]/)[0];
      row.tr.dataset.state = view.state;
      showDrain(row.cells.drain, drains.observe(entry));
      const allowed = actionsFor(view.admin);
      for (const action of ACTIONS) row.buttons[action].disabled = !allowed[action];
    }
  }
}

// --- actions -------------------------------------------------------------------------------------

function showMessage(kind, text, forceable) {
  const message = element('message');
  message.dataset.kind = kind;
  element('message-text').textContent = text;
  const force = element('force');
  force.hidden = !forceable;
  if (forceable) {
    force.textContent = `Force ${forceable.action} of ${forceable.server} anyway`;
    force.onclick = () => void act(forceable.server, forceable.action, true);
  }
  message.hidden = false;
}

async function act(server, action, force) {
  const reason = element('reason').value.trim() || `${action} from the dashboard`;
  showMessage('pending', `${action} ${server}${force ? ' (forced)' : ''}…`);
  try {
    const { status, body } = await call('POST', `/servers/${encodeURIComponent(server)}/${action}`, { by: 'dashboard', reason, ...(force ? { force: true } : {}) });
    if (status === 401) return showLogin('The admin API refused this token. Paste the one in the data dir (admin-token).');
    if (status === 200) showMessage('done', `${action} ${server}: done${force ? ' (forced past the quorum guard)' : ''}`);
    else {
      const refusal = refusalOf(status, body);
      showMessage('refused', refusal.text, refusal.forceable ? { server, action } : undefined);
    }
  } catch (error) {
    showMessage('refused', `${action} ${server}: the admin API did not answer (${error.message})`);
  }
  void pollNow();
}

// --- the chart -----------------------------------------------------------------------------------

function chartWidth() {
  return Math.max(320, element('chart').clientWidth || 800);
}

function drawChart() {
  const data = bindings.data();
  const names = bindings.names.join('\n');
  // uPlot's series are fixed at creation: a new server (commissioned) means a new chart.
  if (!plot || names !== plotNames) {
    plot?.destroy();
    plotNames = names;
    plot = new uPlot(
      {
        width: chartWidth(),
        height: 260,
        scales: { x: { time: true }, y: { range: (_self, _min, max) => [0, Math.max(1, max)] } },
        axes: [{}, { label: 'bindings' }],
        series: [{}, ...bindings.names.map((name, index) => ({ label: name, stroke: COLORS[index % COLORS.length], width: 2 }))],
      },
      data,
      element('chart'),
    );
  } else plot.setData(data);
}

window.addEventListener('resize', () => plot?.setSize({ width: chartWidth(), height: 260 }));

// For tests and the curious: the data the chart draws, as uPlot holds it.
window.dnslbDashboard = { chartData: () => plot?.data ?? null, seriesNames: () => [...bindings.names] };

// --- start ---------------------------------------------------------------------------------------

element('login').addEventListener('submit', (event) => {
  event.preventDefault();
  const pasted = element('token-input').value.trim();
  if (!pasted) return;
  element('token-input').value = '';
  sessionStorage.setItem(TOKEN_KEY, pasted);
  startWith(pasted);
});
element('forget').addEventListener('click', () => showLogin('Token forgotten for this tab.'));
element('dismiss').addEventListener('click', () => {
  element('message').hidden = true;
});

if (token) startWith(token);
else showLogin('Open the URL `dnslb up` printed (it carries the token after #), or paste the admin token (the admin-token file in the data dir).');
