/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_token_response.c - the IdS token-response parser on arbitrary bytes;
 * the first byte picks the HTTP status so error paths are reached too. */
#include <stdint.h>
#include <stdlib.h>

#include "sso_claims.h"
#include "sso_jwt.h"
#include "sso_token_response.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 400, 401, 429, 500, 503};
    struct sso_token_response r;
    long status = size > 0 ? statuses[data[0] % 6] : 200;

    if (size > 0) {
        data++;
        size--;
    }
    if (sso_token_response_parse(status, (const char *)data, size, &r) ==
        CMN_OK) {
        /* a parsed token goes on to the claims reader */
        json_t *claims = NULL;
        char user[256];
        struct cmn_err why;
        if (sso_jwt_claims(r.access_token, &claims) == CMN_OK) {
            if (sso_claims_user(claims, "user_id", user, sizeof(user), &why) ==
                    CMN_OK &&
                user[0] == '\0') {
                abort(); /* a found user is never empty */
            }
            json_decref(claims);
        }
    }
    sso_token_response_cleanup(&r);
    return 0;
}
