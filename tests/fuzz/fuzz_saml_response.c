/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_saml_response.c - fsc-sso's SAML parsers on arbitrary bytes. The
 * first byte picks what the rest is: 0 a Response (XML) for the verifier,
 * 1 the HTTP-POST SAMLResponse field (base64), 2 IdP metadata, 3 an
 * HTTP-Redirect query (Single Logout: the IdP's LogoutRequest or
 * LogoutResponse), 4 an inflated logout message (the checks after the
 * binding's signature, which mutated queries never pass). The verifier runs
 * with the seeds' IdP key and SP key (fuzz_saml_keys.h) at the time they were
 * signed, so genuine seeds reach every check. An accepted Response always names
 * a usable user; an accepted logout message its ID and Issuer, and a NameID
 * (request) or a status (response). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_saml_keys.h"
#include "saml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct saml_idp idp;
static struct saml_sp_key key;
static bool ready;

static void
setup(void)
{
    struct cmn_err err;

    if (ready) {
        return;
    }
    if (saml_metadata_parse(fuzz_idp_metadata, strlen(fuzz_idp_metadata), &idp,
                            &err) != CMN_OK ||
        saml_sp_key_load(fuzz_sp_key, strlen(fuzz_sp_key), fuzz_sp_cert,
                         strlen(fuzz_sp_cert), &key, &err) != CMN_OK) {
        abort();
    }
    ready = true;
}

static void
verify(const char *xml, size_t len)
{
    struct saml_sp sp = {
        .entity_id = "https://sso.test/sso/saml/metadata",
        .acs_url = "https://sso.test/sso/saml/acs",
        .key = &key,
        .groups_attribute = "groups",
        .clock_skew_s = 120,
    };
    struct saml_assertion a;
    struct saml_report report;
    struct cmn_err why;
    enum saml_reason r;

    r = saml_response_verify(xml, len, &idp, &sp, FUZZ_NOW, &a, &report, &why);
    if (r == SAML_OK) {
        if (a.user == NULL || a.assertion_id == NULL || a.issuer == NULL ||
            (!a.response_signed && !a.assertion_signed)) {
            abort(); /* accepted means signed and naming someone */
        }
    } else if (a.user != NULL || strcmp(saml_reason_str(r), "unknown") == 0) {
        abort(); /* a refusal keeps nothing and has a known reason */
    }
    saml_assertion_cleanup(&a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf;
    size_t n;

    if (size < 1 || size > 512 * 1024) {
        return 0;
    }
    setup();
    n = size - 1;
    buf = malloc(n + 1);
    if (buf == NULL) {
        return 0;
    }
    memcpy(buf, data + 1, n);
    buf[n] = '\0';
    switch (data[0] % 5) {
    case 0:
        verify(buf, n);
        break;
    case 1: {
        char *xml = NULL;
        size_t len = 0;
        if (saml_post_decode(buf, n, &xml, &len) == SAML_OK) {
            verify(xml, len);
        }
        free(xml);
        break;
    }
    case 2: {
        struct saml_idp other;
        struct cmn_err err;
        if (saml_metadata_parse(buf, n, &other, &err) == CMN_OK) {
            if (other.entity_id == NULL || other.nkeys == 0) {
                abort();
            }
            saml_idp_cleanup(&other);
        }
        break;
    }
    case 4:
        for (int req = 0; req < 2; req++) {
            struct saml_redirect_msg m;
            struct cmn_err err;
            memset(&m, 0, sizeof(m));
            if (saml_logout_parse(buf, n, req, &idp, FUZZ_SLO, FUZZ_NOW, 120,
                                  &m, &err) == SAML_OK &&
                (m.id == NULL || m.issuer == NULL ||
                 (req ? m.name_id == NULL : m.status == NULL))) {
                abort();
            }
            saml_redirect_msg_cleanup(&m);
        }
        break;
    case 3: {
        struct saml_redirect_msg m;
        struct cmn_err err;
        enum saml_reason r = saml_redirect_decode(buf, &idp, FUZZ_SLO, false,
                                                  FUZZ_NOW, 120, &m, &err);
        if (r == SAML_OK) {
            if (m.id == NULL || m.issuer == NULL ||
                (m.is_request ? m.name_id == NULL : m.status == NULL)) {
                abort();
            }
            saml_redirect_msg_cleanup(&m);
        } else if (m.id != NULL || m.name_id != NULL ||
                   strcmp(saml_reason_str(r), "unknown") == 0) {
            abort(); /* a refusal keeps nothing and has a known reason */
        }
        break;
    }
    }
    free(buf);
    return 0;
}
