// SPDX-License-Identifier: AGPL-3.0-or-later
// SSO sign-in on the softphone page against an IdS before 12.6(2): its
// tokens are opaque, so the server needs the Agent ID (proven by Finesse).
// In headless Chromium, with fsc-sso + ids-sim (--sso opaque; IdS signs
// every sign-in in as agent 1002):
//  - "Sign in with SSO" with no Agent ID: the popup signs in, the page
//    then asks for the Agent ID (alert, "Agent ID" marked invalid and
//    focused); nothing is signed in at Finesse;
//  - "Sign in with SSO" again without one: the page asks before opening a
//    popup;
//  - another agent's ID (1003): Finesse refuses, the page says so, 1003
//    stays signed out;
//  - the agent's own ID (1002): signed in, "Agent state" shows Not Ready,
//    Ready reaches Finesse (REST and XMPP with the opaque token).
'use strict';

const {env, ok, assert, watch, shot, waitFor, fin, run} = require('./lib.js');

async function ssoRound(context, page) {
  const popup = context.waitForEvent('page', {timeout: 15000});
  await page.getByRole('button', {name: 'Sign in with SSO'}).click();
  const p = await popup;
  // a popup gone before playwright-core reports it comes already closed
  // and never emits 'close' (see crosssite_sso.test.js)
  if (!p.isClosed()) await p.waitForEvent('close', {timeout: 15000});
}

run('sso_agent_id', async (context) => {
  const page = await context.newPage();
  const problems = watch(page, 'page');
  await page.goto(env('FSC_CONNECTOR_URL') + '/softphone/');

  const agentId = page.getByLabel('Agent ID');
  const sso = page.getByRole('button', {name: 'Sign in with SSO'});
  await sso.waitFor();
  await page.getByLabel('Extension').fill('1002');
  assert((await agentId.inputValue()) === '', 'no Agent ID yet');

  // 1. no Agent ID: the server needs it
  await ssoRound(context, page);
  await page.getByRole('alert').filter({hasText: 'Enter your Agent ID'}).waitFor();
  assert(await agentId.getAttribute('aria-invalid') === 'true', 'Agent ID marked invalid');
  assert(await agentId.evaluate((e) => e === document.activeElement), 'Agent ID has the focus');
  assert((await fin.agent('1002')).state === 'LOGOUT', 'nothing signed in at Finesse');
  await shot(page, 'agent-id-asked');
  ok('SSO without an Agent ID: after the popup the page asks for it (alert, field invalid + focused)');

  // 2. asked again before any popup
  let popups = 0;
  context.on('page', () => { popups += 1; });
  await sso.click();
  await page.getByRole('alert').filter({hasText: 'Please enter Agent ID'}).waitFor();
  await page.waitForTimeout(300);
  assert(popups === 0, 'no popup without the Agent ID now');
  ok('SSO again without an Agent ID: asked before any popup opens');

  // 3. someone else's Agent ID
  await agentId.fill('1003');
  await ssoRound(context, page);
  await page.getByRole('alert').filter({hasText: 'did not accept this Agent ID'}).waitFor();
  assert((await fin.agent('1003')).state === 'LOGOUT', '1003 not signed in');
  assert((await fin.agent('1002')).state === 'LOGOUT', '1002 not signed in either');
  await shot(page, 'agent-id-refused');
  ok('another agent\'s ID: Finesse refuses, the page says so, nothing signed in');

  // 4. the agent's own ID
  await agentId.fill('1002');
  await ssoRound(context, page);
  const state = page.getByLabel('Agent state');
  await waitFor(async () => (await state.inputValue()).startsWith('NOT_READY'), 'Agent state Not Ready');
  await fin.waitAgent('1002', 'NOT_READY');
  await state.selectOption({label: 'Ready'});
  await fin.waitAgent('1002', 'READY');
  await waitFor(async () => (await state.inputValue()) === 'READY', 'Agent state Ready');
  await shot(page, 'signed-in');
  ok('own Agent ID 1002: signed in with SSO, Ready reaches Finesse and comes back');

  await page.getByRole('button', {name: 'Sign out'}).click();
  await page.getByRole('button', {name: 'Sign in with SSO'}).waitFor();
  assert(problems.length === 0, 'no page errors or CSP violations: ' + problems.join(' | '));
});
