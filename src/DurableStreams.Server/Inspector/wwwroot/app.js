// Durable Streams inspector: a plain ES module, no framework. Everything it shows is read through the stream API
// (GET/HEAD/POST/PUT/DELETE under the streams mount) with the user's bearer token, kept in sessionStorage.

/** Most rows kept in the message list; older rows are dropped from the top past this (a note says so). */
export const MAX_ROWS = 5000;
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
    const text = method === 'HEAD' ? '' : (await res.text()).trim();
    if (res.status === 401 && attempt < 3) {
      const given = await askToken(explain(401, text));
      if (given) continue;
    }
    if (res.status === 403 && method !== 'GET' && method !== 'HEAD') setReadOnly(true);
    throw new HttpProblem(res.status, explain(res.status, text));
  }
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

/** Reads the whole registry (one catch-up response at a time) and replays its insert/delete events. */
async function loadRegistry() {
  const present = new Map();
  let offset = '-1';
  for (let i = 0; i < 10000; i++) {
    const res = await api('GET', REGISTRY, { query: { offset }, allow: [404] });
    if (res.status === 404) return null;
    const events = await res.json();
    for (const e of events) {
      if (e?.type !== 'stream' || typeof e.key !== 'string') continue;
      if (e.headers?.operation === 'delete') present.delete(e.key);
      else present.set(e.key, e.value || {});
    }
    offset = res.headers.get('Stream-Next-Offset') || offset;
    if (res.headers.get('Stream-Up-To-Date') === 'true' || events.length === 0) break;
  }
  return [...present.keys()].sort();
}

async function refreshList() {
  let names = null;
  try {
    names = await loadRegistry();
  } catch (e) {
    showBanner(`Could not read the stream registry: ${e.message}`);
  }
  state.source = names ? 'registry' : 'recent';
  state.names = names || recentNames();
  $('list-source').textContent = names
    ? `${names.length} stream(s) from the registry (${REGISTRY}).`
    : 'This server keeps no registry (serve --registry): recently opened streams are listed.';
  renderList();
}

let rowObserver = null;
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
  const fragment = document.createDocumentFragment();
  for (const name of state.names) {
    if (!name.startsWith(prefix)) continue;
    const li = document.createElement('li');
    li.dataset.name = name;
    const button = document.createElement('button');
    button.type = 'button';
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
    fragment.append(li);
    rowObserver.observe(li);
  }
  list.replaceChildren(fragment);
}

/** HEAD for one visible row only: content type, tail, closed, TTL/expiry, fork source. */
async function fillListInfo(li) {
  const info = li.querySelector('.info');
  try {
    const res = await api('HEAD', li.dataset.name, { allow: [404] });
    if (res.status === 404) { info.textContent = 'not found'; return; }
    const m = metadataFrom(res);
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

function metadataFrom(res) {
  const contentType = res.headers.get('Content-Type') || '';
  return {
    contentType,
    kind: kindOf(contentType),
    tail: res.headers.get('Stream-Next-Offset') || '',
    closed: res.headers.get('Stream-Closed') === 'true',
    ttl: res.headers.get('Stream-TTL'),
    expiresAt: res.headers.get('Stream-Expires-At'),
    forkedFrom: res.headers.get('Stream-Forked-From'),
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
    if (button.closest('li').dataset.name === name) button.setAttribute('aria-current', 'true'); else button.removeAttribute('aria-current');
  }
  updateLocation();
  showBanner('');
  try {
    const res = await api('HEAD', name);
    if (generation !== state.generation) return;
    state.info = metadataFrom(res);
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
      const at = state.nextOffset;
      const res = await api('GET', state.name, { query: { offset: at } });
      if (generation !== state.generation) return;
      state.buffer = await rowsFromResponse(res, at);
      if (generation !== state.generation) return;
      state.nextOffset = res.headers.get('Stream-Next-Offset') || at;
      state.upToDate = res.headers.get('Stream-Up-To-Date') === 'true';
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

/** Turns one catch-up response into rows: JSON one message per row, text one line per row, binary 16 bytes per row. */
async function rowsFromResponse(res, offset) {
  const kind = state.info.kind;
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
  const li = document.createElement('li');
  li.className = 'message';
  li.dataset.offset = row.offset;
  const offset = document.createElement('button');
  offset.type = 'button';
  offset.className = 'offset';
  const at = row.offset === '-1' ? 'start' : row.offset;
  offset.textContent = row.kind === 'binary' ? `${at} +${row.index}` : `${at} #${row.index}`;
  offset.title = 'Copy the offset of the response this row starts in';
  let body;
  if (row.kind === 'json') {
    const compact = JSON.stringify(row.value);
    body = document.createElement('details');
    const summary = document.createElement('summary');
    summary.textContent = compact;
    body.append(summary);
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

function setupRows() {
  const list = $('rows');
  list.addEventListener('click', (e) => {
    const button = e.target.closest('button.offset');
    if (button) copy(button.parentElement.dataset.offset, `Copied offset ${button.parentElement.dataset.offset}`);
  });
  // toggle does not bubble; a capturing listener sees it. The pretty-printed form is made on first open only.
  list.addEventListener('toggle', (e) => {
    const details = e.target;
    if (details.open && details.childElementCount === 1) {
      const pre = document.createElement('pre');
      pre.textContent = JSON.stringify(JSON.parse(details.parentElement.dataset.text), null, 2);
      details.append(pre);
    }
  }, true);
}

function appendRows(rows) {
  if (rows.length === 0) return;
  const filter = $('row-filter').value;
  const fragment = document.createDocumentFragment();
  for (const row of rows) {
    const li = rowElement(row);
    if (filter && !li.dataset.text.includes(filter)) li.classList.add('filtered');
    fragment.append(li);
  }
  const list = $('rows');
  list.append(fragment);
  state.rowCount += rows.length;
  if (state.rowCount > MAX_ROWS) {
    const excess = state.rowCount - MAX_ROWS;
    // One DOM operation for all dropped rows, not one per row.
    const range = document.createRange();
    range.setStartBefore(list.firstElementChild);
    range.setEndAfter(list.children[excess - 1]);
    range.deleteContents();
    state.rowCount = MAX_ROWS;
    state.dropped += excess;
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
  for (const li of $('rows').children) li.classList.toggle('filtered', !!filter && !li.dataset.text.includes(filter));
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
  state.pending.push(...rows);
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

function rowsFromSseData(data, offset) {
  const kind = state.info.kind;
  if (kind === 'json') return JSON.parse(data).map((m, i) => ({ kind, offset, index: i, value: m }));
  if (kind === 'text') return textRows(data, offset);
  const raw = atob(data.replace(/\s+/g, ''));
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return binaryRows(bytes, offset);
}

function startLive() {
  stopLive();
  state.paused = false;
  state.buffer = [];
  $('load-more').hidden = true;
  $('pause-button').disabled = false;
  $('pause-button').textContent = 'Pause';
  const generation = state.generation;
  let stopped = false;
  const controller = new AbortController();
  let source = null;
  state.live = {
    stop() { stopped = true; controller.abort(); source?.close(); },
  };
  const onControl = (control) => {
    if (control.streamNextOffset) state.nextOffset = control.streamNextOffset;
    if (control.streamClosed) {
      stopped = true;
      source?.close();
      $('read-status').textContent = `The stream is closed at offset ${state.nextOffset}.`;
    }
  };
  const onData = (data) => enqueue(rowsFromSseData(data, state.nextOffset));
  const current = () => !stopped && generation === state.generation;

  if (!token()) {
    // EventSource: no headers possible, so only without a token. Each response ends after the server's reconnect
    // interval; reopen from the last control offset instead of letting EventSource replay its first URL.
    let opened = false;
    let failures = 0;
    const connect = () => {
      if (!current()) return;
      source = new EventSource(streamUrl(state.name, { offset: state.nextOffset, live: 'sse' }));
      source.addEventListener('open', () => { opened = true; failures = 0; $('read-status').textContent = 'Live (SSE).'; });
      source.addEventListener('data', (e) => onData(e.data));
      source.addEventListener('control', (e) => onControl(JSON.parse(e.data)));
      source.addEventListener('error', async () => {
        source.close();
        if (!current()) return;
        if (!opened || ++failures > 3) {
          // The response was refused: find out why with a HEAD (a 401 asks for a token, then the tail resumes with fetch).
          try {
            await api('HEAD', state.name);
          } catch (e) {
            showBanner(`Live tail stopped: ${e.message}`);
            stopLive();
            return;
          }
          if (token()) { startLive(); return; }
        }
        opened = false;
        setTimeout(connect, failures > 0 ? 1000 : 0);
      });
    };
    connect();
    updateStats();
    return;
  }

  // With a token: a streaming fetch of the same SSE response, parsed here.
  (async () => {
    while (current()) {
      try {
        const res = await api('GET', state.name, { query: { offset: state.nextOffset, live: 'sse' }, signal: controller.signal });
        $('read-status').textContent = 'Live (SSE over fetch).';
        await readSse(res.body, (event, data) => {
          if (!current()) return;
          if (event === 'data') onData(data); else if (event === 'control') onControl(JSON.parse(data));
        });
      } catch (e) {
        if (!current()) return;
        showBanner(`Live tail stopped: ${e.message}`);
        stopLive();
        return;
      }
    }
  })();
  updateStats();
}

/** A minimal SSE parser over a byte stream: calls back per event with its name and joined data lines. */
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
        if (data.length) onEvent(event, data.join('\n'));
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
    state.info = metadataFrom(await api('HEAD', state.name));
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
