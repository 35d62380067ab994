// Durable Streams inspector: a plain ES module, no framework. Everything it shows is read through the stream API
// (GET/HEAD/POST/PUT/DELETE under the streams mount) with the user's bearer token, kept in sessionStorage.

/** Most rows kept in the message list; older rows are dropped from the top past this (a note says so). */
export const MAX_ROWS = 5000;
/**
 * Rows per block: the message list holds blocks of rows, and an off-screen block skips style, layout and paint as a
 * whole (content-visibility per block, not per row: per row, Chromium tracks 5,000 elements on every frame).
 */
const BLOCK_ROWS = 100;
/** Rows rendered per "load more" from an already fetched response (one catch-up response per page). */
const PAGE_ROWS = 500;
const TOKEN_KEY = 'ds-inspector-token';
const RECENT_KEY = 'ds-inspector-recent';
const REGISTRY = '__registry__'; // DurableStreams.Protocol.RegistryStream.Name

const $ = (id) => document.getElementById(id);
const streamsPath = (document.querySelector('meta[name="ds-streams-path"]')?.content || '/v1/stream').replace(/\/+$/, '');

const state = {
  name: null,
  info: null,          // { contentType, kind, tail, closed, ttl, expiresAt, forkedFrom }
  nextOffset: '-1',    // where the next page (or the live tail) reads from
  upToDate: false,
  buffer: [],          // fetched but not yet rendered rows of the current response
  rowCount: 0,         // rows currently in the DOM
  received: 0,         // messages received since the view opened
  dropped: 0,
  live: null,          // the running live reader: { stop() }
  paused: false,
  pending: [],         // rows waiting for the next animation frame
  frameRequested: false,
  rateWindow: [],      // [time, count] pairs of the last seconds
  readOnly: false,
  names: [],
  source: 'recent',
  registry: new Map(), // name → the registry's value for it (contentType, createdAt, forkedFrom)
  generation: 0,       // bumps on every (re)open, so stale responses are ignored
};

// ---------- HTTP with the bearer token ----------

function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

function streamUrl(name, query) {
  const path = name.split('/').map(encodeURIComponent).join('/');
  return `${streamsPath}/${path}${query ? '?' + new URLSearchParams(query) : ''}`;
}

class HttpProblem extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** fetch with the token; a 401 asks for a token and retries; other failures become HttpProblem with the server's text. */
async function api(method, name, { query, headers = {}, body, signal, allow = [] } = {}) {
  for (let attempt = 0; ; attempt++) {
    const h = new Headers(headers);
    if (token()) h.set('Authorization', `Bearer ${token()}`);
    const res = await fetch(streamUrl(name, query), { method, headers: h, body, signal, cache: 'no-cache' });
    if (res.ok || allow.includes(res.status)) return res;
    const retained = res.headers.get('Stream-Retained-Start');
    if (res.status === 410 && retained) throw new HttpProblem(410, beforeRetainedStart(query?.offset, retained));
    const text = method === 'HEAD' ? '' : (await res.text()).trim();
    if (res.status === 401 && attempt < 3) {
      const given = await askToken(explain(401, text));
      if (given) continue;
    }
    if (res.status === 403 && method !== 'GET' && method !== 'HEAD') setReadOnly(true);
    throw new HttpProblem(res.status, explain(res.status, text));
  }
}

/** A 410 with Stream-Retained-Start: retention dropped the data below that offset; say where to read from instead. */
function beforeRetainedStart(offset, retained) {
  return `410: offset ${offset ?? ''} is before the stream's retained start ${retained} (retention or compaction dropped that data); `
    + `read from the start (clear the offset) or from ${retained}.`;
}

function explain(status, text) {
  switch (status) {
    case 401: return `401 Unauthorized: the server needs a bearer token${token() ? ' and did not accept this one' : ''}. ${text}`.trim();
    case 403: return `403 Forbidden: this token may read but not write. ${text}`.trim();
    case 404: return `404: no such stream. ${text}`.trim();
    default: return `${status}: ${text || 'request failed'}`;
  }
}

function showBanner(message) {
  const banner = $('banner');
  banner.textContent = message || '';
  banner.hidden = !message;
}

// ---------- token dialog ----------

let tokenWaiters = [];
function askToken(reason) {
  return new Promise((resolve) => {
    tokenWaiters.push(resolve);
    const dialog = $('token-dialog');
    $('token-reason').textContent = reason || 'Enter a bearer token for this server.';
    if (!dialog.open) {
      $('token-input').value = '';
      dialog.showModal();
      $('token-input').focus();
    }
  });
}

function setupTokenDialog() {
  const dialog = $('token-dialog');
  dialog.addEventListener('close', () => {
    let given = false;
    if (dialog.returnValue === 'ok' && $('token-input').value.trim()) {
      sessionStorage.setItem(TOKEN_KEY, $('token-input').value.trim());
      setReadOnly(false);
      given = true;
    } else if (dialog.returnValue === 'clear') {
      sessionStorage.removeItem(TOKEN_KEY);
    }
    updateAuthStatus();
    const waiters = tokenWaiters;
    tokenWaiters = [];
    waiters.forEach((w) => w(given));
  });
  $('token-button').addEventListener('click', () => askToken('Enter a bearer token; it is kept for this browser tab only.'));
}

function updateAuthStatus() {
  $('auth-status').textContent = token() ? (state.readOnly ? 'token set (read only)' : 'token set') : 'no token';
}

function setReadOnly(readOnly) {
  state.readOnly = readOnly;
  for (const el of document.querySelectorAll('.writes button, .writes textarea, .writes input, .writes select')) el.disabled = readOnly;
  const note = $('write-note');
  note.hidden = !readOnly;
  note.textContent = readOnly ? 'Writing is disabled: the server answered 403, this token may only read. Enter a write token to append, create, close or delete.' : '';
  updateAuthStatus();
}

// ---------- streams list ----------

function recentNames() {
  try { return JSON.parse(localStorage.getItem(RECENT_KEY) || '[]'); } catch { return []; }
}

function remember(name) {
  const names = [name, ...recentNames().filter((n) => n !== name)].slice(0, 50);
  localStorage.setItem(RECENT_KEY, JSON.stringify(names));
}

/** Reads the whole registry (one catch-up response at a time) and replays its insert/delete events into state.registry. */
async function loadRegistry() {
  const present = new Map();
  let offset = '-1';
  for (let i = 0; i < 10000; i++) {
    const res = await api('GET', REGISTRY, { query: { offset }, allow: [404] });
    if (res.status === 404) return null;
    const events = await res.json();
    applyRegistryEvents(present, events);
    offset = res.headers.get('Stream-Next-Offset') || offset;
    if (res.headers.get('Stream-Up-To-Date') === 'true' || events.length === 0) break;
  }
  return { present, offset };
}

/** Replays registry change events into a name → value map; returns the names inserted and deleted. */
function applyRegistryEvents(present, events) {
  const inserted = [];
  const deleted = [];
  for (const e of events) {
    if (e?.type !== 'stream' || typeof e.key !== 'string') continue;
    if (e.headers?.operation === 'delete') {
      if (present.delete(e.key)) deleted.push(e.key);
    } else {
      if (!present.has(e.key)) inserted.push(e.key);
      present.set(e.key, e.value || {});
    }
  }
  return { inserted, deleted };
}

let registryTail = null;

async function refreshList() {
  registryTail?.stop();
  registryTail = null;
  let registry = null;
  try {
    registry = await loadRegistry();
  } catch (e) {
    showBanner(`Could not read the stream registry: ${e.message}`);
  }
  state.source = registry ? 'registry' : 'recent';
  state.registry = registry?.present || new Map();
  state.names = registry ? [...registry.present.keys()].sort() : recentNames();
  updateListSource();
  renderList();
  if (registry) followRegistry(registry.offset);
}

function updateListSource() {
  $('list-source').textContent = state.source === 'registry'
    ? `${state.names.length} stream(s) from the registry (${REGISTRY}), kept up to date.`
    : 'This server keeps no registry (serve --registry): recently opened streams are listed.';
}

/** Follows the registry live: a stream created elsewhere appears, a deleted one goes, without a reload. */
function followRegistry(offset) {
  const tail = follow(REGISTRY, 'json', offset, {
    rows: (rows) => {
      if (registryTail !== tail) return;
      const changes = applyRegistryEvents(state.registry, rows.map((r) => r.value));
      // Net effect of the batch: a stream created and deleted in it never shows; one deleted and created again stays.
      const deleted = changes.deleted.filter((name) => state.names.includes(name));
      const inserted = changes.inserted.filter((name) => state.registry.has(name));
      for (const name of deleted) {
        state.names.splice(state.names.indexOf(name), 1);
        listItems.get(name)?.remove();
        listItems.delete(name);
        if (!$('stream-list').querySelector('button[tabindex="0"]')) setRovingItem($('stream-list').querySelector('button'));
        if (name === state.name) showBanner(`'${name}' was deleted (the registry says so).`);
      }
      for (const name of inserted) insertListItem(name);
      if (inserted.length || deleted.length) updateListSource();
    },
    moved: () => {},
    status: () => {},
    closed: () => {},
    failed: (message) => { if (registryTail === tail) $('list-source').textContent = `${state.names.length} stream(s) from the registry; not following it: ${message}`; },
  });
  registryTail = tail;
}

let rowObserver = null;
/** The list's items by stream name (the ones shown under the current filter). */
const listItems = new Map();

function renderList() {
  const prefix = $('filter').value;
  const list = $('stream-list');
  rowObserver?.disconnect();
  rowObserver = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      rowObserver.unobserve(entry.target);
      fillListInfo(entry.target);
    }
  }, { root: $('sidebar') });
  listItems.clear();
  const fragment = document.createDocumentFragment();
  for (const name of state.names) {
    if (!name.startsWith(prefix)) continue;
    fragment.append(listItem(name));
  }
  list.replaceChildren(fragment);
  setRovingItem(list.querySelector('button[aria-current="true"]') || list.querySelector('button'));
}

/** One row of the streams list; its metadata is filled in when it scrolls into view. */
function listItem(name) {
  const li = document.createElement('li');
  li.dataset.name = name;
  const button = document.createElement('button');
  button.type = 'button';
  button.tabIndex = -1;
  if (name === state.name) button.setAttribute('aria-current', 'true');
  const label = document.createElement('span');
  label.className = 'name';
  label.textContent = name;
  const info = document.createElement('span');
  info.className = 'info';
  info.textContent = '…';
  button.append(label, info);
  button.addEventListener('click', () => openStream(name, { offset: '-1', live: false }));
  li.append(button);
  listItems.set(name, li);
  rowObserver?.observe(li);
  return li;
}

/** Adds a name the registry announced, in sorted place, shown when it matches the filter. */
function insertListItem(name) {
  let at = 0;
  while (at < state.names.length && state.names[at] < name) at++;
  state.names.splice(at, 0, name);
  if (!name.startsWith($('filter').value)) return;
  const list = $('stream-list');
  let before = null;
  for (let i = at + 1; i < state.names.length && !before; i++) before = listItems.get(state.names[i]) || null;
  list.insertBefore(listItem(name), before);
  if (!list.querySelector('button[tabindex="0"]')) setRovingItem(list.querySelector('button'));
}

/** HEAD for one visible row only: content type, tail, closed, TTL/expiry, fork source. */
async function fillListInfo(li) {
  const info = li.querySelector('.info');
  try {
    const res = await api('HEAD', li.dataset.name, { allow: [404] });
    if (res.status === 404) { info.textContent = 'not found'; return; }
    const m = metadataFrom(res, li.dataset.name);
    const parts = [m.contentType || '?', `tail ${m.tail}`];
    if (m.closed) parts.push('closed');
    if (m.ttl) parts.push(`TTL ${m.ttl}s`);
    if (m.expiresAt) parts.push(`expires ${m.expiresAt}`);
    if (m.forkedFrom) parts.push(`fork of ${m.forkedFrom}`);
    info.textContent = parts.join(' · ');
  } catch (e) {
    info.textContent = e.status ? `HTTP ${e.status}` : 'error';
  }
}

/** Metadata from a HEAD; the fork source from the registry, since HEAD does not carry it. */
function metadataFrom(res, name) {
  const contentType = res.headers.get('Content-Type') || '';
  return {
    contentType,
    kind: kindOf(contentType),
    tail: res.headers.get('Stream-Next-Offset') || '',
    retainedStart: res.headers.get('Stream-Retained-Start'),
    closed: res.headers.get('Stream-Closed') === 'true',
    ttl: res.headers.get('Stream-TTL'),
    expiresAt: res.headers.get('Stream-Expires-At'),
    forkedFrom: res.headers.get('Stream-Forked-From') || state.registry.get(name)?.forkedFrom || null,
  };
}

function kindOf(contentType) {
  const type = contentType.split(';')[0].trim().toLowerCase();
  if (type === 'application/json' || type.endsWith('+json')) return 'json';
  if (type.startsWith('text/') || type === 'application/x-ndjson' || type === 'application/xml') return 'text';
  return 'binary';
}

// ---------- stream view ----------

async function openStream(name, { offset = '-1', live = false } = {}) {
  stopLive();
  const generation = ++state.generation;
  Object.assign(state, { name, info: null, nextOffset: offset || '-1', upToDate: false, buffer: [], rowCount: 0, received: 0, dropped: 0, pending: [], rateWindow: [], paused: false });
  $('empty').hidden = true;
  $('view').hidden = false;
  $('view-name').textContent = name;
  $('rows').replaceChildren();
  $('cap-note').hidden = true;
  $('offset-input').value = offset === '-1' ? '' : offset;
  $('live-toggle').checked = live;
  $('pause-button').textContent = 'Pause';
  $('append-result').textContent = '';
  for (const button of $('stream-list').querySelectorAll('button')) {
    if (button.closest('li').dataset.name === name) { button.setAttribute('aria-current', 'true'); setRovingItem(button); } else button.removeAttribute('aria-current');
  }
  updateLocation();
  showBanner('');
  try {
    const res = await api('HEAD', name);
    if (generation !== state.generation) return;
    state.info = metadataFrom(res, name);
    remember(name);
    if (state.source === 'recent' && !state.names.includes(name)) { state.names = recentNames(); renderList(); }
  } catch (e) {
    if (generation !== state.generation) return;
    $('meta').replaceChildren();
    showBanner(`Cannot open '${name}': ${e.message}`);
    return;
  }
  renderMeta();
  $('append-body').placeholder = state.info.kind === 'json' ? '{"any": "JSON value"}' : 'text to append';
  if (live) startLive(); else await loadMore();
  updateStats();
}

function renderMeta() {
  const m = state.info;
  const rows = [
    ['Content type', m.contentType],
    ['Tail offset', m.tail],
    ['Closed', m.closed ? 'yes' : 'no'],
  ];
  // Where the readable data starts: the zero offset unless retention dropped a prefix.
  if (m.retainedStart) rows.push(['Retained start', /^0+_0+$/.test(m.retainedStart) ? `${m.retainedStart} (nothing dropped)` : m.retainedStart]);
  if (m.ttl) rows.push(['TTL', `${m.ttl} s`]);
  if (m.expiresAt) rows.push(['Expires at', m.expiresAt]);
  if (m.forkedFrom) rows.push(['Forked from', m.forkedFrom]);
  const fragment = document.createDocumentFragment();
  for (const [k, v] of rows) {
    const dt = document.createElement('dt'); dt.textContent = k;
    const dd = document.createElement('dd'); dd.textContent = v;
    fragment.append(dt, dd);
  }
  $('meta').replaceChildren(fragment);
}

function updateLocation() {
  const params = new URLSearchParams();
  if (state.name) params.set('stream', state.name);
  const offset = $('offset-input').value.trim();
  if (offset) params.set('offset', offset);
  if ($('live-toggle').checked) params.set('live', '1');
  history.replaceState(null, '', `${location.pathname}?${params}`);
}

/** Renders the next page: from the response already fetched, else one more catch-up response. */
async function loadMore() {
  const generation = state.generation;
  if (state.buffer.length === 0 && !state.upToDate) {
    $('read-status').textContent = 'Reading…';
    try {
      const piece = await readPiece(state.name, state.info.kind, state.nextOffset);
      if (generation !== state.generation) return;
      state.buffer = piece.rows;
      state.nextOffset = piece.next;
      state.upToDate = piece.upToDate;
    } catch (e) {
      if (generation !== state.generation) return;
      $('read-status').textContent = '';
      showBanner(`Reading '${state.name}' failed: ${e.message}`);
      return;
    }
  }
  const page = state.buffer.splice(0, PAGE_ROWS);
  state.received += page.length;
  appendRows(page);
  const more = state.buffer.length > 0 || !state.upToDate;
  $('load-more').hidden = !more || !!state.live;
  $('read-status').textContent = more ? '' : `Up to date at offset ${state.nextOffset}.`;
  updateStats();
}

/**
 * One bounded read from offset `at`: the first event of an SSE response (the server sends at most one 1 MiB piece per
 * event, then a control event with the next offset, or that control event alone at the tail), so opening a long stream
 * never downloads all of it: a catch-up response runs to the tail. Where SSE does not get through, a catch-up GET.
 */
async function readPiece(name, kind, at) {
  if (!sseUnavailable) {
    const request = new AbortController();
    let stalled = false;
    const watchdog = setTimeout(() => { stalled = true; request.abort(); }, SSE_STALL_MS);
    try {
      const res = await api('GET', name, { query: { offset: at, live: 'sse' }, signal: request.signal });
      let rows = [];
      let control = null;
      await readSse(res.body, (event, text) => {
        if (event === 'data') rows = rows.concat(rowsFromSseData(kind, text, at));
        else if (event === 'control') { control = JSON.parse(text); return false; }
        return true;
      });
      clearTimeout(watchdog);
      if (!control) throw new TypeError('the SSE response ended before its first control event');
      return { rows, next: control.streamNextOffset || at, upToDate: control.upToDate === true };
    } catch (e) {
      clearTimeout(watchdog);
      if (isFinalProblem(e) || !(stalled || e instanceof HttpProblem || e instanceof TypeError)) throw e;
      sseUnavailable = true;
    }
  }
  const res = await api('GET', name, { query: { offset: at } });
  return { rows: await rowsFromResponse(kind, res, at), next: res.headers.get('Stream-Next-Offset') || at, upToDate: res.headers.get('Stream-Up-To-Date') === 'true' };
}

/** Turns one catch-up response into rows: JSON one message per row, text one line per row, binary 16 bytes per row. */
async function rowsFromResponse(kind, res, offset) {
  if (kind === 'json') {
    const messages = await res.json();
    return messages.map((m, i) => ({ kind, offset, index: i, value: m }));
  }
  if (kind === 'text') return textRows(await res.text(), offset);
  return binaryRows(new Uint8Array(await res.arrayBuffer()), offset);
}

function textRows(text, offset) {
  if (text.length === 0) return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((line, i) => ({ kind: 'text', offset, index: i, value: line }));
}

function binaryRows(bytes, offset) {
  const rows = [];
  for (let at = 0; at < bytes.length; at += 16) rows.push({ kind: 'binary', offset, index: at, value: bytes.subarray(at, at + 16) });
  return rows;
}

function hexLine(bytes, at) {
  let hex = '';
  let ascii = '';
  for (let i = 0; i < 16; i++) {
    if (i < bytes.length) {
      hex += bytes[i].toString(16).padStart(2, '0') + (i === 7 ? '  ' : ' ');
      ascii += bytes[i] >= 0x20 && bytes[i] < 0x7f ? String.fromCharCode(bytes[i]) : '.';
    } else {
      hex += i === 7 ? '    ' : '   ';
    }
  }
  return `${at.toString(16).padStart(8, '0')}  ${hex} |${ascii}|`;
}

/** One row; its handlers are delegated to the list (see setupRows), so a fast tail creates elements only. */
function rowElement(row) {
  const li = document.createElement('div');
  li.className = 'message';
  li.setAttribute('role', 'listitem');
  li.dataset.offset = row.offset;
  const offset = document.createElement('button');
  offset.type = 'button';
  offset.className = 'offset';
  const at = row.offset === '-1' ? 'start' : row.offset;
  offset.textContent = row.kind === 'binary' ? `${at} +${row.index}` : `${at} #${row.index}`;
  offset.title = 'Copy the offset of the response this row starts in';
  offset.tabIndex = -1;
  let body;
  if (row.kind === 'json') {
    const compact = JSON.stringify(row.value);
    // A disclosure button rather than <details>: no shadow tree per row, which a fast tail pays for in style time.
    body = document.createElement('button');
    body.type = 'button';
    body.className = 'msg';
    body.tabIndex = -1;
    body.setAttribute('aria-expanded', 'false');
    body.textContent = compact;
    li.dataset.text = compact;
  } else {
    body = document.createElement('pre');
    if (row.kind === 'text') {
      body.textContent = row.value;
    } else {
      body.className = 'hex';
      body.textContent = hexLine(row.value, row.index);
    }
    li.dataset.text = body.textContent;
  }
  li.append(offset, body);
  return li;
}

/** The keyboard targets of a row: its offset button and, for JSON, the message button that expands it. */
function rowTargets(li) { return li.querySelectorAll(':scope > button'); }

/**
 * The message list is one tab stop (thousands of rows must not stand between the toolbar and "Load more"): arrow keys
 * move between rows (Up/Down, Home/End) and between a row's offset button and its message (Left/Right).
 */
function onRowsKey(e) {
  const list = $('rows');
  if (!['ArrowDown', 'ArrowUp', 'ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) return;
  const next = (r) => r.nextElementSibling || r.parentElement.nextElementSibling?.firstElementChild || null;
  const previous = (r) => r.previousElementSibling || r.parentElement.previousElementSibling?.lastElementChild || null;
  const shown = (r, forward) => { while (r && r.classList.contains('filtered')) r = forward ? next(r) : previous(r); return r; };
  const li = e.target === list ? null : e.target.closest('#rows .message');
  let column = li ? [...rowTargets(li)].indexOf(e.target) : 1;
  let row = li;
  switch (e.key) {
    case 'ArrowDown': row = li ? shown(next(li), true) : shown(list.firstElementChild?.firstElementChild, true); break;
    case 'ArrowUp': row = li ? shown(previous(li), false) : shown(list.lastElementChild?.lastElementChild, false); break;
    case 'Home': row = shown(list.firstElementChild?.firstElementChild, true); break;
    case 'End': row = shown(list.lastElementChild?.lastElementChild, false); break;
    case 'ArrowLeft': column = 0; break;
    default: column = 1; break;
  }
  const targets = row ? rowTargets(row) : [];
  const target = targets[Math.min(column, targets.length - 1)];
  if (!target) return;
  e.preventDefault();
  target.focus();
}

/** The streams list is one tab stop too: the item last focused (or the open stream) is tabbable, arrows move. */
function setRovingItem(button) {
  for (const b of $('stream-list').querySelectorAll('button[tabindex="0"]')) b.tabIndex = -1;
  if (button) button.tabIndex = 0;
}

function onListKey(e) {
  if (!['ArrowDown', 'ArrowUp', 'Home', 'End'].includes(e.key)) return;
  const li = e.target.closest('#stream-list > li');
  if (!li) return;
  const list = $('stream-list');
  const to = { ArrowDown: li.nextElementSibling, ArrowUp: li.previousElementSibling, Home: list.firstElementChild, End: list.lastElementChild }[e.key];
  if (!to) return;
  e.preventDefault();
  to.querySelector('button').focus();
}

function setupRows() {
  const list = $('rows');
  list.addEventListener('keydown', onRowsKey);
  const streams = $('stream-list');
  streams.addEventListener('keydown', onListKey);
  streams.addEventListener('focusin', (e) => { if (e.target.matches('button')) setRovingItem(e.target); });
  list.addEventListener('click', (e) => {
    const button = e.target.closest('button');
    if (!button) return;
    const li = button.parentElement;
    if (button.classList.contains('offset')) {
      copy(li.dataset.offset, `Copied offset ${li.dataset.offset}`);
      return;
    }
    // A JSON message: expand or collapse; the pretty-printed form is made on first open only.
    const open = button.getAttribute('aria-expanded') !== 'true';
    button.setAttribute('aria-expanded', String(open));
    let pre = li.querySelector(':scope > pre.pretty');
    if (!pre && open) {
      pre = document.createElement('pre');
      pre.className = 'pretty';
      pre.textContent = JSON.stringify(JSON.parse(li.dataset.text), null, 2);
      li.append(pre);
    }
    if (pre) pre.hidden = !open;
  });
}

function appendRows(rows) {
  if (rows.length === 0) return;
  const filter = $('row-filter').value;
  const list = $('rows');
  let block = list.lastElementChild;
  for (let i = 0; i < rows.length;) {
    if (!block || block.childElementCount >= BLOCK_ROWS) {
      block = document.createElement('div');
      block.className = 'block';
      block.setAttribute('role', 'none');
      list.append(block);
    }
    const fragment = document.createDocumentFragment();
    const end = Math.min(rows.length, i + BLOCK_ROWS - block.childElementCount);
    for (; i < end; i++) {
      const li = rowElement(rows[i]);
      if (filter && !li.dataset.text.includes(filter)) li.classList.add('filtered');
      fragment.append(li);
    }
    block.append(fragment);
  }
  state.rowCount += rows.length;
  if (state.rowCount > MAX_ROWS) {
    let excess = state.rowCount - MAX_ROWS;
    state.rowCount = MAX_ROWS;
    state.dropped += excess;
    // Whole blocks go at once; the first remaining one loses its oldest rows in one range.
    while (excess > 0) {
      const first = list.firstElementChild;
      if (first.childElementCount <= excess) {
        excess -= first.childElementCount;
        first.remove();
      } else {
        const range = document.createRange();
        range.setStartBefore(first.firstElementChild);
        range.setEndAfter(first.children[excess - 1]);
        range.deleteContents();
        excess = 0;
      }
    }
  }
  if (state.dropped > 0) {
    const note = $('cap-note');
    note.hidden = false;
    note.textContent = `Showing the newest ${MAX_ROWS} rows; ${state.dropped} older row(s) were dropped from this view (they are still in the stream: read from an offset to see them).`;
  }
  if ($('autoscroll').checked && state.live) list.scrollTop = list.scrollHeight;
}

function applyRowFilter() {
  const filter = $('row-filter').value;
  for (const li of $('rows').querySelectorAll('.message')) li.classList.toggle('filtered', !!filter && !li.dataset.text.includes(filter));
}

function updateStats() {
  const now = performance.now();
  state.rateWindow = state.rateWindow.filter(([t]) => now - t < 5000);
  const recent = state.rateWindow.reduce((sum, [, n]) => sum + n, 0);
  const seconds = state.rateWindow.length ? Math.max(1, (now - state.rateWindow[0][0]) / 1000) : 1;
  const rate = state.live ? ` · ${(recent / seconds).toFixed(0)}/s` : '';
  const status = state.live ? (state.paused ? ' · paused' : ' · live') : '';
  $('stats').textContent = `${state.received} message(s)${rate}${status}`;
}

async function copy(text, done) {
  try {
    await navigator.clipboard.writeText(text);
    $('read-status').textContent = done;
  } catch {
    $('read-status').textContent = `Offset: ${text}`;
  }
}

// ---------- live tail ----------

/** Queues rows for the next animation frame, so a fast tail updates the DOM at most once per frame. */
function enqueue(rows) {
  state.received += rows.length;
  state.rateWindow.push([performance.now(), rows.length]);
  for (const row of rows) state.pending.push(row);
  if (!state.frameRequested) {
    state.frameRequested = true;
    requestAnimationFrame(flush);
  }
}

function flush() {
  state.frameRequested = false;
  let rows = state.pending;
  state.pending = [];
  if (rows.length > MAX_ROWS) {
    // Rows that would be dropped in this very frame are never rendered.
    state.dropped += rows.length - MAX_ROWS;
    rows = rows.slice(rows.length - MAX_ROWS);
  }
  appendRows(rows);
  updateStats();
}

function rowsFromSseData(kind, data, offset) {
  if (kind === 'json') return JSON.parse(data).map((m, i) => ({ kind, offset, index: i, value: m }));
  if (kind === 'text') return textRows(data, offset);
  const raw = atob(data.replace(/\s+/g, ''));
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return binaryRows(bytes, offset);
}

/**
 * Milliseconds an SSE response may take to deliver its first control event (the server sends one at once) before the
 * tail gives up on SSE for long-poll: a proxy that buffers the response, or one that never answers it.
 */
const SSE_STALL_MS = 3000;
/** Statuses that end a live read instead of making it fall back to long-poll: the stream or the token is the problem. */
const FINAL_STATUSES = [401, 403, 404, 410];
const isFinalProblem = (e) => e instanceof HttpProblem && FINAL_STATUSES.includes(e.status);
/** Set once SSE failed on this page while the stream itself answered; later tails start with long-poll. */
let sseUnavailable = false;

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follows stream `name` from offset `from`: SSE where possible (EventSource without a token; with one, a streaming
 * fetch, since EventSource cannot send headers), long-poll when SSE is refused, fails or stays silent. Callbacks:
 * rows(rows) with rows from one response or event, moved(next offset), status(text), closed(final offset), failed(message).
 * Returns { stop() }.
 */
function follow(name, kind, from, on) {
  let stopped = false;
  let next = from;
  let cursor = '';
  let request = null;      // AbortController of the fetch in flight
  let source = null;       // the EventSource
  let watchdog = 0;
  const stop = () => { stopped = true; clearTimeout(watchdog); request?.abort(); source?.close(); };
  const control = (c) => {
    clearTimeout(watchdog);
    if (c.streamNextOffset) { next = c.streamNextOffset; on.moved(next); }
    if (c.streamCursor) cursor = c.streamCursor;
    if (c.streamClosed) { stop(); on.closed(next); }
  };
  const data = (text) => on.rows(rowsFromSseData(kind, text, next));
  const failed = (message) => { if (!stopped) { stop(); on.failed(message); } };
  const query = (live) => (cursor ? { offset: next, live, cursor } : { offset: next, live });

  const longPoll = async () => {
    source?.close();
    clearTimeout(watchdog);
    on.status('Live (long-poll).');
    while (!stopped) {
      request = new AbortController();
      try {
        const at = next;
        const res = await api('GET', name, { query: query('long-poll'), signal: request.signal });
        if (stopped) return;
        if (res.status === 200) {
          const rows = await rowsFromResponse(kind, res, at);
          if (stopped) return;
          on.rows(rows);
        }
        control({
          streamNextOffset: res.headers.get('Stream-Next-Offset'),
          streamCursor: res.headers.get('Stream-Cursor'),
          streamClosed: res.headers.get('Stream-Closed') === 'true' && (res.status === 204 || res.headers.get('Stream-Up-To-Date') === 'true'),
        });
        on.status('Live (long-poll).');
      } catch (e) {
        if (stopped) return;
        if (isFinalProblem(e)) { failed(e.message); return; }
        on.status(`Live (long-poll): ${e.message}; retrying in a second.`);
        await delay(1000);
      }
    }
  };
  const fallBack = () => {
    if (stopped) return;
    sseUnavailable = true;
    longPoll();
  };

  const fetchSse = async () => {
    let failures = 0;
    while (!stopped) {
      request = new AbortController();
      const attempt = request;
      let stalled = false;
      let heard = false;
      watchdog = setTimeout(() => { stalled = true; attempt.abort(); }, SSE_STALL_MS);
      try {
        const res = await api('GET', name, { query: query('sse'), signal: attempt.signal });
        await readSse(res.body, (event, text) => {
          if (stopped) return;
          if (event === 'data') data(text);
          else if (event === 'control') { heard = true; failures = 0; on.status('Live (SSE over fetch).'); control(JSON.parse(text)); }
        });
        clearTimeout(watchdog);
      } catch (e) {
        clearTimeout(watchdog);
        if (stopped) return;
        // A refused answer, a network error (TypeError) or the stall abort is the transport; anything else is a bug here.
        if (isFinalProblem(e) || !(stalled || e instanceof HttpProblem || e instanceof TypeError)) { failed(e.message); return; }
        // Refused, cut before its first event, or silent: SSE does not get through; a cut after events is retried.
        if (stalled || !heard || ++failures > 3) { fallBack(); return; }
        await delay(1000);
      }
    }
  };

  const eventSource = () => {
    let heard = false;
    let failures = 0;
    const connect = () => {
      if (stopped) return;
      heard = false;
      source = new EventSource(streamUrl(name, query('sse')));
      watchdog = setTimeout(fallBack, SSE_STALL_MS);
      source.addEventListener('data', (e) => data(e.data));
      source.addEventListener('control', (e) => { heard = true; failures = 0; on.status('Live (SSE).'); control(JSON.parse(e.data)); });
      source.addEventListener('error', async () => {
        source.close();
        clearTimeout(watchdog);
        if (stopped) return;
        // Each response ends after the server's reconnect interval: reopen from the last control offset instead of
        // letting EventSource replay its first URL.
        if (heard && ++failures <= 3) { setTimeout(connect, failures > 1 ? 1000 : 0); return; }
        // Refused or failing: a HEAD tells why (a 401 asks for a token, then the tail goes on with fetch).
        try {
          await api('HEAD', name);
        } catch (e) {
          failed(e.message);
          return;
        }
        if (stopped) return;
        if (token()) fetchSse(); else fallBack();
      });
    };
    connect();
  };

  if (sseUnavailable) longPoll(); else if (token()) fetchSse(); else eventSource();
  return { stop };
}

function startLive() {
  stopLive();
  state.paused = false;
  // Rows of the last page not rendered yet come first; the tail goes on after them.
  if (state.buffer.length) {
    state.received += state.buffer.length;
    state.pending = state.pending.concat(state.buffer);
    state.buffer = [];
    flush();
  }
  $('load-more').hidden = true;
  $('pause-button').disabled = false;
  $('pause-button').textContent = 'Pause';
  const generation = state.generation;
  const current = () => generation === state.generation;
  state.live = follow(state.name, state.info.kind, state.nextOffset, {
    rows: (rows) => { if (current()) enqueue(rows); },
    moved: (next) => { if (current()) state.nextOffset = next; },
    status: (text) => { if (current()) $('read-status').textContent = text; },
    closed: (next) => { if (current()) $('read-status').textContent = `The stream is closed at offset ${next}.`; },
    failed: (message) => {
      if (!current()) return;
      showBanner(`Live tail stopped: ${message}`);
      stopLive();
    },
  });
  updateStats();
}

/** A minimal SSE parser over a byte stream: calls back per event with its name and joined data lines; a callback that returns false ends the read. */
async function readSse(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let carry = '';
  let event = 'message';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    carry += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = carry.indexOf('\n')) >= 0) {
      let line = carry.slice(0, newline);
      carry = carry.slice(newline + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (data.length && onEvent(event, data.join('\n')) === false) {
          await reader.cancel();
          return;
        }
        event = 'message';
        data = [];
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value2 = colon < 0 ? '' : line.slice(colon + 1);
      if (value2.startsWith(' ')) value2 = value2.slice(1);
      if (field === 'event') event = value2;
      else if (field === 'data') data.push(value2);
    }
  }
}

function stopLive() {
  state.live?.stop();
  state.live = null;
  $('pause-button').disabled = true;
}

function togglePause() {
  if (!state.name) return;
  if (state.paused) {
    startLive();
  } else {
    state.live?.stop();
    state.live = { stop() {} };
    state.paused = true;
    $('pause-button').textContent = 'Resume';
    $('read-status').textContent = `Paused at offset ${state.nextOffset}.`;
  }
  updateStats();
}

// ---------- writes ----------

async function append(event) {
  event.preventDefault();
  const result = $('append-result');
  result.className = 'result';
  const text = $('append-body').value;
  if (state.info.kind === 'json') {
    try {
      JSON.parse(text);
    } catch (e) {
      result.className = 'result error';
      result.textContent = `Not valid JSON, nothing was sent: ${e.message}`;
      return;
    }
  }
  try {
    const res = await api('POST', state.name, { headers: { 'Content-Type': state.info.contentType }, body: text });
    result.textContent = `Appended; the tail is now ${res.headers.get('Stream-Next-Offset')}.`;
    $('append-body').value = '';
    refreshMeta();
  } catch (e) {
    result.className = 'result error';
    result.textContent = `The server refused the append: ${e.message}`;
  }
}

async function refreshMeta() {
  try {
    state.info = metadataFrom(await api('HEAD', state.name), state.name);
    renderMeta();
  } catch { /* the view shows the last known metadata */ }
}

function confirmAction(title, text, okLabel) {
  return new Promise((resolve) => {
    const dialog = $('confirm-dialog');
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-ok').textContent = okLabel;
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.returnValue = '';
    dialog.showModal();
  });
}

async function closeStream() {
  if (!await confirmAction('Close stream', `Close '${state.name}'? No more appends will be accepted; this cannot be undone.`, 'Close stream')) return;
  try {
    await api('POST', state.name, { headers: { 'Stream-Closed': 'true' } });
    $('append-result').className = 'result';
    $('append-result').textContent = 'The stream is closed.';
    refreshMeta();
  } catch (e) {
    $('append-result').className = 'result error';
    $('append-result').textContent = `Close failed: ${e.message}`;
  }
}

async function deleteStream() {
  const name = state.name;
  if (!await confirmAction('Delete stream', `Delete '${name}' and all its data? This cannot be undone.`, 'Delete')) return;
  try {
    await api('DELETE', name);
    stopLive();
    state.name = null;
    state.generation++;
    $('view').hidden = true;
    $('empty').hidden = false;
    localStorage.setItem(RECENT_KEY, JSON.stringify(recentNames().filter((n) => n !== name)));
    showBanner(`Deleted '${name}'.`);
    history.replaceState(null, '', location.pathname);
    await refreshList();
  } catch (e) {
    $('append-result').className = 'result error';
    $('append-result').textContent = `Delete failed: ${e.message}`;
  }
}

async function create(event) {
  event.preventDefault();
  const name = $('create-name').value.trim();
  const headers = { 'Content-Type': $('create-type').value };
  if ($('create-ttl').value) headers['Stream-TTL'] = $('create-ttl').value;
  const result = $('create-result');
  try {
    await api('PUT', name, { headers });
    result.className = 'result';
    result.textContent = `Created '${name}'.`;
    remember(name);
    await refreshList();
    await openStream(name);
  } catch (e) {
    result.className = 'result error';
    result.textContent = `Create failed: ${e.message}`;
  }
}

// ---------- start ----------

function setup() {
  setupTokenDialog();
  setupRows();
  updateAuthStatus();
  $('open-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('open-name').value.trim();
    if (name) openStream(name);
  });
  $('filter').addEventListener('input', renderList);
  $('refresh-list').addEventListener('click', refreshList);
  $('offset-form').addEventListener('submit', (e) => {
    e.preventDefault();
    openStream(state.name, { offset: $('offset-input').value.trim() || '-1', live: $('live-toggle').checked });
  });
  $('live-toggle').addEventListener('change', () => {
    updateLocation();
    if ($('live-toggle').checked) startLive(); else { stopLive(); state.paused = false; $('load-more').hidden = state.upToDate && state.buffer.length === 0; updateStats(); }
  });
  $('pause-button').addEventListener('click', togglePause);
  $('load-more').addEventListener('click', loadMore);
  $('row-filter').addEventListener('input', applyRowFilter);
  $('copy-link').addEventListener('click', () => copy(location.href, 'Copied the link to this view.'));
  $('append-form').addEventListener('submit', append);
  $('close-button').addEventListener('click', closeStream);
  $('delete-button').addEventListener('click', deleteStream);
  $('create-form').addEventListener('submit', create);
  setInterval(() => { if (state.live) updateStats(); }, 1000);

  const params = new URLSearchParams(location.search);
  refreshList();
  const stream = params.get('stream');
  if (stream) openStream(stream, { offset: params.get('offset') || '-1', live: params.get('live') === '1' });
}

setup();
