// SPDX-License-Identifier: AGPL-3.0-or-later
// The softphone framed by sf-sim's Lightning host page, as Salesforce frames
// it (?sfdcIFrameOrigin=<ui origin>&sfdcIFrameHost=web&mode=Lightning):
//  - the page loads opencti_min.js from sfdcIFrameOrigin and calls
//    notifyInitializationComplete, enableClickToDial, onClickToDial and
//    onNavigationChange (recorded by sf-sim at /sim/opencti);
//  - the utility-bar label follows the agent (setSoftphoneItemLabel);
//  - an inbound call opens the panel (setSoftphonePanelVisibility) and pops
//    exactly once: searchAndScreenPop on the caller's number, or
//    screenPop SOBJECT when the call carries ECC user.sf_recordId;
//  - the record opened during the call is sent as the call's context, and
//    the wrap-up reason chosen in the frame lands in the call's Task in
//    sf-sim (CallDisposition) with the other Task fields;
//  - a click-to-dial number on the host page places a call (finesse-sim);
//  - a foreign sfdcIFrameOrigin: the connector refuses the page (400).
'use strict';

const {env, ok, assert, watch, shot, http, waitFor, fin, run} = require('./lib.js');

const AGENT = '1001';
const TAB = 'f1';

const sf = {
  ui: () => env('FSC_SF_URL'),
  ctl: () => env('FSC_SF_CONTROL'),
  async calls(q) {
    const qs = new URLSearchParams(Object.assign({kind: 'call'}, q || {})).toString();
    return (await http('GET', sf.ctl() + '/sim/opencti?' + qs)).body;
  },
  async records(type) { return (await http('GET', sf.ctl() + '/sim/records?type=' + type)).body; },
  hostPage(tab) {
    return sf.ui() + '/lightning/page/home?' + new URLSearchParams({
      softphone: env('FSC_CONNECTOR_URL') + '/softphone/', tab}).toString();
  },
};

function methods(calls) { return calls.map((c) => c.method); }
const pops = (calls) => calls.filter((c) => c.method === 'screenPop' || c.method === 'searchAndScreenPop');

run('framed', async (context) => {
  const page = await context.newPage();
  const problems = watch(page, 'host');
  const apiRequests = [];
  page.on('request', (r) => {
    if (r.url().includes('/api/v1/')) apiRequests.push({method: r.method(), url: r.url(), body: r.postData()});
  });
  await page.goto(sf.hostPage(TAB));
  const frame = page.frameLocator('#softphone');

  // --- opencti initialisation
  await frame.getByLabel('Agent ID').waitFor();
  const init = await waitFor(async () => {
    const c = await sf.calls({tab: TAB});
    const m = methods(c);
    return ['notifyInitializationComplete', 'enableClickToDial', 'onClickToDial', 'onNavigationChange']
      .every((x) => m.includes(x)) ? c : false;
  }, 'opencti initialisation calls');
  const c2d = init.find((c) => c.method === 'onClickToDial');
  assert(c2d.isListenerRegistered && c2d.success, 'onClickToDial registered a listener: ' + JSON.stringify(c2d));
  assert(init.every((c) => c.success !== false), 'every opencti call succeeded: ' +
    JSON.stringify(init.filter((c) => c.success === false)));
  const frameUrl = page.frames().find((f) => f.url().includes('/softphone/')).url();
  assert(frameUrl.includes('sfdcIFrameOrigin=') && frameUrl.includes('mode=Lightning'),
    'framed with Salesforce\'s parameters: ' + frameUrl);
  ok('opencti_min.js from sfdcIFrameOrigin; notifyInitializationComplete, enableClickToDial, ' +
    'onClickToDial + onNavigationChange listeners recorded (' + methods(init).join(', ') + ')');
  await shot(page, 'host-signed-out');

  // --- sign in inside the frame; label follows the state
  await frame.getByLabel('Agent ID').fill(AGENT);
  await frame.getByLabel('Password').fill('pw' + AGENT);
  await frame.getByLabel('Extension').fill(AGENT);
  await frame.getByRole('button', {name: 'Sign in', exact: true}).click();
  const state = frame.getByLabel('Agent state');
  await waitFor(async () => (await state.inputValue()).startsWith('NOT_READY'), 'Not Ready');
  await state.selectOption({label: 'Ready'});
  await fin.waitAgent(AGENT, 'READY');
  const labels = await waitFor(async () => {
    const l = (await sf.calls({tab: TAB, method: 'setSoftphoneItemLabel'})).map((c) => c.args.label);
    return l.includes('Ready') && l.some((x) => x.startsWith('Not Ready')) ? l : false;
  }, 'setSoftphoneItemLabel Not Ready ... Ready');
  // sf-sim records the call before the host page applies it: wait for the page
  await waitFor(async () => (await page.locator('#utility-label').textContent()) === 'Ready',
    'the utility bar shows Ready');
  ok('setSoftphoneItemLabel: ' + labels.join(' -> '));

  // --- inbound call: panel opens, exactly one pop (search on ANI: one Contact)
  // the agent minimised the panel
  await page.evaluate(() => document.getElementById('softphone-panel').setAttribute('data-visible', 'false'));
  const jane = (await sf.records('Contact')).find((r) => r.LastName === 'Doe');
  await http('POST', fin.url() + '/sim/agents/' + AGENT + '/settings', {wrap_up_on_incoming: 'REQUIRED'});
  const did = await fin.call(AGENT, {callvariables: {callVariable1: 'Order 4711'}});
  await frame.getByLabel('Caller', {exact: true}).filter({hasText: '+14155550100'}).waitFor();
  await waitFor(async () => (await page.locator('#softphone-panel').getAttribute('data-visible')) === 'true',
    'the panel opened on ring');
  const vis = (await sf.calls({tab: TAB, method: 'setSoftphonePanelVisibility'})).filter((c) => c.args.visible === true);
  assert(vis.length >= 1, 'setSoftphonePanelVisibility({visible:true}) on ALERTING');
  const p1 = await waitFor(async () => { const p = pops(await sf.calls()); return p.length ? p : false; }, 'a pop');
  await page.waitForTimeout(1500); // no second pop may follow
  const p1b = pops(await sf.calls());
  assert(p1b.length === 1, 'exactly one pop, got ' + JSON.stringify(p1b));
  const p = p1b[0];
  assert(p.method === 'searchAndScreenPop' && p.args.searchParams === '+14155550100' &&
    p.args.callType === 'inbound' && p.args.deferred === false && p.success,
  'searchAndScreenPop({searchParams: "+14155550100", callType: INBOUND, deferred: false}): ' + JSON.stringify(p));
  await waitFor(async () => (await page.locator('#record').getAttribute('data-record-id')) === jane.Id,
    'the host page shows Jane Doe');
  const ringLabels = (await sf.calls({tab: TAB, method: 'setSoftphoneItemLabel'})).map((c) => c.args.label);
  assert(ringLabels.includes('Ringing'), 'label Ringing: ' + ringLabels.join(', '));
  const softFrame = page.frames().find((f) => f.url().includes('/softphone/'));
  const popped = await softFrame.evaluate(() => window.fscSoftphone.popped());
  assert(popped.length === 1 && popped[0] === did,
    'the frame popped the call after the server offered it and accepted its claim: ' + JSON.stringify(popped));
  const claims = await waitFor(() => {
    const c = apiRequests.filter((r) => r.url.endsWith('/api/v1/calls/' + did + '/popped'));
    return c.length >= 2 ? c : false;
  }, 'the claim and its done (POST /calls/{id}/popped)');
  assert(claims.length === 2 && JSON.parse(claims[0].body).done === undefined &&
    JSON.parse(claims[1].body).done === true,
  'one claim, then its done (POST /calls/{id}/popped): ' + JSON.stringify(claims));
  await shot(page, 'host-ringing-popped');
  ok('inbound call: panel opened, label Ringing, exactly one searchAndScreenPop("+14155550100", inbound) ' +
    '-> Jane Doe (' + jane.Id + ') popped');

  // --- answer; the record opened during the call becomes the call's context
  await frame.getByRole('button', {name: 'Answer', exact: true}).click();
  await fin.waitPart(did, AGENT, 'ACTIVE');
  await waitFor(async () => (await sf.calls({tab: TAB, method: 'setSoftphoneItemLabel'}))
    .some((c) => c.args.label === 'On call'), 'label On call');
  // the icon follows the label (the host page relays one call at a time)
  const icons = await waitFor(async () => {
    const i = (await sf.calls({tab: TAB, method: 'setSoftphoneItemIcon'})).map((c) => c.args.key);
    return i.includes('call') ? i : false;
  }, 'setSoftphoneItemIcon call');
  await http('POST', sf.ctl() + '/sim/view', {tab: TAB, recordId: jane.Id});
  const ctx = await waitFor(() => apiRequests.find((r) => r.url.endsWith('/api/v1/calls/' + did + '/context')),
    'POST /api/v1/calls/{id}/context');
  assert(JSON.parse(ctx.body).who_id === jane.Id, 'context who_id = the Contact: ' + ctx.body);
  ok('On call (icon "call"); onNavigationChange to Contact ' + jane.Id + ' -> POST /calls/' + did +
    '/context {"who_id"}');
  await frame.getByRole('button', {name: 'End', exact: true}).click();
  // wrap-up is REQUIRED for this agent (set before the call): the reason
  // chosen in the frame becomes the Task's CallDisposition
  await fin.waitAgent(AGENT, 'WORK_READY', 'WORK_READY (wrap-up REQUIRED)');
  const wrap = frame.getByLabel('Wrap-up reason');
  await wrap.waitFor();
  await wrap.selectOption({label: 'Sales'});
  await frame.getByRole('button', {name: 'Save wrap-up', exact: true}).click();
  await fin.waitAgent(AGENT, 'READY', 'READY after wrap-up');
  await waitFor(async () => ((await fin.agent(AGENT)).dialogs || []).length === 0, 'call over');
  const task = await waitFor(async () => {
    const t = (await http('GET', sf.ctl() + '/sim/tasks?external_id=' + did)).body || [];
    return t.length === 1 && t[0].CallDisposition ? t : false;
  }, 'the Task with its disposition in sf-sim');
  const tk = task[0];
  const want = {Finesse_Call_Id__c: did, CallObject: did, CallType: 'Inbound', TaskSubtype: 'Call',
    Status: 'Completed', WhoId: jane.Id, CallDisposition: 'Sales'};
  for (const [k, v] of Object.entries(want)) {
    assert(tk[k] === v, 'Task ' + k + ' = ' + JSON.stringify(v) + ', got ' + JSON.stringify(tk[k]));
  }
  assert(Number.isInteger(tk.CallDurationInSeconds) && tk.Subject && tk.ActivityDate &&
    (tk.Description || '').includes('+14155550100') && (tk.Description || '').includes('Order 4711'),
  'Task Subject, ActivityDate, CallDurationInSeconds, Description (ANI, call variables): ' + JSON.stringify(tk));
  await http('POST', fin.url() + '/sim/agents/' + AGENT + '/settings', {wrap_up_on_incoming: 'OPTIONAL'});
  ok('End -> wrap-up "Sales" in the frame -> one Task in sf-sim: WhoId Jane Doe, CallType Inbound, ' +
    'CallDisposition Sales, duration ' + tk.CallDurationInSeconds + ' s, Status Completed');

  // --- a call carrying the record id pops that record (screenPop SOBJECT)
  const lisa = (await sf.records('Lead'))[0];
  await fin.call(AGENT, {ani: '+14155550199', ecc: {'user.sf_recordId': lisa.Id}});
  await frame.getByLabel('Caller', {exact: true}).filter({hasText: '+14155550199'}).waitFor();
  const p2 = await waitFor(async () => { const x = pops(await sf.calls()); return x.length === 2 ? x : false; },
    'the second pop');
  await page.waitForTimeout(1000);
  assert(pops(await sf.calls()).length === 2, 'one pop per call');
  assert(p2[1].method === 'screenPop' && p2[1].args.type === 'sobject' && p2[1].args.params.recordId === lisa.Id,
    'screenPop({type: SOBJECT, params: {recordId}}): ' + JSON.stringify(p2[1]));
  ok('ECC user.sf_recordId -> screenPop(SOBJECT, {recordId: ' + lisa.Id + '})');
  const did2 = (await fin.agent(AGENT)).dialogs[0].id;
  await fin.hangup(did2);
  await frame.getByLabel('Caller', {exact: true}).waitFor({state: 'detached'});

  // --- click-to-dial on the host page
  await page.getByRole('region', {name: 'Recent records'}).getByRole('button', {name: 'Call +1 650 555 0123'}).click();
  const out = await waitFor(async () => ((await fin.agent(AGENT)).dialogs || [])
    .find((d) => d.to === '+16505550123'), 'a Finesse dialog to +16505550123');
  // the host page delivers the event first and has sf-sim record it after
  // (behind the calls it is relaying): the call may be placed before that
  const ev = await waitFor(async () => {
    const e = (await http('GET', sf.ctl() + '/sim/opencti?kind=event&method=onClickToDial')).body;
    return e.length ? e : false;
  }, 'onClickToDial recorded');
  assert(ev.length === 1 && ev[0].delivered, 'onClickToDial delivered once: ' + JSON.stringify(ev));
  await frame.getByRole('article', {name: 'Outbound call'}).waitFor();
  await shot(page, 'host-click-to-dial');
  const ctx2 = await waitFor(() => apiRequests.find((r) => r.url.endsWith('/api/v1/calls/' + out.id + '/context')),
    'context of the click-to-dial call');
  assert(JSON.parse(ctx2.body).who_id === lisa.Id, 'click-to-dial context who_id = the Lead: ' + ctx2.body);
  ok('click-to-dial "+1 650 555 0123" on the host page -> Finesse dialog ' + out.id +
    ' to +16505550123, context who_id ' + lisa.Id);
  await frame.getByRole('button', {name: 'End', exact: true}).click();

  // --- a foreign sfdcIFrameOrigin: refused, nothing runs
  const evil = await context.newPage();
  const evilReqs = [];
  evil.on('request', (r) => evilReqs.push(r.url()));
  const resp = await evil.goto(env('FSC_CONNECTOR_URL') +
    '/softphone/?sfdcIFrameOrigin=' + encodeURIComponent('https://evil.example.com') +
    '&sfdcIFrameHost=web&mode=Lightning');
  assert(resp.status() === 400, 'foreign origin -> 400, got ' + resp.status());
  await evil.waitForTimeout(300);
  assert(evilReqs.length === 1, 'nothing loaded but the refused page: ' + evilReqs.join(', '));
  assert(await evil.evaluate(() => typeof window.sforce === 'undefined' && !document.getElementById('app')),
    'no softphone, no opencti');
  await shot(evil, 'foreign-origin-refused');
  await evil.close();
  ok('sfdcIFrameOrigin=https://evil.example.com -> 400, no script loaded');

  assert(problems.length === 0, 'no CSP violations or page errors: ' + problems.join(' | '));
  ok('no CSP violations, no page errors');
});
