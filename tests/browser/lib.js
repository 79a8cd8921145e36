// SPDX-License-Identifier: AGPL-3.0-or-later
// Shared helpers of the browser tests (CommonJS; playwright-core is found
// through NODE_PATH, set by run_browser_test.py).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const {chromium} = require('playwright-core');

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(k + ' is not set (run through run_browser_test.py)');
  return v;
};

const CHROMIUM_ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync'];

let step = 0;
function ok(msg) { console.log('ok  ' + msg); }

function assert(cond, msg) {
  if (!cond) throw new Error('assertion failed: ' + msg);
}

// Which browser profile (FSC_PROFILE, run_browser_test.py --profile):
//   default - a fresh profile as Chromium makes it (the same-site tests);
//   normal  - a fresh profile that allows third-party cookies and storage,
//             as Chrome and Edge do by default (pref
//             profile.cookie_controls_mode = 0);
//   blocked - a private window: an off-the-record context, where Chromium
//             blocks third-party cookies and storage (as Chrome's incognito
//             windows, Safari and many enterprise policies do).
function profile() { return process.env.FSC_PROFILE || 'default'; }

// A fresh browser (its own user-data-dir under the test's temp dir).
async function launch() {
  const base = process.env.FSC_TMP || os.tmpdir();
  const args = CHROMIUM_ARGS.concat((process.env.FSC_CHROMIUM_ARGS || '').split('\n').filter(Boolean));
  const opts = {executablePath: env('FSC_CHROMIUM'), headless: true, args};
  const viewport = {width: 400, height: 720};
  let context;
  if (profile() === 'blocked') {
    const browser = await chromium.launch(opts);
    context = await browser.newContext({viewport});
    context.fscBrowser = browser;
  } else {
    const dir = fs.mkdtempSync(path.join(base, 'chromium-'));
    if (profile() === 'normal') {
      fs.mkdirSync(path.join(dir, 'Default'));
      fs.writeFileSync(path.join(dir, 'Default', 'Preferences'),
        JSON.stringify({profile: {cookie_controls_mode: 0}}));
    }
    context = await chromium.launchPersistentContext(dir, Object.assign({viewport}, opts));
  }
  context.setDefaultTimeout(15000);
  return context;
}

// Every page's console errors and page errors end up in the test output;
// CSP violations are failures (the page must not need inline code).
function watch(page, name) {
  const problems = [];
  page.on('console', (m) => {
    const t = m.text();
    if (m.type() === 'error' || m.type() === 'warning') console.log('[' + name + ' console.' + m.type() + '] ' + t);
    if (/Content Security Policy/i.test(t)) problems.push(t);
  });
  page.on('pageerror', (e) => { console.log('[' + name + ' pageerror] ' + e.message); problems.push(e.message); });
  return problems;
}

async function shot(page, label) {
  step += 1;
  const file = path.join(env('FSC_SCREENSHOT_DIR'), String(step).padStart(2, '0') + '-' + label + '.png');
  await page.screenshot({path: file, fullPage: true});
  console.log('    screenshot ' + file);
  return file;
}

async function http(method, url, body) {
  const r = await fetch(url, {
    method, headers: body === undefined ? {} : {'Content-Type': 'application/json'},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  return {status: r.status, body: data};
}

async function waitFor(pred, what, timeoutMs) {
  const end = Date.now() + (timeoutMs || 10000);
  let last;
  for (;;) {
    try {
      last = await pred();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error('timed out waiting for ' + what + ' (last: ' + (last && last.message || JSON.stringify(last)) + ')');
    await new Promise((r) => setTimeout(r, 100));
  }
}

// finesse-sim control API
const fin = {
  url: () => env('FSC_FINESSE_CONTROL'),
  async agent(id) { return (await http('GET', fin.url() + '/sim/agents/' + id)).body; },
  async call(agent, extra) {
    const r = await http('POST', fin.url() + '/sim/calls', Object.assign({
      agent: String(agent), ani: '+14155550100', dnis: '8000', queue: 'Sales',
      callvariables: {}, ecc: {}}, extra || {}));
    assert(r.status === 200, 'sim call: ' + r.status + ' ' + JSON.stringify(r.body));
    return r.body.dialog_id;
  },
  async dialog(id) { return (await http('GET', fin.url() + '/sim/calls/' + id)).body; },
  async hangup(id) { return http('POST', fin.url() + '/sim/calls/' + id + '/hangup'); },
  async stats() { return (await http('GET', fin.url() + '/sim/stats')).body; },
  async waitAgent(id, state, what) {
    return waitFor(async () => {
      const a = await fin.agent(id);
      return a && a.state === state ? a : false;
    }, what || ('agent ' + id + ' ' + state));
  },
  part(d, ext) { return (d.participants || []).find((p) => p.address === ext) || {}; },
  async waitPart(did, ext, state) {
    return waitFor(async () => {
      const d = await fin.dialog(did);
      return d && fin.part(d, ext).state === state ? d : false;
    }, 'dialog ' + did + ': ' + ext + ' ' + state);
  },
};

// No horizontal scrollbar at this width.
async function checkWidth(page, width, label) {
  await page.setViewportSize({width, height: 720});
  await page.waitForTimeout(100);
  const m = await page.evaluate(() => ({
    sw: document.scrollingElement.scrollWidth, cw: document.scrollingElement.clientWidth,
    wide: Array.from(document.querySelectorAll('body *')).filter((e) => {
      const r = e.getBoundingClientRect();
      return r.width > 0 && r.right > document.documentElement.clientWidth + 0.5;
    }).map((e) => e.tagName + '.' + e.className + '#' + e.id).slice(0, 5),
  }));
  await shot(page, label + '-' + width + 'px');
  assert(m.sw <= m.cw, label + ' at ' + width + ' px: scrollWidth ' + m.sw + ' > clientWidth ' + m.cw +
    ' (too wide: ' + m.wide.join(', ') + ')');
  ok(label + ' at ' + width + ' px: no horizontal scroll (scrollWidth ' + m.sw + ' <= ' + m.cw + ')');
}

// Run the test body; exit non-zero on any failure (with a last screenshot).
async function run(name, body) {
  let context;
  const t0 = Date.now();
  try {
    context = await launch();
    await body(context);
    console.log('PASS ' + name + ' (' + ((Date.now() - t0) / 1000).toFixed(1) + ' s)');
  } catch (e) {
    console.log('FAIL ' + name + ': ' + (e && e.stack || e));
    if (context) {
      for (const [i, p] of context.pages().entries()) {
        try { await shot(p, 'failure-page' + i); } catch (e2) { /* closed */ }
      }
    }
    process.exitCode = 1;
  } finally {
    if (context) await context.close().catch(() => {});
    if (context && context.fscBrowser) await context.fscBrowser.close().catch(() => {});
  }
}

module.exports = {env, ok, assert, launch, profile, watch, shot, http, waitFor, fin, checkWidth, run};
