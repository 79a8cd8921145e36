/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_bind.c - the browser-binding cookies of a sign-in; see sso_bind.h. */
#include <stdio.h>
#include <string.h>

#include "cmn_seal.h"
#include "sso_bind.h"

int
sso_bind_value(struct cmn_http_req *req, char value[SSO_ID_LEN])
{
    const char *have = cmn_http_req_cookie(req, SSO_BIND_COOKIE);

    if (!sso_id_valid(have)) {
        have = cmn_http_req_cookie(req, SSO_BIND_COOKIE_SAML);
    }
    if (sso_id_valid(have)) {
        memcpy(value, have, SSO_ID_LEN);
        return CMN_OK;
    }
    return cmn_random_id(value, SSO_ID_LEN, SSO_ID_BYTES) == CMN_OK ? CMN_OK
                                                                    : CMN_ERR;
}

int
sso_bind_set_cookie(struct cmn_http_req *req, const char *name,
                    const char *value, long max_age_s, bool cross_site)
{
    char cookie[256];

    snprintf(cookie, sizeof(cookie),
             "%s=%s; Path=/; Secure; HttpOnly; SameSite=%s; Max-Age=%ld", name,
             value, cross_site ? "None" : "Lax", max_age_s);
    return cmn_http_add_header(req, "Set-Cookie", cookie);
}

void
sso_bind_hash(const char *value, char out[SSO_BIND_HASH_LEN])
{
    cmn_sha256_hex(value, strlen(value), out);
}

bool
sso_bind_check(struct cmn_http_req *req, const char *name, const char *want)
{
    const char *have = cmn_http_req_cookie(req, name);
    char got[SSO_BIND_HASH_LEN];

    if (want == NULL || strlen(want) != SSO_BIND_HASH_LEN - 1 ||
        !sso_id_valid(have)) {
        return false;
    }
    sso_bind_hash(have, got);
    return cmn_ct_equal(got, want, SSO_BIND_HASH_LEN - 1);
}
