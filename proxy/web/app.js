// The admin page's script (proxy/web/index.html, docs/live-view.md). Plain browser JavaScript,
// no library, no build step.
//
// Safety rule: every string that may come off the wire (SNI, summaries, hints, names, the whole
// record) reaches the DOM through textContent or createTextNode only, never as markup. The
// server's Content-Security-Policy forbids inline script as a second line of defence.
'use strict';

const kRefreshMs = 1000;
// kMaxRows: open connections drawn at most (the oldest first); filters narrow the rest down.
const kMaxRows = 500;
const kPhases = ['inspect', 'connect', 'first_reply', 'stream'];
// kSteps: the funnel, one row per stop phase: the step a connection had reached and the one it
// was waiting for when it stopped in that phase.
const kSteps = [
  { phase: 'inspect', label: 'accepted', next: 'first flight' },
  { phase: 'route', label: 'first flight', next: 'routed' },
  { phase: 'connect', label: 'routed', next: 'connected' },
  { phase: 'first_reply', label: 'connected', next: 'first reply' },
  { phase: 'stream', label: 'first reply', next: 'streamed / completed' },
];

const state = {
  token: null,
  window: '5m',
  listeners: [],
  open: [],          // the last /api/connections
  recent: [],        // the last /api/records (parsed records)
  detail: null,      // {kind: 'open'|'record', id}
  list: null,        // {phase, reason, window}
};

// ---------------------------------------------------------------------------------------------
// DOM helpers: text only.

function $(id) { return document.getElementById(id); }

// el: an element with attributes (names and values set as attributes, never as markup) and
// children (strings become text nodes).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.appendChild(typeof c === 'string' || typeof c === 'number'
      ? document.createTextNode(String(c)) : c);
  }
  return e;
}

function setText(id, text) { $(id).textContent = text === null || text === undefined ? '' : text; }

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

// syncRows: makes `tbody` show `items` in order, one row per key, updating rows in place (a row
// under the pointer stays the same element across refreshes, so a click on it is not lost).
// cellsOf(item) gives [text, tdClass, spanClass] per cell (spanClass: the text in a span);
// onClick(item) gets the item the row shows at click time.
function syncRows(tbody, items, keyOf, cellsOf, onClick) {
  const old = new Map();
  for (const tr of Array.from(tbody.rows)) old.set(tr.getAttribute('data-id'), tr);
  items.forEach((item, i) => {
    const key = keyOf(item);
    let tr = old.get(key);
    if (tr) {
      old.delete(key);
    } else {
      tr = el('tr', { 'data-id': key });
      tr.addEventListener('click', () => onClick(tr.item));
    }
    tr.item = item;
    cellsOf(item).forEach(([text, tdClass, spanClass], j) => {
      let td = tr.cells[j];
      if (!td) td = tr.appendChild(el('td'));
      if (td.className !== (tdClass || '')) td.className = tdClass || '';
      const sig = (spanClass || '') + '\u0000' + text;
      if (td.sig === sig) return;
      td.sig = sig;
      clear(td);
      td.appendChild(spanClass ? el('span', { class: spanClass }, text)
        : document.createTextNode(text));
    });
    tr.classList.toggle('selected', !!(state.detail && state.detail.id === key));
    if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
  });
  for (const tr of old.values()) tr.remove();
}

function seconds(s) {
  if (s === null || s === undefined) return '-';
  if (s < 1) return (s * 1000).toFixed(0) + ' ms';
  if (s < 120) return s.toFixed(1) + ' s';
  if (s < 7200) return (s / 60).toFixed(1) + ' min';
  return (s / 3600).toFixed(1) + ' h';
}

function ms(v) { return v === null || v === undefined ? '-' : v.toFixed(3) + ' ms'; }

function bytes(n) {
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KiB';
  return (n / 1048576).toFixed(1) + ' MiB';
}

function clock(ts) { return typeof ts === 'string' ? ts.replace('T', ' ').replace('Z', '') : '-'; }

// ended_at: a record's end time (accept time + duration), as Date.
function endedAt(rec) { return new Date(Date.parse(rec.ts) + (rec.duration_ms || 0)); }

// ---------------------------------------------------------------------------------------------
// API access with the optional token (from the URL fragment once, or the form).

function loadToken() {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m) {
    state.token = decodeURIComponent(m[1]);
    try { sessionStorage.setItem('linesman-token', state.token); } catch (e) { /* private mode */ }
    history.replaceState(null, '', location.pathname + location.search);  // off the address bar
    return;
  }
  try { state.token = sessionStorage.getItem('linesman-token'); } catch (e) { state.token = null; }
}

class AuthError extends Error {}

async function api(path) {
  const headers = {};
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  const r = await fetch(path, { headers, cache: 'no-store' });
  if (r.status === 401) throw new AuthError('token needed');
  if (!r.ok) {
    let why = r.status + ' ' + r.statusText;
    try { why = (await r.json()).error || why; } catch (e) { /* not JSON */ }
    throw new Error(path.split('?')[0] + ': ' + why);
  }
  return r.json();
}

function showAuth(show, why) {
  $('auth').hidden = !show;
  setText('auth-error', why || '');
}

// ---------------------------------------------------------------------------------------------
// Live connections.

function connFilters() {
  return { listener: $('f-listener').value, phase: $('f-phase').value,
    sni: $('f-sni').value.trim().toLowerCase() };
}

function renderListeners() {
  const sel = $('f-listener');
  const want = sel.value;
  const names = state.listeners.map((l) => l.name);
  const have = Array.from(sel.options).slice(1).map((o) => o.value);
  if (names.join('\n') === have.join('\n')) return;
  while (sel.options.length > 1) sel.remove(1);
  for (const n of names) sel.appendChild(el('option', { value: n }, n));
  sel.value = names.includes(want) ? want : '';
}

function renderConns() {
  const f = connFilters();
  const shown = state.open.filter((c) =>
    (!f.listener || c.listener === f.listener) && (!f.phase || c.phase === f.phase) &&
    (!f.sni || (c.sni || '').toLowerCase().includes(f.sni)));
  syncRows($('conns').tBodies[0], shown.slice(0, kMaxRows), (c) => c.id, (c) => [
    [seconds(c.age_seconds), 'num'],
    [c.phase, '', 'phase ' + c.phase],
    [seconds(c.phase_seconds), 'num'],
    [c.sni === null ? '-' : c.sni, 'sni'],
    [c.pq_key_share ? 'PQ' : '', '', c.pq_key_share ? 'pq' : ''],
    [c.route === null ? '-' : c.route],
    [c.upstream === null ? '-' : c.upstream],
    [bytes(c.bytes.from_client), 'num'],
    [bytes(c.bytes.from_upstream), 'num'],
    [c.listener],
    [c.id],
  ], (c) => openDetail({ kind: 'open', id: c.id }));
  let count = shown.length === state.open.length ? String(state.open.length)
    : shown.length + ' of ' + state.open.length;
  if (shown.length > kMaxRows) count += ', the oldest ' + kMaxRows + ' shown (filter to see others)';
  setText('open-count', count);
  $('conns-empty').hidden = shown.length !== 0;
}

// ---------------------------------------------------------------------------------------------
// The funnel.

// funnelRow: the row of one step, made once and updated in place (so a click lands).
const funnelRows = new Map();
function funnelRow(step) {
  let row = funnelRows.get(step.phase);
  if (row) return row;
  row = { reached: el('span', { class: 'reached', title: 'reached this step' }),
    bar: el('div', { class: 'bar', role: 'group' }), legend: el('div', { class: 'stops' }),
    segs: new Map(), on: el('div', { class: 'seg went-on' }) };
  $('funnel').appendChild(el('div', { class: 'step', 'data-phase': step.phase },
    el('span', { class: 'label', title: 'stopped in phase ' + step.phase },
      step.label + ' \u2192 ' + step.next),
    row.reached, row.bar, row.legend));
  funnelRows.set(step.phase, row);
  return row;
}

function setIfChanged(node, text) { if (node.textContent !== text) node.textContent = text; }

function renderFunnel(fun) {
  const w = fun.window;
  const notes = [];
  if (w === null) {
    notes.push('This linesman keeps no record ring.');
  } else if (!w.complete) {
    const held = fun.ring.oldest_ended ? ' (it still holds records that ended since ' +
      clock(fun.ring.oldest_ended) + ')' : '';
    notes.push('The window is longer than what the ring still holds: it keeps the last ' +
      fun.ring.max_records + ' records or ' + bytes(fun.ring.max_bytes) + ', and ' +
      fun.ring.evicted + ' older records were evicted' + held + '. Counts below are a lower ' +
      'bound; the totals since start come from the metrics.');
  }
  if (fun.records_dropped > 0) {
    notes.push(fun.records_dropped + ' records were dropped by the access-log writer (queue full ' +
      'or write error) and are in neither the log nor the ring.');
  }
  setIfChanged($('funnel-note'), notes.join(' '));
  const byPhase = {};
  for (const c of (w === null ? [] : w.ended)) (byPhase[c.phase] = byPhase[c.phase] || []).push(c);
  let reached = w === null ? 0 : w.total;
  const top = Math.max(reached, 1);
  for (const step of kSteps) {
    const row = funnelRow(step);
    const stops = (byPhase[step.phase] || []).slice()
      .sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1));
    const stopped = stops.reduce((n, c) => n + c.count, 0);
    setIfChanged(row.reached, String(reached));
    const seen = new Set();
    stops.forEach((c, i) => {
      let seg = row.segs.get(c.reason);
      if (!seg) {
        seg = el('button', { type: 'button', 'data-phase': c.phase, 'data-reason': c.reason });
        seg.addEventListener('click', () => openList({ phase: seg.cell.phase,
          reason: seg.cell.reason }));
        row.segs.set(c.reason, seg);
      }
      seg.cell = c;
      seen.add(c.reason);
      seg.className = 'seg ' + (c.reason === 'completed' ? 'completed' : 'stopped r' + (i % 6));
      seg.setAttribute('data-count', String(c.count));
      seg.title = c.phase + ' / ' + c.reason + ': ' + c.count + ' (click to list them)';
      setIfChanged(seg, c.reason + ' ' + c.count);
      seg.style.width = (100 * c.count / top) + '%';
      if (row.bar.children[i] !== seg) row.bar.insertBefore(seg, row.bar.children[i] || null);
    });
    for (const [reason, seg] of row.segs) {
      if (!seen.has(reason)) { seg.remove(); row.segs.delete(reason); }
    }
    const on = reached - stopped;
    if (on > 0) {
      row.on.title = on + ' went on to ' + step.next;
      setIfChanged(row.on, 'went on ' + on);
      row.on.style.width = (100 * on / top) + '%';
      row.bar.appendChild(row.on);
    } else {
      row.on.remove();
    }
    const openHere = fun.open[step.phase];
    const legend = stops.map((c) => c.reason + ': ' + c.count);
    if (openHere) legend.push('open now, waiting here: ' + openHere);
    if (row.legend.sig !== legend.join('\n')) {
      row.legend.sig = legend.join('\n');
      clear(row.legend);
      for (const t of legend) row.legend.appendChild(el('span', {}, t));
    }
    reached = on;
  }
  const since = fun.since_start;
  setText('funnel-since', 'Window: last ' + seconds(fun.window_seconds) + ', ' +
    (w === null ? 0 : w.total) + ' records. Since start (metrics): ' + since.total +
    ' connections ended' + (fun.listener === null ? '' : ' on this listener') + '.');
}

// ---------------------------------------------------------------------------------------------
// Record lists: recent records and the connections of one funnel bar.

function recordCells(rec) {
  const tls = rec.tls || {};
  return [
    [clock(endedAt(rec).toISOString())],
    [rec.id],
    [rec.listener],
    [typeof tls.sni === 'string' ? tls.sni : '-', 'sni'],
    [rec.stop.phase + ' / ' + rec.stop.reason + ' (' + rec.stop.by + ')'],
    [ms(rec.duration_ms), 'num'],
    [rec.client.ip + ':' + rec.client.port],
  ];
}

function showRecords(tbody, recs) {
  syncRows(tbody, recs, (r) => r.id, recordCells,
    (r) => openDetail({ kind: 'record', id: r.id, rec: r }));
}

function renderRecent(answer) {
  showRecords($('recent').tBodies[0], state.recent);
  setText('recent-count', answer.returned < answer.matched
    ? 'last ' + answer.returned + ' of ' + answer.matched + ' held' : String(answer.returned));
}

async function openList(which) {
  state.list = { phase: which.phase, reason: which.reason, window: state.window };
  await refreshList();
  $('list-card').hidden = false;
  $('list-card').scrollIntoView({ block: 'nearest' });
}

async function refreshList() {
  const l = state.list;
  if (!l) return;
  const q = new URLSearchParams({ since: l.window, phase: l.phase, stop_reason: l.reason,
    limit: '200' });
  const lf = $('f-listener').value;
  if (lf) q.set('listener', lf);
  const answer = await api('/api/records?' + q.toString());
  setText('list-title', 'Stopped in ' + l.phase + ' / ' + l.reason + ', last ' + l.window);
  setText('list-note', answer.returned < answer.matched
    ? 'the newest ' + answer.returned + ' of ' + answer.matched : answer.matched + ' connections');
  showRecords($('list').tBodies[0], answer.records);
}

// ---------------------------------------------------------------------------------------------
// One connection: its timeline, hint, first flights and whole record.

// recordEvents: the record's events in time order (ms since accept), from timing_ms.
function recordEvents(rec) {
  const t = rec.timing_ms || {};
  const ev = [{ name: 'accepted', at: 0 }];
  const add = (name, at) => { if (typeof at === 'number') ev.push({ name, at }); };
  add('client first byte', t.client_first_byte);
  add('hello complete', t.hello_complete);
  add('upstream connected', t.upstream_connected);
  add('upstream first byte', t.upstream_first_byte);
  ev.push({ name: 'ended (' + rec.stop.phase + ' / ' + rec.stop.reason + ')',
    at: rec.duration_ms });
  ev.sort((a, b) => a.at - b.at);
  return ev;
}

// recordSpans: the phases the connection went through, as [start, end) in ms since accept.
// A phase whose end event never happened ends where the connection ended.
function recordSpans(rec) {
  const t = rec.timing_ms || {};
  const end = rec.duration_ms;
  const order = ['inspect', 'route', 'connect', 'first_reply', 'stream'];
  const last = order.indexOf(rec.stop.phase);
  const num = (v) => (typeof v === 'number' ? v : null);
  const inspectEnd = num(t.hello_complete) ?? num(t.client_first_byte) ?? end;
  const bounds = {
    inspect: [0, last > 0 ? inspectEnd : end],
    connect: [inspectEnd, num(t.upstream_connected) ?? end],
    first_reply: [num(t.upstream_connected), num(t.upstream_first_byte) ?? end],
    stream: [num(t.upstream_first_byte), end],
  };
  const spans = [];
  for (const p of kPhases) {
    const i = order.indexOf(p);
    if (i > last) break;
    const [a, b] = bounds[p];
    if (a === null || b === null) continue;
    spans.push({ phase: p, start: a, end: Math.max(a, b), open: false });
  }
  return spans;
}

// openEvents / openSpans: the same for an open connection, from /api/connections' phases (s).
function openEvents(c) {
  const ev = [];
  const names = { inspect: 'accepted (inspect)', connect: 'connect began',
    first_reply: 'upstream connected (waiting for first reply)', stream: 'first reply' };
  for (const p of kPhases) {
    const at = c.phases ? c.phases[p] : null;
    if (typeof at === 'number') ev.push({ name: names[p], at: at * 1000 });
  }
  ev.push({ name: 'now (still open, in ' + c.phase + ')', at: c.age_seconds * 1000 });
  ev.sort((a, b) => a.at - b.at);
  return ev;
}

function openSpans(c) {
  const spans = [];
  const starts = kPhases.map((p) => ({ p, at: c.phases ? c.phases[p] : null }))
    .filter((x) => typeof x.at === 'number').sort((a, b) => a.at - b.at);
  starts.forEach((x, i) => {
    const next = i + 1 < starts.length ? starts[i + 1].at : c.age_seconds;
    spans.push({ phase: x.p, start: x.at * 1000, end: next * 1000, open: i + 1 === starts.length });
  });
  return spans;
}

function renderTimeline(events, spans) {
  const box = $('timeline');
  clear(box);
  const total = Math.max(...events.map((e) => e.at), 0.001);
  const pos = (at) => (100 * at / total) + '%';
  for (const s of spans) {
    const d = el('div', { class: 'span ' + s.phase + (s.open ? ' open' : ''),
      'data-phase': s.phase, title: s.phase + ': ' + ms(s.end - s.start) }, s.phase);
    d.style.left = pos(s.start);
    d.style.width = (100 * (s.end - s.start) / total) + '%';
    box.appendChild(d);
  }
  for (const e of events) {
    const m = el('div', { class: 'mark', title: e.name + ' at ' + ms(e.at) });
    m.style.left = pos(e.at);
    box.appendChild(m);
  }
  for (const f of [0, 0.5, 1]) {
    const t = el('div', { class: 'tick' + (f === 0 ? ' first' : f === 1 ? ' last' : '') },
      ms(total * f));
    t.style.left = (100 * f) + '%';
    box.appendChild(t);
  }
  const ol = $('events');
  clear(ol);
  for (const e of events) {
    ol.appendChild(el('li', { 'data-ms': e.at, 'data-name': e.name }, e.name + ' at ' + ms(e.at)));
  }
}

function flightText(f) {
  if (!f) return 'nothing recorded';
  const parts = [f.protocol + ', ' + f.bytes + ' bytes'];
  if (typeof f.summary === 'string') parts.push(f.summary);
  return parts.join(': ');
}

// shownRecord: the record the detail panel shows (a record never changes: drawn once).
let shownRecord = null;

function showRecord(rec) {
  if (shownRecord === rec.id && !$('detail').hidden) return;
  shownRecord = rec.id;
  setText('d-id', rec.id);
  setText('d-state', 'ended ' + clock(endedAt(rec).toISOString()) + ', listener ' + rec.listener);
  setText('d-stop', 'Stopped in ' + rec.stop.phase + ' / ' + rec.stop.reason + ' by ' +
    rec.stop.by + ' after ' + ms(rec.duration_ms) +
    (rec.tls && typeof rec.tls.sni === 'string' ? '; SNI ' + rec.tls.sni : ''));
  renderTimeline(recordEvents(rec), recordSpans(rec));
  setText('d-hint', rec.hint || '');
  setText('d-client-first', flightText(rec.client_first));
  setText('d-upstream-first', flightText(rec.upstream_first));
  setText('d-json', JSON.stringify(rec, null, 2));
}

function showOpen(c) {
  shownRecord = null;
  setText('d-id', c.id);
  setText('d-state', 'open for ' + seconds(c.age_seconds) + ', listener ' + c.listener);
  setText('d-stop', 'Waiting in ' + c.phase + ' for ' + seconds(c.phase_seconds) +
    (c.sni === null ? '' : '; SNI ' + c.sni) + (c.upstream === null ? '' : '; upstream ' +
    c.upstream) + '. Its record (hint, first flights) comes when it ends.');
  renderTimeline(openEvents(c), openSpans(c));
  setText('d-hint', '');
  setText('d-client-first', 'the connection is still open');
  setText('d-upstream-first', 'the connection is still open');
  setText('d-json', JSON.stringify(c, null, 2));
}

async function openDetail(which) {
  state.detail = which;
  $('detail').hidden = false;
  await refreshDetail();
  renderConns();
  $('detail').scrollIntoView({ block: 'nearest' });
}

// refreshDetail: an open connection follows the live table; once it has ended, its record.
async function refreshDetail() {
  const d = state.detail;
  if (!d) return;
  if (d.kind === 'open') {
    const c = state.open.find((x) => x.id === d.id);
    if (c) { showOpen(c); return; }
    const answer = await api('/api/records?id=' + encodeURIComponent(d.id) + '&limit=1');
    if (answer.records.length) {
      state.detail = { kind: 'record', id: d.id, rec: answer.records[0] };
    } else {
      setText('d-state', 'ended; its record is not in the ring (yet)');
      return;
    }
  }
  showRecord(state.detail.rec);
}

// ---------------------------------------------------------------------------------------------
// The refresh loop: one round at a time, every kRefreshMs.

async function refresh() {
  const started = Date.now();
  try {
    const [listeners, open, fun, recent] = await Promise.all([
      api('/api/listeners'),
      api('/api/connections'),
      api('/api/funnel?' + new URLSearchParams(Object.assign({ window: state.window },
        $('f-listener').value ? { listener: $('f-listener').value } : {})).toString()),
      api('/api/records?limit=50'),
    ]);
    showAuth(false);
    state.listeners = listeners;
    state.open = open;
    state.recent = recent.records;
    renderListeners();
    renderConns();
    renderFunnel(fun);
    renderRecent(recent);
    await refreshDetail();
    await refreshList();
    setText('status', 'live');
    $('status').className = 'status ok';
    setText('updated', 'updated ' + new Date().toLocaleTimeString());
  } catch (e) {
    if (e instanceof AuthError) {
      showAuth(true, state.token ? 'that token was refused' : '');
      setText('status', 'token needed');
    } else {
      setText('status', 'disconnected: ' + e.message);
    }
    $('status').className = 'status bad';
  }
  // Every kRefreshMs from the start of a round (a slow round is not followed by a full pause).
  setTimeout(refresh, Math.max(100, kRefreshMs - (Date.now() - started)));
}

function setup() {
  loadToken();
  $('auth').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.token = $('auth-token').value;
    try { sessionStorage.setItem('linesman-token', state.token); } catch (e) { /* private */ }
    $('auth-token').value = '';
    setText('auth-error', '');
  });
  for (const b of document.querySelectorAll('.windows button')) {
    b.addEventListener('click', () => {
      state.window = b.getAttribute('data-window');
      for (const o of document.querySelectorAll('.windows button')) {
        o.classList.toggle('on', o === b);
      }
    });
  }
  for (const id of ['f-listener', 'f-phase', 'f-sni']) {
    $(id).addEventListener('input', renderConns);
  }
  // A token given in the fragment of an already open page (#token=...) is taken too.
  window.addEventListener('hashchange', loadToken);
  $('d-close').addEventListener('click', () => {
    state.detail = null;
    $('detail').hidden = true;
    renderConns();
  });
  refresh();
}

document.addEventListener('DOMContentLoaded', setup);
