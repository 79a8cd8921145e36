/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_sso_claims.c - the IdS token reader on arbitrary bytes. The first
 * byte picks what the rest is: 0 a claims document (JSON) for the user
 * reader, 1 a whole access token (compact JWS or opaque), 2 what IdS's key
 * endpoint answered. A found user must be a usable name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sso_claims.h"
#include "sso_jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_user(const json_t *claims)
{
    static const char *const names[] = {"user_id", "upn", "sub", "email"};
    char user[256];
    struct cmn_err why;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int rc = sso_claims_user(claims, names[i], user, sizeof(user), &why);
        if (rc == CMN_OK && !sso_claims_usable_name(user)) {
            abort(); /* a found user is always a usable name */
        }
        if (rc != CMN_OK && (user[0] != '\0' || why.msg[0] == '\0')) {
            abort(); /* a failure names nobody and says why */
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *claims = NULL;
    char *text;
    int mode;

    if (size == 0) {
        return 0;
    }
    mode = data[0] % 3;
    text = malloc(size);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (mode == 0) {
        claims = json_loadb(text, size - 1, JSON_REJECT_DUPLICATES, &jerr);
        check_user(claims);
    } else if (mode == 1) {
        if (sso_jwt_claims(text, &claims) == CMN_OK) {
            check_user(claims);
        }
        struct cmn_err err;
        json_t *verified = NULL;
        /* no key: every token is refused, whatever it claims */
        if (sso_jwt_check(NULL, text, NULL, &verified, &err) == SSO_JWT_VALID ||
            verified != NULL) {
            abort();
        }
    } else {
        struct cmn_err err;
        EVP_PKEY *key = sso_jwt_key_parse(text, size - 1, &err);
        if (key != NULL) {
            char fp[17];
            sso_jwt_key_fingerprint(key, fp);
            EVP_PKEY_free(key);
        }
    }
    json_decref(claims);
    free(text);
    return 0;
}
