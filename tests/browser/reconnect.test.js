// SPDX-License-Identifier: AGPL-3.0-or-later
// The softphone page losing its event stream for a while:
//  - the stream breaks (a network error) and reconnecting fails for a few
//    seconds, during which the agent's call is held, retrieved and ends;
//  - once the connector can be reached again the page opens a new stream,
//    which starts with a snapshot: the page must drop the call that ended
//    meanwhile (no ghost call panel) and show the state Finesse has;
//  - (--proxy) every request went through haproxy, which logged its
//    request line: each stream, the first and the reconnected one, was
//    opened with a ticket, and the API token is in no line.
'use strict';

const fs = require('fs');
const {env, ok, assert, watch, shot, http, waitFor, fin, run} = require('./lib.js');

const AGENT = '1001';

run('reconnect', async (context) => {
  const page = await context.newPage();
  const problems = watch(page, 'page');
  // keep a handle on the page's EventSource objects (to break the stream)
  await page.addInitScript(() => {
    const Native = window.EventSource;
    window.__fscStreams = [];
    window.EventSource = function (url, opts) {
      const es = new Native(url, opts);
      window.__fscStreams.push(es);
      return es;
    };
    window.EventSource.prototype = Native.prototype;
    Object.assign(window.EventSource, {CONNECTING: 0, OPEN: 1, CLOSED: 2});
  });
  await page.goto(env('FSC_CONNECTOR_URL') + '/softphone/');
  await page.getByLabel('Agent ID').fill(AGENT);
  await page.getByLabel('Password').fill('pw' + AGENT);
  await page.getByLabel('Extension').fill(AGENT);
  await page.getByRole('button', {name: 'Sign in', exact: true}).click();
  const state = page.getByLabel('Agent state');
  await waitFor(async () => (await state.inputValue()).startsWith('NOT_READY'), 'Not Ready');
  await state.selectOption({label: 'Ready'});
  await fin.waitAgent(AGENT, 'READY');

  const did = await fin.call(AGENT);
  const btn = (name) => page.getByRole('button', {name, exact: true});
  await btn('Answer').click();
  await fin.waitPart(did, AGENT, 'ACTIVE');
  await btn('Hold').waitFor();
  ok('on a call (ACTIVE), the panel offers Hold');

  // the network fails: the stream breaks and reconnecting fails for now
  await page.route('**/api/v1/events**', (route) => route.abort('internetdisconnected'));
  await page.evaluate(() => {
    const es = window.__fscStreams[window.__fscStreams.length - 1];
    es.close();
    es.dispatchEvent(new Event('error'));
  });
  const act = (action) => http('POST', fin.url() + '/sim/calls/' + did + '/action',
    {agent: AGENT, action});
  for (let i = 0; i < 3; i++) {
    await act('HOLD');
    await act('RETRIEVE');
  }
  await http('POST', fin.url() + '/sim/calls/' + did + '/hangup');
  await fin.waitAgent(AGENT, 'READY', 'READY after the call (no wrap-up)');
  await page.waitForTimeout(500);
  assert(await btn('Hold').count() === 1, 'cut off: the page still shows the call it last saw');
  await shot(page, 'cut-off-stale');
  ok('stream cut off: hold, retrieve and the hang-up happened without the page');

  await page.unroute('**/api/v1/events**');
  await waitFor(async () => (await btn('Hold').count()) === 0 && (await btn('End').count()) === 0 &&
    (await page.getByLabel('Caller', {exact: true}).count()) === 0, 'the ended call gone from the page', 40000);
  await waitFor(async () => (await state.inputValue()) === 'READY', 'Agent state Ready after the resume');
  await shot(page, 'back-online');
  ok('reconnected: the snapshot drops the call that ended meanwhile, state Ready');

  if (process.env.FSC_PROXY_LOG) {
    const token = await page.evaluate(() => localStorage.getItem('fsc.token'));
    assert(token && token.length === 43, 'the page holds its API token');
    const lines = fs.readFileSync(process.env.FSC_PROXY_LOG, 'utf8').match(/"[A-Z]+ [^"]*"/g) || [];
    const streams = lines.filter((l) => l.startsWith('"GET /api/v1/events?ticket='));
    assert(streams.length >= 2, 'the first stream and the reconnected one opened with tickets: ' +
      streams.length);
    assert(!lines.some((l) => l.includes(token) || l.includes('token=')),
      'the API token in a request line haproxy logged');
    ok('haproxy logged ' + lines.length + ' request lines, ' + streams.length +
      ' stream opens with a ticket, the API token in none');
  }

  assert(problems.length === 0, 'no CSP violations or page errors: ' + problems.join(' | '));
  ok('no CSP violations, no page errors');
});
