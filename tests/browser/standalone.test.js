// SPDX-License-Identifier: AGPL-3.0-or-later
// The softphone page on its own (no Salesforce frame), in headless Chromium
// against fsc-connector + finesse-sim (wrap-up REQUIRED):
//  - sign in with Agent ID / Password / Extension (accessible names);
//  - "Agent state" -> Ready reaches Finesse;
//  - an inbound call: "Caller" +14155550100, DNIS, queue, call variables
//    and ECC variables; Answer -> Hold -> Resume -> Keypad digits -> End,
//    each checked in finesse-sim; "Wrap-up reason" chosen and saved;
//  - click-to-dial without Salesforce ("Number to dial" + "Dial");
//  - the page at 200 and 400 px: no horizontal scroll;
//  - sign out, then a keyboard-only sign-in (Tab order, visible focus);
//  - a refresh re-attaches without signing in; a revoked token (signed
//    out elsewhere) brings back the sign-in form.
'use strict';

const {env, ok, assert, watch, shot, waitFor, fin, checkWidth, run} = require('./lib.js');

const AGENT = '1001';

run('standalone', async (context) => {
  const page = await context.newPage();
  const problems = watch(page, 'page');
  const url = env('FSC_CONNECTOR_URL') + '/softphone/';
  await page.goto(url);

  // --- sign-in form
  const agentId = page.getByLabel('Agent ID');
  await agentId.waitFor();
  assert(await page.getByRole('button', {name: 'Sign in with SSO'}).isHidden(),
    'no SSO button on a non-SSO site');
  await checkWidth(page, 200, 'sign-in');
  await checkWidth(page, 400, 'sign-in');
  await agentId.fill(AGENT);
  await page.getByRole('button', {name: 'Sign in', exact: true}).click();
  await page.getByRole('alert').filter({hasText: 'Password'}).waitFor();
  ok('missing password and extension -> alert, nothing sent');
  await page.getByLabel('Password').fill('wrong');
  await page.getByLabel('Extension').fill(AGENT);
  await page.getByRole('button', {name: 'Sign in', exact: true}).click();
  await page.getByRole('alert').filter({hasText: 'Wrong agent ID or password'}).waitFor();
  ok('wrong password -> "Wrong agent ID or password" in the alert');
  await page.getByLabel('Password').fill('pw' + AGENT);
  await page.getByRole('button', {name: 'Sign in', exact: true}).click();

  const state = page.getByLabel('Agent state');
  await waitFor(async () => (await state.inputValue()).startsWith('NOT_READY'), 'Agent state Not Ready');
  await fin.waitAgent(AGENT, 'NOT_READY');
  assert(await page.getByRole('alert').isHidden(), 'the error went away after signing in');
  await shot(page, 'signed-in');
  ok('signed in: Agent state shows Not Ready; Finesse has 1001 NOT_READY');

  // --- reason codes, then Ready
  await state.selectOption({label: 'Not Ready — Lunch'});
  await waitFor(async () => (await fin.agent(AGENT)).reason_code_id === '2', 'NOT_READY reason 2 (Lunch)');
  await waitFor(async () => (await page.getByRole('status').first().textContent()).includes('Lunch'),
    'status shows the reason');
  ok('Agent state "Not Ready — Lunch" -> Finesse NOT_READY reason 2');
  await state.selectOption({label: 'Ready'});
  await fin.waitAgent(AGENT, 'READY');
  await waitFor(async () => (await state.inputValue()) === 'READY', 'Agent state Ready');
  ok('Agent state Ready -> Finesse READY');

  // --- inbound call
  const did = await fin.call(AGENT, {
    callvariables: {callVariable1: 'Order 4711', callVariable2: 'Gold customer'},
    ecc: {'user.sf_recordId': '003000000000001AAA', 'user.language': 'en-US'},
  });
  const caller = page.getByLabel('Caller', {exact: true});
  await caller.waitFor();
  assert((await caller.textContent()).trim() === '+14155550100', 'Caller is +14155550100');
  const panel = page.getByRole('article', {name: 'Incoming call'});
  await panel.waitFor();
  const text = await panel.textContent();
  for (const want of ['8000', 'Sales', 'callVariable1', 'Order 4711', 'Gold customer', 'language', 'en-US',
    'sf_recordId']) {
    assert(text.includes(want), 'call panel shows ' + want + ': ' + text);
  }
  await waitFor(async () => (await page.getByRole('status').first().textContent()) === 'Ringing', 'status Ringing');
  await checkWidth(page, 200, 'ringing');
  await checkWidth(page, 400, 'ringing');
  ok('ringing: Caller +14155550100, DNIS 8000, queue Sales, call variables and ECC shown');

  const btn = (name) => page.getByRole('button', {name, exact: true});
  await btn('Answer').click();
  await fin.waitPart(did, AGENT, 'ACTIVE');
  await btn('Hold').waitFor();
  assert(await btn('Answer').count() === 0, 'no Answer once answered');
  ok('Answer -> ACTIVE in Finesse; the panel offers Hold');
  await btn('Hold').click();
  await fin.waitPart(did, AGENT, 'HELD');
  await btn('Resume').waitFor();
  await shot(page, 'held');
  ok('Hold -> HELD; the panel offers Resume');
  await btn('Resume').click();
  await fin.waitPart(did, AGENT, 'ACTIVE');
  await btn('Hold').waitFor();
  ok('Resume -> ACTIVE');

  await btn('Keypad').click();
  assert(await btn('Keypad').getAttribute('aria-expanded') === 'true', 'Keypad is expanded');
  for (const d of ['1', '2', 'pound']) await page.getByRole('button', {name: 'Digit ' + d}).click();
  await waitFor(async () => ((await fin.dialog(did)).dtmf || '') === '12#', 'DTMF 12# at Finesse');
  await shot(page, 'keypad');
  ok('Keypad digits 1 2 # -> Finesse got DTMF "12#"');

  const wrapBefore = ((await fin.stats()).counters || {}).action_UPDATE_CALL_DATA || 0;
  await btn('End').click();
  await fin.waitAgent(AGENT, 'WORK_READY', 'WORK_READY (wrap-up REQUIRED)');
  const wrap = page.getByLabel('Wrap-up reason');
  await wrap.waitFor();
  assert(await caller.count() === 0, 'the call panel is gone after End');
  await shot(page, 'wrap-up');
  await checkWidth(page, 200, 'wrap-up');
  await checkWidth(page, 400, 'wrap-up');
  await wrap.selectOption({label: 'Sales'});
  await btn('Save wrap-up').click();
  await fin.waitAgent(AGENT, 'READY', 'READY after wrap-up');
  const wrapAfter = ((await fin.stats()).counters || {}).action_UPDATE_CALL_DATA || 0;
  assert(wrapAfter === wrapBefore + 1, 'one UPDATE_CALL_DATA (wrap-up reason) reached Finesse');
  await waitFor(async () => (await state.inputValue()) === 'READY', 'Agent state Ready after wrap-up');
  await wrap.waitFor({state: 'hidden'});
  ok('End -> wrap-up; "Wrap-up reason" Sales saved (UPDATE_CALL_DATA), agent Ready again');

  // --- a second call: consult, then complete the transfer (consult transfer)
  const did2 = await fin.call(AGENT, {ani: '+14155550199'});
  await page.getByLabel('Caller', {exact: true}).filter({hasText: '+14155550199'}).waitFor();
  await btn('Answer').click();
  await fin.waitPart(did2, AGENT, 'ACTIVE');
  await btn('Consult').click();
  await page.getByLabel('Consult number').fill('+14155550123');
  await page.getByLabel('Consult number').press('Enter');
  await fin.waitPart(did2, AGENT, 'HELD');
  await waitFor(async () => (await page.getByRole('article').count()) === 2, 'two call panels (consult)');
  // once the consult is connected, Finesse offers TRANSFER/CONFERENCE
  const consultPanel = page.getByRole('article', {name: 'Consult call'});
  await consultPanel.getByRole('button', {name: 'Conference', exact: true}).waitFor();
  await shot(page, 'consult');
  ok('Consult +14155550123 -> original HELD, consult panel connected with Transfer and Conference');
  await consultPanel.getByRole('button', {name: 'Transfer', exact: true}).click();
  await waitFor(async () => (await page.getByRole('article').count()) === 0, 'no call panels after transfer');
  ok('Transfer on the consult completes the consult transfer: both calls leave the agent');
  // wrap-up again (REQUIRED), without a reason this time
  await wrap.waitFor();
  await btn('Save wrap-up').click();
  await fin.waitAgent(AGENT, 'READY', 'READY after the second wrap-up');

  // --- click-to-dial without Salesforce
  await page.getByLabel('Number to dial').fill('+1 (415) 555-0142');
  await btn('Dial').click();
  const out = await waitFor(async () => {
    const a = await fin.agent(AGENT);
    return (a.dialogs || []).find((d) => d.to === '+14155550142');
  }, 'a dialog to +14155550142 in Finesse');
  await page.getByRole('article', {name: 'Outbound call'}).waitFor();
  await shot(page, 'outbound');
  ok('Dial "+1 (415) 555-0142" -> Finesse dialog ' + out.id + ' to +14155550142');
  await btn('End').click();
  await waitFor(async () => ((await fin.agent(AGENT)).dialogs || []).length === 0, 'outbound call ended');

  // --- refresh re-attaches (token in localStorage)
  await page.reload();
  await waitFor(async () => (await state.inputValue()) === 'READY', 'Ready after reload');
  assert(await page.getByLabel('Agent ID').isHidden(), 'no sign-in form after reload');
  ok('reload: still signed in (no sign-in form), state Ready');

  // --- a second tab signs out: this one shows the sign-in form too
  const tab2 = await context.newPage();
  watch(tab2, 'tab2');
  await tab2.goto(url);
  await tab2.getByRole('button', {name: 'Sign out'}).click();
  await tab2.getByLabel('Agent ID').waitFor();
  await page.getByLabel('Agent ID').waitFor();
  await fin.waitAgent(AGENT, 'LOGOUT');
  await tab2.close();
  ok('Sign out in a second tab -> Finesse LOGOUT, both tabs show the sign-in form');

  // --- keyboard-only sign-in
  await page.reload();
  await page.getByLabel('Agent ID').waitFor();
  await page.getByLabel('Agent ID').fill('');
  await page.getByLabel('Extension').fill('');
  await page.locator('body').click({position: {x: 1, y: 1}});
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  const focusName = () => page.evaluate(() => {
    const e = document.activeElement;
    if (!e || e === document.body) return '';
    const l = e.labels && e.labels[0];
    const ring = getComputedStyle(e).outlineStyle !== 'none' && parseFloat(getComputedStyle(e).outlineWidth) >= 2;
    return (l ? l.textContent : e.textContent).trim() + (ring ? '' : ' (NO FOCUS RING)');
  });
  const typed = [['Agent ID', AGENT], ['Password', 'pw' + AGENT], ['Extension', AGENT]];
  for (const [label, value] of typed) {
    await page.keyboard.press('Tab');
    const f = await focusName();
    assert(f === label, 'Tab reaches ' + label + ' next, got "' + f + '"');
    await page.keyboard.type(value);
  }
  await page.keyboard.press('Tab');
  assert(await focusName() === 'Sign in', 'Tab reaches Sign in, got "' + await focusName() + '"');
  await shot(page, 'keyboard-focus-sign-in');
  await page.keyboard.press('Enter');
  await waitFor(async () => (await state.inputValue()).startsWith('NOT_READY'), 'signed in by keyboard');
  await fin.waitAgent(AGENT, 'NOT_READY');
  ok('keyboard only: Tab -> Agent ID, Password, Extension, Sign in (visible focus ring), Enter signs in');

  // the state selector by keyboard: arrows browse, Enter commits once
  await state.focus();
  const before = ((await fin.stats()).requests || {});
  await page.keyboard.press('Home');
  await page.keyboard.press('Enter');
  await fin.waitAgent(AGENT, 'READY', 'READY chosen by keyboard');
  ok('keyboard: Home + Enter on Agent state -> READY' + (before ? '' : ''));

  assert(problems.length === 0, 'no CSP violations or page errors: ' + problems.join(' | '));
  ok('no CSP violations, no page errors');
});
