#!/usr/bin/python3
# SPDX-License-Identifier: AGPL-3.0-or-later
"""sf-sim: a Salesforce org for tests of fsc-connector.

Written against /work/shared/reference/salesforce.md, not against the connector.
Two HTTP listeners on 127.0.0.1, i.e. two origins:

  API origin   the login host and the instance: the OAuth 2.0 JWT bearer token
               endpoint and a REST subset (Task upsert on an external ID, GET by
               id, SOSL phone search, a one-clause SOQL), Salesforce-style errors,
               faults, a request log.
  UI origin    the "Lightning" org: a host page that frames the softphone like
               the utility bar, a fake record page with click-to-dial numbers, and
               an opencti_min.js stand-in (static/opencti_min.js) that speaks the
               real library's postMessage protocol to that host page. The host
               page records every sforce.opencti call at /sim/opencti.

The /sim/* control API is served on both origins. See README.md.
Standard library + python3-cryptography. Run with /usr/bin/python3.
"""

import argparse
import base64
import binascii
import collections
import datetime
import html
import http.server
import json
import os
import re
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC = os.path.join(HERE, "static")
MAX_BODY = 256 * 1024
JSON_CT = "application/json;charset=UTF-8"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ORG_ID = "00D5g000004SIMQEAW"
REQUEST_LOG_MAX = 100_000
OPENCTI_MAX = 20_000
UI_COMMANDS_MAX = 2_000
DATA_RE = re.compile(r"^/services/data/v(\d{2,3})\.0(/.*)?$")
OPENCTI_JS_RE = re.compile(r"^/support/api/(\d{2,3})\.0/lightning/opencti(_min)?\.js$")
ID_RE = re.compile(r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")
B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

PREFIX = {"Account": "001", "Contact": "003", "Lead": "00Q", "User": "005", "Task": "00T",
          "Case": "500", "Opportunity": "006"}
TYPE_OF_PREFIX = {v: k for k, v in PREFIX.items()}
PHONE_FIELDS = {"Contact": ["Phone", "MobilePhone", "HomePhone", "OtherPhone", "AssistantPhone"],
                "Lead": ["Phone", "MobilePhone"], "Account": ["Phone", "Fax"],
                "User": ["Phone", "MobilePhone"], "Case": [], "Opportunity": [], "Task": []}
# Fields each searchable/queryable object has (besides Id); Name is derived for people.
OBJECT_FIELDS = {
    "Contact": ["FirstName", "LastName", "Name", "Email", "Title", "AccountId", "OwnerId"],
    "Lead": ["FirstName", "LastName", "Name", "Email", "Company", "Status", "OwnerId"],
    "Account": ["Name", "Type", "Website", "OwnerId"],
    "User": ["FirstName", "LastName", "Name", "Username", "Email", "IsActive",
             "Finesse_Agent_Id__c", "CallCenterId"],
    "Case": ["CaseNumber", "Subject", "Status", "ContactId", "AccountId", "OwnerId"],
    "Opportunity": ["Name", "StageName", "AccountId", "OwnerId"],
}
for _t, _f in PHONE_FIELDS.items():
    if _t in OBJECT_FIELDS:
        OBJECT_FIELDS[_t] += _f
SYSTEM_FIELDS = ["CreatedDate", "LastModifiedDate", "SystemModstamp", "CreatedById",
                 "LastModifiedById", "IsDeleted"]

# Task fields from salesforce.md §2.1: name -> (kind, arg)
TASK_FIELDS = {
    "Subject": ("string", 255), "Status": ("picklist", 40), "Priority": ("picklist", 40),
    "CallType": ("restricted", ["Inbound", "Outbound", "Internal"]),
    "CallDurationInSeconds": ("int", 8), "CallObject": ("string", 255),
    "CallDisposition": ("string", 255), "ActivityDate": ("date", None),
    "WhoId": ("ref", ["Contact", "Lead"]), "WhatId": ("ref", ["Account", "Opportunity", "Case"]),
    "Description": ("string", 32000),
    "TaskSubtype": ("restricted", ["Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"]),
    "Type": ("picklist", 40), "OwnerId": ("ref", ["User"]),
}
TASK_READ_ONLY = {"Id", "AccountId", "IsClosed", "IsArchived", "IsRecurrence"} | set(SYSTEM_FIELDS)
TASK_REQUIRED = {"Status": "Not Started", "Priority": "Normal"}
TASK_CREATE_ONLY = {"TaskSubtype"}
REF_LABEL = {"WhoId": "Name ID", "WhatId": "Related To ID", "OwnerId": "Assigned To ID"}

FAULT_CODES = {400: "BAD_REQUEST", 401: "INVALID_SESSION_ID", 403: "REQUEST_LIMIT_EXCEEDED",
               404: "NOT_FOUND", 409: "CONFLICT", 500: "UNKNOWN_EXCEPTION",
               502: "SERVER_UNAVAILABLE", 503: "SERVER_UNAVAILABLE", 504: "SERVER_UNAVAILABLE"}
FAULT_MESSAGES = {"REQUEST_LIMIT_EXCEEDED": "TotalRequests Limit exceeded.",
                  "SERVER_UNAVAILABLE": "Server temporarily unavailable (sf-sim fault)",
                  "UNKNOWN_EXCEPTION": "An unexpected error occurred. Please include this "
                                       "ErrorId if you contact support: 1234567-89 (sf-sim fault)",
                  "INVALID_SESSION_ID": "Session expired or invalid"}

SCREENPOP_TYPES = ("url", "sobject", "objecthome", "list", "search", "newRecord", "flow")
CALL_TYPES = ("inbound", "outbound", "internal")

DEFAULT_LAYOUT = {
    "Inbound": {
        "callRelatedFields": ["ANI", "DNIS", "SEGMENT", "QUEUE"],
        "objects": {
            "Contact": [{"displayName": "Name", "apiName": "Name"},
                        {"displayName": "Phone", "apiName": "Phone"}],
            "Lead": [{"displayName": "Name", "apiName": "Name"},
                     {"displayName": "Phone", "apiName": "Phone"}],
            "Account": [{"displayName": "Account Name", "apiName": "Name"},
                        {"displayName": "Phone", "apiName": "Phone"}]},
        "screenPopSettings": {
            "NoMatch": {"screenPopType": "PopToEntity", "screenPopData": "Contact"},
            "MultipleMatches": {"screenPopType": "PopToSearch"}}},
    "Outbound": {
        "callRelatedFields": ["DNIS"],
        "objects": {"Contact": [{"displayName": "Name", "apiName": "Name"}],
                    "Lead": [{"displayName": "Name", "apiName": "Name"}],
                    "Account": [{"displayName": "Account Name", "apiName": "Name"}]},
        "screenPopSettings": {}},
    "Internal": {
        "callRelatedFields": ["ANI", "DNIS"],
        "objects": {"User": [{"displayName": "Name", "apiName": "Name"}]},
        "screenPopSettings": {}},
}


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def sf_date(t=None):
    d = datetime.datetime.fromtimestamp(time.time() if t is None else t, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03d+0000" % (d.microsecond // 1000)


def id18(id15):
    """The 18-character, case-insensitive form of a 15-character id."""
    suffix = ""
    for i in range(3):
        flags = 0
        for j in range(5):
            c = id15[i * 5 + j]
            if "A" <= c <= "Z":
                flags |= 1 << j
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[flags]
    return id15 + suffix


def make_id(prefix, n):
    body = ""
    for _ in range(8):
        n, r = divmod(n, 62)
        body = B62[r] + body
    return id18(prefix + "5g00" + body)


def norm_id(value):
    """18-char id for a syntactically valid 15/18-char id, else None."""
    if not isinstance(value, str) or not ID_RE.match(value):
        return None
    full = id18(value[:15])
    if len(value) == 18 and value[15:].upper() != full[15:]:
        return None
    return full


def digits(s):
    return re.sub(r"\D", "", s or "")


def phone_match(term_digits, value):
    """Suffix match on digits: the shorter is a suffix of the longer, >= 7 digits."""
    d = digits(value)
    if not d or not term_digits:
        return False
    short, long_ = sorted((d, term_digits), key=len)
    return len(short) >= 7 and long_.endswith(short)


def sf_err(code, message, fields=None):
    e = {"message": message, "errorCode": code}
    if fields is not None:
        e["fields"] = fields
    return e


class ApiError(Exception):
    def __init__(self, status, errors):
        super().__init__(str(errors))
        self.status = status
        self.errors = errors if isinstance(errors, list) else [errors]


def not_found():
    return ApiError(404, sf_err("NOT_FOUND", "The requested resource does not exist"))


def json_type(v, present=True):
    if not present:
        return "UNDEFINED"
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "BOOLEAN"
    if isinstance(v, (int, float)):
        return "NUMBER"
    if isinstance(v, str):
        return "STRING"
    if isinstance(v, list):
        return "ARRAY"
    return "OBJECT"


# --------------------------------------------------------------------------
# JWT bearer assertion verification (RS256)

class JwtVerifier:
    def __init__(self, pem_path):
        with open(pem_path, "rb") as f:
            data = f.read()
        if b"BEGIN CERTIFICATE" in data:
            self.key = x509.load_pem_x509_certificate(data).public_key()
        else:
            self.key = serialization.load_pem_public_key(data)
        if not isinstance(self.key, rsa.RSAPublicKey):
            raise ValueError("%s: not an RSA key" % pem_path)

    def verify(self, assertion):
        """Claims of a correctly signed RS256 JWT; raises ValueError otherwise."""
        try:
            h, p, s = assertion.encode("ascii").split(b".")
            header = json.loads(b64url_decode(h.decode()))
            claims = json.loads(b64url_decode(p.decode()))
            sig = b64url_decode(s.decode())
        except (ValueError, UnicodeError, binascii.Error):
            raise ValueError("invalid assertion")
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            raise ValueError("invalid assertion")
        try:
            self.key.verify(sig, h + b"." + p, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise ValueError("invalid assertion")
        if not isinstance(claims, dict):
            raise ValueError("invalid assertion")
        return claims


# --------------------------------------------------------------------------
# State

class State:
    """All shared state; every access holds self.lock."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.tokens = {}
        self.faults = []
        self.ui_seq = 0
        with self.lock:
            self.reset(tokens=True)

    # ---- lifecycle ------------------------------------------------------

    def reset(self, tokens=False):
        if tokens:
            self.tokens = {}
        self.counters = collections.Counter()
        self.objs = {t: {} for t in PREFIX}
        self.tasks_by_ext = collections.defaultdict(list)
        self.task_meta = {}
        self.requests = collections.deque(maxlen=REQUEST_LOG_MAX)
        self.req_kinds = collections.Counter()
        self.req_status = collections.Counter()
        self.stats = collections.Counter()
        self.api_usage = 0
        self.faults = []
        self.opencti = collections.deque(maxlen=OPENCTI_MAX)
        self.opencti_seq = 0
        self.tabs = {}
        self.default_view = None
        self.ui_commands = collections.deque(maxlen=UI_COMMANDS_MAX)
        self.seed(self.cfg.seed)
        self.cond.notify_all()

    def new_id(self, otype):
        self.counters[otype] += 1
        return make_id(PREFIX[otype], self.counters[otype])

    def add_record(self, otype, fields, now=None):
        if otype not in OBJECT_FIELDS:
            raise ValueError("unknown object type %r" % otype)
        rec = {k: v for k, v in fields.items() if k != "Id"}
        rid = norm_id(fields.get("Id")) if fields.get("Id") else self.new_id(otype)
        if rid is None or TYPE_OF_PREFIX.get(rid[:3]) != otype:
            raise ValueError("bad Id %r for %s" % (fields.get("Id"), otype))
        if otype in ("Contact", "Lead", "User") and "Name" not in rec:
            rec["Name"] = " ".join(x for x in (rec.get("FirstName"), rec.get("LastName")) if x)
        if otype == "User":
            rec.setdefault("IsActive", True)
        ts = sf_date(now)
        rec.update(Id=rid, CreatedDate=ts, LastModifiedDate=ts, SystemModstamp=ts,
                   IsDeleted=False)
        self.objs[otype][rid] = rec
        return rid

    def seed(self, seed):
        for user in self.cfg.integration_users:
            self.add_record("User", {"FirstName": "Integration", "LastName": "User",
                                     "Username": user, "Email": user})
        self.integration_user_id = {u["Username"]: u["Id"] for u in self.objs["User"].values()}
        if seed is None:
            seed = default_seed()
        for otype in ("Account", "User", "Contact", "Lead", "Case", "Opportunity"):
            for fields in seed.get(otype, []):
                fields = dict(fields)
                acct = fields.get("AccountId")
                if isinstance(acct, str) and acct.startswith("@"):   # "@Account:<Name>"
                    name = acct.split(":", 1)[1]
                    fields["AccountId"] = next(
                        (a["Id"] for a in self.objs["Account"].values() if a["Name"] == name), None)
                self.add_record(otype, fields)

    def lookup(self, rid):
        """(type, record) for an 18-char id, or (None, None)."""
        otype = TYPE_OF_PREFIX.get(rid[:3])
        if otype is None:
            return None, None
        rec = self.objs[otype].get(rid)
        return (otype, rec) if rec is not None else (None, None)

    # ---- faults ---------------------------------------------------------

    def take_fault(self, method, path):
        now = time.time()
        self.faults = [f for f in self.faults
                       if (f["until"] is None or f["until"] > now)
                       and (f["count"] is None or f["count"] > 0)]
        for f in self.faults:
            if f["path_contains"] not in path:
                continue
            if f["method"] and f["method"] != method:
                continue
            if f["count"] is not None:
                f["count"] -= 1
            self.stats["faults_served"] += 1
            return dict(f)
        return None

    # ---- UI (host page) -------------------------------------------------

    def tab(self, tab_id):
        t = self.tabs.get(tab_id)
        if t is None:
            t = self.tabs[tab_id] = {"view": self.default_view, "visible": True, "label": "Phone",
                                     "icon": "call", "click_to_dial": False, "listeners": [],
                                     "softphone": None, "frame_loads": 0,
                                     "height": None, "width": None}
        return t

    def push_ui(self, cmd):
        self.ui_seq += 1
        cmd["seq"] = self.ui_seq
        self.ui_commands.append(cmd)
        self.cond.notify_all()

    def record_view(self, otype, rec, ui_origin):
        return {"url": "%s/lightning/r/%s/%s/view" % (ui_origin, otype, rec["Id"]),
                "recordId": rec["Id"], "recordName": record_name(otype, rec),
                "objectType": otype,
                "phones": [{"field": f, "number": rec[f]} for f in PHONE_FIELDS.get(otype, [])
                           if rec.get(f)]}

    def set_view(self, tab_id, view, source):
        """tab_id None: every tab (and the default for tabs opened later)."""
        if tab_id is None:
            self.default_view = view
            for t in self.tabs.values():
                t["view"] = view
        else:
            self.tab(tab_id)["view"] = view
        self.push_ui({"type": "view", "tab": tab_id, "view": view, "source": source})


def record_name(otype, rec):
    if otype == "Case":
        return rec.get("CaseNumber") or rec.get("Subject")
    return rec.get("Name")


def default_seed():
    """Numbers: +14155550100 matches exactly one Contact; +14155550111 matches a
    Contact and an Account; +16505550123 matches one Lead; +14155550199 nothing."""
    users = [{"FirstName": "Agent", "LastName": str(n), "Username": "agent%d@example.com" % n,
              "Email": "agent%d@example.com" % n, "Finesse_Agent_Id__c": str(n)}
             for n in range(1001, 1011)]
    return {
        "Account": [{"Name": "Acme Corporation", "Phone": "(415) 555-0111", "Type": "Customer"},
                    {"Name": "Globex", "Phone": "+44 20 7946 0958", "Type": "Prospect"}],
        "User": users,
        "Contact": [{"FirstName": "Jane", "LastName": "Doe", "Phone": "(415) 555-0100",
                     "Email": "jane.doe@acme.example", "AccountId": "@Account:Acme Corporation"},
                    {"FirstName": "John", "LastName": "Smith", "MobilePhone": "415-555-0111",
                     "Email": "john.smith@acme.example", "AccountId": "@Account:Acme Corporation"},
                    {"FirstName": "Hans", "LastName": "Gruber", "Phone": "+44 20 7946 0000",
                     "AccountId": "@Account:Globex"}],
        "Lead": [{"FirstName": "Lisa", "LastName": "Lead", "Company": "Initech",
                  "Phone": "+1 650 555 0123", "Status": "Open - Not Contacted"}],
    }


def parse_call_center(path):
    """Flat "/section/item" -> text map of a call-center definition file."""
    root = ET.parse(path).getroot()
    out = {}
    for sec in root.iter("section"):
        for item in sec.iter("item"):
            out["/%s/%s" % (sec.get("name"), item.get("name"))] = (item.text or "").strip()
    return out


def parse_fault(obj):
    if not isinstance(obj, dict):
        raise ValueError("body must be a JSON object")
    known = {"status", "error_code", "message", "delay_ms", "for_s", "count", "path_contains",
             "method", "expire_tokens"}
    unknown = set(obj) - known
    if unknown:
        raise ValueError("unknown keys: " + ", ".join(sorted(unknown)))
    if obj.get("expire_tokens"):
        if set(obj) - {"expire_tokens"}:
            raise ValueError("expire_tokens takes no other keys")
        return {"expire_tokens": True}
    status = obj.get("status")
    if status is None and obj.get("delay_ms") is None:
        raise ValueError("need status, delay_ms or expire_tokens")
    if status is not None and (not isinstance(status, int) or isinstance(status, bool)
                               or not 300 <= status <= 599):
        raise ValueError("status must be an integer 300..599")
    delay = obj.get("delay_ms") or 0
    if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0:
        raise ValueError("delay_ms must be a non-negative number")
    count = obj.get("count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count <= 0):
        raise ValueError("count must be a positive integer")
    for k in ("error_code", "message", "path_contains", "method"):
        if obj.get(k) is not None and not isinstance(obj[k], str):
            raise ValueError("%s must be a string" % k)
    f = {"status": status, "delay_ms": delay, "count": count,
         "error_code": obj.get("error_code") or (FAULT_CODES.get(status, "UNKNOWN_EXCEPTION")
                                                 if status else None),
         "message": obj.get("message"),
         "path_contains": obj.get("path_contains") or "/services/data/",
         "method": (obj.get("method") or "").upper() or None, "until": None}
    if obj.get("for_s") is not None:
        if not isinstance(obj["for_s"], (int, float)) or obj["for_s"] <= 0:
            raise ValueError("for_s must be a positive number")
        f["until"] = time.time() + obj["for_s"]
    return f


# --------------------------------------------------------------------------
# SOSL / SOQL

SOSL_RE = re.compile(
    r"^\s*FIND\s+\{((?:[^{}\\]|\\.)*)\}"
    r"(?:\s+IN\s+(ALL|NAME|EMAIL|PHONE|SIDEBAR)\s+FIELDS)?"
    r"(?:\s+RETURNING\s+(.+?))?"
    r"(?:\s+LIMIT\s+(\d+))?\s*$", re.I | re.S)
SOSL_OBJ_RE = re.compile(r"\s*(\w+)\s*(?:\(([^()]*)\))?\s*(?:,|$)")
SOQL_RE = re.compile(
    r"^\s*SELECT\s+([\w\s,.]+?)\s+FROM\s+(\w+)"
    r"(?:\s+WHERE\s+(\w+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(true|false|null)))?"
    r"(?:\s+LIMIT\s+(\d+))?\s*$", re.I | re.S)


def canon_field(otype, name):
    for f in ["Id"] + OBJECT_FIELDS.get(otype, []) + SYSTEM_FIELDS:
        if f.lower() == name.lower():
            return f
    return None


def shape(otype, rec, fields, version):
    out = {"attributes": {"type": otype,
                          "url": "/services/data/v%s.0/sobjects/%s/%s" % (version, otype, rec["Id"])}}
    for f in fields:
        out[f] = rec.get(f)
    return out


# --------------------------------------------------------------------------
# HTTP

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sf-sim"
    sys_version = ""
    timeout = 120

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(10)
            self.connection.do_handshake()
            self.connection.settimeout(self.timeout)

    def log_message(self, fmt, *args):
        if self.server.app.verbose:
            sys.stderr.write("sf-sim[%s] %s %s\n" % (self.server.role, self.address_string(),
                                                    fmt % args))

    # ---- plumbing -------------------------------------------------------

    def send(self, code, body=b"", ctype=JSON_CT, headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.status_sent = code
        self.log_request(code)
        lines = ["HTTP/1.1 %d %s" % (code, self.responses.get(code, ("",))[0]),
                 "Server: sf-sim", "Date: " + self.date_time_string(),
                 "Content-Length: %d" % len(body)]
        if ctype and (body or code not in (204, 304)):
            lines.append("Content-Type: " + ctype)
        lines += ["%s: %s" % h for h in headers]
        lines += ["%s: %s" % h for h in self.extra_headers]
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def send_json(self, code, obj, headers=()):
        self.send(code, json.dumps(obj, separators=(",", ":")), JSON_CT, headers)

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "").lower()
        if te == "chunked":
            body = b""
            while True:
                line = self.rfile.readline(1024)
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    return self.reject(400, "bad chunk")
                if n == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                if len(body) + n > MAX_BODY:
                    return self.reject(413, "request body too large")
                body += self.rfile.read(n)
                self.rfile.readline(1024)
        if te:
            return self.reject(400, "unsupported transfer-encoding")
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        if not cl.isdigit():
            return self.reject(400, "bad content-length")
        if int(cl) > MAX_BODY:
            return self.reject(413, "request body too large")
        return self.rfile.read(int(cl))

    def reject(self, code, msg):
        self.close_connection = True
        self.send_json(code, [sf_err("JSON_PARSER_ERROR" if code == 400 else "REQUEST_TOO_LARGE", msg)])
        return None

    def handle_any(self, method):
        self.extra_headers = []
        self.status_sent = None
        t0 = time.monotonic()
        body = self.read_body()
        if body is None:
            return
        self.method = method
        url = urllib.parse.urlsplit(self.path)
        self.url_path, self.query = url.path, url.query
        app = self.server.app
        try:
            if url.path.startswith("/sim/"):
                return self.control(method, url.path, body)
            if self.server.role == "ui":
                return self.ui_route(method, url.path)
            kind = app.api_route(self, method, url.path, body)
        except ApiError as e:
            self.send_json(e.status, e.errors)
            kind = getattr(self, "kind", "other")
        except BrokenPipeError:
            return
        if self.status_sent is not None:
            app.log_request(method, self.path, self.status_sent, kind,
                            (time.monotonic() - t0) * 1000, getattr(self, "written", None))

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_OPTIONS(self):
        # CORS preflight (the opencti stand-in's beacon, browser-side tests)
        self.extra_headers = []
        self.read_body()
        origin = self.headers.get("Origin")
        hdrs = [("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE"),
                ("Access-Control-Allow-Headers",
                 self.headers.get("Access-Control-Request-Headers") or "Content-Type"),
                ("Access-Control-Max-Age", "600")]
        if origin:
            hdrs += [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        self.send(204, b"", None, hdrs)

    def qparams(self):
        return dict(urllib.parse.parse_qsl(self.query, keep_blank_values=True))

    def json_in(self, body, default=None):
        if not body.strip():
            return default if default is not None else {}
        try:
            return json.loads(body)
        except (ValueError, UnicodeError):
            raise ApiError(400, {"ok": False, "error": "body is not JSON"})

    # ---- control API (both listeners) -------------------------------------

    def control(self, method, path, body):
        app, st = self.server.app, self.server.app.state
        origin = self.headers.get("Origin")
        if origin:
            self.extra_headers += [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        key = (method, path)
        if key == ("GET", "/sim/tasks"):
            return self.send_json(200, app.tasks_snapshot(self.qparams()))
        if key == ("GET", "/sim/stats"):
            return self.send_json(200, app.stats_snapshot())
        if key == ("GET", "/sim/requests"):
            with st.lock:
                return self.send_json(200, list(st.requests))
        if key == ("POST", "/sim/faults"):
            obj = self.json_in(body)
            try:
                f = parse_fault(obj)
            except ValueError as e:
                return self.send_json(400, {"ok": False, "error": str(e)})
            with st.lock:
                if f.get("expire_tokens"):
                    n = 0
                    for tok in st.tokens.values():
                        if not tok["revoked"]:
                            tok["revoked"] = True
                            n += 1
                    st.stats["tokens_expired"] += n
                    return self.send_json(200, {"ok": True, "expired": n})
                st.faults.append(f)
            return self.send_json(200, {"ok": True})
        if key == ("GET", "/sim/faults"):
            with st.lock:
                return self.send_json(200, list(st.faults))
        if key == ("DELETE", "/sim/faults"):
            with st.lock:
                st.faults = []
            return self.send_json(200, {"ok": True})
        if key == ("POST", "/sim/reset"):
            obj = self.json_in(body)
            with st.lock:
                st.reset(tokens=bool(obj.get("tokens")))
            return self.send_json(200, {"ok": True})
        if key == ("POST", "/sim/duplicate"):
            return app.duplicate(self, self.json_in(body))
        if key == ("POST", "/sim/records"):
            obj = self.json_in(body)
            try:
                with st.lock:
                    rid = st.add_record(obj.get("type"), obj.get("fields") or {})
            except (ValueError, AttributeError) as e:
                return self.send_json(400, {"ok": False, "error": str(e)})
            return self.send_json(200, {"ok": True, "id": rid})
        if key == ("GET", "/sim/records"):
            t = self.qparams().get("type")
            with st.lock:
                recs = [dict(r, attributes={"type": ot}) for ot, tbl in st.objs.items()
                        if ot != "Task" and (t is None or t == ot) for r in tbl.values()]
            return self.send_json(200, recs)
        if key == ("GET", "/sim/opencti"):
            q = self.qparams()
            with st.lock:
                calls = [c for c in st.opencti
                         if (not q.get("tab") or c.get("tab") == q["tab"])
                         and (not q.get("method") or c.get("method") == q["method"])
                         and (not q.get("kind") or c.get("kind") == q["kind"])]
            return self.send_json(200, calls)
        if key == ("DELETE", "/sim/opencti"):
            with st.lock:
                st.opencti.clear()
            return self.send_json(200, {"ok": True})
        if key == ("POST", "/sim/opencti"):
            return self.send_json(200, app.opencti_post(self.json_in(body), self.headers))
        if key == ("POST", "/sim/opencti/beacon"):
            obj = self.json_in(body)
            obj["kind"] = obj.get("kind") or "call"
            obj["no_container"] = True
            obj["frame_origin"] = self.headers.get("Origin") or obj.get("frame_origin")
            app.opencti_post(obj, self.headers)
            return self.send(204, b"", None)
        if key == ("POST", "/sim/view"):
            return app.post_view(self, self.json_in(body))
        if key == ("GET", "/sim/view"):
            tab = self.qparams().get("tab")
            with st.lock:
                view = st.tabs[tab]["view"] if tab in st.tabs else st.default_view
            return self.send_json(200, view)
        if key == ("POST", "/sim/click"):
            return app.post_click(self, self.json_in(body))
        if key == ("GET", "/sim/ui/state"):
            q = self.qparams()
            with st.lock:
                if q.get("tab"):
                    out = dict(st.tab(q["tab"])) if q["tab"] in st.tabs else None
                else:
                    out = {k: dict(v) for k, v in st.tabs.items()}
            return self.send_json(200, out)
        if key == ("GET", "/sim/ui/poll"):
            return app.ui_poll(self, self.qparams())
        return self.send_json(404, {"ok": False, "error": "no such control endpoint"})

    # ---- UI origin --------------------------------------------------------

    def ui_route(self, method, path):
        app = self.server.app
        m = OPENCTI_JS_RE.match(path)
        if m and method == "GET":
            js = app.opencti_js.replace("__API_VERSION__", str(int(m.group(1))))
            return self.send(200, js, "application/javascript;charset=UTF-8",
                             [("Cache-Control", "no-store")])
        if method == "GET" and (path in ("/", "/lightning", "/lightning/page/home") or
                                re.match(r"^/lightning/r/\w+/\w+/view$", path)):
            return app.host_page(self, path)
        if method == "GET" and path == "/favicon.ico":
            return self.send(204, b"", None)
        return self.send(404, "<!DOCTYPE html><title>Not found</title><p>sf-sim: no such page",
                         "text/html;charset=UTF-8")


class App:
    def __init__(self, a):
        self.cfg = a
        self.verbose = a.verbose
        self.verifier = JwtVerifier(a.jwt_cert)
        self.state = State(a)
        self.ext_field = a.task_external_id_field
        self.task_fields = dict(TASK_FIELDS)
        self.task_fields[self.ext_field] = ("string", 255)
        for f in a.task_extra_field or []:
            self.task_fields[f] = ("string", 255)
        self.task_field_lc = {k.lower(): k for k in self.task_fields}
        with open(os.path.join(STATIC, "opencti_min.js"), encoding="utf-8") as f:
            self.opencti_js = f.read()
        with open(os.path.join(STATIC, "host.html"), encoding="utf-8") as f:
            self.host_html = f.read()
        with open(os.path.join(STATIC, "host.js"), encoding="utf-8") as f:
            self.host_js = f.read()
        self.call_center = parse_call_center(a.call_center) if a.call_center else None
        if a.softphone_layout:
            with open(a.softphone_layout, encoding="utf-8") as f:
                self.layout = json.load(f)
        else:
            self.layout = DEFAULT_LAYOUT
        self.api_origin = self.ui_origin = None    # set once listening

    @property
    def login_url(self):
        return self.cfg.login_url or self.api_origin

    # ---- request log ------------------------------------------------------

    def log_request(self, method, path, status, kind, ms, written=None):
        st = self.state
        entry = {"ts": round(time.time(), 3), "method": method, "path": path[:2000],
                 "status": status, "kind": kind, "ms": round(ms, 2)}
        if written is not None:
            entry["written"] = written  # collections: the external ids written
        with st.lock:
            st.requests.append(entry)
            st.req_kinds[kind] += 1
            st.req_status[str(status)] += 1

    # ---- API origin routing -------------------------------------------------

    def api_route(self, h, method, path, body):
        """Returns the request kind (for stats); raises ApiError."""
        st = self.state
        if path == "/services/oauth2/token":
            h.kind = "token"
            with st.lock:
                fault = st.take_fault(method, h.path) if st.faults else None
            if fault and self.apply_fault(h, fault, oauth=True):
                return "token"
            if method != "POST":
                raise ApiError(405, sf_err("METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed. "
                                           "Allowed are POST" % method))
            self.token(h, body)
            return "token"
        if path in ("/services/data", "/services/data/") and method == "GET":
            h.send_json(200, [{"label": "Summer '24", "url": "/services/data/v61.0",
                               "version": "61.0"},
                              {"label": "Spring '24", "url": "/services/data/v60.0",
                               "version": "60.0"}])
            return "versions"
        m = DATA_RE.match(path)
        if not m:
            h.kind = "other"
            raise not_found()
        version, rest = int(m.group(1)), (m.group(2) or "/").rstrip("/") or "/"
        kind = self.rest_kind(method, rest)
        h.kind = kind
        with st.lock:
            fault = st.take_fault(method, h.path) if st.faults else None
        if fault and self.apply_fault(h, fault):
            return kind
        user = self.authenticate(h)
        with st.lock:
            st.api_usage += 1
            usage = st.api_usage
        h.extra_headers.append(("Sforce-Limit-Info", "api-usage=%d/%d" % (usage, self.cfg.api_limit)))
        if usage > self.cfg.api_limit:
            raise ApiError(403, sf_err("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))
        self.rest(h, method, rest, version, body, user)
        return kind

    @staticmethod
    def rest_kind(method, rest):
        parts = rest.strip("/").split("/")
        if parts[0] == "sobjects" and len(parts) == 4 and method == "PATCH":
            return "upsert"
        if parts[:2] == ["composite", "sobjects"] and method == "PATCH":
            return "upsert_collection"
        if parts[0] == "sobjects":
            return {"GET": "get", "POST": "create", "PATCH": "update"}.get(method, "other")
        if parts[0] == "search":
            return "search"
        if parts[0] == "query":
            return "query"
        return "other"

    def apply_fault(self, h, f, oauth=False):
        """Delay and/or answer with the fault status; True if answered."""
        if f.get("delay_ms"):
            time.sleep(f["delay_ms"] / 1000.0)
        if not f.get("status"):
            return False
        code = f["error_code"]
        msg = f["message"] or FAULT_MESSAGES.get(code, "sf-sim injected fault (HTTP %d)" % f["status"])
        if oauth:
            err = "unknown_error" if f["status"] >= 500 else code.lower()
            h.send_json(f["status"], {"error": err, "error_description": msg})
        else:
            h.send_json(f["status"], [sf_err(code, msg)])
        return True

    # ---- OAuth 2.0 JWT bearer ---------------------------------------------

    def token(self, h, body):
        st = self.state

        def fail(desc, error="invalid_grant", status=400):
            with st.lock:
                st.stats["token_failures"] += 1
            h.send_json(status, {"error": error, "error_description": desc})

        ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return fail("invalid content type", "invalid_request")
        try:
            form = dict(urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                               strict_parsing=bool(body)))
        except (UnicodeError, ValueError):
            return fail("malformed request body", "invalid_request")
        if form.get("grant_type") != JWT_GRANT:
            return fail("grant type not supported", "unsupported_grant_type")
        assertion = form.get("assertion")
        if not assertion:
            return fail("assertion missing", "invalid_request")
        try:
            claims = self.verifier.verify(assertion)
        except ValueError as e:
            return fail(str(e))
        now = time.time()
        if claims.get("iss") != self.cfg.consumer_key:
            return fail("client identifier invalid")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        allowed = {self.login_url.rstrip("/"), "https://login.salesforce.com",
                   "https://test.salesforce.com"} | {a.rstrip("/") for a in self.cfg.audience or []}
        if not any(isinstance(x, str) and x.rstrip("/") in allowed for x in auds):
            return fail("audience is invalid")
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            return fail("invalid assertion")
        if exp <= now:
            return fail("expired authorization code")
        if exp > now + 300:
            return fail("invalid assertion: exp must be within 5 minutes")
        sub = claims.get("sub")
        with st.lock:
            uid = st.integration_user_id.get(sub) if sub in self.cfg.integration_users else None
        if uid is None:
            return fail("user hasn't approved this consumer")
        tok = "%s!AR%s" % (ORG_ID[:15], secrets.token_urlsafe(72))
        with st.lock:
            st.tokens[tok] = {"exp": now + self.cfg.token_ttl, "user": sub, "user_id": uid,
                              "revoked": False}
            st.stats["tokens_minted"] += 1
        h.send_json(200, {"access_token": tok, "scope": "web api",
                          "instance_url": self.api_origin,
                          "id": "%s/id/%s/%s" % (self.login_url.rstrip("/"), ORG_ID, uid),
                          "token_type": "Bearer"},
                    [("Cache-Control", "no-cache,must-revalidate,max-age=0,no-store,private")])

    def authenticate(self, h):
        auth = h.headers.get("Authorization") or ""
        scheme, _, tok = auth.partition(" ")
        tok = tok.strip()
        st = self.state
        with st.lock:
            rec = st.tokens.get(tok) if scheme.lower() in ("bearer", "oauth") else None
            ok = rec is not None and not rec["revoked"] and rec["exp"] > time.time()
            if not ok:
                st.stats["invalid_session"] += 1
        if not ok:
            h.extra_headers.append(("WWW-Authenticate", "Token"))
            raise ApiError(401, sf_err("INVALID_SESSION_ID", "Session expired or invalid"))
        return rec

    # ---- REST -----------------------------------------------------------

    def rest(self, h, method, rest, version, body, user):
        parts = [urllib.parse.unquote(p) for p in rest.strip("/").split("/")]
        if parts[0] == "sobjects" and len(parts) >= 2:
            otype = self.canon_type(parts[1])
            if otype is None:
                raise ApiError(404, sf_err("NOT_FOUND", "The requested resource does not exist"))
            if len(parts) == 4 and method == "PATCH":
                return self.upsert(h, otype, parts[2], parts[3], body, version, user)
            if len(parts) == 4 and method == "GET":
                return self.get_by_ext(h, otype, parts[2], parts[3], version)
            if len(parts) == 3 and method == "GET":
                return self.get_record(h, otype, parts[2], version)
            if len(parts) == 3 and method == "PATCH":
                return self.update_by_id(h, otype, parts[2], body, version, user)
            if len(parts) == 2 and method == "POST":
                return self.create(h, otype, body, version, user)
            raise ApiError(405, sf_err("METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed" % method))
        if parts[:2] == ["composite", "sobjects"] and len(parts) == 4 and method == "PATCH":
            if version < 46:
                raise not_found()
            otype = self.canon_type(parts[2])
            if otype is None:
                raise ApiError(404, sf_err("NOT_FOUND", "The requested resource does not exist"))
            return self.collection_upsert(h, otype, parts[3], body, version, user)
        if parts == ["search"] and method == "GET":
            return self.search(h, version)
        if parts == ["query"] and method == "GET":
            return self.query(h, version)
        raise not_found()

    @staticmethod
    def canon_type(name):
        for t in PREFIX:
            if t.lower() == name.lower():
                return t
        return None

    def parse_body(self, body):
        if not body.strip():
            raise ApiError(400, sf_err("JSON_PARSER_ERROR", "The HTTP entity body is required, "
                                       "but this request has no entity body."))
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeError) as e:
            raise ApiError(400, sf_err("JSON_PARSER_ERROR", "Unexpected character in JSON: %s" % e))
        if not isinstance(obj, dict):
            raise ApiError(400, sf_err("JSON_PARSER_ERROR",
                                       "Cannot deserialize instance of sObject from %s value"
                                       % json_type(obj)))
        return obj

    def validate_task(self, obj, existing):
        """Canonical field dict for a Task write; raises ApiError. Holds lock."""
        st = self.state
        out, errors = {}, []
        for name, v in obj.items():
            if name == "attributes":
                continue
            canon = self.task_field_lc.get(name.lower())
            if canon is None:
                if name in TASK_READ_ONLY or name.lower() in {x.lower() for x in TASK_READ_ONLY}:
                    errors.append(sf_err("INVALID_FIELD_FOR_INSERT_UPDATE",
                                         "Unable to create/update fields: %s. Please check the "
                                         "security settings of this field and verify that it is "
                                         "read/write for your profile or permission set." % name,
                                         [name]))
                    continue
                raise ApiError(400, sf_err("INVALID_FIELD",
                                           "No such column '%s' on sobject of type Task" % name))
            kind, arg = self.task_fields[canon]
            label = canon
            if v is None:
                if canon in TASK_REQUIRED:
                    errors.append(sf_err("REQUIRED_FIELD_MISSING",
                                         "Required fields are missing: [%s]" % canon, [canon]))
                else:
                    out[canon] = None
                continue
            if kind in ("string", "picklist"):
                if not isinstance(v, str):
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        v = str(v)      # Salesforce coerces numbers into text fields
                    else:
                        raise ApiError(400, sf_err("JSON_PARSER_ERROR",
                                                   "Cannot deserialize instance of string from "
                                                   "%s value for field %s" % (json_type(v), canon)))
                if len(v) > arg:
                    errors.append(sf_err("STRING_TOO_LONG", "%s: data value too large: %s "
                                         "(max length=%d)" % (label, v[:40], arg), [canon]))
                    continue
            elif kind == "restricted":
                if not isinstance(v, str) or v not in arg:
                    errors.append(sf_err("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                         "%s: bad value for restricted picklist field: %s"
                                         % (label, v), [canon]))
                    continue
                if canon in TASK_CREATE_ONLY and existing is not None and existing.get(canon) != v:
                    errors.append(sf_err("INVALID_FIELD_FOR_INSERT_UPDATE",
                                         "Unable to create/update fields: %s. Please check the "
                                         "security settings of this field and verify that it is "
                                         "read/write for your profile or permission set." % canon,
                                         [canon]))
                    continue
            elif kind == "int":
                if isinstance(v, float) and v.is_integer():
                    v = int(v)
                if not isinstance(v, int) or isinstance(v, bool):
                    raise ApiError(400, sf_err("JSON_PARSER_ERROR",
                                               "Cannot deserialize instance of int from %s value "
                                               "%s or request may be missing a required field"
                                               % (json_type(v), json.dumps(v)[:40])))
                if abs(v) >= 10 ** arg:
                    errors.append(sf_err("NUMBER_OUTSIDE_VALID_RANGE", "%s: value outside of "
                                         "valid range on numeric field: %d" % (label, v), [canon]))
                    continue
            elif kind == "date":
                ok = isinstance(v, str) and re.match(r"^\d{4}-\d{2}-\d{2}$", v)
                if ok:
                    try:
                        datetime.date.fromisoformat(v)
                    except ValueError:
                        ok = False
                if not ok:
                    raise ApiError(400, sf_err("JSON_PARSER_ERROR",
                                               "Cannot deserialize instance of date from %s value "
                                               "%s or request may be missing a required field"
                                               % (json_type(v), json.dumps(v)[:40])))
            elif kind == "ref":
                rid = norm_id(v)
                if rid is None:
                    errors.append(sf_err("MALFORMED_ID", "%s: id value of incorrect type: %s"
                                         % (REF_LABEL.get(canon, canon), v), [canon]))
                    continue
                otype, _ = st.lookup(rid)
                if otype not in arg:
                    errors.append(sf_err("INVALID_CROSS_REFERENCE_KEY",
                                         "invalid cross reference id", [canon]))
                    continue
                v = rid
            out[canon] = v
        if errors:
            raise ApiError(400, errors)
        return out

    def task_json(self, rec, version):
        out = {"attributes": {"type": "Task",
                              "url": "/services/data/v%d.0/sobjects/Task/%s" % (version, rec["Id"])},
               "Id": rec["Id"]}
        for f in self.task_fields:
            out[f] = rec.get(f)
        for f in SYSTEM_FIELDS + ["AccountId", "IsClosed"]:
            out[f] = rec.get(f)
        return out

    def write_task(self, rec, fields, user, source, now):
        """Apply a validated write to rec (new or existing). Holds lock."""
        st = self.state
        new = "Id" not in rec
        ts = sf_date(now)
        if new:
            rec["Id"] = st.new_id("Task")
            for k, v in TASK_REQUIRED.items():
                rec[k] = v
            rec["OwnerId"] = user["user_id"]
            rec.update(CreatedDate=ts, CreatedById=user["user_id"], IsDeleted=False)
            st.objs["Task"][rec["Id"]] = rec
            st.task_meta[rec["Id"]] = {"writes": 0, "source": source, "history": []}
        old_ext = rec.get(self.ext_field)
        rec.update(fields)
        rec.update(LastModifiedDate=ts, SystemModstamp=ts, LastModifiedById=user["user_id"])
        rec["IsClosed"] = rec.get("Status") == "Completed"
        who = rec.get("WhoId")
        what = rec.get("WhatId")
        acct = None
        if what and what.startswith("001"):
            acct = what
        elif who and who.startswith("003"):
            acct = st.objs["Contact"].get(who, {}).get("AccountId")
        rec["AccountId"] = acct
        new_ext = rec.get(self.ext_field)
        if new_ext != old_ext or new:
            if old_ext is not None and rec["Id"] in st.tasks_by_ext.get(old_ext, []):
                st.tasks_by_ext[old_ext].remove(rec["Id"])
            if new_ext is not None:
                st.tasks_by_ext[new_ext].append(rec["Id"])
        meta = st.task_meta[rec["Id"]]
        meta["writes"] += 1
        meta["history"].append({"ts": round(now, 3), "created": new, "source": source,
                                "fields": fields})
        return rec["Id"]

    def upsert(self, h, otype, field, value, body, version, user):
        st = self.state
        if otype != "Task":
            raise ApiError(400, sf_err("NOT_SUPPORTED", "sf-sim only upserts Task"))
        if field.lower() != self.ext_field.lower():
            raise not_found()
        obj = self.parse_body(body)
        update_only = self.qparams_of(h).get("updateOnly", "").lower() == "true"
        now = time.time()
        with st.lock:
            ids = list(st.tasks_by_ext.get(value, []))
            if len(ids) > 1:
                st.stats["upserts_multiple"] += 1
                return h.send_json(300, ["/services/data/v%d.0/sobjects/Task/%s" % (version, i)
                                         for i in ids])
            existing = st.objs["Task"][ids[0]] if ids else None
            if existing is None and update_only:
                raise not_found()
            try:
                fields = self.validate_task(obj, existing)
                if self.ext_field in fields and fields[self.ext_field] != value:
                    raise ApiError(400, sf_err("INVALID_FIELD", "The value of %s in the request "
                                               "body (%s) does not match the value in the URL (%s)"
                                               % (self.ext_field, fields[self.ext_field], value),
                                               [self.ext_field]))
            except ApiError:
                st.stats["upserts_rejected"] += 1
                raise
            fields[self.ext_field] = value
            rec = existing if existing is not None else {}
            rid = self.write_task(rec, fields, user, "rest", now)
            st.stats["upserts_updated" if existing is not None else "upserts_created"] += 1
        if existing is None:
            h.send_json(201, {"id": rid, "success": True, "errors": [], "created": True},
                        [("Location", "/services/data/v%d.0/sobjects/Task/%s" % (version, rid))])
        elif version < 46:
            h.send(204, b"", None)
        else:
            h.send_json(200, {"id": rid, "success": True, "errors": [], "created": False})

    def collection_upsert(self, h, otype, field, body, version, user):
        """PATCH /composite/sobjects/{type}/{extField} (API 46+): up to 200
        records, each with attributes.type and the external id field; 200 with
        one UpsertResult per record, in order. allOrNone false: each record
        stands alone; true: any failure rolls every record back."""
        st = self.state
        if otype != "Task":
            raise ApiError(400, sf_err("NOT_SUPPORTED", "sf-sim only upserts Task"))
        if field.lower() != self.ext_field.lower():
            raise not_found()
        obj = self.parse_body(body)
        records = obj.get("records")
        if not isinstance(records, list):
            raise ApiError(400, sf_err("JSON_PARSER_ERROR", "records: a list of sObjects is required"))
        if len(records) > 200:
            raise ApiError(400, sf_err("EXCEEDED_ID_LIMIT", "record limit reached. cannot submit "
                                       "more than 200 records into this call"))
        all_or_none = obj.get("allOrNone") is True

        def item_err(code, msg, fields=None):
            return {"id": None, "success": False,
                    "errors": [{"statusCode": code, "message": msg, "fields": fields or []}]}

        now = time.time()
        with st.lock:
            st.stats["upsert_collections"] += 1
            plan, seen = [], set()
            for rec in records:
                if not isinstance(rec, dict):
                    plan.append(item_err("JSON_PARSER_ERROR", "record is not an object"))
                    continue
                attrs = rec.get("attributes")
                if not isinstance(attrs, dict) or attrs.get("type") != otype:
                    plan.append(item_err("INVALID_TYPE", "each record needs attributes.type %s" % otype))
                    continue
                value = rec.get(self.ext_field)
                if not isinstance(value, str) or not value:
                    plan.append(item_err("MISSING_ARGUMENT", "%s not specified" % self.ext_field,
                                         [self.ext_field]))
                    continue
                if value in seen:
                    plan.append(item_err("DUPLICATE_VALUE", "Duplicate external id specified: %s"
                                         % value, [self.ext_field]))
                    continue
                seen.add(value)
                ids = list(st.tasks_by_ext.get(value, []))
                if len(ids) > 1:
                    st.stats["upserts_multiple"] += 1
                    plan.append(item_err("DUPLICATE_EXTERNAL_ID", "%s: more than one record found "
                                         "for external id field: %s" % (self.ext_field, ids),
                                         [self.ext_field]))
                    continue
                existing = st.objs["Task"][ids[0]] if ids else None
                fields_in = {k: v for k, v in rec.items() if k != "attributes"}
                try:
                    fields = self.validate_task(fields_in, existing)
                except ApiError as e:
                    st.stats["upserts_rejected"] += 1
                    err = e.errors[0] if e.errors else {}
                    plan.append(item_err(err.get("errorCode", "UNKNOWN_EXCEPTION"),
                                         err.get("message", ""), err.get("fields")))
                    continue
                fields[self.ext_field] = value
                plan.append((existing, fields))
            failed = any(isinstance(p, dict) for p in plan)
            out, written = [], []
            for p in plan:
                if isinstance(p, dict):
                    out.append(p)
                elif all_or_none and failed:
                    out.append(item_err("ALL_OR_NONE_OPERATION_ROLLED_BACK",
                                        "Record rolled back because not all records were valid "
                                        "and the request was using AllOrNone header"))
                else:
                    existing, fields = p
                    rid = self.write_task(existing if existing is not None else {}, fields, user,
                                          "rest", now)
                    st.stats["upserts_updated" if existing is not None else "upserts_created"] += 1
                    out.append({"id": rid, "success": True, "errors": [],
                                "created": existing is None})
                    written.append(fields[self.ext_field])
        h.written = written
        h.send_json(200, out)

    @staticmethod
    def qparams_of(h):
        return dict(urllib.parse.parse_qsl(h.query, keep_blank_values=True))

    def create(self, h, otype, body, version, user):
        if otype != "Task":
            raise ApiError(400, sf_err("NOT_SUPPORTED", "sf-sim only creates Task"))
        obj = self.parse_body(body)
        st = self.state
        with st.lock:
            fields = self.validate_task(obj, None)
            rid = self.write_task({}, fields, user, "rest", time.time())
            st.stats["creates"] += 1
        h.send_json(201, {"id": rid, "success": True, "errors": []})

    def update_by_id(self, h, otype, rid, body, version, user):
        if otype != "Task":
            raise ApiError(400, sf_err("NOT_SUPPORTED", "sf-sim only updates Task"))
        obj = self.parse_body(body)
        full = norm_id(rid)
        if full is None:
            raise ApiError(400, sf_err("MALFORMED_ID", "Task ID: id value of incorrect type: %s" % rid))
        st = self.state
        with st.lock:
            rec = st.objs["Task"].get(full)
            if rec is None:
                raise not_found()
            fields = self.validate_task(obj, rec)
            self.write_task(rec, fields, user, "rest", time.time())
            st.stats["updates"] += 1
        h.send(204, b"", None)

    def get_record(self, h, otype, rid, version):
        full = norm_id(rid)
        if full is None:
            raise ApiError(400, sf_err("MALFORMED_ID", "%s ID: id value of incorrect type: %s"
                                       % (otype, rid)))
        st = self.state
        with st.lock:
            rec = st.objs[otype].get(full)
            if rec is None:
                raise not_found()
            if otype == "Task":
                out = self.task_json(rec, version)
            else:
                out = shape(otype, rec, ["Id"] + OBJECT_FIELDS[otype] + SYSTEM_FIELDS, version)
        h.send_json(200, out)

    def get_by_ext(self, h, otype, field, value, version):
        if otype != "Task" or field.lower() != self.ext_field.lower():
            raise not_found()
        st = self.state
        with st.lock:
            ids = list(st.tasks_by_ext.get(value, []))
            if len(ids) > 1:
                return h.send_json(300, ["/services/data/v%d.0/sobjects/Task/%s" % (version, i)
                                         for i in ids])
            if not ids:
                raise not_found()
            out = self.task_json(st.objs["Task"][ids[0]], version)
        h.send_json(200, out)

    # ---- SOSL -------------------------------------------------------------

    def search(self, h, version):
        q = self.qparams_of(h).get("q")
        if not q:
            raise ApiError(400, sf_err("MALFORMED_SEARCH", "No search term found. The search "
                                       "term must be enclosed in braces."))
        m = SOSL_RE.match(q)
        if not m:
            raise ApiError(400, sf_err("MALFORMED_SEARCH", "line 1:0 no viable alternative at "
                                       "character in search: %s" % q[:80]))
        term = re.sub(r"\\(.)", r"\1", m.group(1)).strip()
        scope = (m.group(2) or "ALL").upper()
        limit = int(m.group(4)) if m.group(4) else 2000
        if len(term.replace("*", "")) < 2:
            raise ApiError(400, sf_err("MALFORMED_SEARCH", "search term must be longer than one "
                                       "character: %s" % term))
        specs = []
        if m.group(3):
            rest = m.group(3).strip()
            pos = 0
            while pos < len(rest):
                om = SOSL_OBJ_RE.match(rest, pos)
                if not om or om.end() == pos:
                    raise ApiError(400, sf_err("MALFORMED_SEARCH", "unexpected token in "
                                               "RETURNING: %s" % rest[pos:pos + 40]))
                pos = om.end()
                specs.append((om.group(1), om.group(2)))
        else:
            specs = [(t, None) for t in ("Account", "Contact", "Lead")]
        plan = []
        for name, inner in specs:
            otype = self.canon_type(name)
            if otype is None or otype == "Task":
                raise ApiError(400, sf_err("INVALID_TYPE", "sObject type '%s' is not supported."
                                           % name))
            fields, olimit = ["Id"], None
            if inner is not None:
                im = re.match(r"^\s*(.*?)(?:\s+LIMIT\s+(\d+))?\s*$", inner, re.I | re.S)
                names = [f.strip() for f in im.group(1).split(",") if f.strip()]
                if not names or any(re.search(r"\s", n) for n in names):
                    raise ApiError(400, sf_err("MALFORMED_SEARCH", "unexpected token in field "
                                               "list of %s: %s" % (name, inner[:60])))
                fields = []
                for n in names:
                    c = canon_field(otype, n)
                    if c is None:
                        raise ApiError(400, sf_err("INVALID_FIELD", "No such column '%s' on entity "
                                                   "'%s'." % (n, otype)))
                    fields.append(c)
                olimit = int(im.group(2)) if im.group(2) else None
            plan.append((otype, fields, olimit))
        results = []
        with self.state.lock:
            for otype, fields, olimit in plan:
                n = 0
                for rec in self.state.objs[otype].values():
                    if self.sosl_match(otype, rec, term, scope):
                        results.append(shape(otype, rec, fields, version))
                        n += 1
                        if olimit is not None and n >= olimit:
                            break
        h.send_json(200, {"searchRecords": results[:limit]})

    @staticmethod
    def sosl_match(otype, rec, term, scope):
        d = digits(term)
        if scope in ("PHONE", "ALL") and len(d) >= 7:
            if any(phone_match(d, rec.get(f)) for f in PHONE_FIELDS.get(otype, [])):
                return True
        if scope == "PHONE":
            return False
        needle = term.replace("*", "").lower()
        fields = ["Name"] if scope == "NAME" else (["Email"] if scope == "EMAIL" else
                                                   ["Name", "Email", "Company", "Username"])
        return any(isinstance(rec.get(f), str) and needle in rec[f].lower() for f in fields)

    # ---- SOQL -------------------------------------------------------------

    def query(self, h, version):
        q = self.qparams_of(h).get("q")
        m = SOQL_RE.match(q or "")
        if not m:
            raise ApiError(400, sf_err("MALFORMED_QUERY", "unexpected token: %s" % (q or "")[:80]))
        otype = self.canon_type(m.group(2))
        if otype is None:
            raise ApiError(400, sf_err("INVALID_TYPE", "sObject type '%s' is not supported."
                                       % m.group(2)))
        fields = []
        for n in [x.strip() for x in m.group(1).split(",")]:
            c = self.task_field_lc.get(n.lower()) if otype == "Task" else None
            c = c or canon_field(otype, n)
            if c is None:
                raise ApiError(400, sf_err("INVALID_FIELD", "No such column '%s' on entity '%s'."
                                           % (n, otype)))
            fields.append(c)
        limit = int(m.group(6)) if m.group(6) else None
        where, wval = m.group(3), None
        if where:
            wc = (self.task_field_lc.get(where.lower()) if otype == "Task" else None) \
                or canon_field(otype, where)
            if wc is None:
                raise ApiError(400, sf_err("INVALID_FIELD", "No such column '%s' on entity '%s'."
                                           % (where, otype)))
            where = wc
            if m.group(4) is not None:
                wval = re.sub(r"\\(.)", r"\1", m.group(4))
            else:
                wval = {"true": True, "false": False, "null": None}[m.group(5).lower()]
        recs = []
        with self.state.lock:
            for rec in self.state.objs[otype].values():
                if where is None or rec.get(where) == wval or (
                        where == "Id" and isinstance(wval, str) and norm_id(wval) == rec["Id"]):
                    recs.append(shape(otype, rec, fields, version))
        if limit is not None:
            recs = recs[:limit]
        h.send_json(200, {"totalSize": len(recs), "done": True, "records": recs})

    # ---- control helpers ----------------------------------------------------

    def tasks_snapshot(self, q):
        st = self.state
        ext = q.get("external_id")
        history = q.get("history") in ("1", "true")
        with st.lock:
            out = []
            for rid, rec in st.objs["Task"].items():
                if ext is not None and rec.get(self.ext_field) != ext:
                    continue
                meta = st.task_meta[rid]
                t = dict(rec)
                t["writes"] = meta["writes"]
                t["source"] = meta["source"]
                if history:
                    t["history"] = list(meta["history"])
                out.append(t)
        return out

    def stats_snapshot(self):
        st = self.state
        with st.lock:
            s = st.stats
            return {"requests": dict(st.req_kinds), "by_status": dict(st.req_status),
                    "tokens_minted": s["tokens_minted"], "token_failures": s["token_failures"],
                    "tokens_expired": s["tokens_expired"], "invalid_session": s["invalid_session"],
                    "faults_served": s["faults_served"],
                    "upserts": {"created": s["upserts_created"], "updated": s["upserts_updated"],
                                "multiple": s["upserts_multiple"],
                                "rejected": s["upserts_rejected"],
                                "collections": s["upsert_collections"]},
                    "creates": s["creates"], "updates": s["updates"],
                    "api_usage": st.api_usage, "tasks": len(st.objs["Task"]),
                    "opencti_calls": st.opencti_seq, "active_faults": len(st.faults)}

    def duplicate(self, h, obj):
        ext = obj.get("external_id") if isinstance(obj, dict) else None
        if not isinstance(ext, str) or not ext:
            return h.send_json(400, {"ok": False, "error": "external_id (string) required"})
        st = self.state
        now = time.time()
        with st.lock:
            ids = st.tasks_by_ext.get(ext, [])
            base = dict(st.objs["Task"][ids[0]]) if ids else {}
            fields = {k: v for k, v in base.items() if k in self.task_fields}
            fields[self.ext_field] = ext
            owner = next(iter(st.integration_user_id.values()))
            user = {"user_id": base.get("OwnerId") or owner}
            self.write_task({}, fields, user, "duplicate", now)
            ids = list(st.tasks_by_ext[ext])
        h.send_json(200, {"ok": True, "ids": ids})

    # ---- Open CTI host page ------------------------------------------------

    def host_page(self, h, path):
        q = h.qparams()
        softphone = q.get("softphone")
        if not softphone or not re.match(r"^https?://", softphone):
            return h.send(400, "<!DOCTYPE html><title>sf-sim</title><p>sf-sim host page: "
                          "add ?softphone=&lt;URL-encoded softphone URL&gt;",
                          "text/html;charset=UTF-8")
        tab = q.get("tab") or "tab-" + secrets.token_hex(4)
        if not re.match(r"^[\w.-]{1,64}$", tab):
            return h.send(400, "bad tab id", "text/plain")
        base, frag = softphone.split("#", 1) if "#" in softphone else (softphone, None)
        # sfdcIFrameOrigin as the brief/reference spell it, sfdcIframeOrigin as
        # Salesforce's opencti.js reads it; the connector passes both through.
        extra = urllib.parse.urlencode([("sfdcIFrameOrigin", self.ui_origin),
                                        ("sfdcIframeOrigin", self.ui_origin),
                                        ("sfdcIFrameHost", "web"), ("mode", "Lightning")])
        frame_src = base + ("&" if "?" in base else "?") + extra + ("#" + frag if frag else "")
        st = self.state
        with st.lock:
            t = st.tab(tab)
            t["softphone"] = softphone
            m = re.match(r"^/lightning/r/(\w+)/(\w+)/view$", path)
            if m:
                rid = norm_id(m.group(2))
                otype, rec = st.lookup(rid) if rid else (None, None)
                if rec is not None:
                    t["view"] = st.record_view(otype, rec, self.ui_origin)
            records = [st.record_view(ot, r, self.ui_origin)
                       for ot in ("Contact", "Lead", "Account")
                       for r in st.objs[ot].values()]
            config = {"tab": tab, "uiOrigin": self.ui_origin, "softphone": softphone,
                      "frameSrc": frame_src, "seq": st.ui_seq, "view": t["view"],
                      "records": records, "visible": t["visible"], "label": t["label"],
                      "icon": t["icon"]}
        cfg_json = json.dumps(config).replace("<", "\\u003c").replace(">", "\\u003e")
        page = (self.host_html.replace("__TAB__", html.escape(tab))
                .replace("__HOST_JS__", self.host_js.replace("__CONFIG__", cfg_json)))
        h.send(200, page, "text/html;charset=UTF-8", [("Cache-Control", "no-store")])

    def post_view(self, h, obj):
        if not isinstance(obj, dict):
            return h.send_json(400, {"ok": False, "error": "JSON object expected"})
        st = self.state
        tab = obj.get("tab")
        with st.lock:
            if obj.get("recordId"):
                rid = norm_id(obj["recordId"])
                otype, rec = st.lookup(rid) if rid else (None, None)
                if rec is not None:
                    view = st.record_view(otype, rec, self.ui_origin)
                else:
                    view = {"url": "%s/lightning/r/%s/%s/view" % (
                        self.ui_origin, obj.get("objectType") or "sObject", obj["recordId"]),
                        "recordId": obj["recordId"], "phones": []}
                for k in ("objectType", "recordName", "url"):
                    if obj.get(k):
                        view[k] = obj[k]
            elif obj.get("url"):
                view = {"url": obj["url"]}
            else:
                view = None     # home
            st.set_view(tab, view, obj.get("source") or "control")
        h.send_json(200, {"ok": True, "view": view})

    def post_click(self, h, obj):
        if not isinstance(obj, dict) or not isinstance(obj.get("number"), str):
            return h.send_json(400, {"ok": False, "error": "number (string) required"})
        payload = {"number": obj["number"]}
        st = self.state
        with st.lock:
            if obj.get("recordId"):
                rid = norm_id(obj["recordId"])
                otype, rec = st.lookup(rid) if rid else (None, None)
                payload.update(recordId=obj["recordId"], recordName=obj.get("recordName") or (
                    record_name(otype, rec) if rec else None),
                    objectType=obj.get("objectType") or otype)
            st.push_ui({"type": "click", "tab": obj.get("tab"), "payload": payload})
        h.send_json(200, {"ok": True, "payload": payload})

    def ui_poll(self, h, q):
        """Long poll for host pages: commands after `since` for `tab` (or all)."""
        tab = q.get("tab")
        try:
            since = int(q.get("since", "0"))
            wait = min(float(q.get("wait", "20")), 30.0)
        except ValueError:
            return h.send_json(400, {"ok": False, "error": "bad since/wait"})
        st = self.state
        deadline = time.monotonic() + wait
        with st.lock:
            while True:
                cmds = [c for c in st.ui_commands if c["seq"] > since
                        and (c["tab"] is None or c["tab"] == tab)]
                left = deadline - time.monotonic()
                if cmds or left <= 0 or st.ui_seq < since:
                    break
                st.cond.wait(left)
            seq = st.ui_seq
        h.send_json(200, {"seq": seq, "commands": cmds})

    # ---- Open CTI container logic (what the Lightning side would do) ------

    def opencti_post(self, obj, headers):
        if not isinstance(obj, dict):
            raise ApiError(400, {"ok": False, "error": "JSON object expected"})
        kind = obj.get("kind") or "call"
        tab = obj.get("tab")
        st = self.state
        entry = {"ts": round(time.time(), 3), "tab": tab, "kind": kind,
                 "method": obj.get("method"), "frame_origin": obj.get("frame_origin")}
        with st.lock:
            t = st.tab(tab) if tab else None
            if kind == "call":
                args = obj.get("args") if isinstance(obj.get("args"), dict) else {}
                if isinstance(obj.get("received_ms"), (int, float)):
                    entry["host_ts"] = round(obj["received_ms"] / 1000.0, 3)
                entry.update(args=args, callId=obj.get("callId"),
                             isCallbackRegistered=bool(obj.get("isCallbackRegistered")),
                             isListenerRegistered=bool(obj.get("isListenerRegistered")),
                             apiVersion=obj.get("apiVersion"))
                if obj.get("no_container"):
                    entry["no_container"] = True
                    resp, ui, pop = {"success": False, "returnValue": None, "errors": [
                        {"code": "SOFTPHONE_CONTAINER_ERROR",
                         "description": "Unable to execute sendPostMessage because the softphone "
                                        "container hasn't initialized yet."}]}, {}, None
                else:
                    resp, ui, pop = self.opencti_call(entry["method"], args, tab, t)
                entry.update(success=resp["success"], errors=resp["errors"],
                             returnValue=resp["returnValue"])
                if pop is not None:
                    entry["pop"] = pop
                if resp["success"] and t is not None:
                    if entry["method"] in ("onClickToDial", "onNavigationChange") and \
                            entry["method"] not in t["listeners"]:
                        t["listeners"].append(entry["method"])
            elif kind == "event":
                entry.update(payload=obj.get("payload"), delivered=bool(obj.get("delivered")))
                resp, ui = None, {}
            elif kind == "frame":
                entry.update(src=obj.get("src"))
                if t is not None:
                    t["frame_loads"] += 1
                    t["click_to_dial"] = False
                    t["listeners"] = []
                resp, ui = None, {}
            else:
                entry.update(detail=obj.get("detail"), args=obj.get("args"))
                resp, ui = None, {}
            st.opencti_seq += 1
            entry["seq"] = st.opencti_seq
            st.opencti.append(entry)
        return {"response": resp, "ui": ui, "seq": entry["seq"]}

    def opencti_call(self, method, args, tab, t):
        """(response, ui side effects, pop) for one call. Holds lock."""
        st = self.state

        def ok(rv=None):
            return {"success": True, "returnValue": rv, "errors": None}

        def bad(param, expected, present, value):
            return {"success": False, "returnValue": None, "errors": [{
                "code": "INVALID_PARAM",
                "description": "An invalid value was passed to the parameter %s. A %s value was "
                               "expected, but %s was found instead."
                               % (param, expected, json_type(value, present))}]}

        def need(name, pytype, expected, container=None):
            src = args if container is None else container
            present = name in src
            v = src.get(name)
            if not present or v is None or not isinstance(v, pytype) or \
                    (pytype is not bool and isinstance(v, bool)) or (pytype is str and not v):
                return bad(name, expected, present, v)
            return None

        ui, pop = {}, None
        if method in ("notifyInitializationComplete", "refreshView"):
            return ok(), ui, None
        if method in ("enableClickToDial", "disableClickToDial"):
            if t is not None:
                t["click_to_dial"] = method == "enableClickToDial"
            return ok(), ui, None
        if method in ("onClickToDial", "onNavigationChange"):
            return ok(), ui, None
        if method == "getAppViewInfo":
            view = t["view"] if t is not None else st.default_view
            if view is None:
                return ok({"url": "%s/lightning/page/home" % self.ui_origin}), ui, None
            return ok({k: view[k] for k in ("url", "recordId", "recordName", "objectType")
                       if view.get(k) is not None}), ui, None
        if method == "isSoftphonePanelVisible":
            return ok({"visible": t["visible"] if t is not None else True}), ui, None
        if method == "setSoftphonePanelVisibility":
            e = need("visible", bool, "boolean")
            if e:
                return e, ui, None
            if t is not None:
                t["visible"] = args["visible"]
            return ok(), {"visible": args["visible"]}, None
        if method in ("setSoftphoneItemIcon", "setSoftphonePanelIcon"):
            e = need("key", str, "string")
            if e:
                return e, ui, None
            if t is not None and method == "setSoftphoneItemIcon":
                t["icon"] = args["key"]
            return ok(), {"icon" if method == "setSoftphoneItemIcon" else "panelIcon":
                          args["key"]}, None
        if method in ("setSoftphoneItemLabel", "setSoftphonePanelLabel"):
            e = need("label", str, "string")
            if e:
                return e, ui, None
            if t is not None and method == "setSoftphoneItemLabel":
                t["label"] = args["label"]
            return ok(), {"label" if method == "setSoftphoneItemLabel" else "panelLabel":
                          args["label"]}, None
        if method in ("setSoftphonePanelHeight", "setSoftphonePanelWidth"):
            name = "heightPX" if method.endswith("Height") else "widthPX"
            e = need(name, (int, float), "numeric")
            if e:
                return e, ui, None
            if t is not None:
                t["height" if name == "heightPX" else "width"] = args[name]
            return ok(), {name: args[name]}, None
        if method == "getCallCenterSettings":
            return ok(self.call_center_settings(t)), ui, None
        if method == "getSoftphoneLayout":
            return ok(self.layout), ui, None
        if method == "screenPop":
            return self.screen_pop(args, tab, bad, need, ok)
        if method == "searchAndScreenPop":
            return self.search_and_pop(args, tab, bad, need, ok)
        if method == "saveLog":
            return self.save_log(args, bad, ok)
        if method == "runApex":
            for name in ("apexClass", "methodName"):
                e = need(name, str, "string")
                if e:
                    return e, ui, None
            return {"success": False, "returnValue": None, "errors": [{
                "code": "GENERIC_ERROR", "description": "Could not load Apex class: %s."
                % args["apexClass"]}]}, ui, None
        return {"success": False, "returnValue": None, "errors": [{
            "code": "GENERIC_ERROR", "description": "An error occurred while calling the API "
                                                    "method."}]}, ui, None

    def call_center_settings(self, t):
        if self.call_center is not None:
            return dict(self.call_center)
        adapter = (t or {}).get("softphone") or "https://connector.example.com/softphone/"
        return {"/reqGeneralInfo/reqInternalName": "FinesseCTI",
                "/reqGeneralInfo/reqDisplayName": "Cisco Finesse (sf-sim)",
                "/reqGeneralInfo/reqAdapterUrl": adapter,
                "/reqGeneralInfo/reqUseApi": "true",
                "/reqGeneralInfo/reqSoftphoneHeight": "550",
                "/reqGeneralInfo/reqSoftphoneWidth": "400",
                "/reqGeneralInfo/reqSalesforceCompatibilityMode": "Lightning",
                "/reqDialingOptions/reqOutsidePrefix": "9",
                "/reqDialingOptions/reqLongDistPrefix": "1",
                "/reqDialingOptions/reqInternationalPrefix": "01"}

    def pop_view(self, ptype, params, default_field_values=None):
        """The view a screen pop leads to. Holds lock."""
        st, o = self.state, self.ui_origin
        if ptype == "sobject":
            rid = norm_id(params.get("recordId"))
            otype, rec = st.lookup(rid) if rid else (None, None)
            if rec is not None:
                return st.record_view(otype, rec, o)
            return {"url": "%s/lightning/r/%s/view" % (o, params.get("recordId")),
                    "recordId": params.get("recordId"), "phones": [], "missing": True}
        if ptype == "url":
            return {"url": o + params["url"]}
        if ptype == "objecthome":
            return {"url": "%s/lightning/o/%s/home" % (o, params["scope"])}
        if ptype == "list":
            return {"url": "%s/lightning/o/%s/list?filterName=%s"
                    % (o, params["scope"], urllib.parse.quote(params["listViewId"]))}
        if ptype == "search":
            return {"url": "%s/one/one.app#search/%s" % (o, urllib.parse.quote(params["searchString"])),
                    "search": params["searchString"]}
        if ptype == "newRecord":
            return {"url": "%s/lightning/o/%s/new" % (o, params["entityName"]),
                    "objectType": params["entityName"],
                    "modal": {"entityName": params["entityName"],
                              "defaultFieldValues": params.get("defaultFieldValues")
                              or default_field_values or {}}}
        if ptype == "flow":
            return {"url": "%s/flow/%s" % (o, params["flowDevName"]),
                    "flow": {"flowDevName": params["flowDevName"],
                             "flowArgs": params.get("flowArgs") or []}}
        return None

    def screen_pop(self, args, tab, bad, need, ok):
        st = self.state
        ptype = args.get("type")
        if ptype not in SCREENPOP_TYPES:
            return bad("type", "SCREENPOP_TYPE", "type" in args, ptype), {}, None
        params = args.get("params")
        if not isinstance(params, dict):
            return bad("params", "object", "params" in args, params), {}, None
        req = {"sobject": ["recordId"], "url": ["url"], "objecthome": ["scope"],
               "list": ["listViewId", "scope"], "search": ["searchString"],
               "newRecord": ["entityName"], "flow": ["flowDevName"]}[ptype]
        for name in req:
            e = need(name, str, "string", params)
            if e:
                return e, {}, None
        if ptype == "url" and not params["url"].startswith("/"):
            return bad("url", "relative URL", True, params["url"]), {}, None
        if ptype == "search" and len(params["searchString"]) < 3:
            return bad("searchString", "string of at least 3 characters", True,
                       params["searchString"]), {}, None
        if ptype == "flow" and "flowArgs" in params and not isinstance(params["flowArgs"], list):
            return bad("flowArgs", "array", True, params["flowArgs"]), {}, None
        view = self.pop_view(ptype, params, args.get("defaultFieldValues"))
        st.set_view(tab, view, "screenPop")
        return ok(), {}, {"type": ptype, "params": params, "view": view}

    def search_and_pop(self, args, tab, bad, need, ok):
        st = self.state
        e = need("searchParams", str, "string")
        if e:
            return e, {}, None
        if len(args["searchParams"]) < 3:
            return bad("searchParams", "string of at least 3 characters", True,
                       args["searchParams"]), {}, None
        ct = args.get("callType")
        if ct not in CALL_TYPES:
            return bad("callType", "CALL_TYPE", "callType" in args, ct), {}, None
        if "deferred" in args and args["deferred"] is not None and not isinstance(args["deferred"], bool):
            return bad("deferred", "boolean", True, args["deferred"]), {}, None
        if args.get("defaultFieldValues") is not None and not isinstance(args["defaultFieldValues"], dict):
            return bad("defaultFieldValues", "object", True, args["defaultFieldValues"]), {}, None
        if args.get("queryParams") is not None and not isinstance(args["queryParams"], (str, dict)):
            return bad("queryParams", "string", True, args["queryParams"]), {}, None
        layout = self.layout.get(ct.capitalize(), {})
        term = args["searchParams"]
        rv, matches = {}, []
        for otype, fields in layout.get("objects", {}).items():
            if otype not in st.objs:
                continue
            for rec in st.objs[otype].values():
                if self.sosl_match(otype, rec, term, "ALL"):
                    item = {"Id": rec["Id"], "Name": record_name(otype, rec),
                            "RecordType": otype, "object": otype, "displayName": otype}
                    for f in fields:
                        item[f["apiName"]] = rec.get(f["apiName"])
                    rv[rec["Id"]] = item
                    matches.append((otype, rec))
        settings = layout.get("screenPopSettings", {})
        dfv = args.get("defaultFieldValues") or {}
        if len(matches) == 1:
            target = ("sobject", {"recordId": matches[0][1]["Id"]})
        elif len(matches) > 1:
            target = ("search", {"searchString": term})
            if settings.get("MultipleMatches", {}).get("screenPopType") == "DoNotPop":
                target = None
        else:
            nm = settings.get("NoMatch", {})
            if nm.get("screenPopType") == "PopToEntity" and nm.get("screenPopData"):
                target = ("newRecord", {"entityName": nm["screenPopData"],
                                        "defaultFieldValues": dfv})
            elif nm.get("screenPopType") == "PopToSearch":
                target = ("search", {"searchString": term})
            else:
                target = None
        if args.get("deferred"):
            if target is not None:
                rv["SCREEN_POP_DATA"] = {"type": target[0], "params": target[1]}
            else:
                rv["SCREEN_POP_DATA"] = {}
            return ok(rv), {}, None
        pop = None
        if ct == "inbound" and target is not None:    # settings apply to inbound only
            view = self.pop_view(target[0], target[1], dfv)
            st.set_view(tab, view, "searchAndScreenPop")
            pop = {"type": target[0], "params": target[1], "view": view}
        return ok(rv), {}, pop

    def save_log(self, args, bad, ok):
        st = self.state
        value = args.get("object", args.get("value"))
        if not isinstance(value, dict):
            return bad("value", "object", "object" in args or "value" in args, value), {}, None
        fields = {k: v for k, v in value.items() if k not in ("entityApiName", "Id")}
        entity = value.get("entityApiName")
        user = {"user_id": next(iter(st.integration_user_id.values()))}

        def generic(details):
            return {"success": False, "returnValue": None, "errors": [{
                "code": "GENERIC_ERROR",
                "description": "An error occurred while calling the saveLog() API method. Review "
                               "the Details field in the error section.",
                "details": details}]}
        try:
            if value.get("Id"):
                rid = norm_id(value["Id"])
                otype, rec = st.lookup(rid) if rid else (None, None)
                if rec is None:
                    return generic([sf_err("INVALID_ID_FIELD", "invalid record id")]), {}, None
                if otype == "Task":
                    self.write_task(rec, self.validate_task(fields, rec), user, "saveLog",
                                    time.time())
                else:
                    rec.update(fields)
                    rec["LastModifiedDate"] = sf_date()
                return ok(rid), {}, None
            if not isinstance(entity, str) or not entity:
                return bad("entityApiName", "string", "entityApiName" in value, entity), {}, None
            otype = self.canon_type(entity)
            if otype == "Task":
                rid = self.write_task({}, self.validate_task(fields, None), user, "saveLog",
                                      time.time())
            elif otype is not None and otype in OBJECT_FIELDS:
                rid = st.add_record(otype, fields)
            else:
                return generic([sf_err("INVALID_TYPE", "sObject type '%s' is not supported."
                                       % entity)]), {}, None
            return ok(rid), {}, None
        except ApiError as e:
            return generic(e.errors), {}, None


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        if self.app.verbose:
            super().handle_error(request, client_address)


def write_atomic(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Salesforce REST subset + Open CTI host page for tests")
    ap.add_argument("--api-port", type=int, default=0)
    ap.add_argument("--ui-port", type=int, default=0)
    ap.add_argument("--port-file", help='written once listening: {"api": N, "ui": N}')
    ap.add_argument("--consumer-key", required=True)
    ap.add_argument("--jwt-cert", required=True, help="PEM certificate or public key (RS256)")
    ap.add_argument("--integration-user", action="append", default=None,
                    help="username allowed as JWT sub (repeatable)")
    ap.add_argument("--token-ttl", type=int, default=3600)
    ap.add_argument("--task-external-id-field", default="Finesse_Call_Id__c")
    ap.add_argument("--task-extra-field", action="append",
                    help="an extra writable Task text field, e.g. cnx__CTIInfo__c (repeatable)")
    ap.add_argument("--seed", help="JSON file of records (replaces the default set)")
    ap.add_argument("--login-url", help="expected JWT aud / id URL base (default: the API origin)")
    ap.add_argument("--audience", action="append", help="another accepted JWT aud (repeatable)")
    ap.add_argument("--api-limit", type=int, default=100000)
    ap.add_argument("--ui-host", default="127.0.0.1",
                    help="host name used in UI-origin URLs (e.g. a name the browser maps to 127.0.0.1)")
    ap.add_argument("--api-host", default="127.0.0.1", help="host name used in API-origin URLs")
    ap.add_argument("--call-center", help="call-center definition XML for getCallCenterSettings")
    ap.add_argument("--softphone-layout", help="JSON softphone layout for getSoftphoneLayout")
    ap.add_argument("--ui-tls-cert")
    ap.add_argument("--ui-tls-key")
    ap.add_argument("--api-tls-cert")
    ap.add_argument("--api-tls-key")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    a.integration_users = a.integration_user or ["integration@example.com"]
    if a.token_ttl <= 0:
        ap.error("--token-ttl must be positive")
    for x, y in (("ui_tls_cert", "ui_tls_key"), ("api_tls_cert", "api_tls_key")):
        if bool(getattr(a, x)) != bool(getattr(a, y)):
            ap.error("--%s and --%s go together" % (x.replace("_", "-"), y.replace("_", "-")))
    a.seed = None if not a.seed else json.load(open(a.seed, encoding="utf-8"))

    app = App(a)
    servers = []
    for role, port, cert, key in (("api", a.api_port, a.api_tls_cert, a.api_tls_key),
                                  ("ui", a.ui_port, a.ui_tls_cert, a.ui_tls_key)):
        srv = Server(("127.0.0.1", port), Handler)
        srv.app, srv.role = app, role
        srv.scheme = "https" if cert else "http"
        if cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
        servers.append(srv)
    api, ui = servers
    app.api_origin = "%s://%s:%d" % (api.scheme, a.api_host, api.server_address[1])
    app.ui_origin = "%s://%s:%d" % (ui.scheme, a.ui_host, ui.server_address[1])

    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True)
               for s in servers]
    for t in threads:
        t.start()
    done = threading.Event()

    def stop(_sig, _frame):
        done.set()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    ports = {"api": api.server_address[1], "ui": ui.server_address[1]}
    if a.port_file:
        write_atomic(a.port_file, json.dumps(ports).encode())
    print("sf-sim listening api=%d ui=%d" % (ports["api"], ports["ui"]), flush=True)
    while not done.wait(0.5):
        pass
    for s in servers:
        s.shutdown()
        s.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
