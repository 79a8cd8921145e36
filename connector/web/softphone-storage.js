// SPDX-License-Identifier: AGPL-3.0-or-later
// softphone-storage.js - the softphone's browser storage, as an
// optimisation only (loaded before softphone.js, which uses
// window.fscStorage).
//
// In Salesforce the softphone is a cross-site frame (the page from the
// connector's site inside https://<org>.lightning.force.com). Safari by
// default, Chrome's private windows and many enterprise policies block
// third-party storage there: reading localStorage throws SecurityError,
// Web Locks requests are denied. So every access here is guarded, the
// first refusal is logged once (console.warn), and the page keeps working
// with what it has:
//   'local'  - localStorage works: the token survives a reload and is
//              shared by the agent's tabs (the `storage` event);
//   'cookie' - storage is blocked, but the Storage Access API gave this
//              frame its cookies (document.requestStorageAccess(), on a
//              user gesture, or by itself once the browser remembers the
//              grant): the token and the sign-in prefill live in a cookie
//              (Secure, SameSite=None, Path=/softphone/);
//   'memory' - neither: the token lives in this document only; a reload
//              asks to sign in again (the page says so).
// A BroadcastChannel (same origin, same top-level site: it works in a
// blocked frame too) lets a new tab ask an open one for the token, and
// spreads sign-in and sign-out; it is guarded the same way.
'use strict';

(function () {
  const COOKIE_KEYS = {'fsc.token': 'fsc_token', 'fsc.agent': 'fsc_agent'};
  const COOKIE_MAX_AGE_S = 12 * 3600; // a shift; sign-out deletes it

  const s = {mode: 'local', warned: false, mem: new Map(), channel: null, listeners: []};

  // Logged once per page: the agent's console is not a place for a
  // warning per call.
  function refused(what, e) {
    if (s.warned) return;
    s.warned = true;
    console.warn('fsc softphone: the browser refused ' + what + ' (' +
      ((e && (e.name || e.message)) || String(e)) + '): third-party storage is blocked for ' +
      'this frame; the session is kept in memory, or in cookies the browser grants ' +
      '(see "Agents\' browsers" in the connector README)');
  }

  function probeLocal() {
    try {
      const ls = window.localStorage;
      ls.setItem('fsc.probe', '1');
      ls.removeItem('fsc.probe');
      return true;
    } catch (e) {
      refused('localStorage', e);
      return false;
    }
  }

  function cookieGet(name) {
    try {
      for (const part of document.cookie.split(';')) {
        const eq = part.indexOf('=');
        if (eq > 0 && part.slice(0, eq).trim() === name) {
          return decodeURIComponent(part.slice(eq + 1).trim());
        }
      }
    } catch (e) {
      refused('cookies', e);
    }
    return null;
  }

  function cookieSet(name, value) {
    const attrs = '; Path=/softphone/; Secure; SameSite=None';
    try {
      document.cookie = value === null
        ? name + '=' + attrs + '; Max-Age=0'
        : name + '=' + encodeURIComponent(value) + attrs + '; Max-Age=' + COOKIE_MAX_AGE_S;
    } catch (e) {
      refused('cookies', e);
    }
  }

  // Can this document write and read back a cookie (after a grant)?
  function cookiesWork() {
    cookieSet('fsc_probe', '1');
    const ok = cookieGet('fsc_probe') === '1';
    cookieSet('fsc_probe', null);
    return ok;
  }

  function get(key) {
    if (s.mode === 'local') {
      try { return window.localStorage.getItem(key); } catch (e) { refused('localStorage', e); }
    } else if (s.mode === 'cookie' && COOKIE_KEYS[key]) {
      return cookieGet(COOKIE_KEYS[key]);
    }
    return s.mem.has(key) ? s.mem.get(key) : null;
  }

  function set(key, value) {
    if (s.mode === 'local') {
      try { window.localStorage.setItem(key, value); return; } catch (e) { refused('localStorage', e); }
    } else if (s.mode === 'cookie' && COOKIE_KEYS[key]) {
      cookieSet(COOKIE_KEYS[key], value);
      return;
    }
    s.mem.set(key, value);
  }

  function del(key) {
    if (s.mode === 'local') {
      try { window.localStorage.removeItem(key); return; } catch (e) { refused('localStorage', e); }
    } else if (s.mode === 'cookie' && COOKIE_KEYS[key]) {
      cookieSet(COOKIE_KEYS[key], null);
      return;
    }
    s.mem.delete(key);
  }

  function json(key, dflt) {
    try { const v = JSON.parse(get(key)); return v == null ? dflt : v; } catch (e) { return dflt; }
  }

  // Memory -> granted cookies: what the page kept so far goes along.
  function useCookies() {
    s.mode = 'cookie';
    for (const key of Object.keys(COOKIE_KEYS)) {
      if (s.mem.has(key)) cookieSet(COOKIE_KEYS[key], s.mem.get(key));
    }
  }

  function hasStorageAccessApi() {
    return typeof document.requestStorageAccess === 'function';
  }

  // At load: a grant the browser remembers needs no gesture (Chrome,
  // Edge); ask quietly, and use the cookies if it answers yes.
  async function resumeGrant() {
    if (s.mode !== 'memory' || !hasStorageAccessApi() || !navigator.permissions) return false;
    try {
      const p = await navigator.permissions.query({name: 'storage-access'});
      if (p.state !== 'granted') return false;
      await document.requestStorageAccess();
    } catch (e) {
      return false;
    }
    if (!cookiesWork()) return false;
    useCookies();
    return true;
  }

  // On a user gesture (the "Keep me signed in" button): the browser may
  // prompt. true when the frame may now keep the session in its cookies.
  async function askAccess() {
    if (s.mode !== 'memory' || !hasStorageAccessApi()) return s.mode !== 'memory';
    try {
      await document.requestStorageAccess();
    } catch (e) {
      console.warn('fsc softphone: storage access refused (' + (e && e.name) + ')');
      return false;
    }
    if (!cookiesWork()) return false;
    useCookies();
    return true;
  }

  function post(msg) {
    if (!s.channel) return;
    try { s.channel.postMessage(msg); } catch (e) { refused('BroadcastChannel', e); }
  }

  function onMessage(fn) { s.listeners.push(fn); }

  function init() {
    s.mode = probeLocal() ? 'local' : 'memory';
    try {
      s.channel = new BroadcastChannel('fsc-softphone');
      s.channel.addEventListener('message', (ev) => {
        for (const fn of s.listeners) {
          try { fn(ev.data || {}); } catch (e) { console.warn('fsc softphone: channel', e); }
        }
      });
    } catch (e) {
      s.channel = null;
      refused('BroadcastChannel', e);
    }
  }

  init();
  window.fscStorage = {
    mode: () => s.mode, get, set, del, json, post, onMessage, resumeGrant, askAccess,
    canAskAccess: () => s.mode === 'memory' && hasStorageAccessApi(),
  };
})();
