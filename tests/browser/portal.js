// The status page in a real browser: Debian's chromium driven by
// puppeteer-core.  Started by tests/integration/test_portal_browser.py,
// which runs the nodes, the OIDC issuer and a page of another origin, and
// passes everything in the environment (see ENV below).  Exits 0 when every
// step passed, 1 otherwise; screenshots go to OCTOHA_ARTIFACTS.
//
// Any console error, uncaught exception, failed request or HTTP error
// answer on a page fails the run (the few answers a step provokes on
// purpose are named where it does).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require('puppeteer-core');

const ENV = {
  a: process.env.OCTOHA_A_URL, // the node the pages talk to
  b: process.env.OCTOHA_B_URL, // the other node
  aId: process.env.OCTOHA_A_ID,
  bId: process.env.OCTOHA_B_ID,
  operatorKey: process.env.OCTOHA_OPERATOR_KEY,
  readerKey: process.env.OCTOHA_READER_KEY,
  adminKey: process.env.OCTOHA_ADMIN_KEY,
  crossOrigin: process.env.OCTOHA_CROSS_ORIGIN_URL,
  artifacts: process.env.OCTOHA_ARTIFACTS,
  chromium: process.env.OCTOHA_CHROMIUM || '/usr/bin/chromium',
};

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

let failures = 0;
function log(msg) { process.stdout.write(msg + '\n'); }
function fail(msg) { failures++; log('FAIL: ' + msg); }
function check(cond, msg) { if (cond) log('ok: ' + msg); else fail(msg); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function api(base, method, p, key, body) {
  const headers = { 'X-Octopus-ApiKey': key };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { /* not JSON */ }
  if (r.status >= 400) throw new Error(`${method} ${p}: ${r.status} ${text}`);
  return json;
}

// Watches a page for what must never happen.  EXPECTED(url, status) may
// excuse an HTTP error a step provokes on purpose.
function guard(page, name) {
  const problems = [];
  const g = { problems, expected: () => false };
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`${name}: console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${name}: uncaught: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`${name}: request failed: ${r.method()} ${r.url()} ${r.failure() && r.failure().errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400 && !g.expected(r.url(), r.status())) problems.push(`${name}: ${r.status()} for ${r.request().method()} ${r.url()}`);
  });
  return g;
}

function report(g) {
  if (g.problems.length === 0) log('ok: no console error, failed request or error answer');
  for (const p of g.problems) fail(p);
  g.problems.length = 0;
}

async function shot(page, name, what) {
  const file = path.join(ENV.artifacts, name);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot: ${file} — ${what}`);
}

async function nodeState(page, id) {
  return page.$eval(`#nodes-table tr[data-node="${id}"]`, (tr) => tr.dataset.state).catch(() => null);
}

// WANT: a state, or a list of states any of which will do.
async function waitNodeState(page, id, want, timeout) {
  await page.waitForFunction((i, w) => {
    const tr = document.querySelector(`#nodes-table tr[data-node="${i}"]`);
    return tr && [].concat(w).includes(tr.dataset.state);
  }, { timeout, polling: 'mutation' }, id, want);
}

// A drained node is Draining while tasks still run on it, then Drained.
const MAINTENANCE = ['Draining', 'Drained'];

// Clicks (or focuses and presses Enter on) SELECTOR once it is there; a
// row the page redraws under the pointer is looked up again.
async function press(page, selector, keyboard) {
  for (let i = 0; ; i++) {
    try {
      await page.waitForSelector(selector, { visible: true, timeout: 5000 });
      if (keyboard) {
        await page.focus(selector);
        await page.keyboard.press('Enter');
      } else {
        await page.click(selector);
      }
      return;
    } catch (e) {
      if (i >= 3 || !/detached|not clickable|No element/.test(String(e))) throw e;
      await sleep(100);
    }
  }
}

async function signInWithKey(page, key) {
  await page.goto(ENV.a + '/app/', { waitUntil: 'load' });
  await page.waitForSelector('#key', { visible: true });
  await page.type('#key', key);
  await page.keyboard.press('Enter'); // the form submits from the keyboard
  await page.waitForSelector('#nodes-table tbody tr[data-node]', { visible: true });
}

// Every control has a name a screen reader can say.
async function checkLabels(page, what) {
  const unlabelled = await page.evaluate(() => {
    const bad = [];
    for (const e of document.querySelectorAll('input, select, button, a[href], [tabindex]')) {
      if (e.closest('[hidden]') || e.type === 'hidden') continue;
      const name = (e.getAttribute('aria-label') || e.textContent || '').trim() ||
        (e.id && document.querySelector(`label[for="${e.id}"]`)) || e.closest('label') ||
        e.getAttribute('aria-labelledby');
      if (!name) bad.push(e.outerHTML.slice(0, 80));
    }
    for (const t of document.querySelectorAll('table')) {
      if (!t.closest('[hidden]') && !t.caption && !t.getAttribute('aria-labelledby')) bad.push('table without caption');
    }
    return bad;
  });
  check(unlabelled.length === 0, `${what}: every control and table is labelled ${unlabelled.join(' | ')}`);
}

async function operator(browser) {
  log('--- an Operator signs in with an API key');
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  const g = guard(page, 'operator');
  await page.setViewport(DESKTOP);
  await page.goto(ENV.a + '/app/', { waitUntil: 'load' });
  await page.waitForSelector('#key', { visible: true });
  check(await page.evaluate(() => document.activeElement && document.activeElement.id === 'key'), 'the key field has the focus');
  await checkLabels(page, 'sign-in');
  await shot(page, '01-signin.png', 'sign-in: API key field, and the OIDC issuer button');
  await page.type('#key', ENV.operatorKey);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#nodes-table tbody tr[data-node]', { visible: true });
  check(!(await page.evaluate(() => location.href.includes('API-'))), 'the key is in no URL');
  check(await page.evaluate((k) => sessionStorage.getItem('octoha.auth').includes(k) && !localStorage.length, ENV.operatorKey),
    'the key is in sessionStorage only');
  await page.waitForFunction(() => document.querySelector('#live').textContent === 'Live', { timeout: 5000 });
  const rows = await page.$$eval('#nodes-table tbody tr[data-node]', (trs) => trs.map((t) => [t.dataset.node, t.dataset.state]));
  check(rows.length === 2 && rows.every(([, s]) => s === 'Online'), `two nodes, both Online: ${JSON.stringify(rows)}`);
  check(await page.$eval('#who-role', (e) => e.textContent) === 'Operator', 'the role is shown');
  await checkLabels(page, 'cluster');
  await shot(page, '02-cluster.png', 'cluster: two nodes Online (green, with text), running tasks against caps, capacity lost if the largest fails, Drain/Undrain/Task cap');

  // A drain made through node B (not through this page, not through node A)
  // must reach the page through A's event stream, without a reload.
  await page.evaluate(() => { window.notReloaded = true; });
  const t0 = Date.now();
  await api(ENV.b, 'POST', `/api/octopusservernodes/${ENV.bId}/drain`, ENV.adminKey, { Reason: 'browser test' });
  try {
    await waitNodeState(page, ENV.bId, MAINTENANCE, 2000);
    log(`drain through node B shown on the page (connected to A) after ${Date.now() - t0} ms`);
    check(true, 'the drained node turns Draining/Drained within 2 s');
  } catch (e) {
    fail(`node B is not in maintenance on the page within 2 s (state ${await nodeState(page, ENV.bId)})`);
  }
  check(await page.evaluate(() => window.notReloaded === true), 'without a reload');
  const badge = await page.$eval(`#nodes-table tr[data-node="${ENV.bId}"] .badge`, (b) => [b.textContent, getComputedStyle(b).backgroundColor]);
  check(MAINTENANCE.includes(badge[0]) && badge[1] !== 'rgba(0, 0, 0, 0)', `the state is told by text and colour: ${badge}`);
  await shot(page, '03-cluster-drained.png', 'cluster: node B Drained (amber, with text) after a drain made through node B, and its Undrain button');

  // Undrain from the page, from the keyboard, with the confirmation.
  await press(page, `#nodes-table tr[data-node="${ENV.bId}"] button[data-action="undrain"]`, true);
  await page.waitForSelector('#confirm[open]');
  await shot(page, '04-undrain-confirm.png', 'the confirmation before an undrain');
  await page.click('#confirm-ok');
  await waitNodeState(page, ENV.bId, 'Online', 5000).then(() => check(true, 'undrain from the page: Online again'),
    () => fail('undrain from the page did not show Online'));

  // Drain from the page with a reason and a deadline.
  await press(page, `#nodes-table tr[data-node="${ENV.bId}"] button[data-action="drain"]`);
  await page.waitForSelector('#confirm[open] #cf-reason');
  await page.type('#cf-reason', 'patching from the page');
  await page.type('#cf-deadline', '600');
  await shot(page, '05-drain-dialog.png', 'the drain dialog: reason, deadline, action at the deadline, force');
  await page.click('#confirm-ok');
  await waitNodeState(page, ENV.bId, MAINTENANCE, 5000).then(() => check(true, 'drain from the page: Draining/Drained'),
    () => fail('drain from the page did not show Draining or Drained'));
  const drained = await api(ENV.a, 'GET', `/api/octopusservernodes/${ENV.bId}`, ENV.adminKey);
  check(drained.IsInMaintenanceMode === true, 'the node really is in maintenance mode');
  const evs = await api(ENV.a, 'GET', `/api/events?regarding=${ENV.bId}&category=NodeDrainRequested&take=1`, ENV.adminKey);
  check(JSON.stringify(evs.Items[0].Details || {}).includes('patching from the page'), 'the reason reached the node');
  await press(page, `#nodes-table tr[data-node="${ENV.bId}"] button[data-action="undrain"]`);
  await page.waitForSelector('#confirm[open]');
  await page.click('#confirm-ok');
  await waitNodeState(page, ENV.bId, 'Online', 5000).catch(() => fail('second undrain did not show Online'));

  // Tasks: a long task appears live, its log follows, and it is cancelled.
  await page.click('#nav a[data-view="tasks"]');
  await page.waitForSelector('#tasks-table tbody tr');
  const task = await api(ENV.b, 'POST', '/api/tasks', ENV.operatorKey, { Name: 'Diagnostic', Arguments: { WaitMs: 30000, LogLines: 30 } });
  await page.waitForSelector(`#tasks-table tr[data-task="${task.Id}"][data-state="Executing"]`, { timeout: 5000 })
    .then(() => check(true, 'a task queued through node B shows up Executing, live'),
      () => fail('the new task did not appear Executing'));
  await press(page, `#tasks-table tr[data-task="${task.Id}"] button[data-action="log"]`);
  await page.waitForFunction(() => document.querySelector('#log-text').textContent.split('\n').filter(Boolean).length >= 2, { timeout: 8000 })
    .then(() => check(true, 'the log viewer shows the task log and follows it'), () => fail('no log lines'));
  const before = await page.$eval('#log-text', (p) => p.textContent.length);
  await sleep(2500);
  const after = await page.$eval('#log-text', (p) => p.textContent.length);
  check(after > before, `the log grows while following (${before} -> ${after} characters)`);
  await shot(page, '06-tasks-log.png', 'tasks: the running Diagnostic task, its log followed');
  await press(page, `#tasks-table tr[data-task="${task.Id}"] button[data-action="cancel"]`);
  await page.waitForSelector('#confirm[open]');
  await page.click('#confirm-ok');
  await page.waitForSelector(`#tasks-table tr[data-task="${task.Id}"][data-state="Canceled"]`, { timeout: 10000 })
    .then(() => check(true, 'cancel from the page: the task ends Canceled'), () => fail('the task did not end Canceled'));
  const t = await api(ENV.a, 'GET', `/api/tasks/${task.Id}`, ENV.adminKey);
  check(t.State === 'Canceled', `the task is Canceled on the server: ${t.State}`);
  await page.select('#f-state', 'Canceled');
  await page.click('#task-filter button[type="submit"]');
  await page.waitForFunction(() => [...document.querySelectorAll('#tasks-table tbody tr[data-task]')].every((r) => r.dataset.state === 'Canceled'));
  check(true, 'the state filter keeps Canceled tasks only');
  await shot(page, '07-tasks-canceled.png', 'tasks filtered to Canceled: the cancelled task');
  await page.select('#f-state', '');
  await page.click('#task-filter button[type="submit"]');

  await page.click('#nav a[data-view="tentacles"]');
  await page.waitForSelector('#tentacles-table tbody tr[data-tentacle]');
  const order = await page.$$eval('#tentacles-table tbody tr[data-tentacle] td:nth-child(3)', (tds) => tds.map((td) => td.textContent));
  check(order[0] === 'Not every node', `Tentacles not polling every node come first: ${JSON.stringify(order)}`);
  await shot(page, '08-tentacles.png', 'Tentacles: the one not polling every node first, with the nodes it misses');

  await page.click('#nav a[data-view="storage"]');
  await page.waitForSelector('#storage-folders section');
  const folders = await page.$$eval('#storage-folders h2', (hs) => hs.map((h) => h.textContent));
  check(folders.join() === 'Artifacts,TaskLogs,Packages,Imports,EventExports', `storage folders: ${folders}`);
  await shot(page, '09-storage.png', 'storage: each folder with each node\'s check');

  await page.click('#nav a[data-view="events"]');
  await page.waitForSelector('#events-table tbody tr[data-event]');
  const before2 = await page.$$eval('#events-table tbody tr[data-event]', (r) => r.length);
  await api(ENV.b, 'POST', '/api/tasks', ENV.operatorKey, { Name: 'Diagnostic', Arguments: { WaitMs: 0 } });
  await page.waitForFunction((n) => document.querySelectorAll('#events-table tbody tr[data-event]').length > n, { timeout: 3000 }, before2)
    .then(() => check(true, 'a new event appears live'), () => fail('no live event'));
  await shot(page, '10-events.png', 'recent events, the newest arrived through the stream');

  // Phone width.
  await page.setViewport(PHONE);
  await page.click('#nav a[data-view="cluster"]');
  await page.waitForSelector('#nodes-table tbody tr[data-node]');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `nothing wider than a phone screen (overflow ${overflow}px)`);
  await shot(page, '11-cluster-phone.png', 'cluster at phone width: each node a card');
  await page.click('#nav a[data-view="tasks"]');
  await page.waitForSelector('#tasks-table tbody tr[data-task]');
  await shot(page, '12-tasks-phone.png', 'tasks at phone width');
  report(g);
  await ctx.close();
}

async function reader(browser) {
  log('--- a Reader sees no controls it cannot use');
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  const g = guard(page, 'reader');
  await page.setViewport(DESKTOP);
  await signInWithKey(page, ENV.readerKey);
  const n = await page.$$eval('#nodes-table tbody tr[data-node]', (r) => r.length);
  check(n === 2, `the Reader sees the two nodes (${n})`);
  const controls = await page.$$eval('#nodes-table button', (b) => b.map((x) => x.textContent));
  check(controls.length === 0, `no drain, undrain or task cap button for a Reader: ${controls}`);
  check(await page.$eval('#nodes-table th.op', (th) => th.hidden), 'no Actions column');
  await shot(page, '13-reader-cluster.png', 'a Reader: the cluster without any control');
  await page.click('#nav a[data-view="tasks"]');
  await page.waitForSelector('#tasks-table tbody tr[data-task]');
  const cancel = await page.$$('#tasks-table button[data-action="cancel"]');
  check(cancel.length === 0, 'no cancel button for a Reader');
  report(g);
  await ctx.close();
}

async function singleSignOn(browser) {
  log('--- signing in through the OIDC issuer (authorization code with PKCE)');
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  const g = guard(page, 'oidc');
  await page.setViewport(DESKTOP);
  await page.goto(ENV.a + '/app/', { waitUntil: 'load' });
  await page.waitForSelector('#oidc-signin', { visible: true });
  await Promise.all([page.waitForNavigation(), page.click('#oidc-signin')]);
  await page.waitForSelector('#nodes-table tbody tr[data-node]', { visible: true, timeout: 10000 });
  const who = await page.$eval('#who-name', (e) => e.textContent);
  const role = await page.$eval('#who-role', (e) => e.textContent);
  check(who === 'Portal User' && role === 'Operator', `signed in as the issuer's user with the mapped role: ${who} ${role}`);
  const url = await page.evaluate(() => location.href);
  check(!url.includes('code=') && !url.includes('state='), `the code is gone from the address bar: ${url}`);
  const controls = await page.$$('#nodes-table button[data-action="drain"], #nodes-table button[data-action="undrain"]');
  check(controls.length === 2, 'an Operator token is offered drain (or undrain) on each node');
  await shot(page, '14-oidc-signed-in.png', 'signed in through the OIDC issuer: the token user, Operator');
  report(g);
  await ctx.close();
}

async function crossOrigin(browser) {
  log('--- a page of another origin calls the API through CORS');
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  const g = guard(page, 'cross-origin');
  await page.goto(ENV.crossOrigin, { waitUntil: 'load' });
  await page.waitForFunction(() => document.querySelector('#result').textContent !== '', { timeout: 10000 });
  const result = JSON.parse(await page.$eval('#result', (e) => e.textContent));
  check(result.ok === true, `GET and POST with X-Octopus-ApiKey from ${ENV.crossOrigin}: ${JSON.stringify(result)}`);
  check(/^\/api\/tasks\/ServerTasks-/.test(result.location || ''), 'the page read the exposed Location header');
  report(g);
  await ctx.close();
}

(async () => {
  fs.mkdirSync(ENV.artifacts, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'octoha-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: ENV.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--user-data-dir=${profile}`],
  });
  try {
    log(`chromium ${await browser.version()}`);
    for (const step of [operator, reader, singleSignOn, crossOrigin]) {
      try {
        await step(browser);
      } catch (e) {
        fail(`${step.name}: ${e.stack || e}`);
      }
    }
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  log(failures ? `${failures} check(s) failed` : 'all browser checks passed');
  process.exit(failures ? 1 : 0);
})().catch((e) => {
  log('FAIL: ' + (e.stack || e));
  process.exit(1);
});
