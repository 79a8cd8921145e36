# SPDX-License-Identifier: AGPL-3.0-or-later
"""A SAML 2.0 identity provider for tests, built on python3-pysaml2 (Debian),
which signs and encrypts through the xmlsec1 command-line tool: responses are
made by an implementation independent of fsc-sso's verifier.

Run with /usr/bin/python3. A library for the integration tests, the
benchmark and the fuzz-seed generator (Idp below); it has no HTTP server:
tests read the AuthnRequest or LogoutRequest from fsc-sso's redirect
themselves, POST the Response to the ACS as the browser's auto-submitted
form would, and follow the HTTP-Redirect binding's 302s to fsc-sso's SLO
endpoint as the browser would (SAML 2.0 Bindings §3.4, §3.5).

Shapes follow the OASIS SAML 2.0 Core (saml-core-2.0-os) and Profiles
(saml-profiles-2.0-os §4.1.4: Web Browser SSO response rules: Destination,
bearer SubjectConfirmation with Recipient/NotOnOrAfter/InResponseTo,
AudienceRestriction, AuthnStatement; §4.4: Single Logout); see README.md.
"""

import base64
import datetime
import os
import re
import subprocess
import urllib.parse
import zlib

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2 import samlp
from saml2 import xmldsig as ds
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.pack import http_redirect_message
from saml2.s_utils import deflate_and_base64_encode
from saml2.saml import NAMEID_FORMAT_UNSPECIFIED, NameID
from saml2.server import Server
from saml2.sigver import (pre_encryption_part, pre_signature_part, verify_redirect_signature,
                          REQ_ORDER, RESP_ORDER)

XMLSEC1 = "/usr/bin/xmlsec1"
AES128_GCM = "http://www.w3.org/2009/xmlenc11#aes128-gcm"
AES256_GCM = "http://www.w3.org/2009/xmlenc11#aes256-gcm"
AES128_CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
AES256_CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
TRIPLEDES_CBC = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"
RSA_OAEP = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"
RSA_1_5 = "http://www.w3.org/2001/04/xmlenc#rsa-1_5"
_SESSION_KEY = {AES128_GCM: "aes-128", AES256_GCM: "aes-256", AES128_CBC: "aes-128",
                AES256_CBC: "aes-256", TRIPLEDES_CBC: "des-192"}


def make_keypair(directory, name, cn=None, days=30):
    """A self-signed RSA-2048 certificate and its key (openssl CLI);
    returns (key_file, cert_file). Keys are 0600."""
    key = os.path.join(directory, name + ".key")
    crt = os.path.join(directory, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", str(days), "-subj", "/CN=%s" % (cn or name)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(key, 0o600)
    return key, crt


def cert_b64(cert_file):
    """The base64 body of a PEM certificate (no header lines, one line)."""
    with open(cert_file, encoding="ascii") as f:
        return "".join(l.strip() for l in f if l.strip() and not l.startswith("-----"))


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Idp:
    """An IdP with its own key pair, for one SP.

    sp_entity_id, acs_url: the SP (fsc-sso). sp_cert_file: the SP's
    certificate (assertions are encrypted to it). directory: where keys and
    metadata go."""

    def __init__(self, directory, sp_entity_id, acs_url, sp_cert_file=None,
                 entity_id="https://idp.test/idp", base_url="https://idp.test"):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.entity_id, self.sp_entity_id, self.acs_url = entity_id, sp_entity_id, acs_url
        self.sp_cert_file = sp_cert_file
        self.sso_url = base_url.rstrip("/") + "/idp/sso"
        self.slo_url = base_url.rstrip("/") + "/idp/slo"
        self.key_file, self.cert_file = make_keypair(directory, "idp-signing", "idp.test")
        self._servers = {}
        self.sp_metadata_file = os.path.join(directory, "sp-metadata-for-idp.xml")
        self._write_sp_metadata()

    def _write_sp_metadata(self):
        enc = ""
        if self.sp_cert_file:
            enc = ('<md:KeyDescriptor use="encryption"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
                   '<ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo>'
                   '</md:KeyDescriptor>' % cert_b64(self.sp_cert_file))
        md = ('<?xml version="1.0"?>\n<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
              'entityID="%s"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
              '%s<md:SingleLogoutService Binding="%s" Location="%s"/>'
              '<md:AssertionConsumerService Binding="%s" Location="%s" index="0"/>'
              '</md:SPSSODescriptor></md:EntityDescriptor>\n'
              % (self.sp_entity_id, enc, BINDING_HTTP_REDIRECT,
                 self.acs_url.replace("/acs", "/slo"), BINDING_HTTP_POST, self.acs_url))
        with open(self.sp_metadata_file, "w", encoding="utf-8") as f:
            f.write(md)

    def server(self, key_file=None, cert_file=None):
        """A pysaml2 Server signing with this key pair (default: the IdP's)."""
        key_file, cert_file = key_file or self.key_file, cert_file or self.cert_file
        if (key_file, cert_file) not in self._servers:
            conf = {
                "entityid": self.entity_id,
                "service": {"idp": {"endpoints": {
                    "single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)],
                    "single_logout_service": [(self.slo_url, BINDING_HTTP_REDIRECT)]}}},
                "key_file": key_file, "cert_file": cert_file,
                "metadata": {"local": [self.sp_metadata_file]},
                "xmlsec_binary": XMLSEC1,
                "delete_tmpfiles": True,
            }
            c = IdPConfig()
            c.load(conf)
            self._servers[(key_file, cert_file)] = Server(config=c)
        return self._servers[(key_file, cert_file)]

    def metadata(self, extra_cert_files=(), path=None):
        """Write the IdP's metadata (pysaml2's entity_descriptor) with the
        signing certificate, plus extra signing certificates (a rollover);
        returns the file name."""
        xml = str(entity_descriptor(self.server().config))
        for cf in extra_cert_files:
            kd = ('<ns0:KeyDescriptor use="signing"><ns2:KeyInfo><ns2:X509Data><ns2:X509Certificate>%s'
                  '</ns2:X509Certificate></ns2:X509Data></ns2:KeyInfo></ns0:KeyDescriptor>' % cert_b64(cf))
            xml = re.sub(r"(<ns0:IDPSSODescriptor[^>]*>)", lambda m: m.group(1) + kd, xml, count=1)
        path = path or os.path.join(self.dir, "idp-metadata.xml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(xml)
        return path

    # ------------------------------------------------------------------
    def response(self, in_response_to=None, user="agent1@example.com", groups=("agents",),
                 attributes=None, sign_response=True, sign_assertion=False, encrypt=None,
                 key_enc=RSA_OAEP, sha1=False, destination=None, recipient=None, audience=None,
                 issuer=None, assertion_issuer=None, now=None, not_before=None,
                 not_on_or_after=None, subject_not_on_or_after=None, status=None,
                 key_file=None, cert_file=None, mutate_unsigned=None, session_index=None,
                 authn_statement=True):
        """A Response as a string, signed (Response and/or Assertion) with
        RSA-SHA256 (RSA-SHA1 + SHA-1 digests when sha1) by pysaml2/xmlsec1,
        the Assertion optionally encrypted to the SP's certificate
        (encrypt = one of the AES URIs above).

        Times default to now: Conditions NotBefore = now, NotOnOrAfter and
        SubjectConfirmationData NotOnOrAfter = now + 5 min. Every override
        (destination, recipient, audience, issuer, times) is written into the
        document before it is signed, so the signature is valid and only the
        meaning is wrong. mutate_unsigned(xml) -> xml: any other change made
        before signing."""
        srv = self.server(key_file, cert_file)
        now = now or datetime.datetime.utcnow().replace(microsecond=0)
        identity = {"groups": list(groups)}
        identity.update(attributes or {})
        resp = srv.create_authn_response(
            identity=identity, in_response_to=in_response_to,
            destination=self.acs_url, sp_entity_id=self.sp_entity_id,
            name_id=NameID(text=user, format=NAMEID_FORMAT_UNSPECIFIED),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
            sign_response=False, sign_assertion=False)
        xml = str(resp)
        # the times and addresses this case asks for, written before signing
        nb = iso(not_before or now)
        noa = iso(not_on_or_after or now + datetime.timedelta(minutes=5))
        snoa = iso(subject_not_on_or_after or not_on_or_after or now + datetime.timedelta(minutes=5))
        xml = re.sub(r'(<ns1:Conditions )NotBefore="[^"]*" NotOnOrAfter="[^"]*"',
                     r'\1NotBefore="%s" NotOnOrAfter="%s"' % (nb, noa), xml)
        xml = re.sub(r'(<ns1:SubjectConfirmationData )NotOnOrAfter="[^"]*"',
                     r'\1NotOnOrAfter="%s"' % snoa, xml)
        xml = re.sub(r'IssueInstant="[^"]*"', 'IssueInstant="%s"' % iso(now), xml)
        xml = re.sub(r'AuthnInstant="[^"]*"', 'AuthnInstant="%s"' % iso(now), xml)
        if destination is not None:
            xml = xml.replace('Destination="%s"' % self.acs_url, 'Destination="%s"' % destination, 1)
        if recipient is not None:
            xml = xml.replace('Recipient="%s"' % self.acs_url, 'Recipient="%s"' % recipient, 1)
        if audience is not None:
            xml = xml.replace("<ns1:Audience>%s</ns1:Audience>" % self.sp_entity_id,
                              "<ns1:Audience>%s</ns1:Audience>" % audience, 1)
        if issuer is not None:   # the Response's Issuer
            xml = xml.replace(">%s</ns1:Issuer>" % self.entity_id, ">%s</ns1:Issuer>" % issuer, 1)
        if assertion_issuer is not None:
            i = xml.index("<ns1:Assertion ")
            xml = xml[:i] + xml[i:].replace(">%s</ns1:Issuer>" % self.entity_id,
                                            ">%s</ns1:Issuer>" % assertion_issuer, 1)
        if session_index is not None:
            xml = re.sub(r'SessionIndex="[^"]*"', 'SessionIndex="%s"' % session_index, xml)
        if not authn_statement:
            xml = re.sub(r"<ns1:AuthnStatement .*?</ns1:AuthnStatement>", "", xml)
        if status is not None:
            xml = xml.replace("urn:oasis:names:tc:SAML:2.0:status:Success", status)
        if mutate_unsigned:
            xml = mutate_unsigned(xml)
        sign_alg = ds.SIG_RSA_SHA1 if sha1 else ds.SIG_RSA_SHA256
        digest_alg = ds.DIGEST_SHA1 if sha1 else ds.DIGEST_SHA256
        key_file = key_file or self.key_file
        if sign_assertion:
            xml = self._sign(srv, xml, "Assertion", key_file, sign_alg, digest_alg)
        if encrypt:
            xml = self._encrypt(srv, xml, encrypt, key_enc)
        if sign_response:
            xml = self._sign(srv, xml, "Response", key_file, sign_alg, digest_alg)
        return xml

    @staticmethod
    def _sign(srv, xml, what, key_file, sign_alg, digest_alg):
        """Insert pysaml2's signature template into the Response or the
        Assertion (after its Issuer, as the schema wants) and have xmlsec1
        sign it."""
        if what == "Response":
            m = re.search(r'<ns0:Response [^>]*\bID="([^"]+)"', xml)
            node = "urn:oasis:names:tc:SAML:2.0:protocol:Response"
        else:
            m = re.search(r'<ns1:Assertion [^>]*\bID="([^"]+)"', xml)
            node = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
        ident = m.group(1)
        sig = pre_signature_part(ident, srv.sec.my_cert, 1 if what == "Response" else 2,
                                 digest_alg=digest_alg, sign_alg=sign_alg)
        sig_xml = re.sub(r"^<\?xml[^>]*>\s*", "", str(sig))
        # the template comes with its own ns prefix declarations; put it
        # right after this element's Issuer
        start = m.start()
        issuer_end = xml.index("</ns1:Issuer>", start) + len("</ns1:Issuer>")
        xml = xml[:issuer_end] + sig_xml + xml[issuer_end:]
        return srv.sec.sign_statement(xml, node, key_file=key_file, node_id=ident)

    def _encrypt(self, srv, xml, msg_enc, key_enc):
        """Move the Assertion into an EncryptedAssertion and encrypt it to
        the SP's certificate (xmlsec1 --encrypt through pysaml2)."""
        a0 = xml.index("<ns1:Assertion ")
        a1 = xml.index("</ns1:Assertion>") + len("</ns1:Assertion>")
        wrapped = xml[:a0] + "<ns1:EncryptedAssertion>" + xml[a0:a1] + "</ns1:EncryptedAssertion>" + xml[a1:]
        tmpl = pre_encryption_part(msg_enc=msg_enc, key_enc=key_enc,
                                   encrypt_cert=cert_b64(self.sp_cert_file))
        out = srv.sec.encrypt_assertion(wrapped, self.sp_cert_file, tmpl,
                                        key_type=_SESSION_KEY[msg_enc])
        return re.sub(r"^<\?xml[^>]*>\s*", "", out)

    # ------------------------------------------------------------------
    # Single Logout over HTTP-Redirect (saml-profiles-2.0-os §4.4,
    # saml-bindings-2.0-os §3.4)

    def _redirect_query(self, srv, xml, param, relay_state, sign, sha1, lowercase_escapes):
        """pysaml2's HTTP-Redirect encoding of xml (DEFLATE, base64) and its
        query signature (§3.4.4.1) with srv's key. lowercase_escapes: the
        same values percent-encoded with lowercase hex, signed as sent (a
        receiver must verify the query as received, not re-encode it)."""
        sigalg = ds.SIG_RSA_SHA1 if sha1 else ds.SIG_RSA_SHA256
        if not lowercase_escapes:
            info = http_redirect_message(xml, "https://sp.invalid/slo", relay_state, param,
                                         sigalg=sigalg, sign=sign, backend=srv.sec.sec_backend)
            return info["headers"][0][1].split("?", 1)[1]

        def enc(v):
            return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(),
                          urllib.parse.quote_plus(v, safe=""))
        parts = [(param, deflate_and_base64_encode(xml).decode())]
        if relay_state:
            parts.append(("RelayState", relay_state))
        if sign:
            parts.append(("SigAlg", sigalg))
        q = "&".join("%s=%s" % (k, enc(v)) for k, v in parts)
        if sign:
            sig = srv.sec.sec_backend.get_signer(sigalg).sign(q.encode("ascii"))
            q += "&Signature=" + enc(base64.b64encode(sig).decode())
        return q

    def logout_request(self, slo_url, user="agent1@example.com", session_indexes=None,
                       relay_state=None, now=None, not_on_or_after=None, destination=None,
                       issuer=None, sign=True, sha1=False, key_file=None, cert_file=None,
                       mutate=None, lowercase_escapes=False, name_id=None):
        """An IdP-initiated LogoutRequest for NameID user (Format unspecified,
        as response() asserts it) and optional SessionIndexes, made by
        pysaml2 (create_logout_request) and sent as the HTTP-Redirect binding
        sends it to slo_url. Returns (request ID, query string).

        now sets IssueInstant; not_on_or_after adds that attribute;
        destination/issuer override Destination and Issuer; key_file and
        cert_file sign with another key; mutate(xml) -> xml changes the
        document before it is encoded and signed; name_id: a NameID to use
        instead (e.g. with NameQualifier)."""
        srv = self.server(key_file, cert_file)
        nid = name_id or NameID(text=user, format=NAMEID_FORMAT_UNSPECIFIED)
        rid, req = srv.create_logout_request(slo_url, self.sp_entity_id, name_id=nid,
                                             session_indexes=session_indexes, sign=False)
        xml = str(req)
        now = now or datetime.datetime.utcnow().replace(microsecond=0)
        xml = re.sub(r'IssueInstant="[^"]*"', 'IssueInstant="%s"' % iso(now), xml, count=1)
        if not_on_or_after is not None:
            xml = xml.replace(" Version=", ' NotOnOrAfter="%s" Version=' % iso(not_on_or_after), 1)
        if destination is not None:
            xml = xml.replace('Destination="%s"' % slo_url, 'Destination="%s"' % destination, 1)
        if issuer is not None:
            xml = xml.replace(">%s</ns1:Issuer>" % self.entity_id, ">%s</ns1:Issuer>" % issuer, 1)
        if mutate:
            xml = mutate(xml)
        return rid, self._redirect_query(srv, xml, "SAMLRequest", relay_state, sign, sha1,
                                         lowercase_escapes)

    def logout_response(self, slo_url, in_response_to, relay_state=None, status=None,
                        now=None, sign=True, key_file=None, cert_file=None, mutate=None):
        """The IdP's LogoutResponse to an SP-initiated LogoutRequest (status:
        a StatusCode URI, default Success), made by pysaml2 and sent over
        HTTP-Redirect to slo_url. Returns the query string."""
        srv = self.server(key_file, cert_file)
        st = samlp.Status(status_code=samlp.StatusCode(value=status or samlp.STATUS_SUCCESS))
        # pysaml2's own StatusResponse builder (Entity._status_response)
        resp = srv._status_response(samlp.LogoutResponse, srv._issuer(), st, sign=False,
                                    in_response_to=in_response_to, destination=slo_url)
        xml = str(resp)
        if now is not None:
            xml = re.sub(r'IssueInstant="[^"]*"', 'IssueInstant="%s"' % iso(now), xml, count=1)
        if mutate:
            xml = mutate(xml)
        return self._redirect_query(srv, xml, "SAMLResponse", relay_state, sign, False, False)

    def read_redirect(self, url, sp_cert_file):
        """What fsc-sso sent to the IdP's SLO URL (its 302 Location): the
        query signature checked with the SP's certificate by pysaml2, the
        message inflated and parsed by pysaml2 (samlp). Returns a
        Redirected."""
        assert url.startswith(self.slo_url + "?"), url
        raw = dict(urllib.parse.parse_qsl(url.split("?", 1)[1], keep_blank_values=True))
        param = "SAMLRequest" if "SAMLRequest" in raw else "SAMLResponse"
        sig_ok = False
        if "Signature" in raw:
            msg = {k: raw[k] for k in (REQ_ORDER if param == "SAMLRequest" else RESP_ORDER) +
                   ["Signature"] if k in raw}
            sig_ok = verify_redirect_signature(msg, self.server().sec.sec_backend,
                                               cert=cert_b64(sp_cert_file))
        xml = zlib.decompress(base64.b64decode(raw[param]), -15).decode()
        if param == "SAMLRequest":
            return Redirected("LogoutRequest", samlp.logout_request_from_string(xml),
                              raw.get("RelayState"), sig_ok, xml)
        return Redirected("LogoutResponse", samlp.logout_response_from_string(xml),
                          raw.get("RelayState"), sig_ok, xml)

    # ------------------------------------------------------------------
    def parse_authn_request(self, saml_request, relay_state, sig_alg=None, signature=None,
                            sp_cert_file=None):
        """Decode an HTTP-Redirect AuthnRequest (pysaml2), checking the
        query signature against sp_cert_file when given. Returns
        (request id, AssertionConsumerServiceURL, Destination, Issuer)."""
        srv = self.server()
        xml = zlib.decompress(base64.b64decode(saml_request), -15).decode()
        req = samlp.authn_request_from_string(xml)
        return req.id, req.assertion_consumer_service_url, req.destination, req.issuer.text


class Redirected:
    """A message fsc-sso sent to the IdP over HTTP-Redirect, as the IdP reads
    it: kind ("LogoutRequest"/"LogoutResponse"), the pysaml2 message object
    (msg), relay_state, and whether the query signature verified with the
    SP's certificate (signature_ok, pysaml2's verify_redirect_signature)."""

    def __init__(self, kind, msg, relay_state, signature_ok, xml):
        self.kind, self.msg, self.relay_state = kind, msg, relay_state
        self.signature_ok, self.xml = signature_ok, xml

    @property
    def status(self):
        """LogoutResponse: (top-level StatusCode, second-level or None)."""
        code = self.msg.status.status_code
        sub = code.status_code.value if code.status_code is not None else None
        return code.value, sub


def post_form(xml):
    """SAMLResponse as the HTTP-POST binding carries it (base64)."""
    return base64.b64encode(xml.encode() if isinstance(xml, str) else xml).decode()
