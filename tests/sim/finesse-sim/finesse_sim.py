#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""finesse-sim: a Cisco Finesse node pair (A, B) in front of one simulated UCCE.

Written against /work/shared/reference/finesse.md, not against the connector.
Two HTTP listeners (nodes A and B) share one CTI state (agents, dialogs).
Notifications (<Update> documents) are delivered as XEP-0060 event messages
from pubsub.<domain> through each node's prosody, to which this process is
connected as an external component (XEP-0114). With --ws-upstream-a/-b, each
node's REST port also serves XMPP over WebSocket at /ws (ws_proxy.py), like
Finesse's 8445/ws. See README.md.

Standard library + python3-jwt/python3-cryptography (only for Bearer tokens
checked locally with --ids-public-key; --ids-url asks ids-sim instead).
Run with /usr/bin/python3.
"""

import argparse
import base64
import collections
import hashlib
import heapq
import itertools
import json
import os
import queue
import random
import re
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape as _esc

import ws_proxy  # noqa: E402  (next to this file: XMPP over WebSocket on the REST port)

NS_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_SIM = "urn:fsc:sim:0"
MAX_BODY = 64 * 1024
CALL_STATES = ("RESERVED", "TALKING", "HOLD")

NOT_READY_CODES = [("1", "1", "Break"), ("2", "2", "Lunch"), ("3", "3", "Meeting"),
                   ("4", "4", "Training")]
LOGOUT_CODES = [("11", "11", "End of shift"), ("12", "12", "Technical issue"),
                ("13", "13", "Personal")]
SYSTEM_CODES = {"255": ("LOGOUT", "255", "Forced logout (presence lost)"),
                "50006": ("NOT_READY", "50006", "Off hook")}
WRAPUP_REASONS = [("1", "Sales"), ("2", "Support"), ("3", "Wrong number"),
                  ("4", "Callback requested")]
REASONS = {rid: ("NOT_READY", code, label) for rid, code, label in NOT_READY_CODES}
REASONS.update({rid: ("LOGOUT", code, label) for rid, code, label in LOGOUT_CODES})
REASONS.update(SYSTEM_CODES)

VERBOSE = False


def vlog(msg):
    if VERBOSE:
        sys.stderr.write("[finesse-sim %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
        sys.stderr.flush()


def esc(s):
    return _esc("" if s is None else str(s))


def ts(t=None):
    t = time.time() if t is None else t
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def api_errors(etype, message, data=""):
    """Synchronous HTTP error body (finesse.md §1.2)."""
    return ("<ApiErrors><ApiError><ErrorType>%s</ErrorType><ErrorMessage>%s</ErrorMessage>"
            "<ErrorData>%s</ErrorData></ApiError></ApiErrors>" % (esc(etype), esc(message), esc(data)))


class ApiError(Exception):
    def __init__(self, status, etype, message, data=""):
        Exception.__init__(self, message)
        self.status, self.etype, self.message, self.data = status, etype, message, data


def bad_input(msg, data=""):
    return ApiError(400, "Invalid Input", msg, data)


def bad_state(msg, data=""):
    return ApiError(400, "Invalid State", msg, data)


# --------------------------------------------------------------------------
# Model

class Agent:
    def __init__(self, aid, password, extension, login_name, first="", last="",
                 wrap_in="OPTIONAL", wrap_out="NOT_ALLOWED", team=("1", "Default")):
        self.id, self.password, self.default_ext = aid, password, extension
        self.login_name, self.first, self.last = login_name, first, last
        self.wrap_in, self.wrap_out = wrap_in, wrap_out
        self.team = team
        self.state, self.state_time = "LOGOUT", time.time()
        self.reason, self.pending, self.pending_reason = "", "", ""
        self.extension = ""
        self.precall = ("NOT_READY", "")
        self.dialogs = []            # dialog ids in this agent's collection (ordered)
        self.tokens = {}             # sha256 hex -> exp
        self.unavail_since = time.time()
        self.forced_pending = False
        self.drop_notifications = 0  # lose the next n notifications (lost in transit)

    def set_state(self, state, reason=""):
        if state != self.state:
            self.state_time = time.time()
        self.state, self.reason = state, reason or ""


class Part:
    def __init__(self, address, agent=None, state="ACTIVE"):
        self.address, self.agent, self.state = address, agent, state
        self.cause = ""
        self.start = self.changed = time.time()
        self.answered = state == "ACTIVE"

    def set(self, state, cause=""):
        if state != self.state:
            self.changed = time.time()
        self.state, self.cause = state, cause
        if state == "ACTIVE":
            self.answered = True


class Dialog:
    def __init__(self, did, from_addr, to_addr, call_type, dnis="", queue_name="",
                 queue_number="", callvars=None):
        self.id, self.from_addr, self.to_addr, self.call_type = did, from_addr, to_addr, call_type
        self.secondary, self.assoc = "", ""
        self.dnis, self.dialed = dnis, dnis or to_addr
        self.queue_name, self.queue_number = queue_name, queue_number
        self.callvars = list(callvars or [])       # [[name, value], ...]
        self.wrapup = ""
        self.parts = []
        self.ended = False
        self.failed = False
        self.dtmf = ""
        self.key = (str(100 + int(did) % 100000), "1", str(150000 + int(time.time()) % 10000))

    def live(self):
        return [p for p in self.parts if p.state not in ("DROPPED", "WRAP_UP")]

    def state(self):
        if self.failed:
            return "FAILED"
        if self.ended:
            return "DROPPED"
        live = self.live()
        states = [p.state for p in live]
        if "ALERTING" in states:
            return "ALERTING"
        if "INITIATING" in states:
            return "INITIATING"
        if "INITIATED" in states:
            return "INITIATED"
        return "ACTIVE" if len(live) >= 2 else "DROPPED"

    def part_of(self, agent_id):
        for p in self.parts:
            if p.agent == agent_id:
                return p
        return None

    def agent_ids(self):
        return [p.agent for p in self.parts if p.agent]


# --------------------------------------------------------------------------
# XML builders

def reason_xml(rid):
    r = REASONS.get(rid)
    if not r:
        return ""
    cat, code, label = r
    return ("<ReasonCode><category>%s</category><uri>/finesse/api/ReasonCode/%s</uri><code>%s</code>"
            "<label>%s</label><forAll>true</forAll><systemCode>%s</systemCode><id>%s</id></ReasonCode>"
            % (cat, rid, code, esc(label), "true" if rid in SYSTEM_CODES else "false", rid))


def user_body(a):
    out = ["<uri>/finesse/api/User/%s</uri><roles><role>Agent</role></roles>" % esc(a.id),
           "<loginId>%s</loginId><loginName>%s</loginName>" % (esc(a.id), esc(a.login_name)),
           "<state>%s</state><stateChangeTime>%s</stateChangeTime>" % (a.state, ts(a.state_time)),
           "<mediaType>1</mediaType><pendingState>%s</pendingState>" % a.pending]
    if a.reason:
        out.append("<reasonCodeId>%s</reasonCodeId>%s" % (a.reason, reason_xml(a.reason)))
    out.append("<settings><wrapUpOnIncoming>%s</wrapUpOnIncoming><wrapUpOnOutgoing>%s"
               "</wrapUpOnOutgoing><deviceSelection>disabled</deviceSelection></settings>"
               % (a.wrap_in, a.wrap_out))
    out.append("<extension>%s</extension><firstName>%s</firstName><lastName>%s</lastName>"
               % (esc(a.extension), esc(a.first), esc(a.last)))
    out.append("<teamId>%s</teamId><teamName>%s</teamName><skillTargetId>%d</skillTargetId>"
               % (a.team[0], esc(a.team[1]), 5000 + (abs(hash(a.id)) % 100000)))
    out.append("<dialogs>/finesse/api/User/%s/Dialogs</dialogs>" % esc(a.id))
    return "".join(out)


def user_xml(a):
    return "<User>%s</User>" % user_body(a)


class Sim:
    """All CTI state and behaviour. Every public method runs under self.lock."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        self.agents = {}
        self.by_login = {}
        self.dialogs = {}
        self.ids = itertools.count(16800000 + random.randint(0, 99999) * 10)
        self.item_ids = itertools.count(1)
        self.domain = args.xmpp_domain
        self.pubsub = "pubsub." + self.domain
        self.node_status = {"A": "IN_SERVICE", "B": "IN_SERVICE"}
        self.links = {}                # node -> ComponentLink
        self.ws = {}                   # node -> ws_proxy.WsProxy (only with --ws-upstream-*)
        self.presence = {"A": {}, "B": {}}     # node -> {agent id: n available}
        self.stats = collections.Counter()
        self.req_stats = collections.Counter()
        self.rest_delay = None      # (seconds, until monotonic): POST /sim/rest_delay
        self.sent = {"A": 0, "B": 0}
        self.sched = Scheduler(self.lock)
        self.token_cache = {}
        self.pubkey = None
        if args.ids_public_key:
            import jwt  # python3-jwt
            self.jwt = jwt
            with open(args.ids_public_key, "rb") as f:
                self.pubkey = f.read()
        self.auth_dir = os.path.join(args.data_dir, "auth") if args.data_dir else None
        if self.auth_dir:
            os.makedirs(self.auth_dir, exist_ok=True)
            os.chmod(self.auth_dir, 0o755)
        sso = self.pubkey is not None or bool(args.ids_url)
        self.auth_mode = args.auth_mode or ("HYBRID" if sso else "NON_SSO")
        for i in range(args.agents):
            aid = str(1001 + i)
            self.add_agent(aid, "pw" + aid, aid, "agent%s@example.com" % aid,
                           "Agent", aid)

    # ---- agents -----------------------------------------------------------
    def add_agent(self, aid, password, extension, login_name, first="", last="", wrap_in=None,
                  wrap_out=None):
        with self.lock:
            if aid in self.agents:
                raise ValueError("agent %s exists" % aid)
            a = Agent(aid, password, extension or aid, login_name or aid, first or "", last or "",
                      wrap_in or self.args.wrap_up, wrap_out or "NOT_ALLOWED")
            self.agents[aid] = a
            self.by_login[a.login_name.lower()] = a
            self.write_auth(a)
            return a

    def write_auth(self, a):
        if not self.auth_dir:
            return
        now = int(time.time())
        a.tokens = {h: e for h, e in a.tokens.items() if e == 0 or e > now}
        lines = ["password %s" % a.password] + ["token %s %d" % kv for kv in a.tokens.items()]
        path = os.path.join(self.auth_dir, a.id)
        tmp = path + ".tmp%d" % threading.get_ident()
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)

    def agent_by_ext(self, ext):
        for a in self.agents.values():
            if a.extension and a.extension == ext and a.state != "LOGOUT":
                return a
        return None

    # ---- auth -------------------------------------------------------------
    def authenticate(self, header):
        """Returns the Agent or raises ApiError 401."""
        fail = ApiError(401, "Authorization Failure", "UNAUTHORIZED", "")
        if not header:
            raise fail
        scheme, _, cred = header.partition(" ")
        scheme = scheme.lower()
        cred = cred.strip()
        if scheme == "basic":
            if self.auth_mode == "SSO":
                raise fail
            try:
                user, _, pw = base64.b64decode(cred, validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                raise fail
            a = self.agents.get(user) or self.by_login.get(user.lower())
            if a is None or not _consteq(a.password, pw):
                self.stats["auth_failures"] += 1
                fail.data = user
                raise fail
            return a
        if scheme == "bearer" and cred and (self.pubkey is not None or self.args.ids_url):
            now = time.time()
            hit = self.token_cache.get(cred)
            if hit and hit[1] > now:
                return hit[0]
            name, exp = (self.ids_check(cred) if self.args.ids_url
                         else self.local_check(cred))
            if not name:
                self.stats["auth_failures"] += 1
                raise fail
            with self.lock:
                a = self.by_login.get(name.lower()) or self.agents.get(name)
                if a is None:
                    self.stats["auth_failures"] += 1
                    raise fail
                h = hashlib.sha256(cred.encode()).hexdigest()
                if h not in a.tokens:
                    a.tokens[h] = int(exp)
                    self.write_auth(a)
                if len(self.token_cache) > 100000:
                    self.token_cache.clear()
                self.token_cache[cred] = (a, float(exp))
            return a
        raise fail

    def local_check(self, token):
        """(user, exp) of an RS256 token verified with --ids-public-key, or
        (None, 0). The user is Cisco's: user_id inside a JSON-string sub
        (Finesse developer guide, "REST API with SSO"), else upn, user_id
        or sub at the top level."""
        try:
            claims = self.jwt.decode(token, self.pubkey, algorithms=["RS256"],
                                     options={"verify_aud": False, "require": ["exp"]})
        except Exception as e:   # expired, bad signature, garbage
            vlog("bearer rejected: %r" % e)
            return None, 0
        if self.args.ids_issuer and claims.get("iss") != self.args.ids_issuer:
            return None, 0
        sub = claims.get("sub")
        if isinstance(sub, str) and sub.lstrip().startswith("{"):
            try:
                inner = json.loads(sub)
            except ValueError:
                return None, 0
            name = inner.get("user_id") if isinstance(inner, dict) else None
        else:
            name = claims.get("upn") or claims.get("user_id") or sub
        return (str(name) if isinstance(name, str) and name else None), claims["exp"]

    def ids_check(self, token):
        """(user, exp) as ids-sim says, or (None, 0). A real Finesse
        validates SSO tokens against IdS (TechNote 214687) and cannot read
        an IdS token before 12.6(2) either (it is encrypted): this asks
        ids-sim's sim-only introspection for any shape of token."""
        url = self.args.ids_url.rstrip("/") + "/sim/tokens/introspect?" + \
            urllib.parse.urlencode({"token": token})
        try:
            # loopback: never through an http_proxy from the environment
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(url, timeout=5) as r:
                info = json.loads(r.read())
        except (OSError, ValueError) as e:
            vlog("ids-sim introspection failed: %r" % e)
            return None, 0
        if info.get("active") is not True or not isinstance(info.get("user"), str):
            return None, 0
        return info["user"], info.get("exp") or time.time() + 60

    # ---- notifications ----------------------------------------------------
    def publish(self, agent_id, node, data, event, source, request_id=""):
        upd = ("<Update><data>%s</data><event>%s</event><requestId>%s</requestId>"
               "<source>%s</source></Update>" % (data, event, esc(request_id), source))
        self.deliver(agent_id, node, upd)

    def deliver(self, agent_id, node, payload, only_node=None, raw=False):
        """payload: the Update text (escaped here) or, raw=True, a whole stanza."""
        jid = "%s@%s" % (agent_id, self.domain)
        if raw:
            stanza = payload
        else:
            item = next(self.item_ids)
            stanza = ("<message from='%s' to='%s' id='%s__%s__%s'><event xmlns='%s'><items node='%s'>"
                      "<item id='%s-%d'><notification xmlns='%s'>%s</notification></item></items>"
                      "</event></message>"
                      % (self.pubsub, jid, esc(node), jid, uuid.uuid4().hex[:5], NS_EVENT, esc(node),
                         uuid.uuid4().hex[:12], item, NS_PUBSUB, esc(payload)))
        data = stanza.encode("utf-8")
        a = self.agents.get(agent_id)
        if a is not None and a.drop_notifications > 0 and not raw:
            a.drop_notifications -= 1
            self.stats["notifications_dropped"] += 1
            return
        for n in ("A", "B"):
            if only_node and n != only_node:
                continue
            if only_node is None and self.node_status[n] != "IN_SERVICE":
                continue
            link = self.links.get(n)
            if link is not None and link.send(data):
                self.sent[n] += 1
            else:
                self.stats["notifications_dropped"] += 1

    def pub_user(self, a, rid=""):
        self.publish(a.id, "/finesse/api/User/%s" % a.id, "<user>%s</user>" % user_body(a), "PUT",
                     "/finesse/api/User/%s" % a.id, rid)

    def pub_dialog(self, d, agent_ids, event, rid=""):
        """event PUT: <dialog>, source Dialog; POST/DELETE: <dialogs><Dialog>."""
        body = self.dialog_body(d)
        for aid in agent_ids:
            node = "/finesse/api/User/%s/Dialogs" % aid
            if event == "PUT":
                self.publish(aid, node, "<dialog>%s</dialog>" % body, "PUT",
                             "/finesse/api/Dialog/%s" % d.id, rid)
            else:
                self.publish(aid, node, "<dialogs><Dialog>%s</Dialog></dialogs>" % body, event,
                             node, rid)

    def async_error(self, aid, did, rid, etype="Invalid State", msg="CF_INVALID_OBJECT_STATE",
                    data="22"):
        self.stats["async_errors"] += 1
        self.publish(aid, "/finesse/api/User/%s/Dialogs" % aid,
                     "<apiErrors><apiError><errorData>%s</errorData><errorMessage>%s</errorMessage>"
                     "<errorType>%s</errorType></apiError></apiErrors>" % (esc(data), esc(msg), esc(etype)),
                     "PUT", "/finesse/api/Dialog/%s" % did, rid)

    # ---- dialog XML -------------------------------------------------------
    def actions(self, d, p):
        if not p.agent:
            return []
        s = p.state
        if s == "ALERTING":
            return ["ANSWER"]
        if s in ("INITIATING", "INITIATED"):
            return ["DROP", "UPDATE_CALL_DATA"]
        if s == "FAILED":
            return ["DROP"]
        if s == "WRAP_UP":
            return ["UPDATE_CALL_DATA"]
        if s == "ACTIVE":
            acts = ["HOLD", "DROP", "UPDATE_CALL_DATA", "CONSULT_CALL", "TRANSFER_SST", "SEND_DTMF"]
            if self.consult_pair(d, p.agent):
                acts = ["HOLD", "DROP", "UPDATE_CALL_DATA", "TRANSFER", "CONFERENCE", "SEND_DTMF"]
            return acts
        if s == "HELD":
            acts = ["RETRIEVE", "DROP", "UPDATE_CALL_DATA"]
            if self.consult_pair(d, p.agent):
                acts += ["TRANSFER", "CONFERENCE"]
            return acts
        return []

    def dialog_body(self, d):
        cv = "".join("<CallVariable><name>%s</name><value>%s</value></CallVariable>"
                     % (esc(n), esc(v)) for n, v in d.callvars)
        parts = []
        for p in d.parts:
            parts.append("<Participant><actions>%s</actions><mediaAddress>%s</mediaAddress>"
                         "<mediaAddressType>%s</mediaAddressType><startTime>%s</startTime>"
                         "<state>%s</state><stateCause>%s</stateCause><stateChangeTime>%s"
                         "</stateChangeTime></Participant>"
                         % ("".join("<action>%s</action>" % x for x in self.actions(d, p)),
                            esc(p.address), "AGENT_DEVICE" if p.agent else "", ts(p.start),
                            p.state, p.cause, ts(p.changed)))
        return ("<associatedDialogUri>%s</associatedDialogUri><fromAddress>%s</fromAddress>"
                "<id>%s</id><secondaryId>%s</secondaryId><mediaProperties><mediaId>1</mediaId>"
                "<DNIS>%s</DNIS><callType>%s</callType><dialedNumber>%s</dialedNumber>"
                "<outboundClassification></outboundClassification><callKeyCallId>%s</callKeyCallId>"
                "<callKeySequenceNum>%s</callKeySequenceNum><callKeyPrefix>%s</callKeyPrefix>"
                "<queueNumber>%s</queueNumber><queueName>%s</queueName><wrapUpReason>%s</wrapUpReason>"
                "<callvariables>%s</callvariables></mediaProperties><mediaType>Voice</mediaType>"
                "<participants>%s</participants><state>%s</state><toAddress>%s</toAddress>"
                "<uri>/finesse/api/Dialog/%s</uri>"
                % ("/finesse/api/Dialog/%s" % d.assoc if d.assoc else "", esc(d.from_addr), d.id,
                   d.secondary, esc(d.dnis), d.call_type, esc(d.dialed), d.key[0], d.key[1],
                   d.key[2], esc(d.queue_number), esc(d.queue_name), esc(d.wrapup), cv,
                   "".join(parts), d.state(), esc(d.to_addr), d.id))

    def dialog_json(self, d):
        return {"id": d.id, "state": d.state(), "from": d.from_addr, "to": d.to_addr,
                "call_type": d.call_type, "queue": d.queue_name, "dnis": d.dnis,
                "callvariables": {n: v for n, v in d.callvars if not n.startswith("user.")},
                "ecc": {n: v for n, v in d.callvars if n.startswith("user.")},
                "wrap_up_reason": d.wrapup, "dtmf": d.dtmf, "secondary_id": d.secondary,
                "associated_dialog": d.assoc,
                "participants": [{"address": p.address, "state": p.state, "agent": p.agent,
                                  "actions": self.actions(d, p)} for p in d.parts]}

    def agent_json(self, a):
        return {"id": a.id, "state": a.state, "reason_code_id": a.reason,
                "pending_state": a.pending, "extension": a.extension,
                "login_name": a.login_name, "first_name": a.first, "last_name": a.last,
                "wrap_up_on_incoming": a.wrap_in,
                "presence": {n: self.presence[n].get(a.id, 0) for n in ("A", "B")},
                "dialogs": [self.dialog_json(self.dialogs[i]) for i in a.dialogs if i in self.dialogs]}

    # ---- agent state machine ----------------------------------------------
    def user_put(self, a, state, ext=None, reason=None, rid=""):
        """PUT /User/{id}. Raises ApiError for synchronous errors."""
        state = (state or "").strip()
        if reason is not None and reason != "" and reason not in REASONS:
            raise bad_input("Invalid reasonCodeId", reason)
        if state == "LOGIN":
            if not ext:
                raise ApiError(400, "Parameter Missing", "extension is required", "extension")
            if not re.match(r"^[0-9A-Za-z*#+]{1,32}$", ext):
                raise bad_input("Invalid extension", ext)
            other = self.agent_by_ext(ext)
            if other is not None and other is not a:
                raise bad_input("Extension in use by another agent", ext)
            if a.state == "LOGOUT":
                a.extension = ext
                a.pending = a.pending_reason = ""
                a.set_state("NOT_READY", "")
                a.unavail_since = time.time()
            elif a.extension != ext:
                raise bad_state("Agent already signed in on another extension", a.extension)
            self.pub_user(a, rid)
            return
        if state not in ("READY", "NOT_READY", "LOGOUT", "WORK", "WORK_READY"):
            raise bad_input("Invalid state", state)
        if a.state == "LOGOUT":
            raise bad_state("Agent is logged out", state)
        if state == "NOT_READY" and reason and REASONS[reason][0] != "NOT_READY":
            raise bad_input("reasonCodeId is not a NOT_READY reason code", reason)
        if state == "LOGOUT" and reason and REASONS[reason][0] != "LOGOUT":
            raise bad_input("reasonCodeId is not a LOGOUT reason code", reason)
        if state in ("READY", "WORK", "WORK_READY") and reason:
            raise bad_input("reasonCodeId not allowed for state", state)
        if a.state in CALL_STATES:
            # pending state, applied when the call ends
            a.pending, a.pending_reason = state, reason or ""
            self.pub_user(a, rid)
            return
        if state in ("WORK", "WORK_READY"):
            raise bad_state("Cannot change from %s to %s" % (a.state, state), state)
        if state == "LOGOUT":
            if a.state != "NOT_READY":
                raise bad_state("Cannot change from %s to LOGOUT" % a.state, state)
            self.logout(a, reason or "", rid)
            return
        leaving_wrap = a.state in ("WORK", "WORK_READY")
        a.pending = a.pending_reason = ""
        a.set_state(state, reason or "")
        self.pub_user(a, rid)
        if leaving_wrap:
            self.end_wrapup(a)

    def logout(self, a, reason, rid=""):
        self.end_wrapup(a)
        a.pending = a.pending_reason = ""
        a.set_state("LOGOUT", reason)
        a.extension = ""
        a.forced_pending = False
        self.pub_user(a, rid)

    def end_wrapup(self, a):
        for did in list(a.dialogs):
            d = self.dialogs.get(did)
            if d is None:
                a.dialogs.remove(did)
                continue
            p = d.part_of(a.id)
            if p is not None and p.state == "WRAP_UP":
                p.set("DROPPED")
                a.dialogs.remove(did)
                self.pub_dialog(d, [a.id], "DELETE")
                self.gc(d)

    def gc(self, d):
        if d.ended and not any(d.id in self.agents[x].dialogs for x in d.agent_ids()):
            self.dialogs.pop(d.id, None)

    def recompute(self, a, wrap_candidate=None):
        """Derive the agent state from its calls (UCCE: RESERVED/TALKING/HOLD)."""
        states = []
        for did in a.dialogs:
            d = self.dialogs.get(did)
            p = d.part_of(a.id) if d else None
            if p is None or p.state in ("DROPPED", "WRAP_UP"):
                continue
            if p.state == "ALERTING" and d.call_type not in ("ACD_IN", "PREROUTE_ACD_IN", "TRANSFER",
                                                             "PREROUTE_DIRECT_AGENT"):
                continue   # a direct (non-ACD) call ringing: no reservation
            states.append(p.state)
        target = None
        if any(s in ("ACTIVE", "INITIATING", "INITIATED", "FAILED") for s in states):
            target = "TALKING"
        elif states and all(s == "HELD" for s in states):
            target = "HOLD"
        elif "HELD" in states:
            target = "HOLD"
        elif "ALERTING" in states:
            target = "RESERVED"
        if target is not None:
            if a.state not in CALL_STATES:
                a.precall = (a.state, a.reason) if a.state in ("READY", "NOT_READY") else ("NOT_READY", "")
            if a.state != target:
                a.set_state(target, a.reason if target == "HOLD" else "")
                self.pub_user(a)
            return
        if a.state not in CALL_STATES:
            return
        # the last call ended
        pend, pend_reason = a.pending, a.pending_reason
        a.pending = a.pending_reason = ""
        if pend == "LOGOUT" or a.forced_pending:
            self.logout(a, "255" if a.forced_pending else pend_reason)
            return
        if wrap_candidate is not None and a.state != "RESERVED":
            after = pend or a.precall[0]
            if pend in ("WORK", "WORK_READY"):
                nxt = pend
            else:
                nxt = "WORK_READY" if after == "READY" else "WORK"
            a.set_state(nxt, "")
            self.pub_user(a)
            return
        if pend in ("READY", "NOT_READY"):
            a.set_state(pend, pend_reason)
        elif pend in ("WORK", "WORK_READY"):
            a.set_state(pend, "")
        else:
            a.set_state(*a.precall)
        self.pub_user(a)

    def wants_wrapup(self, a, d, p):
        if not p.answered:
            return False
        outgoing = d.call_type in ("OUT", "AGENT_INSIDE", "CONSULT") and d.from_addr == a.extension
        mode = a.wrap_out if outgoing else a.wrap_in
        if mode not in ("REQUIRED", "REQUIRED_WITH_WRAP_UP_DATA"):
            return False
        # only when this was the agent's last live call
        for did in a.dialogs:
            o = self.dialogs.get(did)
            op = o.part_of(a.id) if o and o is not d else None
            if op is not None and op.state not in ("DROPPED", "WRAP_UP"):
                return False
        return True

    # ---- dialogs ----------------------------------------------------------
    def new_dialog(self, **kw):
        d = Dialog(str(next(self.ids)), **kw)
        self.dialogs[d.id] = d
        return d

    def add_agent_part(self, d, a, state, event="POST", rid=""):
        p = Part(a.extension, a.id, state)
        d.parts.append(p)
        if d.id not in a.dialogs:
            a.dialogs.append(d.id)
        return p

    def inbound_call(self, a, ani, dnis, queue_name, callvars, call_type="ACD_IN"):
        if a.state != "READY":
            return None
        d = self.new_dialog(from_addr=ani, to_addr=a.extension, call_type=call_type, dnis=dnis,
                            queue_name=queue_name, queue_number=str(5000 + (abs(hash(queue_name)) % 1000)),
                            callvars=callvars)
        d.parts.append(Part(ani, None, "ACTIVE"))
        self.add_agent_part(d, a, "ALERTING")
        self.recompute(a)                   # RESERVED first
        self.pub_dialog(d, [a.id], "POST")
        self.stats["calls_injected"] += 1
        return d

    def finish_for(self, d, p, rid=""):
        """Participant p (an agent) leaves d: WRAP_UP (dialog kept) or DROPPED (+ DELETE)."""
        a = self.agents[p.agent]
        wrap = self.wants_wrapup(a, d, p)
        p.set("WRAP_UP" if wrap else "DROPPED")
        return a, wrap

    def end_dialog(self, d, rid="", cause=""):
        """The whole call ends (last party left)."""
        d.ended = True
        results = []
        for p in d.parts:
            if p.agent and p.state not in ("DROPPED", "WRAP_UP"):
                results.append(self.finish_for(d, p, rid))
            elif not p.agent and p.state != "DROPPED":
                p.set("DROPPED", cause)
        for aid in d.agent_ids():
            self.pub_dialog(d, [aid], "PUT", rid if results and aid == results[0][0].id else "")
        for a, wrap in results:
            if not wrap and d.id in a.dialogs:
                a.dialogs.remove(d.id)
                self.pub_dialog(d, [a.id], "DELETE")
            self.recompute(a, d if wrap else None)
        self.unlink_assoc(d)
        self.gc(d)

    def unlink_assoc(self, d):
        if d.assoc:
            o = self.dialogs.get(d.assoc)
            if o is not None and o.assoc == d.id:
                o.assoc = ""
                for aid in o.agent_ids():
                    if d.id not in self.agents[aid].dialogs and not o.ended:
                        self.pub_dialog(o, [aid], "PUT")
            d.assoc = ""

    def leave(self, d, p, rid=""):
        """Agent participant p drops from d; the call goes on if >= 2 parties remain."""
        if len([x for x in d.live() if x is not p]) < 2:
            self.end_dialog(d, rid)
            return
        a, wrap = self.finish_for(d, p, rid)
        self.pub_dialog(d, d.agent_ids(), "PUT", rid)
        if not wrap:
            a.dialogs.remove(d.id)
            self.pub_dialog(d, [a.id], "DELETE")
        self.recompute(a, d if wrap else None)

    def consult_pair(self, d, aid):
        """(original, consult) if d is one half of a consult pair of agent aid."""
        if not d.assoc:
            return None
        o = self.dialogs.get(d.assoc)
        if o is None or o.ended or o.assoc != d.id:
            return None
        if d.call_type == "CONSULT" and d.from_addr == self.agents[aid].extension:
            orig, cons = o, d
        elif o.call_type == "CONSULT":
            orig, cons = d, o
        else:
            return None
        po, pc = orig.part_of(aid), cons.part_of(aid)
        if po is None or pc is None or po.state != "HELD" or pc.state != "ACTIVE":
            return None
        if not [x for x in cons.live() if x is not pc]:
            return None
        return orig, cons

    def place_call(self, a, to, call_type, callvars=None, assoc=None, rid="", dnis=""):
        d = self.new_dialog(from_addr=a.extension, to_addr=to, call_type=call_type, dnis=dnis or to,
                            callvars=callvars)
        p = self.add_agent_part(d, a, "INITIATED")
        if assoc is not None:
            d.assoc, assoc.assoc = assoc.id, d.id
        self.recompute(a)
        self.pub_dialog(d, [a.id], "POST", rid)
        self.sched.later(0.05, self._ring, d.id)
        return d

    def _ring(self, did):
        d = self.dialogs.get(did)
        if d is None or d.ended or d.state() not in ("INITIATED", "INITIATING"):
            return
        caller = d.parts[0]
        target = self.agent_by_ext(d.to_addr)
        if target is not None and target.id != caller.agent:
            if len([x for x in target.dialogs if self.dialogs.get(x) and
                    (self.dialogs[x].part_of(target.id).state not in ("DROPPED", "WRAP_UP"))]) >= 2:
                caller.set("FAILED", "BUSY")
                d.failed = True
                self.pub_dialog(d, d.agent_ids(), "PUT")
                return
            self.add_agent_part(d, target, "ALERTING")
            self.pub_dialog(d, [caller.agent], "PUT")
            self.recompute(target)
            self.pub_dialog(d, [target.id], "POST")
            return
        if d.to_addr.startswith("0000"):
            caller.set("FAILED", "BAD_DESTINATION")
            d.failed = True
            self.pub_dialog(d, d.agent_ids(), "PUT")
            return
        d.parts.append(Part(d.to_addr, None, "ALERTING"))
        self.pub_dialog(d, d.agent_ids(), "PUT")
        if self.args.remote_answer_ms > 0:
            self.sched.later(self.args.remote_answer_ms / 1000.0, self.remote_answer, did)

    def remote_answer(self, did):
        d = self.dialogs.get(did)
        if d is None or d.ended:
            return False
        changed = False
        for p in d.parts:
            if not p.agent and p.state == "ALERTING":
                p.set("ACTIVE")
                changed = True
        if not changed:
            return False
        for p in d.parts:
            if p.agent and p.state in ("INITIATED", "INITIATING"):
                p.set("ACTIVE")
        self.pub_dialog(d, d.agent_ids(), "PUT")
        for aid in d.agent_ids():
            self.recompute(self.agents[aid])
        return True

    def dialog_action(self, a, d, action, to=None, dtmf=None, wrapup=None, callvars=None,
                      target=None, rid=""):
        """PUT /Dialog/{id}. Synchronous problems raise ApiError; state problems
        give 202 + an async apiErrors Update."""
        if target and target != a.extension:
            raise bad_input("targetMediaAddress is not the agent's extension", target)
        p = d.part_of(a.id)
        if p is None:
            raise ApiError(401, "Authorization Failure", "UNAUTHORIZED", a.id)
        known = ("ANSWER", "HOLD", "RETRIEVE", "DROP", "CONSULT_CALL", "TRANSFER", "TRANSFER_SST",
                 "CONFERENCE", "SEND_DTMF", "UPDATE_CALL_DATA")
        if action not in known:
            raise bad_input("Invalid requestedAction", action or "")
        if action in ("CONSULT_CALL", "TRANSFER_SST") and not to:
            raise ApiError(400, "Parameter Missing", "toAddress is required", "toAddress")
        if action == "SEND_DTMF" and not dtmf:
            raise ApiError(400, "Parameter Missing", "dtmfString is required", "dtmfString")
        if action == "SEND_DTMF" and not re.match(r"^[0-9*#A-Da-d,]{1,32}$", dtmf):
            raise bad_input("Invalid dtmfString", dtmf)
        if wrapup is not None and len(wrapup.encode()) > 39:
            raise bad_input("wrapUpReason too long", wrapup)
        if callvars:
            for n, _ in callvars:
                if not (re.match(r"^callVariable([1-9]|10)$", n) or n.startswith("user.")):
                    raise bad_input("Invalid call variable name", n)
        allowed = self.actions(d, p)
        if action not in allowed or d.ended and action != "UPDATE_CALL_DATA":
            self.async_error(a.id, d.id, rid)
            return
        self.stats["action_" + action] += 1
        if action == "ANSWER":
            p.set("ACTIVE")
            for o in d.parts:
                if o.agent and o.state in ("INITIATED", "INITIATING"):
                    o.set("ACTIVE")
            self.pub_dialog(d, d.agent_ids(), "PUT", rid)
            for aid in d.agent_ids():
                self.recompute(self.agents[aid])
        elif action == "HOLD":
            p.set("HELD")
            self.pub_dialog(d, d.agent_ids(), "PUT", rid)
            self.recompute(a)
        elif action == "RETRIEVE":
            p.set("ACTIVE")
            self.pub_dialog(d, d.agent_ids(), "PUT", rid)
            self.recompute(a)
        elif action == "DROP":
            pair = d.assoc and self.dialogs.get(d.assoc)
            self.leave(d, p, rid)
            if pair and not pair.ended:
                for aid in pair.agent_ids():
                    self.pub_dialog(pair, [aid], "PUT")
        elif action == "SEND_DTMF":
            d.dtmf += dtmf
        elif action == "UPDATE_CALL_DATA":
            if callvars and d.call_type in ("OUT", "AGENT_INSIDE"):
                self.async_error(a.id, d.id, rid, "Call Variable is protected",
                                 "CF_CALL_VARIABLE_PROTECTED", "")
                return
            if wrapup is not None:
                d.wrapup = wrapup
            for n, v in callvars or ():
                for cv in d.callvars:
                    if cv[0] == n:
                        cv[1] = v
                        break
                else:
                    d.callvars.append([n, v])
            self.pub_dialog(d, [x for x in d.agent_ids() if x in self.agents and
                                d.id in self.agents[x].dialogs], "PUT", rid)
        elif action == "CONSULT_CALL":
            p.set("HELD")
            self.pub_dialog(d, d.agent_ids(), "PUT", rid)
            self.place_call(a, to, "CONSULT", [list(cv) for cv in d.callvars], assoc=d, rid=rid)
            self.recompute(a)
        elif action == "TRANSFER_SST":
            tgt = self.agent_by_ext(to)
            d.call_type = "TRANSFER"
            if tgt is not None and tgt.id != a.id:
                self.add_agent_part(d, tgt, "ALERTING")
                self.leave(d, p, rid)
                self.recompute(tgt)
                self.pub_dialog(d, [tgt.id], "POST")
            else:
                d.parts.append(Part(to, None, "ALERTING"))
                self.leave(d, p, rid)
                if self.args.remote_answer_ms > 0:
                    self.sched.later(self.args.remote_answer_ms / 1000.0, self.remote_answer, d.id)
        elif action in ("TRANSFER", "CONFERENCE"):
            orig, cons = self.consult_pair(d, a.id)
            po, pc = orig.part_of(a.id), cons.part_of(a.id)
            others = [x for x in cons.parts if x is not pc and x.state not in ("DROPPED", "WRAP_UP")]
            # the consult call merges into the original; the original keeps its id
            cons.ended = True
            for x in others:
                cons.parts.remove(x)
                x.set("ACTIVE")
                orig.parts.append(x)
            orig.secondary = cons.id
            orig.assoc = cons.assoc = ""
            pc.set("DROPPED")
            a.dialogs.remove(cons.id)
            self.pub_dialog(cons, [a.id], "DELETE", rid)
            for x in others:
                if x.agent:
                    tg = self.agents[x.agent]
                    if cons.id in tg.dialogs:
                        tg.dialogs.remove(cons.id)
                        self.pub_dialog(cons, [tg.id], "DELETE")
                    tg.dialogs.append(orig.id)
            self.dialogs.pop(cons.id, None)
            newcomers = [x.agent for x in others if x.agent]
            if action == "CONFERENCE":
                po.set("ACTIVE")
                orig.call_type = "CONFERENCE"
                self.pub_dialog(orig, [x for x in orig.agent_ids() if x not in newcomers], "PUT", rid)
                self.pub_dialog(orig, newcomers, "POST")
                for aid in orig.agent_ids():
                    self.recompute(self.agents[aid])
            else:
                self.pub_dialog(orig, newcomers, "POST")
                for aid in newcomers:
                    self.recompute(self.agents[aid])
                self.leave(orig, po, rid)

    def make_call(self, a, to, callvars=None, rid=""):
        if a.state == "LOGOUT":
            raise bad_state("Agent is logged out", "LOGOUT")
        if not to or not re.match(r"^[\x21-\x7e]{1,40}$", to):
            raise bad_input("Invalid toAddress", to or "")
        if a.state in CALL_STATES:
            # a second call while on a call (UCCE: hold first) -> CTI rejects
            self.async_error(a.id, "", rid)
            return
        tgt = self.agent_by_ext(to)
        self.place_call(a, to, "AGENT_INSIDE" if tgt is not None else "OUT", callvars, rid=rid)

    def remote_hangup(self, d):
        remote = [p for p in d.parts if not p.agent and p.state != "DROPPED"]
        for p in remote:
            p.set("DROPPED")
        if len(d.live()) >= 2 and remote:
            self.pub_dialog(d, d.agent_ids(), "PUT")
            return
        self.end_dialog(d)

    # ---- presence ---------------------------------------------------------
    def presence_update(self, node, users, full=False):
        with self.lock:
            if full:
                self.presence[node] = {}
            for name, n in users:
                if n > 0:
                    self.presence[node][name] = n
                else:
                    self.presence[node].pop(name, None)
            now = time.time()
            for name, _ in users:
                a = self.agents.get(name)
                if a is not None and not self.available(a):
                    a.unavail_since = now
            if full:
                for a in self.agents.values():
                    if not self.available(a):
                        a.unavail_since = min(a.unavail_since, now) if a.state != "LOGOUT" else now

    def node_lost(self, node):
        with self.lock:
            now = time.time()
            for name in list(self.presence[node]):
                self.presence[node].pop(name, None)
                a = self.agents.get(name)
                if a is not None and not self.available(a):
                    a.unavail_since = now

    def available(self, a):
        return self.presence["A"].get(a.id, 0) > 0 or self.presence["B"].get(a.id, 0) > 0

    def presence_watch(self):
        grace = self.args.presence_grace_s
        while grace > 0:
            time.sleep(min(0.25, grace / 4))
            now = time.time()
            with self.lock:
                for a in self.agents.values():
                    if a.state == "LOGOUT" or self.available(a) or a.forced_pending:
                        continue
                    if now - a.unavail_since < grace:
                        continue
                    self.stats["forced_logouts"] += 1
                    if a.state in CALL_STATES:
                        a.forced_pending = True
                        a.pending, a.pending_reason = "LOGOUT", "255"
                        self.pub_user(a)
                    else:
                        self.logout(a, "255")

    # ---- nodes ------------------------------------------------------------
    def set_node(self, node, status, xmpp=None):
        with self.lock:
            old = self.node_status[node]
            self.node_status[node] = status
            if old != status:
                for a in self.agents.values():
                    self.deliver_sysinfo(a.id, node)
                if status == "IN_SERVICE":
                    # republish last state of agents and calls (finesse.md §3)
                    for a in self.agents.values():
                        if a.state != "LOGOUT":
                            self.deliver_user_only(a, node)
        if xmpp == "drop":
            link = self.links.get(node)
            if link is not None:
                link.send(("<message from='%s' to='%s'><kill-sessions xmlns='%s'/></message>"
                           % (self.pubsub, self.domain, NS_SIM)).encode())

    def deliver_sysinfo(self, aid, node):
        upd = ("<Update><data><systemInfo>%s</systemInfo></data><event>PUT</event><requestId></requestId>"
               "<source>/finesse/api/SystemInfo</source></Update>" % self.sysinfo_body(node))
        self.deliver(aid, "/finesse/api/SystemInfo", upd, only_node=node)

    def deliver_user_only(self, a, node):
        upd = ("<Update><data><user>%s</user></data><event>PUT</event><requestId></requestId>"
               "<source>/finesse/api/User/%s</source></Update>" % (user_body(a), a.id))
        self.deliver(a.id, "/finesse/api/User/%s" % a.id, upd, only_node=node)

    def sysinfo_body(self, node):
        ar = self.args

        def nd(host, port, xport):
            return ("<host>%s</host><httpsPort>%s</httpsPort><xmppPort>%s</xmppPort>"
                    "<xmppSecurePort></xmppSecurePort>" % (esc(host), port, xport or ""))
        return ("<currentTimestamp>%s</currentTimestamp><deploymentType>UCCE</deploymentType>"
                "<lastCTIHeartbeatStatus>true</lastCTIHeartbeatStatus><license></license>"
                "<peripheralId>5000</peripheralId><primaryNode>%s</primaryNode>"
                "<secondaryNode>%s</secondaryNode><status>%s</status><statusReason></statusReason>"
                "<systemAuthMode>%s</systemAuthMode><timezoneOffset>0</timezoneOffset>"
                "<uri>/finesse/api/SystemInfo</uri><xmppDomain>%s</xmppDomain>"
                "<xmppPubSubDomain>%s</xmppPubSubDomain>"
                % (ts(), nd(ar.host_a, self.ports.get("A"), ar.xmpp_port_a),
                   nd(ar.host_b, self.ports.get("B"), ar.xmpp_port_b), self.node_status[node],
                   self.auth_mode, esc(self.domain), esc(self.pubsub)))


def _consteq(a, b):
    import hmac
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


# --------------------------------------------------------------------------
# Timers

class Scheduler:
    """call_later for state changes (runs fn under the sim lock)."""

    def __init__(self, lock):
        self.lock = lock
        self.heap = []
        self.cv = threading.Condition()
        self.seq = itertools.count()
        threading.Thread(target=self.run, daemon=True, name="sched").start()

    def later(self, delay, fn, *args):
        with self.cv:
            heapq.heappush(self.heap, (time.monotonic() + delay, next(self.seq), fn, args))
            self.cv.notify()

    def run(self):
        while True:
            with self.cv:
                while not self.heap or self.heap[0][0] > time.monotonic():
                    self.cv.wait(None if not self.heap else self.heap[0][0] - time.monotonic())
                _, _, fn, args = heapq.heappop(self.heap)
            try:
                with self.lock:
                    fn(*args)
            except Exception as e:   # keep the timer thread alive
                sys.stderr.write("finesse-sim: timer %r failed: %r\n" % (fn, e))


# --------------------------------------------------------------------------
# XEP-0114 component link to one prosody

class ComponentLink:
    def __init__(self, sim, node, host, port, secret):
        self.sim, self.node, self.host, self.port, self.secret = sim, node, host, port, secret
        self.q = queue.Queue()
        self.connected = False
        self.connects = 0
        self.sock = None
        threading.Thread(target=self.run, daemon=True, name="xmpp-%s" % node).start()

    def send(self, data):
        if not self.connected:
            return False
        self.q.put(data)
        return True

    def run(self):
        backoff = 0.1
        while True:
            try:
                self.session()
                backoff = 0.1
            except Exception as e:
                vlog("component %s: %r" % (self.node, e))
            if self.connected:
                self.connected = False
            self.sim.node_lost(self.node)
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    def session(self):
        s = socket.create_connection((self.host, self.port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        try:
            s.sendall(("<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                       "xmlns:stream='http://etherx.jabber.org/streams' to='%s'>"
                       % self.sim.pubsub).encode())
            parser = ET.XMLPullParser(events=("start", "end"))
            depth = 0
            stream_id = None
            buf_events = []

            def pump(need):
                nonlocal depth, stream_id
                while True:
                    for ev, el in parser.read_events():
                        if ev == "start":
                            depth += 1
                            if depth == 1:
                                stream_id = el.get("id")
                        else:
                            depth -= 1
                            if depth == 1:
                                buf_events.append(el)
                    r = need()
                    if r:
                        return r
                    data = s.recv(65536)
                    if not data:
                        raise ConnectionError("prosody closed the component stream")
                    parser.feed(data)

            pump(lambda: stream_id)
            digest = hashlib.sha1((stream_id + self.secret).encode()).hexdigest()
            s.sendall(("<handshake>%s</handshake>" % digest).encode())

            def handshake():
                for el in buf_events:
                    if el.tag.endswith("handshake"):
                        return True
                    if el.tag.endswith("error"):
                        raise ConnectionError("component handshake refused: %s"
                                              % ET.tostring(el)[:200])
                return False
            pump(handshake)
            buf_events.clear()
            s.settimeout(None)
            # drain anything queued while we were away (stale), then go live
            while not self.q.empty():
                self.q.get_nowait()
            self.connected = True
            self.connects += 1
            vlog("component %s connected to %s:%d" % (self.node, self.host, self.port))
            s.sendall(("<message from='%s' to='%s'><sync xmlns='%s'/></message>"
                       % (self.sim.pubsub, self.sim.domain, NS_SIM)).encode())
            w = threading.Thread(target=self.writer, args=(s,), daemon=True)
            w.start()
            root = None
            while True:
                data = s.recv(65536)
                if not data:
                    raise ConnectionError("prosody closed the component stream")
                parser.feed(data)
                for ev, el in parser.read_events():
                    if ev == "start":
                        depth += 1
                        if depth == 1:
                            root = el
                    else:
                        depth -= 1
                        if depth == 1:
                            self.stanza(el)
                            if root is not None:
                                root.clear()
        finally:
            self.connected = False
            self.q.put(None)
            try:
                s.close()
            except OSError:
                pass

    def writer(self, s):
        try:
            while True:
                item = self.q.get()
                if item is None:
                    return
                chunks = [item]
                size = len(item)
                while size < 256 * 1024:
                    try:
                        nxt = self.q.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        s.sendall(b"".join(chunks))
                        return
                    chunks.append(nxt)
                    size += len(nxt)
                s.sendall(b"".join(chunks))
        except OSError as e:
            vlog("component %s writer: %r" % (self.node, e))
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stanza(self, el):
        pres = el.find("{%s}fsc-presence" % NS_SIM)
        if pres is not None:
            users = []
            for u in pres.findall("{%s}user" % NS_SIM):
                try:
                    users.append((u.get("name"), int(u.get("available") or 0)))
                except ValueError:
                    pass
            vlog("presence %s %s%r" % (self.node, "full " if pres.get("full") else "", users))
            self.sim.presence_update(self.node, users, full=bool(pres.get("full")))
            return
        if el.get("type") == "error":
            self.sim.stats["bounces_" + self.node] += 1


# --------------------------------------------------------------------------
# HTTP

def parse_xml(body):
    if len(body) > MAX_BODY:
        raise ApiError(400, "Invalid Input", "Request body too large", "")
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise bad_input("DTDs are not allowed")
    try:
        return ET.fromstring(body)
    except ET.ParseError as e:
        raise bad_input("Invalid XML: %s" % e)


def text(el, name):
    c = el.find(name)
    if c is None:
        return None
    return (c.text or "").strip()


def parse_callvars(el):
    out = []
    if el is None:
        return out
    for cv in el.findall("CallVariable"):
        n, v = text(cv, "name"), text(cv, "value")
        if n:
            out.append([n, v or ""])
    return out


RE_USER = re.compile(r"^/finesse/api/User/([^/]+)(/Dialogs|/ReasonCodes|/WrapUpReasons)?/?$")
RE_DIALOG = re.compile(r"^/finesse/api/Dialog/([^/]+)/?$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "finesse-sim"
    sys_version = ""

    def log_message(self, fmt, *args):
        if VERBOSE:
            sys.stderr.write("[finesse-sim %s] %s %s\n" % (self.server.node or "ctl", self.address_string(),
                                                          fmt % args))

    def do_GET(self):
        self.dispatch("GET")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raise ApiError(411, "Invalid Input", "Length Required", "")
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.close_connection = True
            raise ApiError(400, "Invalid Input", "Request body too large", "")
        return self.rfile.read(n) if n > 0 else b""

    def reply(self, status, body=b"", ctype="application/xml", extra=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        if body:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        rid = self.headers.get("requestId")
        if rid is not None:
            self.send_header("requestId", rid)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def dispatch(self, method):
        sim = self.server.sim
        u = urllib.parse.urlsplit(self.path)
        path = u.path
        try:
            if path.startswith("/sim/") or path == "/sim":
                return self.control(method, path, u.query)
            if self.server.node is None:
                raise ApiError(404, "Not Found", "Not Found", path)
            proxy = sim.ws.get(self.server.node)
            if method == "GET" and proxy is not None and proxy.matches(path):
                return self.websocket(proxy)
            return self.finesse(method, path, urllib.parse.parse_qs(u.query))
        except ApiError as e:
            sim.stats["http_%d" % e.status] += 1
            if path.startswith("/sim"):
                return self.reply(e.status, json.dumps({"error": e.etype, "detail": e.message}),
                                  "application/json")
            extra = {"WWW-Authenticate": 'Basic realm="Finesse"'} if e.status == 401 else None
            self.reply(e.status, api_errors(e.etype, e.message, e.data), extra=extra)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
        except Exception as e:
            import traceback
            traceback.print_exc()
            self.reply(500, api_errors("Internal Error", "RUNTIME_EXCEPTION", repr(e)[:200]))

    def websocket(self, proxy):
        """GET /ws with Upgrade: websocket: proxied to this node's prosody."""
        self.server.sim.req_stats["GET websocket"] += 1
        try:
            proxy.handle(self)
        except ws_proxy.WsRefused as e:
            self.close_connection = True
            raise ApiError(e.status, e.etype, e.message)

    # ---- Finesse REST -----------------------------------------------------
    def finesse(self, method, path, q):
        sim = self.server.sim
        node = self.server.node
        delay = sim.rest_delay
        if delay and time.monotonic() < delay[1]:
            time.sleep(delay[0])     # a slow Finesse (POST /sim/rest_delay)
        if path in ("/finesse/api/SystemInfo", "/finesse/api/SystemInfo/"):
            sim.req_stats["%s SystemInfo" % method] += 1
            if method != "GET":
                raise ApiError(405, "Method Not Allowed", "Method Not Allowed", method)
            with sim.lock:
                return self.reply(200, "<SystemInfo>%s</SystemInfo>" % sim.sysinfo_body(node))
        if sim.node_status[node] != "IN_SERVICE":
            sim.req_stats["%s OUT_OF_SERVICE" % method] += 1
            body = self.body() if method in ("PUT", "POST") else b""
            return self.reply(503, "<ApiErrors><ApiError><ErrorType>Service Unavailable</ErrorType>"
                                   "<ErrorData></ErrorData><ErrorMessage>SERVER_OUT_OF_SERVICE"
                                   "</ErrorMessage></ApiError></ApiErrors>")
        body = self.body() if method in ("PUT", "POST") else b""
        rid = self.headers.get("requestId") or ""
        me = sim.authenticate(self.headers.get("Authorization"))
        if path in ("/finesse/api/User", "/finesse/api/User/"):
            sim.req_stats["%s User?loginName" % method] += 1
            if method != "GET":
                raise ApiError(405, "Method Not Allowed", "Method Not Allowed", method)
            name = (q.get("loginName") or [""])[0]
            if not name:
                raise ApiError(400, "Parameter Missing", "loginName is required", "loginName")
            # by loginName only: a loginId is read with GET User/{id}
            a = sim.by_login.get(name.lower())
            if a is None:
                raise ApiError(404, "Not Found", "User Not Found", name)
            if a is not me:
                raise ApiError(401, "Authorization Failure", "UNAUTHORIZED", me.id)
            with sim.lock:
                return self.reply(200, user_xml(a))
        m = RE_USER.match(path)
        if m:
            uid, sub = m.group(1), m.group(2) or ""
            sim.req_stats["%s User%s" % (method, sub)] += 1
            if uid not in sim.agents:
                raise ApiError(404, "Not Found", "User Not Found", uid)
            if uid != me.id:
                raise ApiError(401, "Authorization Failure", "UNAUTHORIZED", me.id)
            a = me
            if sub == "" and method == "GET":
                with sim.lock:
                    return self.reply(200, user_xml(a))
            if sub == "" and method == "PUT":
                el = parse_xml(body)
                if el.tag != "User":
                    raise bad_input("Expected <User>", el.tag)
                state = text(el, "state")
                if not state:
                    raise ApiError(400, "Parameter Missing", "state is required", "state")
                with sim.lock:
                    sim.user_put(a, state, text(el, "extension"), text(el, "reasonCodeId"), rid)
                return self.reply(202)
            if sub == "/Dialogs" and method == "GET":
                with sim.lock:
                    ds = [sim.dialogs[i] for i in a.dialogs if i in sim.dialogs]
                    return self.reply(200, "<Dialogs>%s</Dialogs>" % "".join(
                        "<Dialog>%s</Dialog>" % sim.dialog_body(d) for d in ds))
            if sub == "/Dialogs" and method == "POST":
                el = parse_xml(body)
                if el.tag != "Dialog":
                    raise bad_input("Expected <Dialog>", el.tag)
                if text(el, "requestedAction") != "MAKE_CALL":
                    raise bad_input("Invalid requestedAction", text(el, "requestedAction") or "")
                frm = text(el, "fromAddress")
                mp = el.find("mediaProperties")
                cvs = parse_callvars(mp.find("callvariables")) if mp is not None else []
                with sim.lock:
                    if frm and frm != a.extension:
                        raise bad_input("fromAddress is not the agent's extension", frm)
                    sim.make_call(a, text(el, "toAddress"), cvs, rid)
                return self.reply(202)
            if sub == "/ReasonCodes" and method == "GET":
                cat = (q.get("category") or [""])[0]
                if cat not in ("NOT_READY", "LOGOUT"):
                    raise bad_input("Invalid category", cat)
                codes = NOT_READY_CODES if cat == "NOT_READY" else LOGOUT_CODES
                return self.reply(200, '<ReasonCodes category="%s">%s</ReasonCodes>' % (cat, "".join(
                    "<ReasonCode><uri>/finesse/api/ReasonCode/%s</uri><category>%s</category><code>%s"
                    "</code><label>%s</label><forAll>true</forAll><systemCode>false</systemCode>"
                    "<id>%s</id></ReasonCode>" % (rid_, cat, code, esc(label), rid_)
                    for rid_, code, label in codes)))
            if sub == "/WrapUpReasons" and method == "GET":
                return self.reply(200, "<WrapUpReasons>%s</WrapUpReasons>" % "".join(
                    "<WrapUpReason><uri>/finesse/api/User/%s/WrapUpReason/%s</uri><label>%s</label>"
                    "<forAll>true</forAll><id>%s</id></WrapUpReason>" % (a.id, i, esc(label), i)
                    for i, label in WRAPUP_REASONS))
            raise ApiError(405, "Method Not Allowed", "Method Not Allowed", method)
        m = RE_DIALOG.match(path)
        if m:
            did = m.group(1)
            sim.req_stats["%s Dialog" % method] += 1
            with sim.lock:
                d = sim.dialogs.get(did)
                if d is None or did not in me.dialogs:
                    if d is None or d.part_of(me.id) is None:
                        raise ApiError(404, "Not Found", "Invalid dialogId specified for dialog", did)
                if method == "GET":
                    return self.reply(200, "<Dialog>%s</Dialog>" % sim.dialog_body(d))
                if method != "PUT":
                    raise ApiError(405, "Method Not Allowed", "Method Not Allowed", method)
            el = parse_xml(body)
            if el.tag != "Dialog":
                raise bad_input("Expected <Dialog>", el.tag)
            action = text(el, "requestedAction")
            if not action:
                raise ApiError(400, "Parameter Missing", "requestedAction is required", "requestedAction")
            dtmf = None
            for ap in el.findall("actionParams/ActionParam"):
                if text(ap, "name") == "dtmfString":
                    dtmf = text(ap, "value")
            mp = el.find("mediaProperties")
            wrap = cvs = None
            if mp is not None:
                wrap = text(mp, "wrapUpReason")
                cvs = parse_callvars(mp.find("callvariables"))
            with sim.lock:
                d = sim.dialogs.get(did)
                if d is None:
                    raise ApiError(404, "Not Found", "Invalid dialogId specified for dialog", did)
                sim.dialog_action(me, d, action, to=text(el, "toAddress"), dtmf=dtmf, wrapup=wrap,
                                  callvars=cvs, target=text(el, "targetMediaAddress"), rid=rid)
            return self.reply(202)
        sim.req_stats["%s other" % method] += 1
        raise ApiError(404, "Not Found", "Not Found", path)

    # ---- control API ------------------------------------------------------
    def jreply(self, status, obj):
        self.reply(status, json.dumps(obj), "application/json")

    def jbody(self):
        raw = self.body()
        if not raw:
            return {}
        try:
            obj = json.loads(raw)
        except ValueError:
            raise ApiError(400, "bad_request", "body is not JSON")
        if not isinstance(obj, dict):
            raise ApiError(400, "bad_request", "body must be a JSON object")
        return obj

    def control(self, method, path, query):
        sim = self.server.sim
        parts = [p for p in path.split("/") if p][1:]
        sim.req_stats["sim %s %s" % (method, parts[0] if parts else "")] += 1
        if method in ("POST", "PUT"):
            b = self.jbody()
        if parts == ["stats"] and method == "GET":
            with sim.lock:
                return self.jreply(200, {
                    "requests": dict(sim.req_stats), "notifications": dict(sim.sent),
                    "async_errors": sim.stats["async_errors"], "counters": dict(sim.stats),
                    "nodes": {n: {"status": sim.node_status[n],
                                  "xmpp_connected": bool(sim.links.get(n) and sim.links[n].connected),
                                  "xmpp_connects": sim.links[n].connects if sim.links.get(n) else 0,
                                  "queue": sim.links[n].q.qsize() if sim.links.get(n) else 0,
                                  "present": len(sim.presence[n]),
                                  "websocket": sim.ws[n].stats() if n in sim.ws else None}
                              for n in ("A", "B")},
                    "agents": len(sim.agents), "dialogs": len(sim.dialogs)})
        if parts == ["calls"] and method == "POST":
            aid = str(b.get("agent") or "")
            cvs = []
            for k, v in (b.get("callvariables") or {}).items():
                cvs.append([str(k), str(v)])
            for k, v in (b.get("ecc") or {}).items():
                k = str(k)
                cvs.append([k if k.startswith("user.") else "user." + k, str(v)])
            with sim.lock:
                a = sim.agents.get(aid)
                if a is None:
                    raise ApiError(404, "unknown_agent", "no agent %r" % aid)
                d = sim.inbound_call(a, str(b.get("ani") or "+14155550100"), str(b.get("dnis") or "8000"),
                                     str(b.get("queue") or "Sales"), cvs,
                                     str(b.get("call_type") or "ACD_IN"))
                if d is None:
                    raise ApiError(409, "agent_not_ready", "agent %s is %s, not READY" % (aid, a.state))
                return self.jreply(200, {"dialog_id": d.id})
        if len(parts) >= 2 and parts[0] == "calls":
            with sim.lock:
                d = sim.dialogs.get(parts[1])
                if d is None:
                    raise ApiError(404, "unknown_dialog", "no dialog %r" % parts[1])
                if len(parts) == 2 and method == "GET":
                    return self.jreply(200, sim.dialog_json(d))
                verb = parts[2] if len(parts) == 3 else ""
                if method == "POST" and verb == "hangup":
                    sim.remote_hangup(d)
                    return self.jreply(200, {"ok": True})
                if method == "POST" and verb == "answer":
                    return self.jreply(200, {"ok": sim.remote_answer(d.id)})
                if method == "POST" and verb in ("action", "transfer-in", "consult-in"):
                    return self.sim_action(d, verb, b)
            raise ApiError(404, "not_found", path)
        if parts == ["node"] and method == "POST":
            node = str(b.get("node") or "A").upper()
            status = str(b.get("status") or "")
            if node not in ("A", "B") or status not in ("IN_SERVICE", "OUT_OF_SERVICE"):
                raise ApiError(400, "bad_request", "node A|B, status IN_SERVICE|OUT_OF_SERVICE")
            sim.set_node(node, status, b.get("xmpp"))
            return self.jreply(200, {"node": node, "status": status})
        if parts == ["agents"] and method == "POST":
            aid = str(b.get("id") or "")
            if not re.match(r"^[0-9A-Za-z._-]{1,32}$", aid) or not b.get("password"):
                raise ApiError(400, "bad_request", "id (alnum) and password are required")
            try:
                a = sim.add_agent(aid, str(b["password"]), str(b.get("extension") or aid),
                                  str(b.get("login_name") or aid), b.get("first_name"),
                                  b.get("last_name"), b.get("wrap_up_on_incoming"),
                                  b.get("wrap_up_on_outgoing"))
            except ValueError as e:
                raise ApiError(409, "exists", str(e))
            with sim.lock:
                return self.jreply(200, sim.agent_json(a))
        if len(parts) >= 2 and parts[0] == "agents":
            with sim.lock:
                a = sim.agents.get(parts[1])
                if a is None:
                    raise ApiError(404, "unknown_agent", "no agent %r" % parts[1])
                if len(parts) == 2 and method == "GET":
                    return self.jreply(200, sim.agent_json(a))
                if len(parts) == 3 and parts[2] == "state" and method == "POST":
                    try:
                        sim.user_put(a, str(b.get("state") or ""), b.get("extension"),
                                     b.get("reason_code_id"), str(b.get("request_id") or ""))
                    except ApiError as e:
                        raise ApiError(e.status, e.etype, e.message)
                    return self.jreply(200, sim.agent_json(a))
                if len(parts) == 3 and parts[2] == "settings" and method == "POST":
                    if b.get("wrap_up_on_incoming"):
                        a.wrap_in = str(b["wrap_up_on_incoming"])
                    if b.get("wrap_up_on_outgoing"):
                        a.wrap_out = str(b["wrap_up_on_outgoing"])
                    if b.get("password"):
                        a.password = str(b["password"])
                        sim.write_auth(a)
                    if "drop_notifications" in b:
                        a.drop_notifications = max(0, int(b["drop_notifications"]))
                    return self.jreply(200, sim.agent_json(a))
            raise ApiError(404, "not_found", path)
        if parts and parts[0] == "websocket" and method == "POST":
            return self.websocket_control(parts[1:], b)
        if parts == ["rest_delay"] and method == "POST":
            ms, for_s = int(b.get("ms") or 0), float(b.get("for_s") or 60)
            if not 0 <= ms <= 30000 or not 0 < for_s <= 3600:
                raise ApiError(400, "bad_request", "ms 0..30000, for_s 0..3600")
            sim.rest_delay = (ms / 1000.0, time.monotonic() + for_s) if ms else None
            return self.jreply(200, {"ms": ms, "for_s": for_s})
        if parts == ["faults"] and method == "POST":
            aid = str(b.get("agent") or "")
            if aid not in sim.agents:
                raise ApiError(404, "unknown_agent", "no agent %r" % aid)
            node = b.get("node")
            if node not in (None, "A", "B"):
                raise ApiError(400, "bad_request", "node must be A or B")
            with sim.lock:
                if "stanza" in b:
                    sim.deliver(aid, "", str(b["stanza"]), only_node=node, raw=True)
                else:
                    payload = str(b.get("notification") or "")
                    if b.get("size"):
                        payload += "x" * max(0, int(b["size"]) - len(payload))
                    sim.deliver(aid, str(b.get("items_node") or "/finesse/api/User/%s" % aid),
                                payload, only_node=node)
                sim.stats["faults_sent"] += 1
            return self.jreply(200, {"ok": True})
        raise ApiError(404, "not_found", path)

    def websocket_control(self, verb, b):
        """POST /sim/websocket {"node","mode"}, /sim/websocket/drop {"node","agent"},
        /sim/websocket/inject {"node","agent","kind","bytes","text","fragments"}."""
        sim = self.server.sim
        node = b.get("node")
        if node not in (None, "A", "B"):
            raise ApiError(400, "bad_request", "node must be A, B or null")
        proxies = [sim.ws[n] for n in ("A", "B") if n in sim.ws and node in (None, n)]
        if not proxies:
            raise ApiError(409, "websocket_disabled", "no WebSocket upstream for node %s" % (node or "A/B"))
        agent = b.get("agent")
        agent = None if agent is None else str(agent)
        if verb == []:
            mode = str(b.get("mode") or "")
            if mode not in ws_proxy.MODES:
                raise ApiError(400, "bad_request", "mode must be one of %s" % ", ".join(ws_proxy.MODES))
            for p in proxies:
                p.set_mode(mode)
            return self.jreply(200, {"nodes": [p.node for p in proxies], "mode": mode})
        if verb == ["drop"]:
            return self.jreply(200, {"dropped": sum(p.drop(agent) for p in proxies)})
        if verb == ["inject"]:
            try:
                nbytes = None if b.get("bytes") is None else int(b["bytes"])
                frames = ws_proxy.inject_frames(str(b.get("kind") or ""), nbytes, b.get("text"),
                                                int(b.get("fragments") or 1), sim.domain, agent or "")
            except (TypeError, ValueError) as e:
                raise ApiError(400, "bad_request", str(e))
            n = sum(p.inject(agent, frames) for p in proxies)
            sim.stats["websocket_injected"] += n
            return self.jreply(200, {"injected": n})
        raise ApiError(404, "not_found", "/sim/websocket/" + "/".join(verb))

    def sim_action(self, d, verb, b):
        """Drive a dialog on behalf of an agent (no auth), e.g. the "other agent" of a
        consult or transfer. transfer-in / consult-in: the agent currently on the call
        (or b["by"]) does TRANSFER_SST / CONSULT_CALL to b["agent"]'s extension."""
        sim = self.server.sim
        if verb == "action":
            actor = sim.agents.get(str(b.get("agent") or ""))
            action = str(b.get("action") or "")
            to = b.get("to")
        else:
            tgt = sim.agents.get(str(b.get("agent") or ""))
            if tgt is None or tgt.state == "LOGOUT":
                raise ApiError(409, "target_unavailable", "target agent must be logged in")
            to = tgt.extension
            actor = sim.agents.get(str(b.get("by") or ""))
            if actor is None:
                for p in d.parts:
                    if p.agent and p.state == "ACTIVE":
                        actor = sim.agents[p.agent]
                        break
            action = "TRANSFER_SST" if verb == "transfer-in" else "CONSULT_CALL"
        if actor is None or d.part_of(actor.id) is None:
            raise ApiError(409, "no_actor", "no agent on this call to act")
        cvs = [[str(k), str(v)] for k, v in (b.get("callvariables") or {}).items()] or None
        try:
            sim.dialog_action(actor, d, action, to=to, dtmf=b.get("digits"),
                              wrapup=b.get("wrap_up_reason"), callvars=cvs,
                              rid=str(b.get("request_id") or ""))
        except ApiError as e:
            raise ApiError(e.status, e.etype, e.message)
        consult = d.assoc if action == "CONSULT_CALL" else ""
        return self.jreply(200, {"ok": True, "dialog_id": d.id, "consult_dialog_id": consult})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, addr, sim, node, ctx=None):
        ThreadingHTTPServer.__init__(self, addr, Handler)
        self.sim, self.node, self.ctx = sim, node, ctx

    def get_request(self):
        s, a = self.socket.accept()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ctx is not None:
            s = self.ctx.wrap_socket(s, server_side=True)
        return s, a


def hostport(s):
    h, _, p = s.rpartition(":")
    return h or "127.0.0.1", int(p)


def main():
    global VERBOSE
    ap = argparse.ArgumentParser(description="Cisco Finesse A/B simulator")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port-a", type=int, default=0)
    ap.add_argument("--port-b", type=int, default=0)
    ap.add_argument("--control-port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--host-a", default="127.0.0.1", help="SystemInfo primaryNode/host")
    ap.add_argument("--host-b", default="127.0.0.1", help="SystemInfo secondaryNode/host")
    ap.add_argument("--xmpp-domain", default="finesse.test")
    ap.add_argument("--prosody-a", help="HOST:PORT of node A prosody's component port")
    ap.add_argument("--prosody-b", help="HOST:PORT of node B prosody's component port")
    ap.add_argument("--xmpp-port-a", type=int, help="node A c2s port (SystemInfo xmppPort)")
    ap.add_argument("--xmpp-port-b", type=int, help="node B c2s port (SystemInfo xmppPort)")
    ap.add_argument("--component-secret", default="")
    ap.add_argument("--component-secret-file")
    ap.add_argument("--data-dir", help="auth files for mod_auth_fsc_sim go to DIR/auth")
    ap.add_argument("--agents", type=int, default=0)
    ap.add_argument("--presence-grace-s", type=float, default=60.0)
    ap.add_argument("--ids-public-key")
    ap.add_argument("--ids-issuer")
    ap.add_argument("--ids-url", help="ids-sim base URL: Bearer tokens of any shape are checked "
                    "with its /sim/tokens/introspect (as Finesse asks IdS)")
    ap.add_argument("--auth-mode", choices=("NON_SSO", "SSO", "HYBRID"))
    ap.add_argument("--wrap-up", default="OPTIONAL",
                    choices=("OPTIONAL", "REQUIRED", "REQUIRED_WITH_WRAP_UP_DATA", "NOT_ALLOWED"))
    ap.add_argument("--remote-answer-ms", type=int, default=300)
    ap.add_argument("--tls-cert", help="serve the node ports over HTTPS (and /ws as wss://)")
    ap.add_argument("--tls-key")
    ap.add_argument("--ws-upstream-a", help="HOST:PORT of node A prosody's HTTP port (mod_websocket)")
    ap.add_argument("--ws-upstream-b", help="HOST:PORT of node B prosody's HTTP port (mod_websocket)")
    ap.add_argument("--ws-path", default="/ws", help="WebSocket path on the node ports and at prosody")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    VERBOSE = args.verbose
    if not args.ws_path.startswith("/"):
        ap.error("--ws-path must start with /")
    if args.component_secret_file:
        with open(args.component_secret_file) as f:
            args.component_secret = f.read().strip()
    threading.stack_size(512 * 1024)
    sim = Sim(args)
    ctx = None
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
    servers = {"A": Server((args.bind, args.port_a), sim, "A", ctx),
               "B": Server((args.bind, args.port_b), sim, "B", ctx),
               "control": Server((args.bind, args.control_port), sim, None)}
    sim.ports = {k: s.server_address[1] for k, s in servers.items()}
    for node, spec in (("A", args.ws_upstream_a), ("B", args.ws_upstream_b)):
        if spec:
            sim.ws[node] = ws_proxy.WsProxy(node, hostport(spec), args.ws_path, args.xmpp_domain, vlog)
    for node, spec in (("A", args.prosody_a), ("B", args.prosody_b)):
        if spec:
            h, p = hostport(spec)
            sim.links[node] = ComponentLink(sim, node, h, p, args.component_secret)
    for s in servers.values():
        threading.Thread(target=s.serve_forever, daemon=True).start()
    threading.Thread(target=sim.presence_watch, daemon=True, name="presence").start()
    ports = {"a": sim.ports["A"], "b": sim.ports["B"], "control": sim.ports["control"]}
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(ports, f)
        os.replace(tmp, args.port_file)
    print("finesse-sim listening a=%d b=%d control=%d" % (ports["a"], ports["b"], ports["control"]),
          flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
