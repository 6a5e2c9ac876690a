// The MMS console's script (an ES module, no dependencies, no build step).
//
// It draws the page from the control API's JSON (the same calls mmsctl makes) with the bearer
// token the admin signed in with. The token lives in sessionStorage only: never in a cookie (so no
// other page can make the browser send it) and never in a URL the server sees (a `#token=` handed
// in by `make run` is read once and removed from the address bar; fragments are not sent).
//
// What the page shows is kept in the URL fragment (`#tenant=demo&user=...&state=Failed`), so the
// back button, reloads and links work, and none of it reaches the server's logs.
//
// Every text from the API goes into the page through textContent, never as HTML.

const TOKEN_KEY = 'mms.console.token';
/** How often the page reloads its data while a migration it shows is not final. */
const REFRESH_MS = 3000;
/** How often it looks for new migrations (started by mmsctl or a trigger) when all are final. */
const IDLE_REFRESH_MS = 15000;
/** Rows asked for per page of the users list. */
const PAGE_SIZE = 500;
/** Spelled as the API spells them; used when /openapi.json cannot be read. */
const FALLBACK_MIGRATION_TYPES = ['SfbToTeams', 'TeamsToTeams', 'AllToTeams', 'ToSameType', 'Undo'];
const RUNNING_STATES = new Set(['Pending', 'InProgress']);
/** What an undo's what-if outcome means for one meeting, in the dialog's words. */
const UNDO_OUTCOME_WORDS = {
  WouldUpdate: 'Restored',
  Unchanged: 'Unchanged',
  Skipped: 'Skipped',
  Failed: 'Failed',
};

const $ = (id) => document.getElementById(id);

/** A refusal of the API, with its status and the API's own code and message. */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Thrown when a newer drawing started: the older one stops without touching the page. */
class Superseded extends Error {}

// ---------------------------------------------------------------------------------------------
// The API

/** Call the API; the parsed JSON and the response headers, or an ApiError. */
async function api(path, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (e) {
    throw new ApiError(0, 'unreachable', `the API did not answer (${e.message}): is mms still running?`);
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    throw new ApiError(
      response.status,
      (json && json.Code) || 'http_error',
      (json && json.Message) || `the API answered HTTP ${response.status} to ${method} ${path}`,
    );
  }
  return { json, headers: response.headers };
}

const enc = encodeURIComponent;
const tenantPath = (tenant) => `/v1/tenants/${enc(tenant)}`;

// ---------------------------------------------------------------------------------------------
// The fragment: what the page shows

/** The fragment's parameters. */
function fragment() {
  return new URLSearchParams(location.hash.replace(/^#/, ''));
}

/** A fragment link with `changes` applied (a null value removes the key). */
function linkWith(changes, base = fragment()) {
  const params = new URLSearchParams(base);
  params.delete('token');
  for (const [key, value] of Object.entries(changes)) {
    if (value === null || value === undefined || value === '') params.delete(key);
    else params.set(key, value);
  }
  const text = params.toString();
  return text ? `#${text}` : '#';
}

/** Read a `#token=...` once: keep it in sessionStorage and take it out of the address bar. */
function takeTokenFromFragment() {
  const params = fragment();
  if (!params.has('token')) return;
  const token = (params.get('token') || '').trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  params.delete('token');
  const rest = params.toString();
  history.replaceState(null, '', `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`);
}

// ---------------------------------------------------------------------------------------------
// Building the page (textContent only)

/** An element with attributes (`class`, `href`, ..., `dataset` entries as `data-*`) and children. */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A table row whose cells carry their column's name (shown beside the value on a phone). */
function row(table, cells) {
  const labels = [...table.tHead.rows[0].cells].map((th) => th.textContent);
  const tr = el('tr');
  cells.forEach((cell, index) => {
    const { content, className, header } =
      cell && typeof cell === 'object' && !(cell instanceof Node) ? cell : { content: cell };
    const td = el(header ? 'th' : 'td', {
      'data-label': labels[index],
      class: className,
      scope: header ? 'row' : undefined,
    });
    if (content instanceof Node) td.append(content);
    else td.textContent = content === undefined || content === null ? '' : String(content);
    tr.append(td);
  });
  return tr;
}

/** What finds a focusable element of a table again once its rows are drawn anew. */
function focusKey(node) {
  if (!(node instanceof HTMLElement)) return null;
  if (node.dataset.undo) return `button[data-undo="${CSS.escape(node.dataset.undo)}"]`;
  if (node.dataset.switch) return `button[data-switch="${CSS.escape(node.dataset.switch)}"]`;
  const href = node.getAttribute('href');
  return href ? `a[href="${CSS.escape(href)}"]` : null;
}

/** Replace the body of `table` with `rows`, or one row saying `empty`. Rows equal to the ones
 *  shown are left in place, and a redrawn table gives the focus back to the same link or button:
 *  a refresh must never take away the keyboard's place or a click in progress. */
function fillTable(table, rows, empty) {
  const body = table.tBodies[0];
  if (rows.length === 0) {
    const columns = table.tHead.rows[0].cells.length;
    rows = [el('tr', { class: 'empty' }, el('td', { colspan: columns, text: empty }))];
  }
  const shown = body.rows;
  if (rows.length === shown.length && rows.every((r, i) => r.outerHTML === shown[i].outerHTML)) return;
  const focused = body.contains(document.activeElement) ? focusKey(document.activeElement) : null;
  body.replaceChildren(...rows);
  const again = focused && body.querySelector(focused);
  if (again) again.focus();
}

function badge(value) {
  return el('span', { class: `badge badge-${String(value).toLowerCase()}`, text: value });
}

/** `2025-01-31T08:00:00.123Z` as `2025-01-31 08:00:00 UTC` in a <time>. */
function when(iso) {
  const text = String(iso).replace('T', ' ').replace(/\.\d+/, '').replace(/Z$|\+00:00$/, ' UTC');
  return el('time', { datetime: iso, text });
}

/** Meetings done / total with a <progress> bar. */
function progress(status) {
  const done = status.SucceededMeeting + status.FailedMeeting;
  const total = status.TotalMeeting;
  const text = total === 0 && status.State === 'Pending' ? 'not started' : `${done} / ${total}`;
  const wrap = el('span', { class: 'meter' });
  if (total > 0) {
    wrap.append(el('progress', { max: total, value: done, 'aria-hidden': 'true' }));
  }
  wrap.append(el('span', { text }));
  if (status.FailedMeeting > 0) wrap.append(el('span', { class: 'failed-count', text: ` (${status.FailedMeeting} failed)` }));
  return wrap;
}

// ---------------------------------------------------------------------------------------------
// Messages

function showAlert(message) {
  const alert = $('alert');
  alert.textContent = message;
  alert.hidden = false;
}

function clearAlert() {
  $('alert').hidden = true;
  $('alert').textContent = '';
}

function showStatus(message) {
  $('status').textContent = message;
}

/** The words a person needs for a refusal of the API. */
function explain(error, tenant) {
  if (!(error instanceof ApiError)) return `Something went wrong in the page: ${error.message}`;
  switch (error.status) {
    case 0:
      return error.message;
    case 401:
      return `This token was not accepted (401 ${error.code}): ${error.message}`;
    case 403:
      return `This token is not allowed to see tenant "${tenant}" (403 ${error.code}). The API says: ${error.message}`;
    default:
      return `The API refused (${error.status} ${error.code}): ${error.message}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Drawing

let generation = 0;
let refreshTimer = null;
let tenants = [];
/** Migrations whose undo what-if is being asked for: their button stays disabled across refreshes. */
const undoAsking = new Set();
/** Whether the alert on screen says the API did not answer (cleared once it answers again). */
let apiAway = false;

/** Start a new drawing: older ones in flight stop, a scheduled refresh is cancelled. */
function newDrawing() {
  generation += 1;
  clearTimeout(refreshTimer);
  refreshTimer = null;
  const mine = generation;
  return () => {
    if (mine !== generation) throw new Superseded();
  };
}

function scheduleRefresh(running) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => draw({ refresh: true }), running ? REFRESH_MS : IDLE_REFRESH_MS);
}

/** Show one view: 'sign-in', 'overview', 'user', or 'message' (the alert and tenant list alone). */
function showOnly(view) {
  $('sign-in').hidden = view !== 'sign-in';
  $('overview').hidden = view !== 'overview';
  $('user-view').hidden = view !== 'user';
  $('session').hidden = view === 'sign-in';
}

/** Draw what the fragment asks for. A refresh keeps the alert and the focus where they are. */
async function draw({ refresh = false } = {}) {
  const current = newDrawing();
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    showOnly('sign-in');
    return;
  }
  const params = fragment();
  let tenant = params.get('tenant') || '';
  try {
    if (!refresh || tenants.length === 0) {
      tenants = (await api('/v1/tenants')).json;
      current();
    }
    if (!tenant) tenant = tenants[0] || '';
    if (!refresh) drawTenantChoice(tenant);
    if (!tenant) {
      showOnly('message');
      clearData();
      showAlert('No tenant is visible to this token yet: create one with `mmsctl create-tenant`.');
      return;
    }
    if (!refresh || apiAway) clearAlert();
    apiAway = false;
    const running = params.get('user')
      ? await drawUser(tenant, params.get('user'), params.get('migration'), current)
      : await drawOverview(tenant, params, current, refresh);
    scheduleRefresh(running);
  } catch (error) {
    if (error instanceof Superseded) return;
    if (error instanceof ApiError && error.status === 401) {
      signOut(explain(error, tenant));
      return;
    }
    if (error instanceof ApiError && error.status === 0) {
      // The API is away (a restart, say): say so, keep what is shown, and try again.
      showAlert(`${explain(error, tenant)} Trying again every ${REFRESH_MS / 1000} s.`);
      apiAway = true;
      scheduleRefresh(true);
      return;
    }
    // Never leave another tenant's (or stale) data on screen beside a refusal.
    clearData();
    // A tenant the token may not see (or that does not exist) leaves only the message and the
    // tenant list; a refused filter keeps the form on screen so that it can be fixed.
    if (error instanceof ApiError && (error.status === 403 || error.code === 'tenant_not_found')) {
      showOnly('message');
    }
    showAlert(explain(error, tenant));
  }
}

function drawTenantChoice(tenant) {
  const select = $('tenant');
  const names = tenants.includes(tenant) || !tenant ? tenants : [...tenants, tenant];
  select.replaceChildren(...names.map((name) => el('option', { value: name, text: name })));
  select.value = tenant;
}

/** Empty every table and progress line (after a refusal, a sign-out, a tenant switch). */
function clearData() {
  for (const table of document.querySelectorAll('main table')) table.tBodies[0].replaceChildren();
  $('progress').textContent = '';
  $('user-progress').textContent = '';
  $('meetings-count').textContent = '';
  $('users-more').hidden = true;
  $('next-page').hidden = true;
}

/** The API's status query from the fragment's filters. */
function statusQuery(params) {
  const query = new URLSearchParams();
  const copy = (from, to) => params.get(from) && query.set(to, params.get(from));
  copy('state', 'state');
  copy('type', 'migrationType');
  copy('identity', 'identity');
  for (const [key, name] of [['from', 'startTime'], ['to', 'endTime']]) {
    const value = params.get(key);
    if (!value) continue;
    const time = new Date(value);
    if (Number.isNaN(time.getTime())) throw new ApiError(400, 'malformed_time', `"${value}" is not a date and time`);
    query.set(name, time.toISOString());
  }
  return query;
}

/** Summary, switches and users of `tenant`; true while something shown is still running. */
async function drawOverview(tenant, params, current, refresh) {
  showOnly('overview');
  // A refresh leaves the form alone: the admin may be typing the next filter.
  if (!refresh) fillFilters(params);
  const query = statusQuery(params);
  const offset = Number(params.get('offset') || 0);
  const page = new URLSearchParams(query);
  page.set('limit', PAGE_SIZE);
  if (offset > 0) page.set('offset', offset);
  const base = tenantPath(tenant);
  const [summary, list, migration, dialin] = await Promise.all([
    api(`${base}/migrations/summary?${query}`),
    api(`${base}/migrations?${page}`),
    api(`${base}/configuration/migration`),
    api(`${base}/configuration/dialin`),
  ]);
  current();
  drawSummary(summary.json);
  drawSwitches(tenant, migration.json, dialin.json);
  return drawUsers(tenant, list.json, list.headers.get('x-next-offset'), offset);
}

/** Users per state as one row (a column per state, as the API lists them), then per type. */
function drawSummary(summary) {
  const states = $('summary-states');
  states.tHead.rows[0].replaceChildren(...summary.States.map((s) =>
    el('th', { scope: 'col', class: `state-${s.State.toLowerCase()}`, text: s.State })));
  fillTable(states, [row(states, summary.States.map((s) => ({ content: s.UserCount, className: 'count' })))], '');
  fillTable($('summary-types'), summary.ByMigrationType.map((s) =>
    row($('summary-types'), [{ content: badge(s.State), header: true }, s.MigrationType, { content: s.UserCount, className: 'num' }])),
  'No migrations match.');
}

/** The two switches, each with a button that asks before it changes anything. */
function drawSwitches(tenant, migration, dialin) {
  const switches = [
    {
      name: 'MeetingMigrationEnabled',
      title: 'Meeting migration',
      on: migration.MeetingMigrationEnabled,
      path: `${tenantPath(tenant)}/configuration/migration`,
      offMeans: 'no automatic trigger queues anything; manual starts still run.',
    },
    {
      name: 'AutomaticallyMigrateUserMeetings',
      title: 'Migrate on audio-conferencing changes',
      on: dialin.AutomaticallyMigrateUserMeetings,
      path: `${tenantPath(tenant)}/configuration/dialin`,
      offMeans: 'audio-conferencing changes (T2) queue nothing; the other triggers keep running.',
    },
  ];
  const table = $('switches');
  fillTable(table, switches.map((s) => {
    const label = el('span', {}, el('span', { class: 'switch-title', text: s.title }), ' ',
      el('code', { text: s.name }), el('span', { class: 'hint block', text: `Off: ${s.offMeans}` }));
    const button = el('button', { type: 'button', class: 'secondary', text: s.on ? 'Turn off' : 'Turn on',
      'aria-label': `${s.on ? 'Turn off' : 'Turn on'} ${s.name}`, 'data-switch': s.name });
    button.addEventListener('click', () => confirmSwitch(tenant, s));
    return row(table, [{ content: label, header: true }, badge(s.on ? 'On' : 'Off'), button]);
  }), '');
}

/** Ask, then PUT the switch's configuration. */
function confirmSwitch(tenant, s) {
  const dialog = $('confirm');
  const turnOn = !s.on;
  $('confirm-title').textContent = `Turn ${s.name} ${turnOn ? 'on' : 'off'}?`;
  $('confirm-text').textContent = turnOn
    ? `Tenant "${tenant}": ${s.title} will be on again, and its triggers will queue migrations.`
    : `Tenant "${tenant}": ${s.title} will be off. Off: ${s.offMeans}`;
  $('confirm-ok').textContent = turnOn ? 'Turn on' : 'Turn off';
  const opener = document.activeElement;
  const close = () => {
    dialog.close();
    $('confirm-ok').onclick = null;
    if (opener instanceof HTMLElement) opener.focus();
  };
  $('confirm-cancel').onclick = close;
  $('confirm-ok').onclick = async () => {
    close();
    try {
      await api(s.path, { method: 'PUT', body: { [s.name]: turnOn } });
      showStatus(`${s.name} is now ${turnOn ? 'on' : 'off'} for tenant "${tenant}".`);
      await draw({ refresh: true });
      // The table was drawn anew: keep the keyboard on the same switch's new button.
      const again = document.querySelector(`#switches button[data-switch="${s.name}"]`);
      if (again) again.focus();
    } catch (error) {
      showAlert(explain(error, tenant));
    }
  };
  dialog.showModal();
  $('confirm-cancel').focus();
}

/** The users list: each user once, by their newest migration on this page. */
function drawUsers(tenant, rows, nextOffset, offset) {
  const newest = new Map();
  for (const status of rows) {
    if (!newest.has(status.UserPrincipalName)) newest.set(status.UserPrincipalName, status);
  }
  const table = $('users');
  const users = [...newest.values()];
  fillTable(table, users.map((s) => row(table, [
    { content: el('a', { href: linkWith({ tenant, user: s.UserPrincipalName, migration: null, offset: null }), text: s.UserPrincipalName }), header: true },
    badge(s.State),
    s.MigrationType,
    progress(s),
    { content: s.InvitesUpdate, className: 'num' },
    { content: s.RetryCount, className: 'num' },
    when(s.CreateDate),
    { content: s.HeldReason ? `Held: ${s.HeldReason}` : s.LastMessage, className: 'message' },
  ])), 'No migrations match: start one with `mmsctl start-meeting-migration`, or clear the filters.');

  const more = $('users-more');
  more.hidden = offset === 0 && !nextOffset;
  more.textContent = `Showing migrations ${offset + 1} to ${offset + rows.length}${nextOffset ? ' (more follow)' : ''}.`;
  const next = $('next-page');
  next.hidden = !nextOffset;
  next.onclick = () => { location.hash = linkWith({ offset: nextOffset }); };

  const running = users.filter((s) => RUNNING_STATES.has(s.State));
  setProgressLine($('progress'), users, running);
  return running.length > 0;
}

/** The live line: how many run and how far they are; says once when all are final. */
function setProgressLine(line, shown, running) {
  let text;
  if (shown.length === 0) text = '';
  else if (running.length === 0) text = `All ${shown.length} migration(s) shown are final.`;
  else {
    const done = running.reduce((n, s) => n + s.SucceededMeeting + s.FailedMeeting, 0);
    const total = running.reduce((n, s) => n + s.TotalMeeting, 0);
    text = `${running.length} of ${shown.length} still running: ${done} of ${total} meetings done. ` +
      `Refreshing every ${REFRESH_MS / 1000} s.`;
  }
  if (line.textContent !== text) line.textContent = text;
}

/** One user: their migrations, one migration's meetings, their history. True while one runs. */
async function drawUser(tenant, user, wanted, current) {
  showOnly('user');
  $('back').setAttribute('href', linkWith({ user: null, migration: null }));
  $('user-title').textContent = user;
  const base = tenantPath(tenant);
  const [list, history] = await Promise.all([
    api(`${base}/migrations?${new URLSearchParams({ identity: user })}`),
    api(`${base}/users/${enc(user)}/history`),
  ]);
  current();
  const rows = list.json;
  const chosen = rows.find((s) => s.CorrelationId === wanted) || rows[0];
  const table = $('user-migrations');
  fillTable(table, rows.map((s) => {
    const selected = chosen && s.CorrelationId === chosen.CorrelationId;
    // The short id keeps the table narrow; the meetings heading below shows the whole one.
    const link = el('span', {}, el('a', {
      href: linkWith({ migration: s.CorrelationId }),
      'aria-current': selected ? 'true' : undefined,
      title: s.CorrelationId,
    }, el('code', { text: s.CorrelationId.slice(0, 8) })), selected ? ' (shown below)' : '');
    const tr = row(table, [
      { content: link, header: true }, badge(s.State), s.MigrationType, s.Trigger, progress(s),
      { content: s.InvitesUpdate, className: 'num' }, when(s.CreateDate),
      { content: s.HeldReason ? `Held: ${s.HeldReason}` : s.LastMessage, className: 'message' },
      undoButton(tenant, s),
    ]);
    if (selected) tr.classList.add('selected');
    return tr;
  }), 'No migrations for this user yet.');

  const meetings = $('meetings');
  if (chosen) {
    const one = (await api(`${base}/migrations/${enc(chosen.CorrelationId)}`)).json;
    current();
    $('meetings-title').textContent = `Meetings of migration ${one.CorrelationId}`;
    const outcomes = ['Updated', 'Unchanged', 'Skipped', 'Failed']
      .map((kind) => `${one.Meetings.filter((m) => m.Outcome === kind).length} ${kind.toLowerCase()}`);
    $('meetings-count').textContent = `${one.Meetings.length} meeting(s): ${outcomes.join(', ')}.`;
    const byName = (a, b) => (a.Summary || a.Uid).localeCompare(b.Summary || b.Uid, undefined, { numeric: true });
    fillTable(meetings, [...one.Meetings].sort(byName).map((m) => row(meetings, [
      { content: m.Summary || m.Uid, header: true }, badge(m.Outcome), { content: m.Reason, className: 'message' },
      { content: m.Sequence ?? '', className: 'num' }, { content: m.Recipients, className: 'num' },
    ])), RUNNING_STATES.has(one.State) ? 'No meeting done yet.' : 'This migration found no meetings.');
  } else {
    $('meetings-title').textContent = 'Meetings';
    $('meetings-count').textContent = '';
    fillTable(meetings, [], 'No migration to show.');
  }

  const historyTable = $('history');
  fillTable(historyTable, history.json.map((h) => row(historyTable, [
    { content: when(h.At), header: true }, h.Event,
    h.CorrelationId ? el('code', { text: h.CorrelationId.slice(0, 8), title: h.CorrelationId }) : '',
    { content: h.Message, className: 'message' },
  ])), 'No history.');

  const running = rows.filter((s) => RUNNING_STATES.has(s.State));
  setProgressLine($('user-progress'), rows, running);
  return running.length > 0;
}

// ---------------------------------------------------------------------------------------------
// Undo (issue 9.2): what-if first, then the undo, which is a migration of its own

/** Whether the console offers to undo `status`: it ended Succeeded and is not itself an undo (the
 *  API refuses those with 409 nothing_to_undo). A Succeeded migration that saved no meeting still
 *  gets the button; the API's refusal then says why, in the alert. */
function undoable(status) {
  return status.State === 'Succeeded' && status.MigrationType !== 'Undo';
}

/** The "Undo…" button of one migration's row, or nothing. */
function undoButton(tenant, status) {
  if (!undoable(status)) return '';
  const id = status.CorrelationId;
  const button = el('button', {
    type: 'button',
    class: 'secondary',
    text: 'Undo…',
    'aria-label': `Undo… migration ${id.slice(0, 8)}`,
    'data-undo': id,
    disabled: undoAsking.has(id),
  });
  button.addEventListener('click', () => askUndo(tenant, status));
  return button;
}

/** Put the keyboard back on the undo button of migration `id` (the table may have been redrawn). */
function focusUndoButton(id) {
  const button = document.querySelector(`#user-migrations button[data-undo="${CSS.escape(id)}"]`);
  if (button) button.focus();
}

/** A refusal of the undo, in words: the API's status, code and message (409 nothing_to_undo...). */
function explainUndo(error, tenant, id) {
  if (!(error instanceof ApiError) || error.status === 0 || error.status === 401) return explain(error, tenant);
  return `The undo of migration ${id} was refused (${error.status} ${error.code}): ${error.message}`;
}

/** Ask the API what undoing `undone` would do, show it, and undo only if the admin confirms. */
async function askUndo(tenant, undone) {
  const id = undone.CorrelationId;
  const path = `${tenantPath(tenant)}/migrations/${enc(id)}:undo`;
  if (undoAsking.has(id)) return;
  undoAsking.add(id);
  for (const b of document.querySelectorAll(`button[data-undo="${CSS.escape(id)}"]`)) b.disabled = true;
  clearAlert();
  // Said to screen readers only: a visible line would push the table down under the pointer.
  $('undo-live').textContent = `Asking the API what undoing migration ${id} would do…`;
  let preview;
  try {
    preview = (await api(`${path}?whatIf=true`, { method: 'POST' })).json;
  } catch (error) {
    showAlert(explainUndo(error, tenant, id));
    return;
  } finally {
    $('undo-live').textContent = '';
    undoAsking.delete(id);
    for (const b of document.querySelectorAll(`button[data-undo="${CSS.escape(id)}"]`)) b.disabled = false;
    focusUndoButton(id);
  }
  if (!(await confirmUndo(undone, preview))) {
    // Cancel (or Escape): nothing was sent; the dialog closing and the focus back say so.
    focusUndoButton(id);
    return;
  }
  let started;
  try {
    started = (await api(path, { method: 'POST' })).json;
  } catch (error) {
    showAlert(explainUndo(error, tenant, id));
    focusUndoButton(id);
    return;
  }
  showStatus(`${started.Message}. The undo is migration ${started.CorrelationId}; ` +
    'it is shown below and refreshes while it runs.');
  // Show the undo itself (no hashchange: this drawing is awaited so that focus can follow it).
  history.pushState(null, '', linkWith({ migration: started.CorrelationId }));
  await draw();
  const shown = document.querySelector('#user-migrations a[aria-current="true"]');
  if (shown) shown.focus();
}

/** The what-if in the undo dialog; resolves true when the admin confirms, false on Cancel or Escape.
 *  Cancel has the focus first: Enter alone never undoes anything. */
function confirmUndo(undone, preview) {
  const dialog = $('undo-confirm');
  const id = undone.CorrelationId;
  const restored = preview.WouldUpdate;
  $('undo-title').textContent = `Undo migration ${id.slice(0, 8)} of ${undone.UserPrincipalName}?`;
  const others = [
    [preview.Skipped, 'skipped'],
    [preview.Unchanged, 'unchanged'],
    [preview.Failed, 'failed'],
  ].filter(([n]) => n > 0).map(([n, word]) => `${n} ${word}`);
  $('undo-text').textContent =
    `Migration ${id} (${undone.MigrationType}, ${undone.Trigger}): ${restored} meeting(s) would get their ` +
    'previous online block back, and their attendees one update each' +
    `${others.length ? `; ${others.join(', ')} (see why below)` : ''}.` +
    `${preview.Capped ? ` Only the first ${preview.Items.length} meetings are listed.` : ''}`;
  const table = $('undo-meetings');
  const byName = (a, b) => (a.Summary || a.Uid || a.Href).localeCompare(b.Summary || b.Uid || b.Href, undefined, { numeric: true });
  fillTable(table, [...preview.Items].sort(byName).map((item) => row(table, [
    { content: item.Summary || item.Uid || item.Href, header: true },
    badge(UNDO_OUTCOME_WORDS[item.Outcome] || item.Outcome),
    { content: item.Reason, className: 'message' },
  ])), 'The migration saved no meeting that is still there.');
  $('undo-ok').textContent = restored > 0 ? `Undo: restore ${restored} meeting(s)` : 'Undo anyway (restores nothing)';
  return new Promise((resolve) => {
    dialog.returnValue = '';
    $('undo-cancel').onclick = () => dialog.close('cancel');
    $('undo-ok').onclick = () => dialog.close('undo');
    // `close` also follows Escape (returnValue stays empty): that is a cancel.
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'undo'), { once: true });
    dialog.showModal();
    $('undo-cancel').focus();
  });
}

// ---------------------------------------------------------------------------------------------
// Forms

/** The filter form from the fragment; open, and its summary saying so, when any is set. */
function fillFilters(params) {
  const set = ['state', 'type', 'from', 'to', 'identity'].filter((key) => params.get(key));
  $('filters-summary').textContent = set.length ? `Filters (${set.length} set)` : 'Filters';
  if (set.length) $('filters-box').open = true;
  $('filter-state').value = params.get('state') || '';
  $('filter-type').value = params.get('type') || '';
  $('filter-from').value = params.get('from') || '';
  $('filter-to').value = params.get('to') || '';
  $('filter-identity').value = params.get('identity') || '';
}

function applyFilters(event) {
  event.preventDefault();
  const from = $('filter-from').value;
  const to = $('filter-to').value;
  if (from && to && new Date(from) > new Date(to)) {
    showAlert('"Created from" is after "Created until": swap them, or clear one.');
    $('filter-from').focus();
    return;
  }
  location.hash = linkWith({
    state: $('filter-state').value,
    type: $('filter-type').value,
    from,
    to,
    identity: $('filter-identity').value.trim(),
    offset: null,
  });
}

function signIn(event) {
  event.preventDefault();
  const token = $('token').value.trim();
  if (!token) {
    showAlert('Type the API token first: the operator token, or a tenant admin\'s (mmsctl create-token).');
    $('token').focus();
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $('token').value = '';
  clearAlert();
  draw();
}

function signOut(reason) {
  sessionStorage.removeItem(TOKEN_KEY);
  newDrawing();
  tenants = [];
  clearData();
  $('tenant').replaceChildren();
  showOnly('sign-in');
  if (reason) showAlert(reason);
  else {
    clearAlert();
    showStatus('Signed out: the token is forgotten by this tab.');
  }
  $('token').focus();
}

/** The migration types the API knows (from its OpenAPI document), for the filter. */
async function loadMigrationTypes() {
  let types = FALLBACK_MIGRATION_TYPES;
  try {
    const doc = (await api('/openapi.json')).json;
    const listed = doc?.components?.schemas?.MigrationType?.enum;
    if (Array.isArray(listed) && listed.length > 0) types = listed;
  } catch {
    // The fallback list is right for this build; only newer types would be missing.
  }
  const select = $('filter-type');
  const chosen = fragment().get('type') || '';
  select.replaceChildren(el('option', { value: '', text: 'Any type' }), ...types.map((t) => el('option', { text: t })));
  select.value = chosen;
}

// ---------------------------------------------------------------------------------------------
// Start

function start() {
  takeTokenFromFragment();
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', () => signOut());
  $('filters').addEventListener('submit', applyFilters);
  $('clear-filters').addEventListener('click', () => {
    location.hash = linkWith({ state: null, type: null, from: null, to: null, identity: null, offset: null });
  });
  $('tenant').addEventListener('change', (event) => {
    location.hash = linkWith({ tenant: event.target.value }, new URLSearchParams());
  });
  window.addEventListener('hashchange', () => {
    takeTokenFromFragment();
    draw();
  });
  loadMigrationTypes().finally(() => draw());
}

start();
