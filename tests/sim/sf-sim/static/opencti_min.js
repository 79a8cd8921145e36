/* SPDX-License-Identifier: AGPL-3.0-or-later
 * sf-sim stand-in for Salesforce's /support/api/NN.0/lightning/opencti_min.js.
 *
 * Same wire protocol as the real library: every call is posted to the parent
 * window (the Lightning host page) as
 *   {methodName, callId, apiVersion, apiType: "opencti", isCallbackRegistered,
 *    isListenerRegistered, args}
 * with targetOrigin = sfdcIframeOrigin; the host answers with
 *   {apiVersion, apiType, methodName, callId, response: {success, returnValue, errors}}
 * and delivers listener events (onClickToDial, onNavigationChange) the same way
 * with the payload as `response`. Structural mistakes throw synchronously like
 * the real library; parameter values are checked by the container (the host
 * page asks sf-sim) and come back as INVALID_PARAM in the callback.
 * Without a parent frame the call is reported to sf-sim with navigator.sendBeacon
 * (no callback, as with the real library whose message then goes nowhere).
 */
(function () {
    'use strict';
    var API_VERSION = __API_VERSION__;
    var API_TYPE = 'opencti';
    var INIT_ERROR = 'Failed to initialize Open CTI. Ensure that it is loaded from the right ' +
        'frame with correct URL parameters';
    var scriptSrc = (document.currentScript && document.currentScript.src) || '';

    function parseUrlQueryString(queryString) {
        var params = {};
        if (typeof queryString !== 'string') { return params; }
        if (queryString.charAt(0) === '?') { queryString = queryString.slice(1); }
        if (!queryString) { return params; }
        var pairs = queryString.split('&');
        for (var i = 0; i < pairs.length; i++) {
            var eq = pairs[i].indexOf('=');
            var k = eq < 0 ? pairs[i] : pairs[i].slice(0, eq);
            var v = eq < 0 ? null : decodeURIComponent(pairs[i].slice(eq + 1).replace(/\+/g, ' '));
            if (k && !(k in params)) { params[k] = v; }
        }
        return params;
    }

    function simOrigin(fallback) {
        try { return new URL(scriptSrc).origin; } catch (e) { return fallback; }
    }

    function beacon(origin, entry) {
        try {
            if (origin && navigator.sendBeacon) {
                entry.page_url = String(location.href);
                navigator.sendBeacon(origin + '/sim/opencti/beacon',
                    new Blob([JSON.stringify(entry)], { type: 'text/plain' }));
            }
        } catch (e) { /* best effort */ }
    }

    var params = parseUrlQueryString(location.search);
    var sfdcIframeOrigin = params.sfdcIframeOrigin || params.sfdcIFrameOrigin;
    if (!(sfdcIframeOrigin && params.mode && sfdcIframeOrigin.indexOf(location.protocol) === 0)) {
        beacon(simOrigin(null), { kind: 'init_error', method: 'initialize', detail: INIT_ERROR,
                                  args: { search: String(location.search) } });
        throw INIT_ERROR;   // the real library throws this string, not an Error
    }

    var callId = 0;
    var callbacks = {};
    var listeners = {};
    var hasContainer = window.parent && window.parent !== window;

    function jsonSafe(v) {
        // what structured clone would deliver, minus functions (never sent)
        return v === undefined ? undefined : JSON.parse(JSON.stringify(v, function (k, x) {
            return typeof x === 'function' ? undefined : x;
        }));
    }

    function invokeApiCall(methodName, args, callback, listener) {
        var msg = {
            methodName: methodName, callId: callId++, apiVersion: API_VERSION, apiType: API_TYPE,
            isCallbackRegistered: false, isListenerRegistered: false, args: jsonSafe(args)
        };
        if (typeof callback === 'function') {
            callbacks[methodName + '_' + msg.callId] = callback;
            msg.isCallbackRegistered = true;
        }
        if (typeof listener === 'function') {
            (listeners[methodName] = listeners[methodName] || []).push(listener);
            msg.isListenerRegistered = true;
        }
        if (hasContainer) {
            window.parent.postMessage(msg, sfdcIframeOrigin);
        } else {
            msg.kind = 'call';
            beacon(sfdcIframeOrigin, msg);
        }
    }

    function processPostMessage(event) {
        var d = event.data;
        if (!d || d.apiType !== API_TYPE || event.origin !== sfdcIframeOrigin) { return; }
        var key = d.methodName + '_' + d.callId;
        if (callbacks[key]) {
            var cb = callbacks[key];
            delete callbacks[key];
            cb.call(null, d.response);
        }
        (listeners[d.methodName] || []).forEach(function (l) { l.call(null, d.response); });
    }

    function validateArguments(args, isOptional) {
        if ((isOptional && args.length) || !isOptional) {
            if (!(args.length === 1 && typeof args[0] === 'object' && args[0] !== null &&
                  Object.keys(args[0]).length)) {
                throw new Error('Must pass in only one object which holds arguments to this API method call.');
            }
        }
    }
    function validateCallback(args) {
        if (!(args && typeof args.callback === 'function')) {
            throw new Error('Missing the required argument `callback`!');
        }
    }
    function validateListener(args) {
        if (!(args && typeof args.listener === 'function')) {
            throw new Error('Missing the required argument `listener`!');
        }
    }
    function validateValueObject(args) {
        if (!(args && typeof args.value === 'object' && args.value !== null)) {
            throw new Error('Missing the required argument `value object`!');
        }
    }
    function cb(args) { return args ? args.callback : undefined; }

    // simple pass-through methods: name -> argument names forwarded
    function simple(name, names, optional) {
        return function (args) {
            validateArguments(arguments, optional);
            var out = {};
            names.forEach(function (n) { if (args) { out[n] = args[n]; } });
            invokeApiCall(name, out, cb(args));
        };
    }
    function getter(name) {
        return function (args) {
            validateArguments(arguments);
            validateCallback(args);
            invokeApiCall(name, {}, args.callback);
        };
    }
    function listen(name) {
        return function (args) {
            validateArguments(arguments);
            validateListener(args);
            invokeApiCall(name, {}, undefined, args.listener);
        };
    }

    var api = {
        initialize: function () {
            window.addEventListener('message', processPostMessage, false);
            if (hasContainer) {
                // sf-sim only: tells the host page a (new) softphone document started,
                // so it forgets the listeners of the previous one. Real containers
                // ignore unknown methodNames.
                window.parent.postMessage({ methodName: '__simFrameInit', callId: -1,
                    apiVersion: API_VERSION, apiType: API_TYPE, isCallbackRegistered: false,
                    isListenerRegistered: false, args: { href: String(location.href) } },
                    sfdcIframeOrigin);
            }
        },
        SCREENPOP_TYPE: { URL: 'url', SOBJECT: 'sobject', OBJECTHOME: 'objecthome', LIST: 'list',
                          SEARCH: 'search', NEW_RECORD_MODAL: 'newRecord', FLOW: 'flow' },
        CALL_TYPE: { INBOUND: 'inbound', OUTBOUND: 'outbound', INTERNAL: 'internal' },
        setSoftphonePanelVisibility: simple('setSoftphonePanelVisibility', ['visible']),
        isSoftphonePanelVisible: getter('isSoftphonePanelVisible'),
        screenPop: function (args) {
            validateArguments(arguments);
            var a = { type: args.type, params: args.params };
            if (args.defaultFieldValues !== undefined) { a.defaultFieldValues = args.defaultFieldValues; }
            invokeApiCall('screenPop', a, cb(args));
        },
        searchAndScreenPop: simple('searchAndScreenPop', ['searchParams', 'callType', 'queryParams',
            'defaultFieldValues', 'deferred', 'params']),
        getAppViewInfo: getter('getAppViewInfo'),
        saveLog: function (args) {
            validateArguments(arguments);
            validateValueObject(args);
            invokeApiCall('saveLog', { object: args.value }, cb(args));
        },
        refreshView: simple('refreshView', [], true),
        notifyInitializationComplete: function (args) {
            invokeApiCall('notifyInitializationComplete', {}, cb(args));
        },
        setSoftphoneItemLabel: simple('setSoftphoneItemLabel', ['label']),
        setSoftphonePanelLabel: simple('setSoftphonePanelLabel', ['label']),
        setSoftphoneItemIcon: simple('setSoftphoneItemIcon', ['key']),
        setSoftphonePanelIcon: simple('setSoftphonePanelIcon', ['key']),
        setSoftphonePanelHeight: simple('setSoftphonePanelHeight', ['heightPX']),
        setSoftphonePanelWidth: simple('setSoftphonePanelWidth', ['widthPX']),
        getCallCenterSettings: getter('getCallCenterSettings'),
        getSoftphoneLayout: getter('getSoftphoneLayout'),
        onClickToDial: listen('onClickToDial'),
        onNavigationChange: listen('onNavigationChange'),
        enableClickToDial: simple('enableClickToDial', [], true),
        disableClickToDial: simple('disableClickToDial', [], true),
        runApex: simple('runApex', ['apexClass', 'methodName', 'methodParams'])
    };

    window.sforce = window.sforce || {};
    window.sforce.opencti = api;
    api.initialize();
})();
