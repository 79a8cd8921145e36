// SPDX-License-Identifier: AGPL-3.0-or-later
// softphone.js - the Open CTI softphone page of fsc-connector.
//
// No build step, no framework (browser storage is in
// softphone-storage.js). The server holds the agent's one Finesse session;
// this page is a view of it (DESIGN.md §4, §5):
//   - the API token is kept where the browser allows (localStorage, else
//     cookies granted by the Storage Access API, else memory: see
//     softphone-storage.js), so that other tabs and a refresh re-attach to
//     the running session without signing in again; a 401 clears it;
//   - events come over one EventSource per tab, opened with a single-use
//     ticket (POST /api/v1/events/ticket, then /api/v1/events?ticket=):
//     the API token never goes in a URL, where proxies log it; the page
//     reconnects itself, with a fresh ticket and ?last_event_id=. The
//     stream's first event names it (`stream`), and the tab reports its
//     focus and visibility under that name;
//   - the server picks the tab that screen-pops a call and sends it the
//     `pop`; the tab claims it (POST /calls/{id}/popped), pops only if
//     the server says it is its, then says it is done: no Web Locks, no
//     storage, so it works in a cross-site frame whose storage the browser
//     blocks;
//   - inside Salesforce (?sfdcIFrameOrigin=...) it loads opencti_min.js from
//     that origin and drives the utility bar, click-to-dial and screen pops;
//     without it the page works standalone (and is never given a pop).
'use strict';

(function () {
  const API = '/api/v1';
  const LS_TOKEN = 'fsc.token';
  const LS_AGENT = 'fsc.agent';          // last agent id + extension (form prefill)
  const LS_WRAPUP = 'fsc.wrapup';        // {id, from} the call being wrapped up
  const OPENCTI_WAIT_MS = 1500;          // a pop offered before opencti loaded
  const PEER_WAIT_MS = 300;              // a new tab asks the others for the token

  const $ = (id) => document.getElementById(id);
  const el = {
    app: $('app'), status: $('status'), alert: $('alert'), alertText: $('alert-text'),
    alertClose: $('alert-close'),
    signin: $('signin'), signinForm: $('signin-form'), agentId: $('agent-id'),
    password: $('password'), extension: $('extension'), signinBtn: $('signin-btn'),
    ssoBtn: $('sso-btn'),
    agent: $('agent'), agentName: $('agent-name'), state: $('agent-state'),
    pending: $('pending'), signoutBtn: $('signout-btn'),
    calls: $('calls'), wrapup: $('wrapup'), wrapupCall: $('wrapup-call'),
    wrapupReason: $('wrapup-reason'), wrapupBtn: $('wrapup-btn'),
    dialpad: $('dialpad'), dialForm: $('dial-form'), dialNumber: $('dial-number'),
    dialBtn: $('dial-btn'), tpl: $('call-template'),
    storageNote: $('storage-note'), storageNoteText: $('storage-note-text'),
    storageAllow: $('storage-allow'), storageFix: $('storage-note-fix'),
    storageDismiss: $('storage-dismiss'),
  };
  const store = window.fscStorage;

  const query = new URLSearchParams(location.search);
  const sfOrigin = query.get('sfdcIFrameOrigin');

  const st = {
    config: null,
    token: null,
    es: null,
    esRetry: 0,
    esGen: 0,               // bumped to drop a stream being opened
    esTimer: null,          // the pending reconnection
    lastEventId: 0,         // the last numbered event seen (resume point)
    agent: null,            // last `agent` event
    dialogs: new Map(),     // id -> dialog (live ones)
    connected: new Set(),   // dialog ids this agent was connected on
    alerted: new Set(),     // dialog ids whose ALERTING was handled
    notReadyCodes: null,
    logoutCodes: null,
    wrapupReasons: null,
    pendingReqs: new Map(), // request_id -> what (errors of this tab)
    nav: null,              // the record open in Salesforce {recordId, objectType}
    contextSent: new Map(), // dialog id -> recordId already attached
    sforce: null,           // window.sforce.opencti once loaded
    utility: {label: null, icon: null},
    ssoPopup: null,
    ssoNeedsAgent: false,   // the SSO sign-in needs the Agent ID (opaque IdS tokens)
    stream: null,           // this tab's event stream id (its `stream` event)
    popped: new Set(),      // dialog ids this tab popped
    hostActive: false,      // Salesforce said the agent is in this browser tab
    focusSent: '',          // the last focus report sent
    sforceReady: null,      // resolves when opencti is usable (or never will be)
  };

  // ------------------------------------------------------------------ util

  // guarded storage (softphone-storage.js): never throws
  const lsGet = store.get;
  const lsSet = store.set;
  const lsDel = store.del;
  const lsJson = store.json;

  function setStatus(text) { el.status.textContent = text; }

  function showError(text) {
    el.alertText.textContent = text;
    el.alert.hidden = false;
  }
  function clearError() {
    el.alert.hidden = true;
    el.alertText.textContent = '';
  }
  el.alertClose.addEventListener('click', clearError);

  function errText(body, status) {
    if (body && (body.detail || body.error)) {
      return body.detail ? body.detail : body.error;
    }
    return 'The connector answered ' + status + '.';
  }

  // A call to the connector's API. -> {status, body}; a 401 on an
  // authenticated call ends the session in this tab (and, through
  // localStorage, in the others).
  async function api(method, path, body, opts) {
    const headers = {'Accept': 'application/json'};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (st.token && !(opts && opts.noAuth)) headers['Authorization'] = 'Bearer ' + st.token;
    let resp;
    try {
      resp = await fetch(API + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store', credentials: 'omit', keepalive: !!(opts && opts.keepalive),
      });
    } catch (e) {
      return {status: 0, body: {error: 'network', detail: 'The connector cannot be reached.'}};
    }
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (resp.status === 401 && st.token && !(opts && opts.noAuth)) {
      signedOut('Your session has ended. Please sign in again.');
    }
    return {status: resp.status, body: data};
  }

  function normalizeNumber(n) {
    let s = String(n == null ? '' : n).trim();
    const plus = s.startsWith('+');
    s = s.replace(/[^0-9*#]/g, '');
    return (plus ? '+' : '') + s;
  }

  // ------------------------------------------------------------ opencti

  function opencti() { return st.sforce; }

  function ctiCall(method, args) {
    const o = opencti();
    if (!o || typeof o[method] !== 'function') return;
    try {
      o[method](Object.assign({callback: (r) => {
        if (r && r.success === false) {
          console.warn('opencti', method, 'failed', r.errors);
        }
      }}, args || {}));
    } catch (e) {
      console.warn('opencti', method, e);
    }
  }

  let sforceResolve = null;
  st.sforceReady = new Promise((res) => { sforceResolve = res; });

  function loadOpenCti() {
    if (!sfOrigin) { sforceResolve(false); return; }
    const cfg = st.config || {};
    const allowed = Array.isArray(cfg.org_origins) ? cfg.org_origins : [];
    if (allowed.indexOf(sfOrigin) < 0) {
      // the server checked it already; this is a second fence
      showError('This softphone is not configured for ' + sfOrigin + '.');
      sforceResolve(false);
      return;
    }
    const version = cfg.opencti_version || '60.0';
    const s = document.createElement('script');
    s.src = sfOrigin + '/support/api/' + encodeURIComponent(version) + '/lightning/opencti_min.js';
    s.async = true;
    s.addEventListener('load', onOpenCtiLoaded);
    s.addEventListener('error', () => {
      showError('Salesforce Open CTI could not be loaded.');
      sforceResolve(false);
    });
    document.head.appendChild(s);
  }

  function onOpenCtiLoaded() {
    if (!window.sforce || !window.sforce.opencti) {
      showError('Salesforce Open CTI did not initialise.');
      sforceResolve(false);
      return;
    }
    st.sforce = window.sforce.opencti;
    sforceResolve(true);
    ctiCall('notifyInitializationComplete');
    ctiCall('enableClickToDial');
    try {
      st.sforce.onClickToDial({listener: onClickToDial});
      st.sforce.onNavigationChange({listener: onNavigationChange});
    } catch (e) {
      console.warn('opencti listeners', e);
    }
    st.utility = {label: null, icon: null};
    updateUtility();
  }

  function onClickToDial(payload) {
    hostActivity();
    if (!payload) return;
    const to = normalizeNumber(payload.number);
    if (!st.token) {
      showError('Sign in to the softphone to call ' + (payload.number || 'this number') + '.');
      ctiCall('setSoftphonePanelVisibility', {visible: true});
      return;
    }
    if (payload.recordId) {
      st.nav = {recordId: payload.recordId, objectType: payload.objectType || ''};
    }
    placeCall(to, payload.recordId ? {recordId: payload.recordId, objectType: payload.objectType} : null);
  }

  function onNavigationChange(payload) {
    hostActivity();
    if (!payload || !payload.recordId) return;
    st.nav = {recordId: payload.recordId, objectType: payload.objectType || ''};
    for (const d of st.dialogs.values()) {
      const me = myPart(d);
      if (me && (me.state === 'ACTIVE' || me.state === 'HELD')) attachContext(d.id, st.nav);
    }
  }

  // The record the agent has open becomes the call's who/what
  // (POST /api/v1/calls/{id}/context; Contact/Lead -> who_id, others -> what_id).
  async function attachContext(dialogId, rec) {
    if (!rec || !rec.recordId) return;
    if (st.contextSent.get(dialogId) === rec.recordId) return;
    st.contextSent.set(dialogId, rec.recordId);
    const who = /^(Contact|Lead)$/.test(rec.objectType || '') ||
      /^00[3Q]/.test(rec.recordId) && !rec.objectType;
    const body = who ? {who_id: rec.recordId} : {what_id: rec.recordId};
    const r = await api('POST', '/calls/' + encodeURIComponent(dialogId) + '/context', body);
    if (r.status >= 500 || r.status === 0) st.contextSent.delete(dialogId); // try again later
  }

  // --------------------------------------------------------------- tabs
  // The server picks the tab that pops (focused, else the most recently
  // visible, else the newest) from what each tab reports here. The agent's
  // focus is usually in Salesforce, not in this frame: Salesforce's
  // onNavigationChange (fired on navigation and when the browser tab
  // regains focus) counts as "the agent is in this tab" until it is hidden.

  function focusState() {
    const visible = document.visibilityState === 'visible';
    if (!visible) st.hostActive = false;
    // a background tab may keep document.hasFocus(): hidden is never focused
    return {focused: visible && (document.hasFocus() || st.hostActive), visible,
      can_pop: !!sfOrigin};
  }

  // One report in flight at a time, the state read when it is sent: two
  // requests racing could reach the server in the wrong order (a click
  // into the frame sends one on pointerdown and one on focus).
  const focusQ = {busy: false, again: false, force: false};

  async function reportFocus(force) {
    focusQ.force = focusQ.force || !!force;
    if (focusQ.busy) { focusQ.again = true; return; }
    focusQ.busy = true;
    try {
      do {
        focusQ.again = false;
        const stream = st.stream;
        if (!st.token || !stream) break;
        const f = focusState();
        const sig = stream + JSON.stringify(f);
        if (!focusQ.force && sig === st.focusSent) continue;
        focusQ.force = false;
        st.focusSent = sig;
        const r = await api('POST', '/tabs/' + encodeURIComponent(stream) + '/focus', f);
        if (r.status !== 200 && st.focusSent === sig) st.focusSent = ''; // say it again next time
      } while (focusQ.again);
    } finally {
      focusQ.busy = false;
    }
  }

  function hostActivity() {
    st.hostActive = true;
    reportFocus(true);
  }

  // the agent acting in this tab is news even when the state is the same:
  // the server ranks focused tabs by their latest report
  window.addEventListener('focus', () => reportFocus(true));
  // after the click's own default action: focus has moved by then
  document.addEventListener('pointerdown', () => setTimeout(() => reportFocus(true), 0), true);
  window.addEventListener('blur', () => reportFocus(false));
  document.addEventListener('visibilitychange', () => reportFocus(false));
  // for people debugging multi-tab behaviour (and for the browser tests)
  window.fscSoftphone = {
    stream: () => st.stream, storage: () => store.mode(), focus: focusState,
    popped: () => Array.from(st.popped),
  };

  // ------------------------------------------------------------- pops

  // `pop` event, sent by the server to this tab only:
  //   {"dialog_id", "type": "SOBJECT"|"URL"|"OBJECTHOME"|"LIST"|"SEARCH"|
  //    "NEW_RECORD_MODAL"|"FLOW"|"SEARCH_AND_POP", "params": {...},
  //    "call_type": "INBOUND"|"OUTBOUND"|"INTERNAL"}
  // SEARCH_AND_POP: "searchParams" (and optional "queryParams",
  // "defaultFieldValues") at the top level, as fsc-connector sends them, or
  // inside "params"; "callType" or "call_type".
  // The tab claims it first (POST /calls/{id}/popped with the id of the
  // stream that brought it): only a 200 means pop; a 409 means another tab
  // has it (this one was too slow, or went away and came back). After the
  // pop it says so ("done": true): until then the server hands the pop to
  // another tab should this one close (a claim can reach the server from a
  // tab that is closing and will never pop).
  async function onPopOffer(p, stream) {
    if (!p || !p.dialog_id || !p.type || !stream) return;
    const id = String(p.dialog_id);
    if (st.popped.has(id)) return;
    // just loaded: give opencti a moment; a page that cannot pop lets the
    // offer run out, and the server moves on to another tab
    const ready = await Promise.race([st.sforceReady,
      new Promise((res) => setTimeout(() => res(false), OPENCTI_WAIT_MS))]);
    if (!ready || !opencti()) return;
    const r = await api('POST', '/calls/' + encodeURIComponent(id) + '/popped', {stream});
    if (r.status !== 200 || st.popped.has(id)) return;
    st.popped.add(id);
    let params = p.params || {};
    if (p.type === 'SEARCH_AND_POP') {
      params = Object.assign({}, params);
      for (const k of ['searchParams', 'queryParams', 'defaultFieldValues']) {
        if (params[k] === undefined && p[k] !== undefined) params[k] = p[k];
      }
    }
    screenPop(p.type, params, p.callType || p.call_type || 'INBOUND');
    // Salesforce has the pop now (its callback only says how it went);
    // keepalive: a reload right after the pop must not lose this
    api('POST', '/calls/' + encodeURIComponent(id) + '/popped', {stream, done: true},
      {keepalive: true});
  }

  function screenPop(type, params, callType) {
    const o = opencti();
    if (!o) return;
    if (type === 'SEARCH_AND_POP') {
      const ct = (o.CALL_TYPE && o.CALL_TYPE[callType]) || callType;
      const args = {searchParams: String(params.searchParams || ''), callType: ct, deferred: false};
      if (params.queryParams) args.queryParams = params.queryParams;
      if (params.defaultFieldValues) args.defaultFieldValues = params.defaultFieldValues;
      ctiCall('searchAndScreenPop', args);
    } else {
      const t = (o.SCREENPOP_TYPE && o.SCREENPOP_TYPE[type]) || type;
      ctiCall('screenPop', {type: t, params: params});
    }
  }

  // ------------------------------------------------------------ storage

  // Said once, where the agent looks: what blocked storage means for them,
  // and the fix for their administrator; with the Storage Access API, the
  // button that asks the browser for this frame's storage.
  function renderStorageNote() {
    const blocked = store.mode() === 'memory';
    el.storageNote.hidden = !blocked || st.storageNoteDismissed;
    if (!blocked) return;
    const text = st.token
      ? 'This browser blocks storage for the softphone; a reload will ask you to sign in again.'
      : 'Sign in again after each reload: this browser blocks storage for the softphone.';
    if (el.storageNoteText.textContent !== text) el.storageNoteText.textContent = text;
    el.storageFix.textContent = 'Allow cookies and site data for ' + location.origin +
      ' when Salesforce frames it: in Chrome and Edge the CookiesAllowedForUrls policy ' +
      '(or a site exception under third-party cookies); see "Agents\' browsers" in the ' +
      'connector\'s README.';
    el.storageAllow.hidden = !store.canAskAccess();
  }

  el.storageDismiss.addEventListener('click', () => {
    st.storageNoteDismissed = true; // until the next reload, which will say it again
    renderStorageNote();
  });

  el.storageAllow.addEventListener('click', async () => {
    el.storageAllow.disabled = true;
    const ok = await store.askAccess();
    el.storageAllow.disabled = false;
    if (!ok) {
      showError('The browser did not allow the softphone to keep your session.');
      return;
    }
    clearError();
    if (st.token) {
      lsSet(LS_TOKEN, st.token);
    } else {
      const t = lsGet(LS_TOKEN);
      if (t) attach(t, null);
    }
    renderStorageNote();
  });

  // --------------------------------------------------------- sign in/out

  function savedAgent() { return lsJson(LS_AGENT, {}); }

  async function loginWith(body) {
    clearError();
    el.signinBtn.disabled = true;
    el.ssoBtn.disabled = true;
    setStatus('Signing in…');
    const r = await api('POST', '/login', body, {noAuth: true});
    el.signinBtn.disabled = false;
    el.ssoBtn.disabled = false;
    if (r.status !== 200 || !r.body || !r.body.token) {
      setStatus('Signed out');
      const error = r.body && r.body.error;
      if (body.handoff && (error === 'agent_id_required' || error === 'invalid_agent')) {
        // An opaque IdS token (IdS before 12.6(2)): the server needs the
        // Agent ID, proven by Finesse. The handoff is spent; a second SSO
        // round is quick (the IdP session is still open).
        st.ssoNeedsAgent = true;
        el.agentId.setAttribute('aria-invalid', 'true');
        el.agentId.focus();
        showError(error === 'agent_id_required'
          ? 'Single sign-on did not say which agent you are. Enter your Agent ID, then sign in with SSO again.'
          : 'Sign-in failed: Finesse did not accept this Agent ID for your single sign-on. Enter your own Agent ID, then sign in with SSO again.');
        return;
      }
      if (error === 'extension_required') {
        el.extension.setAttribute('aria-invalid', 'true');
        showError('Please enter Extension, then sign in with SSO.');
        el.extension.focus();
        return;
      }
      const why = r.status === 401 && !body.handoff ? 'Wrong agent ID or password.' : errText(r.body, r.status);
      showError('Sign-in failed: ' + why);
      return;
    }
    el.password.value = '';
    const a = r.body.agent || {};
    lsSet(LS_AGENT, JSON.stringify({id: a.id || body.agent || '',
      extension: body.extension || a.extension || ''}));
    lsSet(LS_TOKEN, r.body.token);
    store.post({type: 'signed-in', token: r.body.token});
    attach(r.body.token, a);
  }

  el.signinForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const agent = el.agentId.value.trim();
    const password = el.password.value;
    const extension = el.extension.value.trim();
    const missing = [];
    if (!agent) missing.push({f: el.agentId, n: 'Agent ID'});
    if (!password) missing.push({f: el.password, n: 'Password'});
    if (!extension) missing.push({f: el.extension, n: 'Extension'});
    for (const f of [el.agentId, el.password, el.extension]) f.removeAttribute('aria-invalid');
    if (missing.length) {
      for (const m of missing) m.f.setAttribute('aria-invalid', 'true');
      showError('Please enter ' + missing.map((m) => m.n).join(', ') + '.');
      missing[0].f.focus();
      return;
    }
    loginWith({agent, password, extension});
  });

  // One click when the agent is still signed in somewhere (a reload in a
  // browser that keeps nothing): without an Extension the connector uses
  // the one of the agent's running session, and says so when there is none.
  el.ssoBtn.addEventListener('click', () => {
    const extension = el.extension.value.trim();
    for (const f of [el.agentId, el.extension]) f.removeAttribute('aria-invalid');
    if (st.ssoNeedsAgent && !el.agentId.value.trim()) {
      el.agentId.setAttribute('aria-invalid', 'true');
      showError('Please enter Agent ID, then sign in with SSO.');
      el.agentId.focus();
      return;
    }
    const cfg = st.config || {};
    if (!cfg.sso_login_url) return;
    const returnTo = location.origin + '/softphone/sso-done.html';
    const url = cfg.sso_login_url + '?return_to=' + encodeURIComponent(returnTo) + '&mode=popup';
    clearError();
    st.ssoExtension = extension;
    st.ssoPopup = window.open(url, 'fsc-sso', 'popup,width=520,height=680');
    if (!st.ssoPopup) {
      showError('The sign-in window was blocked. Allow pop-ups for this softphone and try again.');
      return;
    }
    setStatus('Waiting for single sign-on…');
  });

  // fsc-sso's popup page posts {"handoff"} to our origin (its target
  // origin is the return_to origin). The message comes from fsc-sso's
  // origin, or from ours should a page of ours relay it.
  window.addEventListener('message', (ev) => {
    const cfg = st.config || {};
    let ssoOrigin = null;
    try { ssoOrigin = cfg.sso_login_url ? new URL(cfg.sso_login_url).origin : null; } catch (e) { ssoOrigin = null; }
    if (ev.origin !== location.origin && ev.origin !== ssoOrigin) return;
    const data = ev.data;
    if (!data || typeof data !== 'object' || typeof data.handoff !== 'string') return;
    if (st.ssoPopup && ev.source && ev.source !== st.ssoPopup) return;
    if (st.ssoExtension === null || st.ssoExtension === undefined) return;
    const extension = st.ssoExtension;
    st.ssoExtension = null;
    st.ssoPopup = null;
    // The Agent ID, when known, goes along: the server uses it only when
    // the IdS token names nobody (IdS before 12.6(2)), and Finesse must
    // confirm it. Without an Extension the server uses the running
    // session's (one click after a reload).
    const agent = el.agentId.value.trim();
    const req = {handoff: data.handoff};
    if (extension) req.extension = extension;
    if (agent) req.agent = agent;
    loginWith(req);
  });

  el.signoutBtn.addEventListener('click', () => signOut(null));

  async function signOut(reasonCodeId) {
    clearError();
    el.signoutBtn.disabled = true;
    setStatus('Signing out…');
    st.signingOut = true;
    const r = await api('POST', '/logout', reasonCodeId ? {reason_code_id: reasonCodeId} : undefined);
    st.signingOut = false;
    el.signoutBtn.disabled = false;
    if (r.status >= 400 && r.status !== 401) {
      showError('Sign-out failed: ' + errText(r.body, r.status));
      renderAgent();
      return;
    }
    signedOut(null);
  }

  // The session is over in this tab (and, via localStorage, in the others).
  function signedOut(message) {
    closeEvents();
    const old = st.token;
    st.token = null;
    st.signedInSeen = false;
    st.agent = null;
    st.dialogs.clear();
    st.connected.clear();
    st.notReadyCodes = st.logoutCodes = st.wrapupReasons = null;
    // another tab may have signed in meanwhile: keep its token
    if (!old || lsGet(LS_TOKEN) === old) lsDel(LS_TOKEN);
    lsDel(LS_WRAPUP);
    if (old) store.post({type: 'signed-out', token: old});
    if (message) showError(message);
    render();
  }

  // The other tabs of this origin (BroadcastChannel): a new tab asks for
  // the token (storage may be blocked), sign-in and sign-out spread.
  store.onMessage((m) => {
    if (m.type === 'token?' && st.token) {
      store.post({type: 'token', token: st.token});
    } else if ((m.type === 'token' || m.type === 'signed-in') && typeof m.token === 'string' &&
               m.token && m.token !== st.token && (!st.token || m.type === 'signed-in')) {
      if (st.peerWait) st.peerWait(m.token);
      else attach(m.token, null);
    } else if (m.type === 'signed-out' && m.token && m.token === st.token) {
      signedOut(null);
    }
  });

  function askPeers() {
    return new Promise((resolve) => {
      const done = (t) => { st.peerWait = null; resolve(t); };
      st.peerWait = done;
      setTimeout(() => { if (st.peerWait === done) done(null); }, PEER_WAIT_MS);
      store.post({type: 'token?'});
    });
  }

  window.addEventListener('storage', (ev) => {
    if (ev.key !== LS_TOKEN && ev.key !== null) return;
    const t = lsGet(LS_TOKEN);
    if (!t && st.token) {
      signedOut(null);
    } else if (t && t !== st.token) {
      attach(t, null); // another tab signed in
    }
  });

  // ---------------------------------------------------------------- SSE

  function attach(token, agent) {
    closeEvents();
    st.token = token;
    st.stream = null;
    st.lastEventId = 0;
    st.esRetry = 0;
    st.signedInSeen = false;
    st.agent = agent && agent.state ? agent : null;
    st.dialogs.clear();
    render();
    openEvents();
    loadLists();
  }

  function closeEvents() {
    st.esGen += 1; // a stream still being opened is dropped
    if (st.es) { st.es.close(); st.es = null; }
    if (st.esTimer) { clearTimeout(st.esTimer); st.esTimer = null; }
  }

  // Every connection, and every reconnection, starts with a ticket: the
  // page reconnects itself (EventSource's own retry would present the
  // spent ticket again) and says where to resume.
  async function openEvents() {
    if (!st.token) return;
    const gen = ++st.esGen;
    const token = st.token;
    const r = await api('POST', '/events/ticket');
    if (gen !== st.esGen || token !== st.token) return; // signed out, or re-attached
    if (r.status !== 200 || !r.body || typeof r.body.ticket !== 'string') {
      // a 401 has signed this tab out (api()); anything else: try again
      setStatus('Connection lost; retrying…');
      retryEvents(token);
      return;
    }
    let url = API + '/events?ticket=' + encodeURIComponent(r.body.ticket);
    if (st.lastEventId > 0) url += '&last_event_id=' + st.lastEventId;
    const es = new EventSource(url);
    st.es = es;
    // numbered events are where a later stream resumes
    const on = (type, fn) => es.addEventListener(type, (ev) => {
      const n = Number(ev.lastEventId);
      if (es === st.es && Number.isSafeInteger(n) && n > st.lastEventId) st.lastEventId = n;
      fn(ev);
    });
    // every connection (and every reconnection) is a new stream with its
    // own id: the pops it carries are claimed with that id
    on('stream', (ev) => {
      const m = parse(ev);
      if (!m || !m.stream || es !== st.es) return;
      es.streamId = m.stream;
      st.stream = m.stream;
      reportFocus(true);
    });
    es.addEventListener('open', () => {
      st.esRetry = 0;
      renderStatus();
    });
    // a snapshot (first stream, or a resume the server could not replay:
    // a restart, or away too long) names the live calls; a call that ended
    // while this tab was away is dropped here, or it would linger
    on('snapshot', (ev) => onSnapshot(parse(ev)));
    on('agent', (ev) => onAgent(parse(ev)));
    on('dialog', (ev) => onDialog(parse(ev)));
    es.addEventListener('error', (ev) => {
      if (ev.data) onServerError(parse(ev)); // an `error` event from the server
      else onStreamError(es);
    });
    on('pop', (ev) => onPopOffer(parse(ev), es.streamId));
  }

  function parse(ev) {
    try { return JSON.parse(ev.data); } catch (e) { return null; }
  }

  // The stream dropped or was refused: this EventSource would retry with
  // its spent ticket, so it is closed and a new one opened with a new
  // ticket (whose POST says whether the session is still there).
  function onStreamError(es) {
    if (es !== st.es) return;
    es.close();
    st.es = null;
    setStatus('Reconnecting…');
    retryEvents(st.token);
  }

  function retryEvents(token) {
    const gen = st.esGen;
    if (st.esTimer) clearTimeout(st.esTimer);
    st.esTimer = setTimeout(() => {
      st.esTimer = null;
      if (st.token === token && !st.es && gen === st.esGen) openEvents();
    }, 500 * Math.pow(2, st.esRetry));
    st.esRetry = Math.min(st.esRetry + 1, 5);
  }

  function onServerError(e) {
    if (!e) return;
    const what = e.request_id ? st.pendingReqs.get(e.request_id) : null;
    if (e.request_id && !what) return; // another tab's request
    if (e.request_id) st.pendingReqs.delete(e.request_id);
    showError((what ? what + ' failed: ' : '') + (e.detail || e.error || 'error'));
  }

  function trackRequest(r, what) {
    if (r.body && r.body.request_id) {
      const id = r.body.request_id;
      st.pendingReqs.set(id, what);
      setTimeout(() => st.pendingReqs.delete(id), 60000);
    }
  }

  function onAgent(a) {
    if (!a) return;
    const prev = st.agent || {};
    st.agent = Object.assign({}, a);
    if (a.state === 'LOGOUT') {
      // right after a sign-in Finesse still says LOGOUT until its LOGIN
      // lands; a LOGOUT after a signed-in state is the end of the session
      if (st.signedInSeen) {
        signedOut(st.signingOut ? null : 'You are signed out.');
      } else if (!st.logoutTimer) {
        const token = st.token;
        st.logoutTimer = setTimeout(() => {
          st.logoutTimer = null;
          if (st.token === token && st.agent && st.agent.state === 'LOGOUT') {
            signedOut('Finesse did not sign you in. Please sign in again.');
          }
        }, 15000);
        render();
      }
      return;
    }
    st.signedInSeen = true;
    if (!isWrapState(a.state)) lsDel(LS_WRAPUP);
    render();
  }

  function isWrapState(s) { return s === 'WORK' || s === 'WORK_READY'; }

  function myPart(d) {
    const parts = d.participants || [];
    const ext = st.agent && st.agent.extension;
    let p = ext ? parts.find((x) => x.address === ext) : null;
    if (!p) p = parts.find((x) => Array.isArray(x.actions) && x.actions.length);
    return p || null;
  }

  function ended(d) {
    if (d.state === 'DROPPED' || d.state === 'FAILED') return true;
    const me = myPart(d);
    return !!(me && (me.state === 'DROPPED' || me.state === 'FAILED' || me.state === 'WRAP_UP'));
  }

  function onSnapshot(snap) {
    const live = new Set((snap && snap.dialogs) || []);
    for (const id of Array.from(st.dialogs.keys())) {
      if (!live.has(id)) st.dialogs.delete(id);
    }
    render();
  }

  function onDialog(d) {
    if (!d || !d.id) return;
    const me = myPart(d);
    if (me && (me.state === 'ACTIVE' || me.state === 'HELD')) st.connected.add(d.id);
    if (ended(d)) {
      st.dialogs.delete(d.id);
      if (st.connected.has(d.id) || (me && me.state === 'WRAP_UP')) {
        lsSet(LS_WRAPUP, JSON.stringify({id: d.id, from: d.from, to: d.to}));
      }
      st.connected.delete(d.id);
      render();
      return;
    }
    st.dialogs.set(d.id, d);
    if (me && me.state === 'ALERTING' && d.state === 'ALERTING' && !st.alerted.has(d.id)) {
      st.alerted.add(d.id);
      ctiCall('setSoftphonePanelVisibility', {visible: true});
    }
    render();
  }

  async function loadLists() {
    const token = st.token;
    const [nr, lo, wr] = await Promise.all([
      api('GET', '/reason-codes?category=NOT_READY'),
      api('GET', '/reason-codes?category=LOGOUT'),
      api('GET', '/wrapup-reasons'),
    ]);
    if (token !== st.token) return;
    st.notReadyCodes = nr.status === 200 && nr.body ? nr.body.reason_codes || [] : [];
    st.logoutCodes = lo.status === 200 && lo.body ? lo.body.reason_codes || [] : [];
    st.wrapupReasons = wr.status === 200 && wr.body ? wr.body.wrapup_reasons || [] : [];
    renderAgent();
    renderWrapup();
  }

  // ------------------------------------------------------------ render

  const STATE_TEXT = {
    READY: 'Ready', NOT_READY: 'Not Ready', TALKING: 'Talking', RESERVED: 'Reserved',
    HOLD: 'On hold', WORK: 'Wrap-up', WORK_READY: 'Wrap-up (then Ready)', LOGOUT: 'Signing in…',
    LOGIN: 'Signing in', UNKNOWN: 'Unknown',
  };

  function stateText(a) {
    if (!a) return 'Signed out';
    const base = STATE_TEXT[a.state] || a.state || 'Unknown';
    if (a.state === 'NOT_READY') {
      const label = reasonLabel(a.reason_code_id) || a.reason_label;
      if (label) return 'Not Ready — ' + label;
    }
    return base;
  }

  function reasonLabel(id) {
    if (!id || !st.notReadyCodes) return null;
    const c = st.notReadyCodes.find((x) => String(x.id) === String(id));
    return c ? c.label : null;
  }

  function render() {
    const signedIn = !!st.token;
    el.app.setAttribute('aria-busy', 'false');
    el.signin.hidden = signedIn;
    el.agent.hidden = !signedIn;
    el.dialpad.hidden = !signedIn;
    el.calls.hidden = !signedIn;
    if (!signedIn) {
      const saved = savedAgent();
      if (!el.agentId.value && saved.id) el.agentId.value = saved.id;
      if (!el.extension.value && saved.extension) el.extension.value = saved.extension;
      el.ssoBtn.hidden = !(st.config && st.config.sso_login_url);
      renderCalls();
      renderWrapup();
    } else {
      renderAgent();
      renderCalls();
      renderWrapup();
    }
    renderStatus();
    renderStorageNote();
    updateUtility();
  }

  function renderStatus() {
    if (!st.config) return;
    if (!st.token) { setStatus('Signed out'); return; }
    if (!st.agent) { setStatus('Connecting…'); return; }
    if (st.agent.state === 'LOGOUT') { setStatus('Signing in…'); return; }
    const u = utilityState();
    setStatus(u.text);
  }

  // The state shown in Salesforce's utility bar and in our status line.
  function utilityState() {
    if (!st.token || !st.agent) return {text: 'Signed out', icon: 'offline'};
    const live = Array.from(st.dialogs.values());
    const parts = live.map(myPart).filter(Boolean);
    if (parts.some((p) => p.state === 'ALERTING')) return {text: 'Ringing', icon: 'call'};
    if (parts.some((p) => p.state === 'ACTIVE')) return {text: 'On call', icon: 'call'};
    if (parts.some((p) => p.state === 'HELD')) return {text: 'On hold', icon: 'call'};
    if (parts.some((p) => p.state === 'INITIATED' || p.state === 'INITIATING')) {
      return {text: 'Dialling', icon: 'call'};
    }
    const a = st.agent;
    if (a.state === 'READY') return {text: 'Ready', icon: 'end_call'};
    if (a.state === 'NOT_READY') return {text: stateText(a), icon: 'away'};
    if (isWrapState(a.state)) return {text: 'Wrap-up', icon: 'away'};
    return {text: stateText(a), icon: 'away'};
  }

  function updateUtility() {
    if (!opencti()) return;
    const u = utilityState();
    if (u.text !== st.utility.label) {
      st.utility.label = u.text;
      ctiCall('setSoftphoneItemLabel', {label: u.text});
    }
    if (u.icon !== st.utility.icon) {
      st.utility.icon = u.icon;
      ctiCall('setSoftphoneItemIcon', {key: u.icon});
    }
  }

  function option(value, text, opts) {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = text;
    if (opts && opts.disabled) o.disabled = true;
    return o;
  }

  const SELECTABLE = new Set(['READY', 'NOT_READY']);

  function renderAgent() {
    if (!st.token) return;
    const a = st.agent;
    const saved = savedAgent();
    const name = a && (a.first_name || a.last_name)
      ? ((a.first_name || '') + ' ' + (a.last_name || '')).trim() : '';
    const id = (a && a.id) || saved.id || '';
    const ext = (a && a.extension) || saved.extension || '';
    el.agentName.textContent = (name ? name + ' · ' : '') + (id ? 'Agent ' + id : '') +
      (ext ? ' · Extension ' + ext : '');

    if (st.stateEditing) return; // the agent is choosing with the keyboard
    const opts = [];
    let current = '';
    if (!a) {
      opts.push(option('', 'Connecting…', {disabled: true}));
    } else {
      if (!SELECTABLE.has(a.state)) {
        opts.push(option('CURRENT', stateText(a), {disabled: true}));
        current = 'CURRENT';
      }
      opts.push(option('READY', 'Ready'));
      opts.push(option('NOT_READY', 'Not Ready'));
      for (const c of st.notReadyCodes || []) {
        opts.push(option('NOT_READY:' + c.id, 'Not Ready — ' + c.label));
      }
      for (const c of st.logoutCodes || []) {
        opts.push(option('LOGOUT:' + c.id, 'Sign out — ' + c.label));
      }
      if (a.state === 'READY') current = 'READY';
      if (a.state === 'NOT_READY') {
        current = a.reason_code_id && opts.some((o) => o.value === 'NOT_READY:' + a.reason_code_id)
          ? 'NOT_READY:' + a.reason_code_id : 'NOT_READY';
        if (a.reason_code_id && current === 'NOT_READY' && a.reason_label) {
          opts.push(option('NOT_READY:' + a.reason_code_id, 'Not Ready — ' + a.reason_label));
          current = 'NOT_READY:' + a.reason_code_id;
        }
      }
    }
    const sig = opts.map((o) => o.value + '\u0001' + o.textContent + (o.disabled ? '!' : '')).join('\u0002');
    if (sig !== st.stateSig) {
      st.stateSig = sig;
      el.state.replaceChildren(...opts);
    }
    el.state.value = current;
    el.state.disabled = !a;
    const pend = a && a.pending_state && a.pending_state !== a.state ? a.pending_state : '';
    el.pending.hidden = !pend;
    el.pending.textContent = pend ? 'After this call: ' + (STATE_TEXT[pend] || pend) : '';
  }

  // A closed <select> changes value on arrow keys; with the keyboard the
  // choice is committed by Enter or by leaving the field, so browsing the
  // list does not send a state change per key press.
  let stateKeyNav = false;
  el.state.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      if (st.stateEditing) { ev.preventDefault(); commitState(); }
      return;
    }
    if (ev.key === 'Escape' && st.stateEditing) {
      st.stateEditing = false;
      renderAgent();
      return;
    }
    stateKeyNav = ev.key.length === 1 || /^(Arrow|Page|Home|End)/.test(ev.key);
  });
  el.state.addEventListener('change', () => {
    if (stateKeyNav) { st.stateEditing = true; stateKeyNav = false; return; }
    commitState();
  });
  el.state.addEventListener('blur', () => { if (st.stateEditing) commitState(); });
  el.state.addEventListener('pointerdown', () => { stateKeyNav = false; });

  async function commitState() {
    st.stateEditing = false;
    const v = el.state.value;
    if (!v || v === 'CURRENT') return;
    clearError();
    if (v.startsWith('LOGOUT:')) {
      await signOut(v.slice(7));
      return;
    }
    const [state, reason] = v.split(':');
    const body = {state};
    if (reason) body.reason_code_id = reason;
    const r = await api('POST', '/state', body);
    if (r.status >= 400) {
      showError('Could not change state: ' + errText(r.body, r.status));
    } else {
      trackRequest(r, 'State change');
    }
    renderAgent();
  }

  // ----------------------------------------------------------- calls UI

  const ACTIONS = [
    // [Finesse action(s), button name, handler]
    {fin: ['ANSWER'], name: 'Answer', primary: true, run: (d) => act(d, 'answer', 'Answer')},
    {fin: ['HOLD'], name: 'Hold', run: (d) => act(d, 'hold', 'Hold')},
    {fin: ['RETRIEVE'], name: 'Resume', primary: true, run: (d) => act(d, 'retrieve', 'Resume')},
    {fin: ['CONSULT_CALL'], name: 'Consult', prompt: 'consult'},
    {fin: ['TRANSFER', 'TRANSFER_SST'], name: 'Transfer', run: (d, v) => {
      if (hasAction(d, 'TRANSFER')) return act(d, 'transfer', 'Transfer');
      return openPrompt(v, d, 'transfer_sst');
    }},
    {fin: ['CONFERENCE'], name: 'Conference', run: (d) => act(d, 'conference', 'Conference')},
    {fin: ['SEND_DTMF'], name: 'Keypad', keypad: true},
    {fin: ['DROP'], name: 'End', danger: true, run: (d) => act(d, 'drop', 'End')},
  ];
  const PROMPTS = {
    consult: {label: 'Consult number', ok: 'Call', what: 'Consult', action: 'consult'},
    transfer_sst: {label: 'Transfer to number', ok: 'Transfer now', what: 'Transfer',
      action: 'transfer_sst'},
  };

  function hasAction(d, a) {
    const me = myPart(d);
    return !!(me && Array.isArray(me.actions) && me.actions.indexOf(a) >= 0);
  }

  const views = new Map(); // dialog id -> view

  async function act(d, action, what, extra) {
    clearError();
    const body = Object.assign({action}, extra || {});
    const r = await api('POST', '/calls/' + encodeURIComponent(d.id) + '/actions', body);
    if (r.status >= 400 || r.status === 0) {
      showError(what + ' failed: ' + errText(r.body, r.status));
      return false;
    }
    trackRequest(r, what);
    return true;
  }

  function newView(d) {
    const root = el.tpl.content.firstElementChild.cloneNode(true);
    const uid = 'call-' + String(d.id).replace(/[^a-zA-Z0-9_-]/g, '_');
    root.id = uid;
    const v = {
      id: d.id, root, uid,
      title: root.querySelector('.call-title'),
      state: root.querySelector('.call-state'),
      caller: root.querySelector('.caller'),
      to: root.querySelector('.to'),
      dnis: root.querySelector('.dnis'),
      queue: root.querySelector('.queue'),
      varsBox: root.querySelector('.vars'),
      vars: root.querySelector('.vars-list'),
      actions: root.querySelector('.actions'),
      prompt: root.querySelector('.prompt'),
      promptLabel: root.querySelector('.prompt-label'),
      promptInput: root.querySelector('.prompt-input'),
      promptOk: root.querySelector('.prompt-ok'),
      promptCancel: root.querySelector('.prompt-cancel'),
      keypad: root.querySelector('.keypad'),
      keys: root.querySelector('.keys'),
      keypadSent: root.querySelector('.keypad-sent'),
      buttons: new Map(),
      promptKind: null,
      d,
    };
    v.title.id = uid + '-title';
    root.setAttribute('aria-labelledby', v.title.id);
    // "Caller" etc.: each value is named by its term
    for (const fact of root.querySelectorAll('.fact')) {
      const dt = fact.querySelector('dt');
      const dd = fact.querySelector('dd');
      dt.id = uid + '-' + fact.classList[1];
      dd.setAttribute('aria-labelledby', dt.id);
    }
    v.promptInput.id = uid + '-prompt';
    v.promptLabel.htmlFor = v.promptInput.id;
    v.keypad.id = uid + '-keypad';
    v.keypad.setAttribute('aria-label', 'Keypad');
    for (const k of ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#']) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'key';
      b.textContent = k;
      b.setAttribute('aria-label', 'Digit ' + (k === '*' ? 'star' : k === '#' ? 'pound' : k));
      b.addEventListener('click', async () => {
        if (await act(v.d, 'dtmf', 'Keypad', {digits: k})) {
          v.keypadSent.textContent = (v.keypadSent.dataset.sent || '') + k;
          v.keypadSent.dataset.sent = v.keypadSent.textContent;
        }
      });
      v.keys.appendChild(b);
    }
    v.prompt.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const p = PROMPTS[v.promptKind];
      const to = normalizeNumber(v.promptInput.value);
      if (!p) return;
      if (!to || to === '+') {
        v.promptInput.setAttribute('aria-invalid', 'true');
        showError('Please enter a number.');
        v.promptInput.focus();
        return;
      }
      v.promptOk.disabled = true;
      const ok = await act(v.d, p.action, p.what, {to});
      v.promptOk.disabled = false;
      if (ok) closePrompt(v, true);
    });
    v.promptCancel.addEventListener('click', () => closePrompt(v, true));
    v.prompt.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') { ev.preventDefault(); closePrompt(v, true); }
    });
    return v;
  }

  function openPrompt(v, d, kind) {
    const p = PROMPTS[kind];
    v.promptKind = kind;
    v.promptLabel.textContent = p.label;
    v.promptOk.textContent = p.ok;
    v.promptInput.value = '';
    v.promptInput.removeAttribute('aria-invalid');
    v.prompt.hidden = false;
    v.promptInput.focus();
  }

  function closePrompt(v, refocus) {
    const kind = v.promptKind;
    v.prompt.hidden = true;
    v.promptKind = null;
    if (refocus) {
      const name = kind === 'consult' ? 'Consult' : 'Transfer';
      const b = v.buttons.get(name);
      if (b && b.isConnected) b.focus();
    }
  }

  function button(v, spec) {
    let b = v.buttons.get(spec.name);
    if (b) return b;
    b = document.createElement('button');
    b.type = 'button';
    b.textContent = spec.name;
    if (spec.primary) b.classList.add('primary');
    if (spec.danger) b.classList.add('danger');
    b.addEventListener('click', async () => {
      const d = v.d;
      if (spec.keypad) {
        const open = v.keypad.hidden;
        v.keypad.hidden = !open;
        b.setAttribute('aria-expanded', String(open));
        if (open) v.keys.firstElementChild.focus();
        return;
      }
      if (spec.prompt) { openPrompt(v, d, spec.prompt); return; }
      b.disabled = true;
      try { await spec.run(d, v); } finally { b.disabled = false; }
    });
    if (spec.keypad) {
      b.setAttribute('aria-expanded', 'false');
      b.setAttribute('aria-controls', v.keypad.id);
    }
    v.buttons.set(spec.name, b);
    return b;
  }

  // Put exactly `nodes` in `box`, in order, moving as little as possible
  // (a moved element loses keyboard focus).
  function syncChildren(box, nodes) {
    const want = new Set(nodes);
    for (const c of Array.from(box.children)) if (!want.has(c)) c.remove();
    nodes.forEach((n, i) => {
      if (box.children[i] !== n) box.insertBefore(n, box.children[i] || null);
    });
  }

  function callTitle(d, me) {
    const ct = d.call_type || '';
    if (ct === 'CONSULT') return me && me.state === 'ALERTING' ? 'Incoming consult call' : 'Consult call';
    if (me && me.state === 'ALERTING') return 'Incoming call';
    if (ct === 'OUT' || ct === 'AGENT_INSIDE' || outbound(d)) return 'Outbound call';
    if (ct === 'CONFERENCE') return 'Conference';
    return 'Call';
  }

  function outbound(d) {
    const ext = st.agent && st.agent.extension;
    return !!(ext && d.from === ext);
  }

  const PART_TEXT = {ALERTING: 'Ringing', ACTIVE: 'Connected', HELD: 'On hold',
    INITIATED: 'Dialling', INITIATING: 'Dialling', FAILED: 'Failed', DROPPED: 'Ended'};

  function fill(dd, text) {
    const box = dd.parentElement;
    box.hidden = !text;
    if (dd.textContent !== (text || '')) dd.textContent = text || '';
  }

  function renderVars(v, d) {
    const entries = [];
    const cv = d.callvariables || {};
    const ecc = d.ecc || {};
    const keys = Object.keys(cv).sort((a, b) => a.localeCompare(b, 'en', {numeric: true}));
    for (const k of keys) if (cv[k] !== '') entries.push([k, cv[k]]);
    for (const k of Object.keys(ecc).sort()) {
      if (ecc[k] !== '') entries.push([k.replace(/^user\./, ''), ecc[k]]);
    }
    const sig = JSON.stringify(entries);
    if (sig === v.varsSig) return;
    v.varsSig = sig;
    const nodes = [];
    for (const [k, val] of entries) {
      const wrap = document.createElement('div');
      wrap.className = 'fact';
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = val;
      wrap.append(dt, dd);
      nodes.push(wrap);
    }
    v.vars.replaceChildren(...nodes);
    v.varsBox.hidden = entries.length === 0;
    if (entries.length && !v.varsOpened) {
      v.varsBox.open = true; // call data is what the agent needs first
      v.varsOpened = true;
    }
  }

  function renderCalls() {
    const focused = document.activeElement;
    const live = st.token ? Array.from(st.dialogs.values()) : [];
    // ringing first, then the rest by id (stable)
    live.sort((a, b) => {
      const ra = (myPart(a) || {}).state === 'ALERTING' ? 0 : 1;
      const rb = (myPart(b) || {}).state === 'ALERTING' ? 0 : 1;
      return ra - rb || String(a.id).localeCompare(String(b.id), 'en', {numeric: true});
    });
    const roots = [];
    for (const d of live) {
      let v = views.get(d.id);
      if (!v) { v = newView(d); views.set(d.id, v); }
      v.d = d;
      const me = myPart(d);
      const title = callTitle(d, me);
      if (v.title.textContent !== title) v.title.textContent = title;
      v.state.textContent = me ? (PART_TEXT[me.state] || me.state) : (d.state || '');
      const out = outbound(d);
      fill(v.caller, out ? '' : d.from);
      fill(v.to, out ? d.to : '');
      fill(v.dnis, d.dnis);
      fill(v.queue, d.queue);
      renderVars(v, d);
      const acts = me && Array.isArray(me.actions) ? me.actions : [];
      const btns = ACTIONS.filter((a) => a.fin.some((f) => acts.indexOf(f) >= 0)).map((a) => button(v, a));
      syncChildren(v.actions, btns);
      if (!acts.includes('SEND_DTMF') && !v.keypad.hidden) {
        v.keypad.hidden = true;
      }
      if (v.promptKind === 'consult' && !acts.includes('CONSULT_CALL')) closePrompt(v, false);
      if (v.promptKind === 'transfer_sst' && !acts.includes('TRANSFER_SST')) closePrompt(v, false);
      roots.push(v.root);
    }
    for (const [id, v] of views) {
      if (!st.dialogs.has(id) || !st.token) views.delete(id);
      else if (!roots.includes(v.root)) views.delete(id);
    }
    syncChildren(el.calls, roots);
    // the focused control went away (e.g. Answer once answered): keep the
    // keyboard user in the call panel
    if (focused && focused !== document.body && !focused.isConnected) {
      const first = el.calls.querySelector('.actions button') || el.dialNumber;
      if (first && !first.closest('[hidden]')) first.focus();
    }
  }

  // ----------------------------------------------------------- wrap-up

  function renderWrapup() {
    const a = st.agent;
    const w = lsJson(LS_WRAPUP, null);
    const show = !!(st.token && a && isWrapState(a.state) && w && w.id && !st.dialogs.has(w.id));
    if (show) {
      el.wrapupCall.textContent = 'Call ' + (w.from ? 'from ' + w.from : '') +
        (w.from && w.to ? ' to ' + w.to : (w.to ? 'to ' + w.to : ''));
      const reasons = st.wrapupReasons || [];
      const sig = JSON.stringify(reasons);
      if (sig !== st.wrapupSig) {
        st.wrapupSig = sig;
        const keep = el.wrapupReason.value;
        el.wrapupReason.replaceChildren(option('', 'Choose a reason'),
          ...reasons.map((r) => option(r.label, r.label)));
        if (keep) el.wrapupReason.value = keep;
      }
    }
    const wasHidden = el.wrapup.hidden;
    el.wrapup.hidden = !show;
    if (show && wasHidden && (!document.activeElement || document.activeElement === document.body ||
        !document.activeElement.isConnected)) {
      el.wrapupReason.focus();
    }
  }

  el.wrapupBtn.addEventListener('click', async () => {
    const w = lsJson(LS_WRAPUP, null);
    if (!w || !w.id) return;
    const reason = el.wrapupReason.value;
    clearError();
    el.wrapupBtn.disabled = true;
    try {
      if (reason) {
        const r = await api('POST', '/calls/' + encodeURIComponent(w.id) + '/wrapup', {reason});
        if (r.status >= 400 || r.status === 0) {
          showError('Wrap-up failed: ' + errText(r.body, r.status));
          return;
        }
        trackRequest(r, 'Wrap-up');
      }
      // leaving WORK ends wrap-up: Ready if that was the plan, else Not Ready
      const next = st.agent && st.agent.state === 'WORK_READY' ? 'READY' : 'NOT_READY';
      const r2 = await api('POST', '/state', {state: next});
      if (r2.status >= 400) {
        showError('Could not end wrap-up: ' + errText(r2.body, r2.status));
        return;
      }
      trackRequest(r2, 'State change');
      lsDel(LS_WRAPUP);
      el.wrapupReason.value = '';
      renderWrapup();
      el.state.focus();
    } finally {
      el.wrapupBtn.disabled = false;
    }
  });

  // -------------------------------------------------------------- dial

  el.dialForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const to = normalizeNumber(el.dialNumber.value);
    if (!to || to === '+') {
      el.dialNumber.setAttribute('aria-invalid', 'true');
      showError('Please enter a number to dial.');
      el.dialNumber.focus();
      return;
    }
    el.dialNumber.removeAttribute('aria-invalid');
    placeCall(to, st.nav);
  });

  async function placeCall(to, rec) {
    clearError();
    el.dialBtn.disabled = true;
    const r = await api('POST', '/calls', {to});
    el.dialBtn.disabled = false;
    if (r.status >= 400 || r.status === 0) {
      showError('Call to ' + to + ' failed: ' + errText(r.body, r.status));
      return;
    }
    trackRequest(r, 'Call to ' + to);
    el.dialNumber.value = '';
    if (rec && r.body && r.body.dialog_id) attachContext(r.body.dialog_id, rec);
  }

  // -------------------------------------------------------------- boot

  async function boot() {
    let cfg = null;
    for (let i = 0; i < 5 && !cfg; i++) {
      const r = await api('GET', '/config', undefined, {noAuth: true});
      if (r.status === 200 && r.body) cfg = r.body;
      else await new Promise((res) => setTimeout(res, 500 * (i + 1)));
    }
    st.config = cfg || {org_origins: [], opencti_version: '60.0'};
    if (!cfg) showError('The connector cannot be reached.');
    loadOpenCti();
    // where the token may be: this origin's storage; cookies the browser
    // granted this frame before; another open tab
    let token = lsGet(LS_TOKEN);
    if (!token && await store.resumeGrant()) token = lsGet(LS_TOKEN);
    if (!token) token = await askPeers();
    if (token && !st.token) {
      attach(token, null);
    } else if (!st.token) {
      render();
    }
  }

  boot();
})();
