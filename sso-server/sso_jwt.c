/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_jwt.c - IdS access-token claims, and optional full verification
 * (signature by liboauth2; iss, aud and exp checked here). */
#include <oauth2/mem.h>
#include <oauth2/oauth2.h>
#include <oauth2/util.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_seal.h"
#include "sso_jwt.h"

#define SSO_JWT_SKEW_S 60

int
sso_jwt_claims(const char *jwt, json_t **claims)
{
    const char *dot1, *dot2;
    unsigned char *payload = NULL;
    size_t len = 0;
    json_error_t jerr;

    *claims = NULL;
    if (jwt == NULL) {
        return CMN_INVALID;
    }
    dot1 = strchr(jwt, '.');
    dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL) {
        return CMN_INVALID; /* not a compact JWS (an encrypted JWE has 5) */
    }
    if (cmn_base64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload,
                             &len) != CMN_OK) {
        return CMN_INVALID;
    }
    *claims = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES,
                         &jerr);
    free(payload);
    if (*claims == NULL || !json_is_object(*claims)) {
        json_decref(*claims);
        *claims = NULL;
        return CMN_INVALID;
    }
    return CMN_OK;
}

static bool
usable_name(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > 255) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

int
sso_jwt_user(const json_t *claims, const char *claim, char *out,
             size_t out_size)
{
    const char *names[] = {claim, "sub"};

    for (size_t i = 0; i < CMN_ARRAY_LEN(names); i++) {
        const char *v = names[i] != NULL
                            ? json_string_value(json_object_get(claims,
                                                                names[i]))
                            : NULL;
        if (usable_name(v) && strlen(v) < out_size) {
            memcpy(out, v, strlen(v) + 1);
            return CMN_OK;
        }
    }
    return CMN_NOTFOUND;
}

struct sso_jwt_verifier {
    pthread_mutex_t lock; /* liboauth2's verify path is not documented as
                             thread-safe; verification is rare (one per
                             login or refresh), so serialise it */
    oauth2_log_t *log;
    oauth2_cfg_token_verify_t *verify;
    char *issuer;
    char *audience;
};

struct sso_jwt_verifier *
sso_jwt_verifier_new(const char *pubkey_file, const char *issuer,
                     const char *audience, struct cmn_err *err)
{
    struct sso_jwt_verifier *v = calloc(1, sizeof(*v));
    char *rv;

    if (v == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&v->lock, NULL);
    v->log = oauth2_init(OAUTH2_LOG_ERROR, NULL);
    v->issuer = strdup(issuer);
    v->audience = strdup(audience);
    /* iss and exp are checked below against expected values; liboauth2
     * only checks presence. Its result cache is off (expiry=0): a cached
     * "valid" would outlive the token's own exp. */
    rv = oauth2_cfg_token_verify_add_options(
        v->log, &v->verify, "pubkey", pubkey_file,
        "verify.exp=required&verify.iss=required&verify.iat=skip&expiry=0");
    if (rv != NULL || v->log == NULL || v->issuer == NULL ||
        v->audience == NULL) {
        cmn_err_set(err, "%s: cannot load the IdS public key (%s)",
                    pubkey_file, rv != NULL ? rv : "init failed");
        oauth2_mem_free(rv);
        sso_jwt_verifier_free(v);
        return NULL;
    }
    return v;
}

void
sso_jwt_verifier_free(struct sso_jwt_verifier *v)
{
    if (v == NULL) {
        return;
    }
    if (v->verify != NULL) {
        oauth2_cfg_token_verify_free(v->log, v->verify);
    }
    if (v->log != NULL) {
        oauth2_shutdown(v->log);
    }
    free(v->issuer);
    free(v->audience);
    pthread_mutex_destroy(&v->lock);
    free(v);
}

static bool
audience_matches(const json_t *aud, const char *want)
{
    if (json_is_string(aud)) {
        return strcmp(json_string_value(aud), want) == 0;
    }
    if (json_is_array(aud)) {
        size_t i;
        json_t *item;
        json_array_foreach (aud, i, item) {
            if (json_is_string(item) &&
                strcmp(json_string_value(item), want) == 0) {
                return true;
            }
        }
    }
    return false;
}

int
sso_jwt_verify(struct sso_jwt_verifier *v, const char *jwt, json_t **claims,
               struct cmn_err *err)
{
    json_t *payload = NULL;
    json_t *hdr = NULL;
    bool ok;
    int rc = CMN_DENIED;

    if (claims != NULL) {
        *claims = NULL;
    }
    /* alg is pinned: a token claiming "none" or HS256 never reaches the
     * library's key selection */
    const char *dot = jwt != NULL ? strchr(jwt, '.') : NULL;
    unsigned char *h = NULL;
    size_t hlen = 0;
    if (dot == NULL ||
        cmn_base64url_decode(jwt, (size_t)(dot - jwt), &h, &hlen) != CMN_OK) {
        cmn_err_set(err, "not a JWT");
        return CMN_DENIED;
    }
    json_error_t jerr;
    hdr = json_loadb((const char *)h, hlen, 0, &jerr);
    free(h);
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    if (alg == NULL || strcmp(alg, "RS256") != 0) {
        cmn_err_set(err, "alg %s refused (RS256 only)", alg ? alg : "none");
        goto out;
    }

    pthread_mutex_lock(&v->lock);
    ok = oauth2_token_verify(v->log, NULL, v->verify, jwt, &payload);
    pthread_mutex_unlock(&v->lock);
    if (!ok || payload == NULL) {
        cmn_err_set(err, "signature or exp check failed");
        goto out;
    }
    const char *iss = json_string_value(json_object_get(payload, "iss"));
    if (iss == NULL || strcmp(iss, v->issuer) != 0) {
        cmn_err_set(err, "issuer mismatch");
        goto out;
    }
    if (!audience_matches(json_object_get(payload, "aud"), v->audience)) {
        cmn_err_set(err, "audience mismatch");
        goto out;
    }
    json_t *exp = json_object_get(payload, "exp");
    if (!json_is_integer(exp) ||
        json_integer_value(exp) + SSO_JWT_SKEW_S < cmn_wall_sec()) {
        cmn_err_set(err, "expired");
        goto out;
    }
    if (claims != NULL) {
        *claims = payload;
        payload = NULL;
    }
    rc = CMN_OK;
out:
    json_decref(hdr);
    json_decref(payload);
    return rc;
}
