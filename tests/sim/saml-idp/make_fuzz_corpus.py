# SPDX-License-Identifier: AGPL-3.0-or-later
"""Regenerates the fuzz seeds for tests/fuzz/fuzz_saml_response.c and the
test-only key pairs they are made with (tests/fixtures/saml/). Run with
/usr/bin/python3 from the repo root; then run tests/fuzz/embed_saml_keys.sh
is not needed: fuzz_saml_response.c reads the PEM files' text from
fuzz_saml_keys.h, which this script rewrites too. Seeds are signed by
pysaml2/xmlsec1; their first byte picks the fuzzer's mode (0 XML, 1 base64
POST field, 2 IdP metadata, 3 HTTP-Redirect query, 4 an inflated logout
message)."""
import base64
import os
import re
import sys
import urllib.parse
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import saml_idp  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures", "saml")
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus", "saml_response")
SP, ACS = "https://sso.test/sso/saml/metadata", "https://sso.test/sso/saml/acs"
SLO = "https://sso.test/sso/saml/slo"   # the fuzz target's SLO endpoint


def c_string(text):
    return "\n".join('    "%s\\n"' % l.replace('"', '\\"') for l in text.strip().splitlines())


def main():
    os.makedirs(FIX, exist_ok=True)
    os.makedirs(CORPUS, exist_ok=True)
    sp_key, sp_crt = saml_idp.make_keypair(FIX, "test-sp", "sso.test", days=36500)
    idp = saml_idp.Idp(FIX, SP, ACS, sp_crt)
    t0 = int(__import__("time").time())
    md = idp.metadata(path=os.path.join(FIX, "test-idp-metadata.xml"))
    seeds = {
        "signed_response": idp.response("_req1"),
        "signed_assertion": idp.response("_req1", sign_response=False, sign_assertion=True),
        "both_signed": idp.response(None, sign_assertion=True),
        "encrypted_gcm": idp.response("_req1", sign_response=False, sign_assertion=True,
                                      encrypt=saml_idp.AES128_GCM),
        "encrypted_cbc": idp.response("_req1", sign_assertion=True, encrypt=saml_idp.AES256_CBC),
        "sha1": idp.response("_req1", sha1=True),
    }
    for name, xml in seeds.items():
        with open(os.path.join(CORPUS, name + ".xml"), "wb") as f:
            f.write(b"\x00" + xml.encode())
    with open(os.path.join(CORPUS, "signed_response.b64"), "wb") as f:
        f.write(b"\x01" + saml_idp.post_form(seeds["signed_response"]).encode())
    body = re.sub(r"^<\?xml[^>]*>\s*", "", seeds["signed_assertion"])
    # signed for "agent1@example.com.x", a comment added after signing
    evil = idp.response("_req1", sign_response=False, sign_assertion=True,
                        user="agent1@example.com.x")
    with open(os.path.join(CORPUS, "comment_nameid.xml"), "wb") as f:
        f.write(b"\x00" + evil.replace(">agent1@example.com.x<",
                                        ">agent1@example.com<!---->.x<").encode())
    with open(os.path.join(CORPUS, "doctype.xml"), "wb") as f:
        f.write(b'\x00<!DOCTYPE r [<!ENTITY a "b">]>' + body.encode())
    with open(md, "rb") as f:
        mdx = f.read()
    with open(os.path.join(CORPUS, "metadata.xml"), "wb") as f:
        f.write(b"\x02" + mdx)
    with open(os.path.join(CORPUS, "redirect_unsigned.txt"), "wb") as f:
        f.write(b"\x03SAMLRequest=" + base64.b64encode(b"not deflated") + b"&RelayState=x")
    # Single Logout over HTTP-Redirect, made and signed by pysaml2 (mode 3);
    # test_saml.c checks each one's verdict at FUZZ_NOW
    si = ["idp-session-1", "idp-session-2"]
    slo = {
        "slo_request": idp.logout_request(SLO, session_indexes=si, relay_state="rs/1+x")[1],
        "slo_request_lowercase": idp.logout_request(SLO, relay_state="rs/1+x",
                                                    lowercase_escapes=True)[1],
        "slo_request_unsigned": idp.logout_request(SLO, sign=False)[1],
        "slo_request_sha1": idp.logout_request(SLO, sha1=True)[1],
        "slo_request_comment_nameid": idp.logout_request(SLO, mutate=lambda x: x.replace(
            ">agent1@example.com<", ">agent1@<!---->example.com<"))[1],
        "slo_request_encrypted_id": idp.logout_request(SLO, mutate=lambda x: re.sub(
            r"<ns1:NameID[^>]*>[^<]*</ns1:NameID>", "<ns1:EncryptedID><x/></ns1:EncryptedID>", x))[1],
        "slo_request_doctype": idp.logout_request(SLO, mutate=lambda x: '<!DOCTYPE r [<!ENTITY a "b">]>' +
                                                  re.sub(r"^<\?xml[^>]*>\s*", "", x))[1],
        "slo_request_bomb": idp.logout_request(SLO, mutate=lambda x: x.replace(
            "</ns0:LogoutRequest>", "<!--" + "A" * 100000 + "--></ns0:LogoutRequest>"))[1],
        "slo_response": idp.logout_response(SLO, "_req1", relay_state="rs1"),
        "slo_response_responder": idp.logout_response(SLO, "_req1", mutate=lambda x: re.sub(
            r'<ns0:StatusCode Value="[^"]*" />|<ns0:StatusCode Value="[^"]*"/>',
            '<ns0:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder">'
            '<ns0:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:PartialLogout"/>'
            '</ns0:StatusCode>', x)),
    }
    for name, q in slo.items():
        with open(os.path.join(CORPUS, name + ".txt"), "wb") as f:
            f.write(b"\x03" + q.encode())
    # the same messages inflated (mode 4: the checks after the signature)
    for name in ("slo_request", "slo_response_responder", "slo_request_comment_nameid"):
        param = dict(urllib.parse.parse_qsl(slo[name]))
        xml = zlib.decompress(base64.b64decode(param.get("SAMLRequest") or param["SAMLResponse"]), -15)
        with open(os.path.join(CORPUS, name + ".xml"), "wb") as f:
            f.write(b"\x04" + xml)
    # the keys the fuzzer embeds (test-only, never used anywhere else)
    with open(os.path.join(ROOT, "tests", "fuzz", "fuzz_saml_keys.h"), "w") as f:
        f.write("/* SPDX-License-Identifier: AGPL-3.0-or-later */\n"
                "/* fuzz_saml_keys.h - TEST-ONLY key material for fuzz_saml_response.c,\n"
                " * written by tests/sim/saml-idp/make_fuzz_corpus.py with the seeds. */\n"
                "#define FUZZ_NOW %dLL /* when the seeds were signed */\n"
                "#define FUZZ_SLO \"%s\" /* the SLO endpoint of the slo_* seeds */\n"
                "static const char fuzz_idp_metadata[] =\n%s;\n"
                "static const char fuzz_sp_key[] =\n%s;\n"
                "static const char fuzz_sp_cert[] =\n%s;\n"
                % (t0 + 30, SLO, c_string(mdx.decode()), c_string(open(sp_key).read()), c_string(open(sp_crt).read())))
    os.unlink(sp_key)      # the fuzzer's copy is the only one
    os.unlink(idp.key_file)
    for extra in ("sp-metadata-for-idp.xml",):
        os.unlink(os.path.join(FIX, extra))
    print("seeds written to", CORPUS)


if __name__ == "__main__":
    main()
