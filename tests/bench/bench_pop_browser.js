// SPDX-License-Identifier: AGPL-3.0-or-later
// Screen-pop latency as the agent sees it: from the inbound call entering
// Finesse to the pop call (screenPop / searchAndScreenPop) made by the
// softphone page inside sf-sim's Lightning host page, in headless Chromium.
// Not pass/fail; the figures are on the last line:
//
//     pop_browser_n=... pop_browser_p50_ms=... pop_browser_p99_ms=... pop_browser_max_ms=...
//
// Run it through the browser-test runner, which starts finesse-sim, sf-sim,
// Redis and fsc-connector on loopback (after building):
//
//     /usr/bin/python3 tests/browser/run_browser_test.py tests/bench/bench_pop_browser.js \
//         --sf --wrap-up NOT_ALLOWED            [FSC_POP_CALLS=200]
//
// One agent signs in inside the framed softphone and goes Ready. Each call:
// t0 = Date.now() just before POST /sim/calls (the sim publishes ALERTING
// through prosody while answering it); t1 = the moment the host page (the
// "Salesforce" side) received the pop call from the frame by postMessage
// (sf-sim's host_ts; sf-sim's own ts lags, the host relays calls to it one
// at a time). Both clocks are this machine's. Half the calls carry ECC
// user.sf_recordId (-> screenPop SOBJECT, no server lookup), half only the
// ANI (-> searchAndScreenPop). The call is then answered and hung up at the
// sim, and the next one starts once the agent is Ready again.
'use strict';

const path = require('path');
const {env, ok, assert, http, waitFor, fin, run} = require(path.join(__dirname, '..', 'browser', 'lib.js'));

const AGENT = '1001';
const TAB = 'bench';
const N = parseInt(process.env.FSC_POP_CALLS || '100', 10);

const sf = {
  ctl: () => env('FSC_SF_CONTROL'),
  async pops() {
    const all = (await http('GET', sf.ctl() + '/sim/opencti?kind=call&tab=' + TAB)).body || [];
    return all.filter((c) => c.method === 'screenPop' || c.method === 'searchAndScreenPop');
  },
  async records(type) { return (await http('GET', sf.ctl() + '/sim/records?type=' + type)).body; },
};

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p / 100) - 1)];
}

run('bench_pop_browser', async (context) => {
  const page = await context.newPage();
  await page.goto(env('FSC_SF_URL') + '/lightning/page/home?' + new URLSearchParams({
    softphone: env('FSC_CONNECTOR_URL') + '/softphone/', tab: TAB}).toString());
  const frame = page.frameLocator('#softphone');
  await frame.getByLabel('Agent ID').fill(AGENT);
  await frame.getByLabel('Password').fill('pw' + AGENT);
  await frame.getByLabel('Extension').fill(AGENT);
  await frame.getByRole('button', {name: 'Sign in', exact: true}).click();
  const state = frame.getByLabel('Agent state');
  await waitFor(async () => (await state.inputValue()).startsWith('NOT_READY'), 'Not Ready');
  await state.selectOption({label: 'Ready'});
  await fin.waitAgent(AGENT, 'READY');
  const lead = (await sf.records('Lead'))[0];
  ok('signed in inside the Lightning host page, Ready; ' + N + ' calls follow');

  const lat = [];
  const simMs = []; // POST /sim/calls round trip (the sim publishes before it answers)
  const byType = {screenPop: [], searchAndScreenPop: []};
  let seen = (await sf.pops()).length;
  for (let i = 0; i < N; i++) {
    const withRecord = i % 2 === 0;
    const t0 = Date.now();
    const did = await fin.call(AGENT, withRecord ? {ani: '+14155550199', ecc: {'user.sf_recordId': lead.Id}} : {});
    simMs.push(Date.now() - t0);
    const popped = await waitFor(async () => {
      const p = await sf.pops();
      return p.length > seen ? p : false;
    }, 'pop of call ' + (i + 1), 5000);
    assert(popped.length === seen + 1, 'one pop per call, got ' + (popped.length - seen));
    seen = popped.length;
    const pop = popped[popped.length - 1];
    const want = withRecord ? 'screenPop' : 'searchAndScreenPop';
    assert(pop.method === want, 'call ' + (i + 1) + ': ' + want + ' expected, got ' + pop.method);
    const ms = (pop.host_ts || pop.ts) * 1000 - t0;
    if (process.env.FSC_POP_TRACE && i < 4) {
      const all = (await http('GET', sf.ctl() + '/sim/opencti?tab=' + TAB)).body || [];
      console.log('    trace call ' + (i + 1) + ': ' + all.filter((c) => c.ts * 1000 >= t0 - 5)
        .map((c) => c.method + '+' + ((c.host_ts || c.ts) * 1000 - t0).toFixed(0)).join(' '));
    }
    lat.push(ms);
    byType[want].push(ms);
    await http('POST', fin.url() + '/sim/calls/' + did + '/action', {agent: AGENT, action: 'ANSWER'});
    await fin.waitPart(did, AGENT, 'ACTIVE');
    await fin.hangup(did);
    await waitFor(async () => {
      const a = await fin.agent(AGENT);
      return a.state === 'READY' && (a.dialogs || []).length === 0;
    }, 'Ready after call ' + (i + 1));
  }
  lat.sort((a, b) => a - b);
  simMs.sort((a, b) => a - b);
  console.log('    POST /sim/calls round trip: p50=' + pct(simMs, 50) + ' ms p99=' + pct(simMs, 99) + ' ms');
  for (const [k, v] of Object.entries(byType)) {
    v.sort((a, b) => a - b);
    console.log('    ' + k + ': n=' + v.length + ' p50=' + pct(v, 50).toFixed(1) + ' ms p99=' +
      pct(v, 99).toFixed(1) + ' ms');
  }
  console.log('pop_browser_n=' + lat.length + ' pop_browser_p50_ms=' + pct(lat, 50).toFixed(1) +
    ' pop_browser_p99_ms=' + pct(lat, 99).toFixed(1) + ' pop_browser_max_ms=' + lat[lat.length - 1].toFixed(1));
});
