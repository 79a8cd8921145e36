/* SPDX-License-Identifier: AGPL-3.0-or-later
 * sf-sim host page: plays the Lightning side of Open CTI for the framed softphone.
 * Receives the stand-in's postMessages, has sf-sim (same origin) record and
 * answer them (POST /sim/opencti), posts the response back into the frame,
 * renders the "open record", and delivers onClickToDial / onNavigationChange.
 * Commands from the control API (POST /sim/view, /sim/click) arrive by long poll.
 */
(function () {
  'use strict';
  var C = __CONFIG__;
  var frame = document.getElementById('softphone');
  var frameOrigin = new URL(C.frameSrc).origin;
  var apiVersion = 60;
  var listeners = {};
  var c2d = false;
  var view = C.view;
  var seq = C.seq;
  var chain = Promise.resolve();

  function sim(body) {
    return fetch('/sim/opencti', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body) }).then(function (r) { return r.json(); });
  }
  function enqueue(fn) {
    chain = chain.then(fn).catch(function (e) { console.error('sf-sim host:', e); });
    return chain;
  }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function dialButton(number, rec) {
    var b = el('button', { type: 'button', 'class': 'sim-click-to-dial', 'data-number': number,
      'aria-label': 'Call ' + number }, number);
    if (rec && rec.recordId) {
      b.setAttribute('data-record-id', rec.recordId);
      b.setAttribute('data-record-name', rec.recordName || '');
      b.setAttribute('data-object-type', rec.objectType || '');
    }
    return b;
  }
  function navPayload(v) {
    if (!v) { return { url: C.uiOrigin + '/lightning/page/home' }; }
    var out = {};
    ['url', 'recordId', 'recordName', 'objectType'].forEach(function (k) {
      if (v[k] !== undefined && v[k] !== null) { out[k] = v[k]; }
    });
    return out;
  }

  function render() {
    var box = document.getElementById('record');
    box.textContent = '';
    box.className = 'card' + (view && view.modal ? ' modal' : '');
    box.setAttribute('data-record-id', (view && view.recordId) || '');
    box.setAttribute('data-url', navPayload(view).url);
    if (!view) {
      box.appendChild(el('h1', {}, 'Home'));
      return;
    }
    if (view.modal) {
      box.appendChild(el('h1', {}, 'New ' + view.modal.entityName));
      var dl = el('dl', { 'aria-label': 'Default field values' });
      Object.keys(view.modal.defaultFieldValues || {}).forEach(function (k) {
        dl.appendChild(el('dt', {}, k));
        dl.appendChild(el('dd', {}, view.modal.defaultFieldValues[k]));
      });
      box.appendChild(dl);
      return;
    }
    if (view.search) {
      box.appendChild(el('h1', {}, 'Search results for "' + view.search + '"'));
      return;
    }
    box.appendChild(el('h1', {}, view.recordName || view.url));
    if (view.objectType) { box.appendChild(el('p', { 'class': 'object-type' }, view.objectType)); }
    (view.phones || []).forEach(function (p) {
      var row = el('p', {}, p.field + ': ');
      row.appendChild(dialButton(p.number, view));
      box.appendChild(row);
    });
  }

  function renderRecords() {
    var box = document.getElementById('records');
    box.appendChild(el('h2', {}, 'Recent records'));
    var t = el('table', {});
    C.records.forEach(function (r) {
      var tr = el('tr', {});
      var td = el('td', {});
      var open = el('a', { href: r.url, 'data-open-record': r.recordId }, r.recordName);
      td.appendChild(open);
      tr.appendChild(td);
      tr.appendChild(el('td', {}, r.objectType));
      var ph = el('td', {});
      r.phones.forEach(function (p) { ph.appendChild(dialButton(p.number, r)); ph.appendChild(el('span', {}, ' ')); });
      tr.appendChild(ph);
      t.appendChild(tr);
    });
    box.appendChild(t);
  }

  function applyUi(ui) {
    var panel = document.getElementById('softphone-panel');
    if ('visible' in ui) { panel.setAttribute('data-visible', ui.visible ? 'true' : 'false'); }
    if ('label' in ui) {
      document.getElementById('utility-label').textContent = ui.label;
      document.getElementById('utility-item').setAttribute('aria-label', ui.label);
    }
    if ('icon' in ui) { document.getElementById('utility-icon').textContent = '[' + ui.icon + ']'; }
    if ('panelLabel' in ui) { document.getElementById('panel-label').textContent = ui.panelLabel; }
    if ('heightPX' in ui) { panel.style.height = ui.heightPX + 'px'; }
    if ('widthPX' in ui) { panel.style.width = ui.widthPX + 'px'; }
  }

  function deliver(method, payload) {
    var delivered = !!listeners[method] && (method !== 'onClickToDial' || c2d);
    if (delivered && frame.contentWindow) {
      frame.contentWindow.postMessage({ apiVersion: apiVersion, apiType: 'opencti', methodName: method,
        callId: null, response: payload }, frameOrigin);
    }
    return enqueue(function () {
      return sim({ kind: 'event', tab: C.tab, method: method, payload: payload, delivered: delivered,
        frame_origin: frameOrigin });
    });
  }

  function handle(d, origin, receivedMs) {
    if (typeof d.apiVersion === 'number') { apiVersion = d.apiVersion; }
    frameOrigin = origin;
    if (d.methodName === '__simFrameInit') {
      listeners = {};
      c2d = false;
      return sim({ kind: 'frame', tab: C.tab, method: 'load', frame_origin: origin,
        src: d.args && d.args.href });
    }
    return sim({ kind: 'call', tab: C.tab, method: d.methodName, callId: d.callId, args: d.args,
      isCallbackRegistered: !!d.isCallbackRegistered, isListenerRegistered: !!d.isListenerRegistered,
      apiVersion: d.apiVersion, frame_origin: origin, received_ms: receivedMs }).then(function (r) {
      var resp = r.response;
      if (resp && resp.success) {
        if (d.isListenerRegistered) { listeners[d.methodName] = true; }
        if (d.methodName === 'enableClickToDial') { c2d = true; }
        if (d.methodName === 'disableClickToDial') { c2d = false; }
      }
      applyUi(r.ui || {});
      if (d.isCallbackRegistered && frame.contentWindow) {
        // asynchronous, like Salesforce: the callback never runs inside the call
        frame.contentWindow.postMessage({ apiVersion: d.apiVersion, apiType: 'opencti',
          methodName: d.methodName, callId: d.callId, response: resp }, origin);
      }
    });
  }

  window.addEventListener('message', function (ev) {
    if (ev.source !== frame.contentWindow) { return; }
    var d = ev.data;
    if (!d || d.apiType !== 'opencti' || typeof d.methodName !== 'string') { return; }
    var origin = ev.origin;
    // when the call reached "Salesforce": calls are relayed to sf-sim one at
    // a time (in order), so sf-sim's own arrival time lags behind it
    var receivedMs = Date.now();
    enqueue(function () { return handle(d, origin, receivedMs); });
  });

  function handleCmd(c) {
    if (c.type === 'view') {
      view = c.view;
      render();
      deliver('onNavigationChange', navPayload(view));
    } else if (c.type === 'click') {
      deliver('onClickToDial', c.payload);
    }
  }
  function poll() {
    fetch('/sim/ui/poll?tab=' + encodeURIComponent(C.tab) + '&since=' + seq)
      .then(function (r) { return r.json(); })
      .then(function (j) {
        j.commands.forEach(handleCmd);
        seq = j.seq;
        setTimeout(poll, 0);
      })
      .catch(function () { setTimeout(poll, 500); });
  }

  document.addEventListener('click', function (ev) {
    var t = ev.target.closest ? ev.target : ev.target.parentElement;
    var dial = t && t.closest('[data-number]');
    if (dial) {
      ev.preventDefault();
      var payload = { number: dial.getAttribute('data-number') };
      if (dial.getAttribute('data-record-id')) {
        payload.recordId = dial.getAttribute('data-record-id');
        payload.recordName = dial.getAttribute('data-record-name');
        payload.objectType = dial.getAttribute('data-object-type');
      }
      deliver('onClickToDial', payload);
      return;
    }
    var open = t && t.closest('[data-open-record]');
    if (open) {
      ev.preventDefault();
      fetch('/sim/view', { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ tab: C.tab, recordId: open.getAttribute('data-open-record'),
          source: 'user' }) });
    }
  });
  // Lightning fires onNavigationChange when the tab/window regains focus.
  window.addEventListener('focus', function () { deliver('onNavigationChange', navPayload(view)); });

  applyUi({ visible: C.visible, label: C.label, icon: C.icon });
  render();
  renderRecords();
  frame.src = C.frameSrc;
  poll();
  window.sfSim = { tab: C.tab, deliver: deliver,
    state: function () { return { listeners: Object.keys(listeners), clickToDial: c2d, view: view }; } };
})();
