/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_sf_responses.c - the Salesforce reply parsers on arbitrary bytes:
 * the first byte picks the parser (low 2 bits) and the HTTP status (the
 * rest), so token, upsert (single and sObject Collections), SOSL and
 * SOQL parsers and their error paths are all reached; the escapers run on the
 * same bytes as a string. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "salesforce/sf_auth.h"
#include "salesforce/sf_rest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 201, 204, 300, 400, 401,
                                    403, 404, 429, 500, 503, 0};
    struct cmn_err err = {{0}};
    uint8_t sel = size > 0 ? data[0] : 0;
    long status = statuses[(sel >> 2) % 12];
    const char *body;
    char *str;
    char out[256];

    if (size > 0) {
        data++;
        size--;
    }
    body = (const char *)data;
    switch (sel & 3) {
    case 0: {
        struct sf_token_response r;
        if (sf_token_response_parse(status, body, size, &r, &err) == CMN_OK &&
            (r.access_token == NULL || r.access_token->len == 0 ||
             !sf_url_allowed(r.instance_url))) {
            abort(); /* success always means a usable token and URL */
        }
        sf_token_response_cleanup(&r);
        break;
    }
    case 1: {
        struct sf_result r;
        int rc = sf_upsert_response_parse(status, body, size, &r);
        if ((rc == CMN_OK) != (r.outcome == SF_OK) ||
            (r.id[0] != '\0' && !sf_id_ok(r.id))) {
            abort();
        }
        /* the same bytes as an sObject Collections reply for 1..3 records:
         * per-record results only from a 200; otherwise one outcome for
         * all, never success */
        for (size_t n = 1; n <= 3; n++) {
            struct sf_batch_item items[3];
            memset(items, 0, sizeof(items));
            rc = sf_upsert_collection_parse(status, body, size, items, n);
            for (size_t i = 0; i < n; i++) {
                if ((rc == CMN_OK && status != 200) ||
                    (rc != CMN_OK &&
                     (items[i].r.outcome == SF_OK ||
                      items[i].r.outcome != items[0].r.outcome)) ||
                    (items[i].r.id[0] != '\0' && !sf_id_ok(items[i].r.id))) {
                    abort();
                }
            }
        }
        break;
    }
    case 2: {
        json_t *recs = NULL;
        if (sf_sosl_response_parse(body, size, &recs, &err) == CMN_OK) {
            if (!json_is_array(recs) || json_array_size(recs) > SF_SEARCH_MAX) {
                abort();
            }
        } else if (recs != NULL) {
            abort();
        }
        json_decref(recs);
        break;
    }
    default: {
        char id[SF_ID_LEN + 1];
        if (sf_soql_user_response_parse(body, size, id, &err) == CMN_OK &&
            !sf_id_ok(id)) {
            abort();
        }
        break;
    }
    }
    /* the same bytes as a caller number / agent id */
    str = malloc(size + 1);
    if (str == NULL) {
        return 0;
    }
    memcpy(str, data, size);
    str[size] = '\0';
    if (sf_sosl_phone_query(str, out, sizeof(out)) == CMN_OK &&
        strncmp(out, "FIND {", 6) != 0) {
        abort();
    }
    if (sf_soql_escape(str, out, sizeof(out)) == CMN_OK) {
        /* every quote in the output is escaped */
        for (size_t i = 0; out[i] != '\0'; i++) {
            if (out[i] == '\\') {
                i++;
            } else if (out[i] == '\'') {
                abort();
            }
        }
    }
    if (sf_sosl_escape(str, out, sizeof(out)) == CMN_OK &&
        strlen(out) < strlen(str)) {
        abort(); /* escaping only ever adds */
    }
    free(str);
    return 0;
}
