// SPDX-License-Identifier: AGPL-3.0-or-later
// The softphone as Salesforce really frames it: sf-sim's Lightning host page
// on https://acme.lightning.force.test and the softphone from
// https://connector.example.test (run_browser_test.py --cross-site), in the
// profile FSC_PROFILE names:
//   normal  - third-party storage allowed (Chrome's and Edge's default);
//   blocked - a private window: third-party cookies and storage blocked.
// The test first proves the frame is third-party (a SameSite=Strict cookie
// the connector's page can set at top level cannot be set in the frame)
// and, in the blocked profile, that the browser really refuses the frame
// localStorage and Web Locks. Then, in both:
//  - sign in; a second Salesforce tab attaches without signing in;
//  - one call -> exactly one pop, in the tab the agent is in;
//  - answer in the other tab; the call's Task lands in sf-sim;
//  - the tab offered the pop claims it and is closed during the ring
//    before it could pop: the other tab pops it, once;
//  - click-to-dial;
//  - a reload during the ring: re-attached (normal) or a clear "sign in
//    again" (blocked); never a second pop of that call;
//  - blocked: the Storage Access API ("Keep me signed in", the browser's
//    prompt accepted) keeps the session across a reload.
'use strict';

const {env, ok, assert, profile, watch, shot, http, waitFor, fin, run} = require('./lib.js');

const AGENT = '1002';
const BLOCKED = profile() === 'blocked';
const NO_SECOND_POP_MS = 3500; // the server re-offers after 2 s: room for a wrong second pop

const sf = {
  ctl: () => env('FSC_SF_CONTROL'),
  async calls(q) {
    const qs = new URLSearchParams(Object.assign({kind: 'call'}, q || {})).toString();
    return (await http('GET', sf.ctl() + '/sim/opencti?' + qs)).body;
  },
  async pops(ani) {
    return (await sf.calls()).filter((c) => (c.method === 'screenPop' || c.method === 'searchAndScreenPop') &&
      (!ani || (c.args && c.args.searchParams === ani)));
  },
  hostPage(tab) {
    return env('FSC_SF_URL') + '/lightning/page/home?' + new URLSearchParams({
      softphone: env('FSC_CONNECTOR_URL') + '/softphone/', tab}).toString();
  },
};

const softFrame = (page) => page.frames().find((f) => f.url().includes('/softphone/'));

// What the browser lets a document of the connector's origin do, where it
// runs. The SameSite=Strict cookie is the site check: a browser sets it
// only in a same-site context, whatever its third-party settings.
async function probe(frame) {
  return frame.evaluate(async () => {
    const out = {origin: location.origin, secure: window.isSecureContext};
    const has = (n) => document.cookie.split(';').some((c) => c.trim().startsWith(n + '='));
    document.cookie = 'fsc_probe_strict=1; SameSite=Strict; Secure; Path=/';
    document.cookie = 'fsc_probe_none=1; SameSite=None; Secure; Path=/';
    out.strictCookie = has('fsc_probe_strict');
    out.noneCookie = has('fsc_probe_none');
    document.cookie = 'fsc_probe_strict=; Max-Age=0; Path=/; Secure; SameSite=Strict';
    document.cookie = 'fsc_probe_none=; Max-Age=0; Path=/; Secure; SameSite=None';
    try { window.localStorage.getItem('x'); out.localStorage = 'ok'; } catch (e) {
      out.localStorage = e.name + ': ' + e.message;
    }
    try { await navigator.locks.request('fsc-probe', () => {}); out.locks = 'ok'; } catch (e) {
      out.locks = e.name + ': ' + e.message;
    }
    out.hasStorageAccess = await document.hasStorageAccess();
    return out;
  });
}

async function signIn(frame) {
  await frame.getByLabel('Agent ID').fill(AGENT);
  await frame.getByLabel('Password').fill('pw' + AGENT);
  await frame.getByLabel('Extension').fill(AGENT);
  await frame.getByRole('button', {name: 'Sign in', exact: true}).click();
  await frame.getByLabel('Agent state').waitFor();
}

// The agent clicks into the softphone of page; resolves once the focus
// report reached the connector (the server ranks tabs by these).
async function useTab(page) {
  await page.bringToFront();
  const reported = page.waitForResponse((r) => /\/api\/v1\/tabs\/[^/]+\/focus$/.test(r.url()) &&
    r.status() === 200 && (r.request().postData() || '').includes('"focused":true'));
  await page.frameLocator('#softphone').getByRole('heading', {name: 'Softphone'}).click();
  await reported;
}

async function callRinging(ani, frames) {
  const did = await fin.call(AGENT, {ani});
  for (const f of frames) await f.getByLabel('Caller', {exact: true}).filter({hasText: ani}).waitFor();
  return did;
}

async function exactlyOnePop(ani, what) {
  await waitFor(async () => (await sf.pops(ani)).length >= 1, 'the pop of ' + what);
  await new Promise((r) => setTimeout(r, NO_SECOND_POP_MS));
  const p = await sf.pops(ani);
  assert(p.length === 1, what + ': exactly one pop, got ' + JSON.stringify(p.map((x) => [x.tab, x.method])));
  return p[0];
}

async function hangUp(did, frame) {
  await fin.hangup(did);
  await waitFor(async () => !((await fin.agent(AGENT)).dialogs || []).some((d) => d.id === did), 'call over');
  await frame.getByLabel('Caller', {exact: true}).waitFor({state: 'detached'});
}

run('crosssite-' + profile(), async (context) => {
  assert(['normal', 'blocked'].includes(profile()), 'run with --profile normal|blocked');
  const conn = new URL(env('FSC_CONNECTOR_URL'));
  const org = new URL(env('FSC_SF_URL'));
  assert(conn.hostname === 'connector.example.test' && org.hostname === 'acme.lightning.force.test',
    'run with --cross-site: ' + conn + ' / ' + org);

  // --- the frame really is third-party (and, blocked, really refused storage)
  const top = await context.newPage();
  await top.goto(env('FSC_CONNECTOR_URL') + '/softphone/');
  const first = await probe(top.mainFrame());
  await top.close();
  assert(first.secure && first.strictCookie, 'top level, the connector\'s page sets a SameSite=Strict cookie: ' +
    JSON.stringify(first));

  const t1 = await context.newPage();
  const problems = watch(t1, 't1');
  await t1.goto(sf.hostPage('x1'));
  const f1 = t1.frameLocator('#softphone');
  await f1.getByLabel('Agent ID').waitFor();
  const framed = await probe(softFrame(t1));
  assert(framed.origin === conn.origin && framed.secure, 'the frame is the connector\'s page: ' + JSON.stringify(framed));
  assert(!framed.strictCookie, 'in the frame the SameSite=Strict cookie is refused: the frame is cross-site: ' +
    JSON.stringify(framed));
  if (BLOCKED) {
    assert(/^SecurityError/.test(framed.localStorage) && /^SecurityError/.test(framed.locks) &&
      framed.hasStorageAccess === false && !framed.noneCookie,
    'blocked profile: localStorage and Web Locks refused, no storage access, no cookies: ' + JSON.stringify(framed));
  } else {
    assert(framed.localStorage === 'ok' && framed.locks === 'ok' && framed.hasStorageAccess === true &&
      framed.noneCookie, 'normal profile: third-party storage and cookies allowed: ' + JSON.stringify(framed));
  }
  const mode = await softFrame(t1).evaluate(() => window.fscSoftphone.storage());
  assert(mode === (BLOCKED ? 'memory' : 'local'), 'the page keeps its session in ' + mode);
  const note = f1.getByRole('note', {name: 'Browser storage'});
  if (BLOCKED) {
    await note.filter({hasText: 'Sign in again after each reload'}).waitFor();
    assert(await note.getByRole('button', {name: 'Keep me signed in'}).isVisible(),
      'the Storage Access API is offered');
  } else {
    assert(await note.isHidden(), 'no storage note where storage works');
  }
  ok('cross-site frame (' + org.origin + ' framing ' + conn.origin + '): SameSite=Strict cookie set top level, ' +
    'refused in the frame; ' + (BLOCKED
    ? 'localStorage "' + framed.localStorage + '", Web Locks "' + framed.locks + '", hasStorageAccess false; the page says so'
    : 'third-party storage allowed (localStorage, Web Locks, hasStorageAccess true)') + '; session kept in ' + mode);
  await shot(t1, 'signed-out');

  // --- sign in; a second Salesforce tab attaches without signing in
  await signIn(f1);
  const state1 = f1.getByLabel('Agent state');
  await waitFor(async () => (await state1.inputValue()).startsWith('NOT_READY'), 'Not Ready');
  await state1.selectOption({label: 'Ready'});
  await fin.waitAgent(AGENT, 'READY');
  if (BLOCKED) {
    await note.filter({hasText: 'a reload will ask you to sign in again'}).waitFor();
    await note.getByText('For your administrator').click();
    await note.getByText(/CookiesAllowedForUrls/).waitFor();
  }
  const t2 = await context.newPage();
  problems.push(...watch(t2, 't2'));
  await t2.goto(sf.hostPage('x2'));
  const f2 = t2.frameLocator('#softphone');
  await waitFor(async () => (await f2.getByLabel('Agent state').inputValue()) === 'READY',
    'tab 2 attached to the session');
  assert(await f2.getByLabel('Agent ID').isHidden(), 'tab 2 shows no sign-in form');
  await shot(t1, 'signed-in-ready');
  ok('signed in, Ready; tab 2 attached without signing in (token from ' +
    (BLOCKED ? 'the open tab, over BroadcastChannel' : 'localStorage') + ')');

  // --- one call, two tabs: one pop, in the tab the agent is in
  await useTab(t2);
  const ani1 = '+14155550101';
  const did1 = await callRinging(ani1, [f1, f2]);
  const p1 = await exactlyOnePop(ani1, 'call 1');
  assert(p1.tab === 'x2' && p1.method === 'searchAndScreenPop' && p1.success,
    'the pop happened in tab 2, the one in use: ' + JSON.stringify(p1));
  await shot(t2, 'tab2-popped');
  ok('call 1 rang in both tabs; exactly one pop (' + p1.method + ') in tab 2, where the agent is');

  // --- answer in tab 1; the Task
  await t1.bringToFront();
  await f1.getByRole('button', {name: 'Answer', exact: true}).click();
  await fin.waitPart(did1, AGENT, 'ACTIVE');
  await f2.getByRole('button', {name: 'Hold', exact: true}).waitFor();
  await f1.getByRole('button', {name: 'End', exact: true}).click();
  await f1.getByLabel('Caller', {exact: true}).waitFor({state: 'detached'});
  const task = await waitFor(async () => {
    const t = (await http('GET', sf.ctl() + '/sim/tasks?external_id=' + did1)).body || [];
    return t.length === 1 ? t[0] : false;
  }, 'the Task of call 1 in sf-sim');
  assert(task.CallObject === did1 && task.CallType === 'Inbound' && task.TaskSubtype === 'Call' &&
    task.Status === 'Completed', 'Task fields: ' + JSON.stringify(task));
  ok('answered in tab 1 (tab 2 follows), ended; one Task in sf-sim (CallObject ' + did1 + ', Inbound, ' +
    task.CallDurationInSeconds + ' s)');

  // --- the tab offered the pop is closed during the ring, after its claim
  // reached the connector and before it popped (it never heard back). Its
  // own request is failed in the browser (route.abort: never sent; a
  // request merely held by route() is let go by Chromium when the page
  // closes, so it may or may not reach the server) and the very same claim
  // goes to the connector from tab 1's frame, the connector's origin.
  await fin.waitAgent(AGENT, 'READY', 'Ready again');
  await useTab(t2);
  let claim2 = null;
  await t2.route('**/api/v1/calls/*/popped', async (route) => {
    const r = route.request();
    claim2 = {path: new URL(r.url()).pathname, auth: (await r.allHeaders())['authorization'], body: r.postData()};
    await route.abort('connectionreset');
  });
  // tab 1's own claims wait until tab 2's is in (then go on, explicitly):
  // were the relay slower than the server's 2 s for a claim, the offer
  // would move on to tab 1, which would claim first
  let openGate;
  const gate = new Promise((r) => { openGate = r; });
  const gated = async (route) => {
    if (!claim2 || route.request().postData() !== claim2.body) await gate;
    await route.continue();
  };
  await t1.route('**/api/v1/calls/*/popped', gated);
  const ani2 = '+14155550102';
  const did2 = await callRinging(ani2, [f1, f2]);
  await waitFor(() => claim2, 'tab 2 offered the pop (its claim)');
  const sent = await softFrame(t1).evaluate(async (c) => {
    const r = await fetch(c.path, {method: 'POST', credentials: 'omit', cache: 'no-store',
      headers: {'Authorization': c.auth, 'Content-Type': 'application/json'}, body: c.body});
    return {status: r.status, body: await r.json()};
  }, claim2);
  openGate();
  assert(claim2.path === '/api/v1/calls/' + did2 + '/popped' && sent.status === 200 &&
    JSON.stringify(sent.body) === '{"claimed":true}', 'tab 2\'s claim, accepted: ' + JSON.stringify([claim2.body, sent]));
  assert((await sf.pops(ani2)).length === 0, 'tab 2 has not popped call 2');
  await t2.close();
  const p2 = await exactlyOnePop(ani2, 'call 2');
  assert(p2.tab === 'x1', 'tab 1 popped call 2 after tab 2 closed: ' + JSON.stringify(p2));
  await t1.unroute('**/api/v1/calls/*/popped', gated);
  await shot(t1, 'tab1-popped-after-tab2-closed');
  await hangUp(did2, f1);
  ok('call 2 offered to tab 2, claimed, tab 2 closed during the ring before popping; tab 1 popped it, once');

  // --- click-to-dial on the host page
  await fin.waitAgent(AGENT, 'READY', 'Ready again');
  await t1.getByRole('region', {name: 'Recent records'}).getByRole('button', {name: 'Call +1 650 555 0123'}).click();
  const out = await waitFor(async () => ((await fin.agent(AGENT)).dialogs || [])
    .find((d) => d.to === '+16505550123'), 'a Finesse dialog to +16505550123');
  await f1.getByRole('article', {name: 'Outbound call'}).waitFor();
  await f1.getByRole('button', {name: 'End', exact: true}).click();
  await waitFor(async () => ((await fin.agent(AGENT)).dialogs || []).length === 0, 'outbound call over');
  ok('click-to-dial "+1 650 555 0123" on the host page -> Finesse dialog ' + out.id + ', ended');

  // --- a reload during the ring: never a second pop of that call
  await fin.waitAgent(AGENT, 'READY', 'Ready again');
  const ani3 = '+14155550103';
  // the page says it popped right after the pop (a keepalive request that
  // outlives a reload); the reload comes once the connector has it
  const done3 = t1.waitForResponse((r) => /\/api\/v1\/calls\/[^/]+\/popped$/.test(r.url()) &&
    (r.request().postData() || '').includes('"done":true'));
  const did3 = await callRinging(ani3, [f1]);
  await waitFor(async () => (await sf.pops(ani3)).length === 1, 'the pop of call 3');
  const d3 = await done3;
  assert(d3.url().endsWith('/calls/' + did3 + '/popped') && d3.status() === 200,
    'the pop of call 3 is done: ' + d3.status() + ' ' + d3.url());
  await t1.reload();
  const f1b = t1.frameLocator('#softphone');
  if (BLOCKED) {
    await f1b.getByRole('note', {name: 'Browser storage'})
      .filter({hasText: 'Sign in again after each reload'}).waitFor();
    assert(await f1b.getByLabel('Agent ID').isVisible(), 'the sign-in form, after the reload');
    await shot(t1, 'reloaded-sign-in-again');
    await signIn(f1b);
  } else {
    await f1b.getByLabel('Agent state').waitFor();
    assert(await f1b.getByLabel('Agent ID').isHidden(), 're-attached: no sign-in form');
  }
  await f1b.getByLabel('Caller', {exact: true}).filter({hasText: ani3}).waitFor();
  await exactlyOnePop(ani3, 'call 3 across the reload');
  await shot(t1, 'reloaded-ringing');
  await hangUp(did3, f1b);
  ok('reload during the ring: ' + (BLOCKED ? 'a clear "sign in again", signed in again' : 're-attached') +
    ', the call still ringing, no second pop');

  // --- blocked: the Storage Access API keeps the session across a reload
  if (BLOCKED) {
    // the browser's prompt, accepted by the agent
    await context.grantPermissions(['storage-access']);
    await f1b.getByRole('button', {name: 'Keep me signed in'}).click();
    await waitFor(async () => (await softFrame(t1).evaluate(() => window.fscSoftphone.storage())) === 'cookie',
      'the page keeps its session in the granted cookies');
    await f1b.getByRole('note', {name: 'Browser storage'}).waitFor({state: 'hidden'});
    await t1.reload();
    const f1c = t1.frameLocator('#softphone');
    await waitFor(async () => (await f1c.getByLabel('Agent state').inputValue()) === 'READY',
      're-attached after the reload');
    assert(await f1c.getByLabel('Agent ID').isHidden(), 'no sign-in form');
    await shot(t1, 'storage-access-reloaded');
    ok('"Keep me signed in" -> document.requestStorageAccess() granted -> session in the frame\'s cookie; ' +
      'reload -> re-attached without signing in');
  }

  assert(problems.length === 0, 'no CSP violations or page errors: ' + problems.join(' | '));
  ok('no CSP violations, no page errors');
});
