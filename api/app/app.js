// octoha status page.  Plain JavaScript, no framework, no build step: the
// node serves this file as it is written.  It signs in with an API key
// (kept in sessionStorage, sent in a header, never put in a URL) or through
// the configured OIDC issuer (authorization code with PKCE), then calls the
// API with that credential and follows /api/events/stream, read with
// fetch() because EventSource cannot send headers.  Controls a role cannot
// use are not drawn at all.
'use strict';

(function () {
  const ROLES = { Reader: 1, Operator: 2, Admin: 3 };
  const AUTH_KEY = 'octoha.auth';
  const PKCE_KEY = 'octoha.pkce';
  const VIEWS = ['cluster', 'tasks', 'tentacles', 'storage', 'events'];
  const REFRESH_MS = 30000;

  const state = {
    auth: null,
    me: null,
    view: 'cluster',
    loaded: {},
    stream: null,
    lastId: null,
    seen: new Set(),
    seenOrder: [],
    tasks: new Map(),
    nodes: new Map(),
    taskFilter: { states: '', name: '' },
    log: null,
    timers: {},
    refreshTimer: null,
  };

  const $ = (id) => document.getElementById(id);

  // Builds an element.  ATTRS: class, text, dataset via data-*, aria-*,
  // other attributes, and on<event> handlers.  CHILDREN: nodes or strings.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (k === 'value') e.value = v;
      else if (k === 'checked') e.checked = !!v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function badge(text, kind) {
    const k = String(kind || text).toLowerCase().replace(/[^a-z]/g, '');
    return el('span', { class: 'badge s-' + k, text });
  }

  // A table cell; its content sits in one box so that on narrow screens,
  // where each row becomes a card, the label and the value stay side by side.
  function cell(label, ...children) {
    return el('td', { 'data-label': label }, el('div', { class: 'v' }, ...children));
  }

  function shortNode(id) {
    return id ? String(id).replace(/^OctopusServerNodes-/, '') : '—';
  }

  function when(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    return d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
  }

  function ago(iso) {
    if (!iso) return '—';
    const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
    if (!isFinite(s)) return iso;
    if (s < 2) return 'just now';
    if (s < 120) return s + ' s ago';
    if (s < 7200) return Math.round(s / 60) + ' min ago';
    return Math.round(s / 3600) + ' h ago';
  }

  function canOperate() {
    return state.me && (ROLES[state.me.Role] || 0) >= ROLES.Operator;
  }

  // ---- messages --------------------------------------------------------

  function notice(text, kind) {
    const n = $('notice');
    n.classList.toggle('info', kind === 'info');
    $('notice-text').textContent = text;
    n.hidden = false;
    clearTimeout(state.timers.notice);
    if (kind === 'info') state.timers.notice = setTimeout(() => { n.hidden = true; }, 8000);
  }

  function errorText(e) {
    if (e && e.body && e.body.ErrorMessage) return e.body.ErrorMessage + (e.body.Code ? ' (' + e.body.Code + ')' : '');
    return (e && e.message) || String(e);
  }

  // ---- credentials -------------------------------------------------------

  function loadAuth() {
    try {
      return JSON.parse(sessionStorage.getItem(AUTH_KEY) || 'null');
    } catch (e) {
      return null;
    }
  }

  function authHeaders() {
    const a = state.auth;
    if (!a) return {};
    return a.kind === 'token' ? { Authorization: 'Bearer ' + a.token } : { 'X-Octopus-ApiKey': a.key };
  }

  class ApiError extends Error {
    constructor(status, body, text) {
      super((body && body.ErrorMessage) || ('HTTP ' + status));
      this.status = status;
      this.body = body;
      this.text = text;
    }
  }

  async function api(method, path, body) {
    const headers = Object.assign({ Accept: 'application/json' }, authHeaders());
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    const text = await r.text();
    let json = null;
    if ((r.headers.get('Content-Type') || '').includes('json') && text) {
      try { json = JSON.parse(text); } catch (e) { json = null; }
    }
    if (r.status === 401 && state.auth) {
      signOut('You are signed out: ' + ((json && json.ErrorMessage) || 'the credential was refused.'));
      throw new ApiError(r.status, json, text);
    }
    if (!r.ok) throw new ApiError(r.status, json, text);
    return json !== null ? json : text;
  }

  // ---- signing in ------------------------------------------------------------

  function b64url(bytes) {
    let s = '';
    for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function randomString() {
    const a = new Uint8Array(32);
    crypto.getRandomValues(a);
    return b64url(a);
  }

  function redirectUri() {
    return location.origin + '/app/';
  }

  async function showSignin() {
    $('nav').hidden = true;
    $('who').hidden = true;
    for (const v of VIEWS) $('view-' + v).hidden = true;
    $('signin').hidden = false;
    $('key').focus();
    try {
      const s = await fetch('/api/authentication/oidc', { cache: 'no-store' }).then((r) => r.json());
      state.oidc = s;
      if (s && s.Enabled) {
        $('oidc-issuer').textContent = s.Issuer;
        $('oidc-box').hidden = false;
      }
    } catch (e) {
      /* keys still work */
    }
  }

  async function signInWithIssuer() {
    const s = state.oidc;
    const verifier = randomString();
    const st = randomString();
    const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
    sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state: st, token: s.TokenEndpoint, client: s.ClientId }));
    const u = new URL(s.AuthorizationEndpoint);
    u.searchParams.set('response_type', 'code');
    u.searchParams.set('client_id', s.ClientId);
    u.searchParams.set('redirect_uri', redirectUri());
    u.searchParams.set('scope', s.Scopes || 'openid');
    u.searchParams.set('state', st);
    u.searchParams.set('code_challenge', b64url(digest));
    u.searchParams.set('code_challenge_method', 'S256');
    location.assign(u.toString());
  }

  // The issuer sent the browser back with ?code=…&state=… (or ?error=…):
  // exchange the code for an access token, then take the code out of the
  // address bar.
  async function finishSignin(params) {
    const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || 'null');
    sessionStorage.removeItem(PKCE_KEY);
    history.replaceState(null, '', '/app/' + location.hash);
    if (params.get('error')) {
      notice('Sign-in failed: ' + params.get('error') + (params.get('error_description') ? ' — ' + params.get('error_description') : ''));
      return;
    }
    if (!saved || saved.state !== params.get('state')) {
      notice('Sign-in failed: the answer does not belong to a sign-in started here.');
      return;
    }
    const form = new URLSearchParams();
    form.set('grant_type', 'authorization_code');
    form.set('code', params.get('code'));
    form.set('redirect_uri', redirectUri());
    form.set('client_id', saved.client);
    form.set('code_verifier', saved.verifier);
    try {
      const r = await fetch(saved.token, { method: 'POST', body: form, cache: 'no-store' });
      const j = await r.json();
      if (!r.ok || !j.access_token) throw new Error(j.error_description || j.error || 'HTTP ' + r.status);
      const exp = Date.now() + 1000 * (Number(j.expires_in) || 3600);
      sessionStorage.setItem(AUTH_KEY, JSON.stringify({ kind: 'token', token: j.access_token, exp }));
    } catch (e) {
      notice('Sign-in failed: ' + errorText(e));
    }
  }

  function signOut(message) {
    if (state.stream) state.stream.abort();
    state.stream = null;
    sessionStorage.removeItem(AUTH_KEY);
    state.auth = null;
    state.me = null;
    state.loaded = {};
    state.tasks.clear();
    clearInterval(state.refreshTimer);
    if (message) notice(message);
    showSignin();
  }

  async function enter() {
    try {
      state.me = await api('GET', '/api/users/me');
    } catch (e) {
      if (e.status !== 401) notice('Cannot reach octoha: ' + errorText(e));
      return;
    }
    $('signin').hidden = true;
    $('nav').hidden = false;
    $('who').hidden = false;
    $('who-name').textContent = state.me.DisplayName;
    $('who-role').textContent = state.me.Role;
    document.body.classList.toggle('operator', canOperate());
    route();
    follow();
    clearInterval(state.refreshTimer);
    state.refreshTimer = setInterval(() => load(state.view), REFRESH_MS);
  }

  // ---- views -----------------------------------------------------------------

  function route() {
    let v = location.hash.replace(/^#/, '');
    if (!VIEWS.includes(v)) v = 'cluster';
    state.view = v;
    for (const name of VIEWS) $('view-' + name).hidden = name !== v;
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.view === v) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    load(v);
  }

  async function load(view) {
    if (!state.me) return;
    try {
      if (view === 'cluster') await loadCluster();
      else if (view === 'tasks') await loadTasks();
      else if (view === 'tentacles') await loadTentacles();
      else if (view === 'storage') await loadStorage();
      else if (view === 'events') await loadEvents();
      state.loaded[view] = true;
    } catch (e) {
      if (e.status !== 401) notice('Could not load the ' + view + ' view: ' + errorText(e));
    }
  }

  // Changes arrive in bursts (a drain is an event and a task or two): one
  // reload of a view per burst.
  function soon(view) {
    if (!state.loaded[view] || state.view !== view) {
      state.loaded[view] = false;
      return;
    }
    clearTimeout(state.timers[view]);
    state.timers[view] = setTimeout(() => load(view), 120);
  }

  const STATE_TEXT = { Online: 'Online', Draining: 'Draining', Drained: 'Drained', Offline: 'Offline' };

  async function loadCluster() {
    const t = await api('GET', '/api/cluster/topology');
    const nodes = t.Nodes || [];
    const online = nodes.filter((n) => n.State !== 'Offline').length;
    const running = nodes.reduce((a, n) => a + (n.RunningTasks || 0), 0);
    const sum = $('cluster-summary');
    clear(sum);
    const item = (k, v) => sum.append(el('div', {}, el('dt', { text: k }), el('dd', { text: v })));
    item('Nodes online', online + ' of ' + nodes.length);
    item('Running tasks', running + ' of ' + t.TotalCapacity);
    item('Capacity lost if the largest node fails', t.CapacityLostIfLargestNodeFailsPercent + ' %');
    const warn = $('cluster-warnings');
    clear(warn);
    for (const w of t.Warnings || []) warn.append(el('li', { text: w.Message }));

    // A row whose node did not change stays as it is (only Last seen is
    // updated), so a refresh neither moves the keyboard focus nor pulls a
    // button from under the pointer.
    const body = $('nodes-table').tBodies[0];
    const old = new Map([...body.querySelectorAll('tr[data-node]')].map((tr) => [tr.dataset.node, tr]));
    // A row that changed is drawn anew; the keyboard focus in it moves to
    // the new row (its button of the same kind, else its first).
    const focused = document.activeElement && document.activeElement.closest &&
      document.activeElement.closest('#nodes-table tr[data-node]');
    const focusNode = focused ? focused.dataset.node : null;
    const focusAction = focused && document.activeElement.dataset ? document.activeElement.dataset.action : null;
    clear(body);
    $('nodes-table').querySelector('th.op').hidden = !canOperate();
    state.nodes = new Map();
    for (const n of nodes) {
      state.nodes.set(n.Id, n);
      let tr = old.get(n.Id);
      if (tr && tr.dataset.key === nodeKey(n)) {
        const seen = tr.querySelector('.seen');
        seen.textContent = ago(n.LastSeen);
        seen.title = when(n.LastSeen);
      } else {
        tr = nodeRow(n);
      }
      body.append(tr);
      if (n.Id === focusNode && document.activeElement !== tr && !tr.contains(document.activeElement)) {
        const same = focusAction && tr.querySelector('button[data-action="' + focusAction + '"]');
        (same || tr.querySelector('button') || tr).focus();
      }
    }
    if (!nodes.length) body.append(el('tr', { class: 'empty' }, el('td', { colspan: 6, text: 'No nodes are registered.' })));
  }

  function nodeKey(n) {
    return JSON.stringify([n.Name, n.PublicUrl, n.State, n.MaxConcurrentTasks, n.RunningTasks, n.Version]);
  }

  function nodeRow(n) {
    const cap = n.MaxConcurrentTasks;
    const tr = el('tr', { 'data-node': n.Id, 'data-state': n.State, 'data-key': nodeKey(n) },
      cell('Node', el('strong', { text: n.Name }), el('span', { class: 'sub', text: n.PublicUrl })),
      cell('State', badge(STATE_TEXT[n.State] || n.State, n.State)),
      cell('Running tasks', el('span', { class: 'num', text: n.RunningTasks + ' / ' + cap }),
        el('meter', { min: 0, max: Math.max(cap, 1), value: Math.min(n.RunningTasks, Math.max(cap, 1)), 'aria-label': n.RunningTasks + ' of ' + cap + ' task slots in use' })),
      cell('Last seen', el('span', { class: 'seen', title: when(n.LastSeen), text: ago(n.LastSeen) })),
      cell('Version', n.Version));
    if (canOperate()) {
      const actions = el('div', { class: 'v' });
      if (n.State === 'Online')
        actions.append(el('button', { type: 'button', class: 'small', 'data-action': 'drain', 'aria-label': 'Drain ' + n.Name, text: 'Drain', onclick: () => drainNode(n) }));
      else if (n.State === 'Draining' || n.State === 'Drained')
        actions.append(el('button', { type: 'button', class: 'small', 'data-action': 'undrain', 'aria-label': 'Undrain ' + n.Name, text: 'Undrain', onclick: () => undrainNode(n) }));
      if (n.State !== 'Offline')
        actions.append(el('button', { type: 'button', class: 'small secondary', 'data-action': 'taskcap', 'aria-label': 'Set the task cap of ' + n.Name, text: 'Task cap', onclick: () => setTaskCap(n) }));
      tr.append(el('td', { class: 'actions', 'data-label': 'Actions' }, actions));
    }
    return tr;
  }

  // A node's new state from an event, shown at once (with the controls
  // that go with it) until the view is read again.
  function showNodeState(id, st) {
    const n = state.nodes && state.nodes.get(id);
    const tr = $('nodes-table').querySelector('tr[data-node="' + CSS.escape(id) + '"]');
    if (!n || !tr || n.State === 'Offline' || (st === 'Draining' && n.State === 'Drained')) return;
    n.State = st;
    const had = tr.contains(document.activeElement);
    const row = nodeRow(n);
    tr.replaceWith(row);
    if (had) (row.querySelector('button') || row).focus();
  }

  function taskKey(t) {
    return 'T' + t.Id + '@' + t.LastUpdatedTime + '/' + t.State + '/' + t.Progress;
  }

  function taskMatches(t) {
    const f = state.taskFilter;
    if (f.states && !f.states.split(',').includes(t.State)) return false;
    if (f.name && t.Name !== f.name) return false;
    return true;
  }

  async function loadTasks() {
    const q = new URLSearchParams({ take: '50' });
    if (state.taskFilter.states) q.set('states', state.taskFilter.states);
    if (state.taskFilter.name) q.set('name', state.taskFilter.name);
    const page = await api('GET', '/api/tasks?' + q.toString());
    state.tasks.clear();
    for (const t of page.Items) state.tasks.set(t.Id, t);
    renderTasks();
  }

  function renderTasks() {
    const body = $('tasks-table').tBodies[0];
    const old = new Map([...body.querySelectorAll('tr[data-task]')].map((tr) => [tr.dataset.key, tr]));
    clear(body);
    const list = [...state.tasks.values()].filter(taskMatches)
      .sort((a, b) => (a.QueueTime < b.QueueTime ? 1 : a.QueueTime > b.QueueTime ? -1 : 0)).slice(0, 50);
    for (const t of list) body.append(old.get(taskKey(t)) || taskRow(t)); // unchanged rows stay
    if (!list.length) body.append(el('tr', { class: 'empty' }, el('td', { colspan: 6, text: 'No tasks match.' })));
  }

  function taskRow(t) {
    const stateCell = cell('State', badge(t.State),
      t.State === 'Executing' && t.Progress ? el('span', { class: 'num', text: ' ' + t.Progress + ' %' }) : null,
      t.ErrorMessage ? el('span', { class: 'sub', text: t.ErrorMessage }) : null);
    const buttons = el('div', { class: 'v' },
      el('button', { type: 'button', class: 'small secondary', 'data-action': 'log', 'aria-label': 'Show the log of ' + t.Id, text: 'Log', onclick: () => openLog(t) }));
    if (canOperate() && !t.IsCompleted && t.State !== 'Cancelling')
      buttons.append(el('button', { type: 'button', class: 'small danger', 'data-action': 'cancel', 'aria-label': 'Cancel ' + t.Id, text: 'Cancel', onclick: () => cancelTask(t) }));
    const actions = el('td', { class: 'actions', 'data-label': 'Actions' }, buttons);
    return el('tr', { 'data-task': t.Id, 'data-state': t.State, 'data-key': taskKey(t) },
      cell('Task', el('strong', { text: t.Name }), el('span', { class: 'sub mono', text: t.Id }), el('span', { class: 'sub', text: t.Description })),
      stateCell,
      cell('Node', shortNode(t.ServerNode)),
      cell('Queued', when(t.QueueTime)),
      cell('Duration', t.Duration),
      actions);
  }

  async function openLog(t) {
    state.log = { id: t.Id, done: t.IsCompleted };
    $('log-h').textContent = 'Log of ' + t.Name + ' ' + t.Id;
    $('log').hidden = false;
    $('log-text').textContent = '';
    await refreshLog();
    $('log-text').focus();
  }

  async function refreshLog() {
    const l = state.log;
    if (!l) return;
    try {
      const text = await api('GET', '/api/tasks/' + encodeURIComponent(l.id) + '/raw');
      if (state.log !== l) return;
      const pre = $('log-text');
      pre.textContent = typeof text === 'string' ? text : JSON.stringify(text);
      if ($('log-follow').checked) pre.scrollTop = pre.scrollHeight;
    } catch (e) {
      if (e.status !== 401) $('log-text').textContent = 'The log cannot be read: ' + errorText(e);
    }
    clearTimeout(state.timers.log);
    if (!l.done && $('log-follow').checked) state.timers.log = setTimeout(refreshLog, 1000);
  }

  async function loadTentacles() {
    const [page, topo] = await Promise.all([api('GET', '/api/tentacles?take=1000'), api('GET', '/api/cluster/topology')]);
    const missing = new Map();
    for (const m of (topo.Tentacles && topo.Tentacles.NotPollingEveryNode) || []) missing.set(m.Id, m.MissingNodes || []);
    const items = page.Items.slice().sort((a, b) => {
      const ma = missing.has(a.Id) ? 0 : 1;
      const mb = missing.has(b.Id) ? 0 : 1;
      return ma - mb || a.Name.localeCompare(b.Name);
    });
    const cov = topo.Tentacles || {};
    $('tentacles-summary').textContent = (cov.Total || 0) + ' Tentacles: ' + (cov.Polling || 0) + ' polling (' +
      (cov.PollingEveryNode || 0) + ' polling every node), ' + (cov.Listening || 0) + ' listening; ' +
      (cov.NeedReRegistration || 0) + ' must apply their configuration again.';
    const body = $('tentacles-table').tBodies[0];
    clear(body);
    for (const t of items) {
      const polling = t.CommunicationStyle === 'TentacleActive';
      const miss = missing.get(t.Id);
      body.append(el('tr', { 'data-tentacle': t.Id },
        cell('Tentacle', el('strong', { text: t.Name }), t.NeedsReRegistration ? el('span', { class: 'sub', text: 'Must apply its configuration again' }) : null),
        cell('Style', polling ? 'Polling' : 'Listening'),
        cell('Polling', !polling ? '—' : miss ? badge('Not every node', 'failed') : badge('Every node', 'success')),
        cell('Missing nodes', miss && miss.length ? miss.map(shortNode).join(', ') : '—'),
        cell('Health', t.HealthStatus ? badge(t.HealthStatus) : '—')));
    }
    if (!items.length) body.append(el('tr', { class: 'empty' }, el('td', { colspan: 5, text: 'No Tentacles are registered.' })));
  }

  async function loadStorage() {
    const s = await api('GET', '/api/configuration/storage');
    $('storage-summary').textContent = s.AllVerified
      ? 'Every online node has proved it can use every folder.'
      : 'Not every online node has proved it can use every folder.';
    const box = $('storage-folders');
    clear(box);
    for (const f of s.Folders) {
      const id = 'folder-' + f.Name;
      const table = el('table', { class: 'cards storage', 'aria-labelledby': id },
        el('colgroup', {}, ...['c-node', 'c-check', 'c-when', 'c-path', 'c-error'].map((c) => el('col', { class: c }))),
        el('thead', {}, el('tr', {}, ...['Node', 'Check', 'Checked at', 'Path', 'Error'].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, ...f.Nodes.map((n) => el('tr', {},
          cell('Node', n.NodeName),
          cell('Check', badge(n.Verified ? (n.IsCurrent ? 'Verified' : 'Verified (old path)') : 'Unverified', n.Verified ? 'verified' : 'unverified')),
          cell('Checked at', when(n.VerifiedAt)),
          cell('Path', el('span', { class: 'mono', text: n.Path })),
          cell('Error', n.Error || '—')))));
      if (!f.Nodes.length) table.tBodies[0].append(el('tr', { class: 'empty' }, el('td', { colspan: 5, text: 'No node has checked this folder yet.' })));
      box.append(el('section', { class: 'folder' },
        el('h2', { id, text: f.Name }),
        el('p', { class: 'path' }, f.Path ? el('span', { class: 'mono', text: f.Path }) : 'Each node uses its own folder.'),
        el('div', { class: 'table-wrap' }, table)));
    }
  }

  async function loadEvents() {
    const page = await api('GET', '/api/events?take=50');
    const body = $('events-table').tBodies[0];
    clear(body);
    for (const e of page.Items) body.append(eventRow(e));
    if (!page.Items.length) body.append(el('tr', { class: 'empty' }, el('td', { colspan: 5, text: 'No events yet.' })));
  }

  function eventRow(e) {
    return el('tr', { 'data-event': e.Id },
      cell('When', when(e.Occurred)),
      cell('Category', e.Category),
      cell('Who', e.Username || '—'),
      cell('Message', e.Message),
      cell('Result', badge(e.Result, e.Result === 'Success' ? 'success' : e.Result === 'Refused' ? 'refused' : 'failed')));
  }

  // ---- operator actions --------------------------------------------------------

  function field(f) {
    const id = 'cf-' + f.name;
    if (f.type === 'checkbox')
      return el('label', { class: 'inline', for: id }, el('input', { id, name: f.name, type: 'checkbox', checked: f.value }), f.label);
    const input = f.type === 'select'
      ? el('select', { id, name: f.name }, ...f.options.map((o) => el('option', { value: o, text: o })))
      : el('input', { id, name: f.name, type: f.type || 'text', value: f.value, min: f.min, max: f.max, maxlength: f.maxlength, required: f.required, inputmode: f.type === 'number' ? 'numeric' : null });
    if (f.type === 'select' && f.value) input.value = f.value;
    return el('div', { class: 'field' }, el('label', { for: id, text: f.label }), input, f.help ? el('p', { class: 'help', text: f.help }) : null);
  }

  // Asks for confirmation (and FIELDS); resolves to the values, or null.
  function confirmDialog(title, text, fields, okText, danger) {
    const d = $('confirm');
    $('confirm-h').textContent = title;
    $('confirm-text').textContent = text;
    const box = $('confirm-fields');
    clear(box);
    for (const f of fields || []) box.append(field(f));
    const ok = $('confirm-ok');
    ok.textContent = okText;
    ok.className = danger ? 'danger' : '';
    return new Promise((resolve) => {
      const form = $('confirm-form');
      const done = (values) => {
        form.removeEventListener('submit', onSubmit);
        $('confirm-cancel').removeEventListener('click', onCancel);
        d.removeEventListener('cancel', onCancel);
        if (d.open) d.close();
        resolve(values);
      };
      const onSubmit = (ev) => {
        ev.preventDefault();
        if (!form.reportValidity()) return;
        const values = {};
        for (const f of fields || []) {
          const input = $('cf-' + f.name);
          values[f.name] = f.type === 'checkbox' ? input.checked : input.value;
        }
        done(values);
      };
      const onCancel = (ev) => {
        if (ev) ev.preventDefault();
        done(null);
      };
      form.addEventListener('submit', onSubmit);
      $('confirm-cancel').addEventListener('click', onCancel);
      d.addEventListener('cancel', onCancel);
      d.showModal();
      const first = box.querySelector('input, select');
      (first || $('confirm-cancel')).focus();
    });
  }

  async function act(what, fn) {
    try {
      const r = await fn();
      notice(what + (r && r.Id && !what.includes(r.Id) ? ' (task ' + r.Id + ')' : '') + '.', 'info');
    } catch (e) {
      if (e.status !== 401) notice(what + ' failed: ' + errorText(e));
    }
  }

  async function drainNode(n) {
    const v = await confirmDialog('Drain ' + n.Name + '?',
      'The node stops taking new tasks and its ping answers 418, so the load balancer sends it no more traffic. Its running tasks finish.',
      [
        { name: 'reason', label: 'Reason', maxlength: 400, value: '' },
        { name: 'deadline', label: 'Deadline (seconds, empty for none)', type: 'number', min: 0, max: 604800, value: '' },
        { name: 'action', label: 'At the deadline, running tasks are', type: 'select', options: ['Requeue', 'Cancel'], value: 'Requeue' },
        { name: 'force', label: 'Drain even if it is the last node taking work', type: 'checkbox', value: false },
      ], 'Drain', true);
    if (!v) return;
    const body = { DeadlineAction: v.action };
    if (v.reason) body.Reason = v.reason;
    if (v.deadline !== '') body.DeadlineSeconds = Number(v.deadline);
    if (v.force) body.Force = true;
    await act('Drain of ' + n.Name + ' requested', () => api('POST', '/api/octopusservernodes/' + encodeURIComponent(n.Id) + '/drain', body));
  }

  async function undrainNode(n) {
    const v = await confirmDialog('Undrain ' + n.Name + '?', 'The node takes tasks again and its ping answers 200.', [], 'Undrain', false);
    if (!v) return;
    await act('Undrain of ' + n.Name + ' requested', () => api('POST', '/api/octopusservernodes/' + encodeURIComponent(n.Id) + '/undrain'));
  }

  async function setTaskCap(n) {
    const v = await confirmDialog('Task cap of ' + n.Name, 'How many tasks the node runs at once (0: none).',
      [{ name: 'cap', label: 'Maximum concurrent tasks', type: 'number', min: 0, max: 1000, value: String(n.MaxConcurrentTasks), required: true }],
      'Set task cap', false);
    if (!v) return;
    await act('Task cap of ' + n.Name + ' change requested', () => api('PUT', '/api/octopusservernodes/' + encodeURIComponent(n.Id), { MaxConcurrentTasks: Number(v.cap) }));
  }

  async function cancelTask(t) {
    const v = await confirmDialog('Cancel ' + t.Name + '?', 'Task ' + t.Id + ' (' + t.Description + ') will be cancelled.', [], 'Cancel task', true);
    if (!v) return;
    await act('Cancellation of ' + t.Id + ' requested', () => api('POST', '/api/tasks/' + encodeURIComponent(t.Id) + '/cancel'));
  }

  // ---- the live stream -------------------------------------------------------

  function setLive(on, text) {
    const l = $('live');
    l.classList.toggle('on', on);
    l.classList.toggle('off', !on);
    l.textContent = text || (on ? 'Live' : 'Reconnecting…');
  }

  function remember(key) {
    if (state.seen.has(key)) return false;
    state.seen.add(key);
    state.seenOrder.push(key);
    if (state.seenOrder.length > 4000) state.seen.delete(state.seenOrder.shift());
    return true;
  }

  function onAudit(e) {
    if (!remember('E' + e.Id)) return;
    if (state.loaded.events) {
      const body = $('events-table').tBodies[0];
      const empty = body.querySelector('tr.empty');
      if (empty) empty.remove();
      body.prepend(eventRow(e));
      while (body.rows.length > 100) body.deleteRow(body.rows.length - 1);
    }
    const c = e.Category || '';
    const r = e.ResourceId || '';
    // These events are facts about the node's state: shown at once, and the
    // view is read again for the rest (running tasks, capacity).
    const now = { NodeDrainRequested: 'Draining', NodeDrained: 'Drained', NodeUndrained: 'Online' }[c];
    if (now && e.Result === 'Success') showNodeState(r, now);
    if (c.startsWith('Node') || r.startsWith('OctopusServerNodes-')) soon('cluster');
    if (c.startsWith('Storage')) { soon('storage'); soon('cluster'); }
    if (c.startsWith('Tentacle') || c === 'PollingChanged') { soon('tentacles'); soon('cluster'); }
  }

  function onTask(t) {
    if (!remember(taskKey(t))) return;
    const known = state.tasks.get(t.Id);
    if (!known || known.LastUpdatedTime <= t.LastUpdatedTime) state.tasks.set(t.Id, t);
    if (state.loaded.tasks) {
      const row = $('tasks-table').querySelector('tr[data-task="' + CSS.escape(t.Id) + '"]');
      if (row && taskMatches(t)) row.replaceWith(taskRow(t));
      else if (row || taskMatches(t)) renderTasks();
    }
    if (state.log && state.log.id === t.Id) {
      state.log.done = t.IsCompleted;
      if ($('log-follow').checked) refreshLog();
    }
    soon('cluster');
  }

  function handleBlock(block) {
    let ev = 'message';
    let id = null;
    const data = [];
    for (const line of block.split('\n')) {
      if (!line || line[0] === ':') continue;
      const c = line.indexOf(':');
      const f = c < 0 ? line : line.slice(0, c);
      let v = c < 0 ? '' : line.slice(c + 1);
      if (v[0] === ' ') v = v.slice(1);
      if (f === 'event') ev = v;
      else if (f === 'data') data.push(v);
      else if (f === 'id') id = v;
    }
    if (id !== null) state.lastId = id;
    if (ev === 'reset') {
      state.loaded = { [state.view]: true };
      load(state.view);
      return;
    }
    if (!data.length) return;
    let obj;
    try { obj = JSON.parse(data.join('\n')); } catch (e) { return; }
    if (ev === 'audit') onAudit(obj);
    else if (ev === 'task') onTask(obj);
  }

  async function follow() {
    if (state.stream) state.stream.abort();
    const ctl = new AbortController();
    state.stream = ctl;
    let backoff = 1000;
    while (state.stream === ctl) {
      try {
        const headers = Object.assign({ Accept: 'text/event-stream' }, authHeaders());
        if (state.lastId) headers['Last-Event-ID'] = state.lastId;
        const r = await fetch('/api/events/stream', { headers, signal: ctl.signal, cache: 'no-store' });
        if (r.status === 401) {
          signOut('You are signed out: the credential was refused.');
          return;
        }
        if (!r.ok) throw new Error('the stream answered ' + r.status);
        setLive(true);
        backoff = 1000;
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            handleBlock(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      } catch (e) {
        if (ctl.signal.aborted) return;
      }
      if (state.stream !== ctl) return;
      setLive(false);
      await new Promise((res) => setTimeout(res, backoff));
      backoff = Math.min(backoff * 2, 15000);
    }
  }

  // ---- start -------------------------------------------------------------------

  function wire() {
    $('key-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const key = $('key').value.trim();
      if (!/^API-[A-Z0-9]{26,64}$/.test(key)) {
        notice('That is not an API key: API- followed by capital letters and digits.');
        return;
      }
      $('key').value = '';
      state.auth = { kind: 'key', key };
      sessionStorage.setItem(AUTH_KEY, JSON.stringify(state.auth));
      $('notice').hidden = true;
      enter();
    });
    $('oidc-signin').addEventListener('click', () => signInWithIssuer().catch((e) => notice('Sign-in failed: ' + errorText(e))));
    $('signout').addEventListener('click', () => signOut());
    $('notice-close').addEventListener('click', () => { $('notice').hidden = true; });
    $('task-filter').addEventListener('submit', (ev) => {
      ev.preventDefault();
      state.taskFilter = { states: $('f-state').value, name: $('f-name').value.trim() };
      load('tasks');
    });
    $('log-close').addEventListener('click', () => {
      state.log = null;
      clearTimeout(state.timers.log);
      $('log').hidden = true;
    });
    $('log-follow').addEventListener('change', () => { if ($('log-follow').checked) refreshLog(); });
    window.addEventListener('hashchange', () => { if (state.me) route(); });
    for (const t of document.querySelectorAll('table')) t.classList.add('cards');
  }

  async function start() {
    wire();
    const params = new URLSearchParams(location.search);
    if (params.has('code') || params.has('error')) await finishSignin(params);
    state.auth = loadAuth();
    if (state.auth && state.auth.kind === 'token' && Date.now() >= state.auth.exp) {
      sessionStorage.removeItem(AUTH_KEY);
      state.auth = null;
      notice('Your sign-in has expired: sign in again.');
    }
    if (!state.auth) {
      showSignin();
      return;
    }
    enter();
  }

  document.addEventListener('DOMContentLoaded', start);
})();
