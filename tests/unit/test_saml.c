/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_saml.c - the SAML verifier on the fuzz seeds (signed by pysaml2 +
 * xmlsec1 with the test-only keys of tests/fuzz/fuzz_saml_keys.h, at
 * FUZZ_NOW): genuine shapes accepted, each attack seed refused with its
 * reason, the clock and allow_sha1 honoured; xs:dateTime, base64 and the
 * HTTP-Redirect AuthnRequest (inflated and its signature checked). */
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
verify_seed(const char *name, long long now, bool sha1, struct saml_assertion *a)
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
    enum saml_reason r = saml_response_verify(xml, len, &idp, &sp, now, a,
                                              NULL, NULL);
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
    assert_int_equal(verify_seed("signed_response.xml", FUZZ_NOW + 3600, false,
                                 &a),
                     SAML_R_EXPIRED);
    assert_int_equal(verify_seed("signed_response.xml", FUZZ_NOW - 3600, false,
                                 &a),
                     SAML_R_NOT_YET_VALID);
    /* 5 minutes of validity + 120 s of skew, counted from signing */
    assert_int_equal(verify_seed("signed_response.xml", FUZZ_NOW - 30 + 300 +
                                                        119,
                                 false, &a),
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
    raw_len = EVP_DecodeBlock(raw, (unsigned char *)req_b64,
                              (int)strlen(req_b64));
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
    assert_non_null(strstr((char *)xml, "IssueInstant=\"2026-01-02T03:04:05Z\""));
    assert_non_null(strstr((char *)xml, "AssertionConsumerServiceURL=\"https://"
                                        "sso.test/sso/saml/acs\""));
    /* the query signature verifies with the SP's public key */
    sig_b64 = pct_decode(sig_at + 11, strlen(sig_at + 11));
    sig_len = EVP_DecodeBlock(sig, (unsigned char *)sig_b64,
                              (int)strlen(sig_b64));
    assert_true(sig_len >= 256);
    md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL,
                                          key.pkey),
                     1);
    assert_int_equal(EVP_DigestVerify(md, sig, 256, (unsigned char *)q,
                                      (size_t)(sig_at - q)),
                     1);
    EVP_MD_CTX_free(md);
    free(sig_b64);
    free(req_b64);
    free(url);
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
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
