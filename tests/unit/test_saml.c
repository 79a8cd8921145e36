/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_saml.c - the SAML verifier on the fuzz seeds (signed by pysaml2 +
 * xmlsec1 with the test-only keys of tests/fuzz/fuzz_saml_keys.h, at
 * FUZZ_NOW): genuine shapes accepted, each attack seed refused with its
 * reason, the clock and allow_sha1 honoured; xs:dateTime, base64 and the
 * HTTP-Redirect AuthnRequest (inflated and its signature checked); Single
 * Logout: pysaml2's LogoutRequests and LogoutResponses over HTTP-Redirect
 * (verdicts, the query verified as received, tampering, the clock), and
 * our own LogoutRequest/LogoutResponse (content, signature, round trip). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "../fuzz/fuzz_saml_keys.h"
#include "saml.h"

static struct saml_idp idp;
static struct saml_sp_key key;

static int
setup(void **state)
{
    struct cmn_err err;

    (void)state;
    if (saml_metadata_parse(fuzz_idp_metadata, strlen(fuzz_idp_metadata), &idp,
                            &err) != CMN_OK ||
        saml_sp_key_load(fuzz_sp_key, strlen(fuzz_sp_key), fuzz_sp_cert,
                         strlen(fuzz_sp_cert), &key, &err) != CMN_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    saml_idp_cleanup(&idp);
    saml_sp_key_cleanup(&key);
    return 0;
}

/* A seed without its mode byte. */
static char *
seed(const char *name, size_t *len)
{
    char path[512];
    FILE *f;
    char *buf = malloc(600 * 1024);
    size_t n;

    snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/saml_response/%s",
             getenv("FSC_SOURCE_DIR") ? getenv("FSC_SOURCE_DIR") : ".", name);
    f = fopen(path, "rb");
    assert_non_null(f);
    n = fread(buf, 1, 600 * 1024 - 1, f);
    fclose(f);
    memmove(buf, buf + 1, n - 1);
    buf[n - 1] = '\0';
    *len = n - 1;
    return buf;
}

static enum saml_reason
verify_seed(const char *name, long long now, bool sha1,
            struct saml_assertion *a)
{
    struct saml_sp sp = {
        .entity_id = "https://sso.test/sso/saml/metadata",
        .acs_url = "https://sso.test/sso/saml/acs",
        .key = &key,
        .groups_attribute = "groups",
        .allow_sha1 = sha1,
        .clock_skew_s = 120,
    };
    size_t len;
    char *xml = seed(name, &len);
    enum saml_reason r =
        saml_response_verify(xml, len, &idp, &sp, now, a, NULL, NULL);
    free(xml);
    return r;
}

static void
test_saml_genuine_shapes_accepted(void **state)
{
    static const char *const ok[] = {"signed_response.xml",
                                     "signed_assertion.xml", "both_signed.xml",
                                     "encrypted_gcm.xml", "encrypted_cbc.xml"};
    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct saml_assertion a;
        assert_int_equal(verify_seed(ok[i], FUZZ_NOW, false, &a), SAML_OK);
        assert_string_equal(a.user, "agent1@example.com");
        assert_int_equal(a.ngroups, 1);
        assert_string_equal(a.groups[0], "agents");
        assert_true(a.not_on_or_after > FUZZ_NOW);
        assert_int_equal(a.encrypted, strstr(ok[i], "encrypted") != NULL);
        saml_assertion_cleanup(&a);
    }
}

static void
test_saml_attack_seeds_refused_with_reason(void **state)
{
    struct saml_assertion a;

    (void)state;
    assert_int_equal(verify_seed("sha1.xml", FUZZ_NOW, false, &a),
                     SAML_R_SIGNATURE_ALGORITHM);
    assert_null(a.user);
    assert_int_equal(verify_seed("sha1.xml", FUZZ_NOW, true, &a), SAML_OK);
    saml_assertion_cleanup(&a);
    assert_int_equal(verify_seed("comment_nameid.xml", FUZZ_NOW, false, &a),
                     SAML_R_NAMEID);
    assert_int_equal(verify_seed("doctype.xml", FUZZ_NOW, false, &a),
                     SAML_R_DOCTYPE);
}

static void
test_saml_clock_and_skew(void **state)
{
    struct saml_assertion a;

    (void)state;
    assert_int_equal(
        verify_seed("signed_response.xml", FUZZ_NOW + 3600, false, &a),
        SAML_R_EXPIRED);
    assert_int_equal(
        verify_seed("signed_response.xml", FUZZ_NOW - 3600, false, &a),
        SAML_R_NOT_YET_VALID);
    /* 5 minutes of validity + 120 s of skew, counted from signing */
    assert_int_equal(verify_seed("signed_response.xml",
                                 FUZZ_NOW - 30 + 300 + 119, false, &a),
                     SAML_OK);
    saml_assertion_cleanup(&a);
}

static void
test_saml_time_parse(void **state)
{
    (void)state;
    assert_int_equal(saml_time_parse("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(saml_time_parse("2026-01-02T03:04:05.678Z"), 1767323045);
    assert_int_equal(saml_time_parse("2026-01-02T04:04:05+01:00"), 1767323045);
    assert_int_equal(saml_time_parse("2026-01-02T03:04:05"), -1);
    assert_int_equal(saml_time_parse("2026-13-02T03:04:05Z"), -1);
    assert_int_equal(saml_time_parse(NULL), -1);
}

static void
test_saml_post_decode(void **state)
{
    char *xml;
    size_t n;

    (void)state;
    assert_int_equal(saml_post_decode("PGEvPg==", 8, &xml, &n), SAML_OK);
    assert_string_equal(xml, "<a/>");
    free(xml);
    assert_int_equal(saml_post_decode("PGEv\r\nPg==", 10, &xml, &n), SAML_OK);
    free(xml);
    assert_int_equal(saml_post_decode("PG*vPg==", 8, &xml, &n), SAML_R_BASE64);
    assert_int_equal(saml_post_decode("PGEvPg==PG", 10, &xml, &n),
                     SAML_R_BASE64);
}

static int
hexv(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

static char *
pct_decode(const char *s, size_t n)
{
    char *o = malloc(n + 1), *p = o;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            *p++ = (char)(hexv(s[i + 1]) << 4 | hexv(s[i + 2]));
            i += 2;
        } else {
            *p++ = s[i];
        }
    }
    *p = '\0';
    return o;
}

static void
test_saml_authn_request_signed_redirect(void **state)
{
    char *url, *q, *sig_at, *req_b64, *sig_b64;
    unsigned char raw[4096], xml[8192], sig[512];
    z_stream z;
    int raw_len, sig_len;
    EVP_MD_CTX *md;

    (void)state;
    url = saml_authn_request_url(&idp, "https://sso.test/sso/saml/metadata",
                                 "https://sso.test/sso/saml/acs", "_abc",
                                 "relay1", 1767323045, &key);
    assert_non_null(url);
    assert_true(strncmp(url, idp.sso_url, strlen(idp.sso_url)) == 0);
    q = strchr(url, '?') + 1;
    sig_at = strstr(q, "&Signature=");
    assert_non_null(sig_at);
    assert_non_null(strstr(q, "&RelayState=relay1&SigAlg="));
    /* the message inflates to our AuthnRequest */
    req_b64 = pct_decode(q + strlen("SAMLRequest="),
                         strcspn(q + strlen("SAMLRequest="), "&"));
    raw_len =
        EVP_DecodeBlock(raw, (unsigned char *)req_b64, (int)strlen(req_b64));
    while (raw_len > 0 && req_b64[strlen(req_b64) - 1] == '=' &&
           req_b64[strlen(req_b64) - 1] == '=') {
        req_b64[strlen(req_b64) - 1] = '\0';
        raw_len--;
    }
    memset(&z, 0, sizeof(z));
    assert_int_equal(inflateInit2(&z, -15), Z_OK);
    z.next_in = raw;
    z.avail_in = (uInt)raw_len;
    z.next_out = xml;
    z.avail_out = sizeof(xml) - 1;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    xml[z.total_out] = '\0';
    inflateEnd(&z);
    assert_non_null(strstr((char *)xml, "ID=\"_abc\""));
    assert_non_null(
        strstr((char *)xml, "IssueInstant=\"2026-01-02T03:04:05Z\""));
    assert_non_null(strstr((char *)xml, "AssertionConsumerServiceURL=\"https://"
                                        "sso.test/sso/saml/acs\""));
    /* the query signature verifies with the SP's public key */
    sig_b64 = pct_decode(sig_at + 11, strlen(sig_at + 11));
    sig_len =
        EVP_DecodeBlock(sig, (unsigned char *)sig_b64, (int)strlen(sig_b64));
    assert_true(sig_len >= 256);
    md = EVP_MD_CTX_new();
    assert_int_equal(
        EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key.pkey), 1);
    assert_int_equal(EVP_DigestVerify(md, sig, 256, (unsigned char *)q,
                                      (size_t)(sig_at - q)),
                     1);
    EVP_MD_CTX_free(md);
    free(sig_b64);
    free(req_b64);
    free(url);
}

/* --- Single Logout (saml_logout.c, saml_redirect.c) --- */

static enum saml_reason
decode_seed(const char *name, long long now, bool sha1, const char *dest,
            struct saml_redirect_msg *m)
{
    size_t len;
    char *q = seed(name, &len);
    enum saml_reason r =
        saml_redirect_decode(q, &idp, dest, sha1, now, 120, m, NULL);
    free(q);
    return r;
}

static void
test_saml_slo_request_seeds(void **state)
{
    struct saml_redirect_msg m;

    (void)state;
    assert_int_equal(
        decode_seed("slo_request.txt", FUZZ_NOW, false, FUZZ_SLO, &m), SAML_OK);
    assert_true(m.is_request);
    assert_string_equal(m.issuer, "https://idp.test/idp");
    assert_string_equal(m.name_id, "agent1@example.com");
    assert_string_equal(m.name_id_format,
                        "urn:oasis:names:tc:SAML:1.1:nameid-format:"
                        "unspecified");
    assert_null(m.name_qualifier);
    assert_int_equal(m.nsession_indexes, 2);
    assert_string_equal(m.session_indexes[0], "idp-session-1");
    assert_string_equal(m.session_indexes[1], "idp-session-2");
    assert_string_equal(m.relay_state, "rs/1+x"); /* decoded */
    assert_non_null(m.id);
    assert_true(m.issue_instant > FUZZ_NOW - 120 &&
                m.issue_instant <= FUZZ_NOW);
    saml_redirect_msg_cleanup(&m);
    /* signed with lowercase %-escapes: verified as sent, not re-encoded */
    assert_int_equal(
        decode_seed("slo_request_lowercase.txt", FUZZ_NOW, false, FUZZ_SLO, &m),
        SAML_OK);
    assert_string_equal(m.relay_state, "rs/1+x");
    assert_int_equal(m.nsession_indexes, 0);
    saml_redirect_msg_cleanup(&m);

    /* each refused with its own reason, keeping nothing */
    assert_int_equal(decode_seed("slo_request.txt", FUZZ_NOW, false,
                                 "https://other.test/slo", &m),
                     SAML_R_DESTINATION);
    assert_null(m.name_id);
    assert_int_equal(decode_seed("slo_request.txt",
                                 FUZZ_NOW + SAML_REDIRECT_MAX_AGE_S + 200,
                                 false, FUZZ_SLO, &m),
                     SAML_R_EXPIRED);
    assert_int_equal(
        decode_seed("slo_request.txt", FUZZ_NOW - 3600, false, FUZZ_SLO, &m),
        SAML_R_NOT_YET_VALID);
    assert_int_equal(
        decode_seed("slo_request_unsigned.txt", FUZZ_NOW, false, FUZZ_SLO, &m),
        SAML_R_SIGNATURE_MISSING);
    assert_int_equal(
        decode_seed("slo_request_sha1.txt", FUZZ_NOW, false, FUZZ_SLO, &m),
        SAML_R_SIGNATURE_ALGORITHM);
    assert_int_equal(
        decode_seed("slo_request_sha1.txt", FUZZ_NOW, true, FUZZ_SLO, &m),
        SAML_OK);
    saml_redirect_msg_cleanup(&m);
    assert_int_equal(decode_seed("slo_request_comment_nameid.txt", FUZZ_NOW,
                                 false, FUZZ_SLO, &m),
                     SAML_R_NAMEID);
    assert_int_equal(decode_seed("slo_request_encrypted_id.txt", FUZZ_NOW,
                                 false, FUZZ_SLO, &m),
                     SAML_R_NAMEID);
    assert_int_equal(
        decode_seed("slo_request_doctype.txt", FUZZ_NOW, false, FUZZ_SLO, &m),
        SAML_R_DOCTYPE);
    assert_int_equal(
        decode_seed("slo_request_bomb.txt", FUZZ_NOW, false, FUZZ_SLO, &m),
        SAML_R_TOO_LARGE);
}

/* A seed's query with one edit: the first "from" replaced by "to", or
 * "to" appended when from is NULL. */
static enum saml_reason
decode_edited(const char *name, const char *from, const char *to)
{
    struct saml_redirect_msg m;
    struct cmn_err why = {{0}};
    size_t len;
    char *q = seed(name, &len), *e = malloc(len + strlen(to) + 1), *at;
    enum saml_reason r;

    if (from == NULL) {
        sprintf(e, "%s%s", q, to);
    } else {
        at = strstr(q, from);
        assert_non_null(at);
        sprintf(e, "%.*s%s%s", (int)(at - q), q, to, at + strlen(from));
    }
    r = saml_redirect_decode(e, &idp, FUZZ_SLO, false, FUZZ_NOW, 120, &m, &why);
    if (r == SAML_OK) {
        saml_redirect_msg_cleanup(&m);
    }
    free(q);
    free(e);
    return r;
}

static void
test_saml_slo_query_tampering(void **state)
{
    struct saml_redirect_msg m;

    (void)state;
    /* the signature covers RelayState and SigAlg as received */
    assert_int_equal(
        decode_edited("slo_request.txt", "RelayState=rs", "RelayState=rt"),
        SAML_R_SIGNATURE_INVALID);
    assert_int_equal(decode_edited("slo_request.txt", "&RelayState=", "&X="),
                     SAML_R_SIGNATURE_INVALID);
    assert_int_equal(decode_edited("slo_request.txt", "&SigAlg=", "&X="),
                     SAML_R_SIGNATURE_MISSING);
    /* each parameter once; one message */
    assert_int_equal(decode_edited("slo_request.txt", NULL, "&RelayState=b"),
                     SAML_R_QUERY);
    assert_int_equal(decode_edited("slo_request.txt", NULL, "&SAMLResponse=x"),
                     SAML_R_QUERY);
    assert_int_equal(
        decode_edited("slo_request.txt", NULL, "&SAMLEncoding=urn:x"),
        SAML_R_QUERY);
    assert_int_equal(
        decode_edited("slo_request.txt", "RelayState=rs", "RelayState=%zz"),
        SAML_R_QUERY);
    /* unknown parameters are not signed, and not read */
    assert_int_equal(decode_edited("slo_request.txt", NULL, "&utm=1"), SAML_OK);
    assert_int_equal(saml_redirect_decode(NULL, &idp, FUZZ_SLO, false, FUZZ_NOW,
                                          120, &m, NULL),
                     SAML_R_QUERY);
    assert_int_equal(saml_redirect_decode("RelayState=x", &idp, FUZZ_SLO, false,
                                          FUZZ_NOW, 120, &m, NULL),
                     SAML_R_QUERY);
}

static void
test_saml_slo_response_seeds(void **state)
{
    struct saml_redirect_msg m;

    (void)state;
    assert_int_equal(
        decode_seed("slo_response.txt", FUZZ_NOW, false, FUZZ_SLO, &m),
        SAML_OK);
    assert_false(m.is_request);
    assert_true(m.success);
    assert_string_equal(m.in_response_to, "_req1");
    assert_string_equal(m.relay_state, "rs1");
    assert_null(m.sub_status);
    saml_redirect_msg_cleanup(&m);
    assert_int_equal(decode_seed("slo_response_responder.txt", FUZZ_NOW, false,
                                 FUZZ_SLO, &m),
                     SAML_OK);
    assert_false(m.success);
    assert_string_equal(m.status, SAML_STATUS_RESPONDER);
    assert_string_equal(m.sub_status, SAML_STATUS_PARTIAL_LOGOUT);
    saml_redirect_msg_cleanup(&m);
}

/* The named parameter of a redirect URL, percent-decoded, base64-decoded
 * and inflated. malloc'd. */
static char *
inflate_param(const char *url, const char *name)
{
    const char *p = strstr(url, name);
    char *b64, *xml = malloc(16384);
    unsigned char raw[8192];
    int raw_len;
    size_t n;
    z_stream z;

    assert_non_null(p);
    p += strlen(name) + 1;
    b64 = pct_decode(p, strcspn(p, "&"));
    n = strlen(b64);
    raw_len = EVP_DecodeBlock(raw, (unsigned char *)b64, (int)n);
    raw_len -= (n > 0 && b64[n - 1] == '=') + (n > 1 && b64[n - 2] == '=');
    memset(&z, 0, sizeof(z));
    assert_int_equal(inflateInit2(&z, -15), Z_OK);
    z.next_in = raw;
    z.avail_in = (uInt)raw_len;
    z.next_out = (unsigned char *)xml;
    z.avail_out = 16383;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    xml[z.total_out] = '\0';
    inflateEnd(&z);
    free(b64);
    return xml;
}

/* The query signature (RSA-SHA256 over everything before &Signature=)
 * verifies with the SP's key. */
static void
assert_query_signed(const char *url)
{
    const char *q = strchr(url, '?') + 1, *sig_at = strstr(q, "&Signature=");
    char *sig_b64;
    unsigned char sig[512];
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    assert_non_null(sig_at);
    sig_b64 = pct_decode(sig_at + 11, strlen(sig_at + 11));
    assert_true(EVP_DecodeBlock(sig, (unsigned char *)sig_b64,
                                (int)strlen(sig_b64)) >= 256);
    assert_int_equal(
        EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key.pkey), 1);
    assert_int_equal(EVP_DigestVerify(md, sig, 256, (const unsigned char *)q,
                                      (size_t)(sig_at - q)),
                     1);
    EVP_MD_CTX_free(md);
    free(sig_b64);
}

static void
test_saml_logout_request_built(void **state)
{
    struct saml_logout_subject who = {
        .name_id = "a<b>&\"c@example.com",
        .format = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        .name_qualifier = "https://idp.test/idp",
        .sp_name_qualifier = "https://sso.test/sso/saml/metadata",
        .session_index = "idp-session-1",
    };
    char *url, *xml;

    (void)state;
    url = saml_logout_request_url(&idp, "https://sso.test/sso/saml/metadata",
                                  "_lr1", &who, "relay1", 1767323045, &key);
    assert_non_null(url);
    assert_true(strncmp(url, idp.slo_url, strlen(idp.slo_url)) == 0);
    assert_non_null(strstr(url, "&RelayState=relay1&SigAlg="));
    assert_query_signed(url);
    xml = inflate_param(url, "SAMLRequest");
    assert_non_null(strstr(xml, "<samlp:LogoutRequest "));
    assert_non_null(strstr(xml, "ID=\"_lr1\""));
    assert_non_null(strstr(xml, "IssueInstant=\"2026-01-02T03:04:05Z\""));
    assert_non_null(strstr(xml, "Destination=\"https://idp.test/idp/slo\""));
    assert_non_null(strstr(xml, "<saml:Issuer>https://sso.test/sso/saml/"
                                "metadata</saml:Issuer>"));
    assert_non_null(strstr(xml, " NameQualifier=\"https://idp.test/idp\""));
    assert_non_null(strstr(xml, " SPNameQualifier=\"https://sso.test/sso/"
                                "saml/metadata\""));
    assert_non_null(strstr(xml, " Format=\"urn:oasis:names:tc:SAML:2.0:"
                                "nameid-format:persistent\""));
    assert_non_null(strstr(xml, ">a&lt;b&gt;&amp;&quot;c@example.com"
                                "</saml:NameID>"));
    assert_non_null(strstr(xml, "<samlp:SessionIndex>idp-session-1"
                                "</samlp:SessionIndex>"));
    free(xml);
    free(url);
    /* attributes left out when empty; never unsigned */
    who.format = "";
    who.name_qualifier = who.sp_name_qualifier = NULL;
    who.session_index = NULL;
    url = saml_logout_request_url(&idp, "sp", "_lr2", &who, NULL, 0, &key);
    xml = inflate_param(url, "SAMLRequest");
    assert_null(strstr(xml, "Format="));
    assert_null(strstr(xml, "Qualifier="));
    assert_null(strstr(xml, "SessionIndex"));
    free(xml);
    free(url);
    assert_null(
        saml_logout_request_url(&idp, "sp", "_lr3", &who, NULL, 0, NULL));
}

/* Our LogoutResponse read back by our decoder, as the IdP would see it:
 * an "IdP" whose metadata is the SP's certificate. */
static void
test_saml_logout_response_round_trip(void **state)
{
    static const char head[] =
        "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:"
        "metadata\" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" "
        "entityID=\"https://sso.test/sso/saml/metadata\"><md:IDPSSODescriptor "
        "protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">"
        "<md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data>"
        "<ds:X509Certificate>";
    static const char tail[] =
        "</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        "<md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:"
        "bindings:HTTP-Redirect\" Location=\"https://idp.test/idp/slo\"/>"
        "<md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:"
        "bindings:HTTP-Redirect\" Location=\"https://idp.test/idp/sso\"/>"
        "</md:IDPSSODescriptor></md:EntityDescriptor>";
    struct saml_idp self;
    struct saml_redirect_msg m;
    struct cmn_err err;
    char md[8192], *url, *xml, *q;
    size_t n;

    (void)state;
    n = (size_t)snprintf(md, sizeof(md), "%s%s%s", head, key.cert_b64, tail);
    assert_int_equal(saml_metadata_parse(md, n, &self, &err), CMN_OK);
    url = saml_logout_response_url(
        &idp, "https://sso.test/sso/saml/metadata", "_resp1", "id-from-the-idp",
        SAML_STATUS_RESPONDER, SAML_STATUS_PARTIAL_LOGOUT, "r/1+", 1767323045,
        &key);
    assert_non_null(url);
    assert_query_signed(url);
    xml = inflate_param(url, "SAMLResponse");
    assert_non_null(strstr(xml, "InResponseTo=\"id-from-the-idp\""));
    free(xml);
    q = strchr(url, '?') + 1;
    assert_int_equal(saml_redirect_decode(q, &self, "https://idp.test/idp/slo",
                                          false, 1767323045, 120, &m, &err),
                     SAML_OK);
    assert_false(m.is_request);
    assert_false(m.success);
    assert_string_equal(m.status, SAML_STATUS_RESPONDER);
    assert_string_equal(m.sub_status, SAML_STATUS_PARTIAL_LOGOUT);
    assert_string_equal(m.in_response_to, "id-from-the-idp");
    assert_string_equal(m.relay_state, "r/1+");
    saml_redirect_msg_cleanup(&m);
    free(url);
    /* Success by default, no second-level code */
    url = saml_logout_response_url(&idp, "https://sso.test/sso/saml/metadata",
                                   "_resp2", "x", NULL, NULL, NULL, 1767323045,
                                   &key);
    q = strchr(url, '?') + 1;
    assert_int_equal(saml_redirect_decode(q, &self, "https://idp.test/idp/slo",
                                          false, 1767323045, 120, &m, &err),
                     SAML_OK);
    assert_true(m.success);
    assert_null(m.sub_status);
    assert_null(m.relay_state);
    saml_redirect_msg_cleanup(&m);
    free(url);
    saml_idp_cleanup(&self);
}

static void
test_saml_metadata_errors(void **state)
{
    struct saml_idp other;
    struct cmn_err err;
    static const char sp_md[] =
        "<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:"
        "metadata\" entityID=\"x\"><md:SPSSODescriptor/></md:EntityDescriptor>";

    (void)state;
    assert_int_equal(saml_metadata_parse(sp_md, strlen(sp_md), &other, &err),
                     CMN_INVALID);
    assert_non_null(strstr(err.msg, "IDPSSODescriptor"));
    assert_int_equal(saml_metadata_parse("<!DOCTYPE x><x/>", 16, &other, &err),
                     CMN_INVALID);
    assert_string_equal(idp.entity_id, "https://idp.test/idp");
    assert_int_equal(idp.nkeys, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_saml_genuine_shapes_accepted),
        cmocka_unit_test(test_saml_attack_seeds_refused_with_reason),
        cmocka_unit_test(test_saml_clock_and_skew),
        cmocka_unit_test(test_saml_time_parse),
        cmocka_unit_test(test_saml_post_decode),
        cmocka_unit_test(test_saml_authn_request_signed_redirect),
        cmocka_unit_test(test_saml_metadata_errors),
        cmocka_unit_test(test_saml_slo_request_seeds),
        cmocka_unit_test(test_saml_slo_query_tampering),
        cmocka_unit_test(test_saml_slo_response_seeds),
        cmocka_unit_test(test_saml_logout_request_built),
        cmocka_unit_test(test_saml_logout_response_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
