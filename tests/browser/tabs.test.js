// SPDX-License-Identifier: AGPL-3.0-or-later
// Two Salesforce tabs (two sf-sim host pages, each framing the softphone)
// in one browser, one agent session on the server (DESIGN.md §5):
//  - signing in in tab 1 signs tab 2 in too (token shared in localStorage);
//  - an inbound call shows in both tabs; exactly one pop across the tabs,
//    done by the tab the agent used last (the server offers it the pop:
//    it reported focus);
//  - refreshing a tab during the call re-attaches: the call is still there,
//    no sign-in form, no second pop; call control still works from it.
'use strict';

const {env, ok, assert, watch, shot, http, waitFor, fin, run} = require('./lib.js');

const AGENT = '1002';

const sf = {
  ctl: () => env('FSC_SF_CONTROL'),
  async calls(q) {
    const qs = new URLSearchParams(Object.assign({kind: 'call'}, q || {})).toString();
    return (await http('GET', sf.ctl() + '/sim/opencti?' + qs)).body;
  },
  hostPage(tab) {
    return env('FSC_SF_URL') + '/lightning/page/home?' + new URLSearchParams({
      softphone: env('FSC_CONNECTOR_URL') + '/softphone/', tab}).toString();
  },
};
const pops = (calls) => calls.filter((c) => c.method === 'screenPop' || c.method === 'searchAndScreenPop');

run('tabs', async (context) => {
  const t1 = await context.newPage();
  const t2 = await context.newPage();
  const problems = watch(t1, 't1').concat(watch(t2, 't2'));
  await t1.goto(sf.hostPage('t1'));
  const f1 = t1.frameLocator('#softphone');
  await f1.getByLabel('Agent ID').fill(AGENT);
  await f1.getByLabel('Password').fill('pw' + AGENT);
  await f1.getByLabel('Extension').fill(AGENT);
  await f1.getByRole('button', {name: 'Sign in', exact: true}).click();
  await waitFor(async () => (await f1.getByLabel('Agent state').inputValue()).startsWith('NOT_READY'), 't1 signed in');

  await t2.goto(sf.hostPage('t2'));
  const f2 = t2.frameLocator('#softphone');
  await waitFor(async () => (await f2.getByLabel('Agent state').inputValue()).startsWith('NOT_READY'),
    't2 attached without signing in');
  assert(await f2.getByLabel('Agent ID').isHidden(), 't2 shows no sign-in form');
  ok('tab 2 opened after the sign-in in tab 1: attached to the running session, no sign-in form');

  // the agent works in tab 2 (the leader from now on): clicks into it
  await t2.bringToFront();
  const reported = t2.waitForResponse((r) => /\/api\/v1\/tabs\/[^/]+\/focus$/.test(r.url()) &&
    r.status() === 200 && (r.request().postData() || '').includes('"focused":true'));
  await f2.getByRole('heading', {name: 'Softphone'}).click();
  await reported; // the server ranks tabs by these reports
  await f2.getByLabel('Agent state').selectOption({label: 'Ready'});
  await fin.waitAgent(AGENT, 'READY');
  await waitFor(async () => (await f1.getByLabel('Agent state').inputValue()) === 'READY', 't1 follows: Ready');
  ok('state set in tab 2 -> Finesse READY, tab 1 shows Ready too');

  const frameOf = (page) => page.frames().find((f) => f.url().includes('/softphone/'));
  const s1 = await waitFor(() => frameOf(t1).evaluate(() => window.fscSoftphone.stream()), 'tab 1 stream');
  const s2 = await waitFor(() => frameOf(t2).evaluate(() => window.fscSoftphone.stream()), 'tab 2 stream');
  assert(s1 !== s2, 'each tab has its own event stream: ' + s1 + ' ' + s2);
  const f2state = await frameOf(t2).evaluate(() => window.fscSoftphone.focus());
  assert(f2state.focused && f2state.can_pop, 'tab 2 reports focus: ' + JSON.stringify(f2state));
  ok('two event streams (' + s1 + ', ' + s2 + '); tab 2, the one used last, reports focus');
  const did = await fin.call(AGENT);
  for (const [name, f] of [['t1', f1], ['t2', f2]]) {
    await f.getByLabel('Caller', {exact: true}).filter({hasText: '+14155550100'}).waitFor();
    ok(name + ' shows the ringing call (Caller +14155550100)');
  }
  await waitFor(async () => pops(await sf.calls()).length >= 1, 'a pop');
  await t1.waitForTimeout(3500); // room for a wrong second pop (the server's re-offer after 2 s)
  const p = pops(await sf.calls());
  assert(p.length === 1, 'exactly one pop across both tabs, got ' + JSON.stringify(p.map((x) => [x.tab, x.method])));
  assert(p[0].tab === 't2', 'the pop happened in tab 2, the one in use: ' + p[0].tab);
  await shot(t1, 'tab1-ringing');
  await shot(t2, 'tab2-ringing-popped');
  ok('exactly one pop (' + p[0].method + ' in ' + p[0].tab + '), none in the other tab');

  await f1.getByRole('button', {name: 'Answer', exact: true}).click();
  await fin.waitPart(did, AGENT, 'ACTIVE');
  await f2.getByRole('button', {name: 'Hold', exact: true}).waitFor();
  ok('answered in tab 1; tab 2 follows (offers Hold)');

  // refresh tab 2 (the leader) during the call
  await t2.reload();
  const f2b = t2.frameLocator('#softphone');
  await f2b.getByLabel('Caller', {exact: true}).filter({hasText: '+14155550100'}).waitFor();
  assert(await f2b.getByLabel('Agent ID').isHidden(), 'no sign-in form after the refresh');
  await f2b.getByRole('button', {name: 'Hold', exact: true}).click();
  await fin.waitPart(did, AGENT, 'HELD');
  await f1.getByRole('button', {name: 'Resume', exact: true}).waitFor();
  await shot(t2, 'tab2-after-refresh-held');
  ok('tab 2 refreshed during the call: still in the call, no sign-in; Hold from it -> HELD (tab 1 offers Resume)');

  // refresh tab 1 too, while the call is held
  await t1.reload();
  const f1b = t1.frameLocator('#softphone');
  await f1b.getByRole('button', {name: 'Resume', exact: true}).click();
  await fin.waitPart(did, AGENT, 'ACTIVE');
  await f1b.getByRole('button', {name: 'End', exact: true}).click();
  await waitFor(async () => ((await fin.agent(AGENT)).dialogs || []).length === 0, 'call ended');
  await f2b.getByLabel('Caller', {exact: true}).waitFor({state: 'detached'});
  const p2 = pops(await sf.calls());
  assert(p2.length === 1, 'still exactly one pop after both refreshes, got ' + p2.length);
  const frames = (await http('GET', sf.ctl() + '/sim/opencti?kind=frame')).body.map((x) => x.tab);
  ok('tab 1 refreshed too: Resume, End from it; still one pop in total (frame loads: ' + frames.join(', ') + ')');

  assert(problems.length === 0, 'no CSP violations or page errors: ' + problems.join(' | '));
  ok('no CSP violations, no page errors');
});
