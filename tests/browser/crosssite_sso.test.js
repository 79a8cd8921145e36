// SPDX-License-Identifier: AGPL-3.0-or-later
// SSO in the frame agents really have, in a browser that keeps nothing for
// it: the softphone cross-site inside sf-sim's Lightning host page
// (run_browser_test.py --cross-site --profile blocked --sso), third-party
// storage blocked, fsc-sso + ids-sim behind "Sign in with SSO".
//  - the first sign-in: Extension typed, "Sign in with SSO" -> the popup
//    signs in at the IdP and hands the code to the frame;
//  - a reload: nothing kept (no token, no prefill), the page says to sign
//    in again;
//  - one click on "Sign in with SSO" (nothing typed; the IdP session is
//    still there) -> back in the same session, the same state, no second
//    Finesse LOGIN.
'use strict';

const {env, ok, assert, profile, watch, shot, waitFor, fin, run} = require('./lib.js');

const AGENT = '1003'; // ids-sim's user agent1003@example.com (run_browser_test.py)

function hostPage(tab) {
  return env('FSC_SF_URL') + '/lightning/page/home?' + new URLSearchParams({
    softphone: env('FSC_CONNECTOR_URL') + '/softphone/', tab}).toString();
}

// Click "Sign in with SSO" in frame; the popup comes and goes by itself.
// With the IdP session still open it can be gone (~50 ms) before
// playwright-core reports it: that page then comes already closed
// (isClosed(); its PageDispatcher is made with isClosed: true) and never
// emits 'close'.
async function ssoClick(context, frame) {
  const popup = context.waitForEvent('page');
  await frame.getByRole('button', {name: 'Sign in with SSO'}).click();
  const p = await popup;
  if (!p.isClosed()) await p.waitForEvent('close', {timeout: 15000});
  return p;
}

run('crosssite-sso', async (context) => {
  assert(profile() === 'blocked', 'run with --profile blocked');
  const page = await context.newPage();
  const problems = watch(page, 'host');
  await page.goto(hostPage('s1'));
  const f = page.frameLocator('#softphone');
  await f.getByRole('button', {name: 'Sign in with SSO'}).waitFor();
  const frameOf = () => page.frames().find((x) => x.url().includes('/softphone/'));
  assert(await frameOf().evaluate(() => window.fscSoftphone.storage()) === 'memory',
    'third-party storage blocked: the session lives in memory');

  // --- the first sign-in of the day: Extension typed
  await f.getByLabel('Extension').fill(AGENT);
  const popup = await ssoClick(context, f);
  const state = f.getByLabel('Agent state');
  await waitFor(async () => (await state.inputValue()).startsWith('NOT_READY'), 'signed in with SSO');
  await state.selectOption({label: 'Ready'});
  await fin.waitAgent(AGENT, 'READY');
  ok('SSO sign-in in the cross-site frame: popup ' + new URL(popup.url()).origin + ' came and went, ' +
    'agent ' + AGENT + ' Ready');
  const logins = (await fin.stats()).requests || {};
  const puts = logins['PUT User'] || 0;
  assert(puts >= 1, 'the sign-in sent a LOGIN (PUT User) to Finesse: ' + JSON.stringify(logins));

  // --- reload: the browser kept nothing
  await page.reload();
  const f2 = page.frameLocator('#softphone');
  await f2.getByRole('note', {name: 'Browser storage'}).filter({hasText: 'Sign in again after each reload'})
    .waitFor();
  assert(await f2.getByLabel('Agent ID').inputValue() === '' && await f2.getByLabel('Extension').inputValue() === '',
    'nothing kept: no prefill');
  await shot(page, 'reloaded-signed-out');

  // --- one click
  await ssoClick(context, f2);
  await waitFor(async () => (await f2.getByLabel('Agent state').inputValue()) === 'READY',
    'back in the running session, still Ready');
  assert((await fin.agent(AGENT)).state === 'READY', 'Finesse: still READY');
  const after = ((await fin.stats()).requests || {})['PUT User'] || 0;
  assert(after === puts, 'no second LOGIN at Finesse: PUT User ' + puts + ' -> ' + after);
  assert((await f2.getByText(/Extension 1003/).count()) === 1, 'the running session\'s extension shown');
  await shot(page, 'reloaded-one-click');
  ok('after the reload: one click on "Sign in with SSO", nothing typed -> the same session (Ready, ' +
    'extension ' + AGENT + '), no second Finesse LOGIN');

  assert(problems.length === 0, 'no CSP violations or page errors: ' + problems.join(' | '));
  ok('no CSP violations, no page errors');
});
