/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_claims.c - the user an IdS access token names: top-level claim,
 * inside a JSON-string `sub` (Cisco's shape), or a plain `sub`. */
#include <stdio.h>
#include <string.h>

#include "sso_claims.h"

#define NAME_MAX_LEN 255

bool
sso_claims_usable_name(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > NAME_MAX_LEN) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        /* printable ASCII; no quote or backslash: the name goes into log
         * lines, URLs and JSON, and no directory has such user names */
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
            return false;
        }
    }
    return true;
}

/* A JSON object serialised into a string: never a user name itself. */
static bool
looks_like_object(const char *s)
{
    s += strspn(s, " \t\r\n");
    return *s == '{';
}

/* CMN_OK and the name in out when v is a usable name string; otherwise a
 * word for the reason ("absent", "not a string", ...). */
static int
take_name(const json_t *v, char *out, size_t out_size, const char **what)
{
    const char *s = json_string_value(v);

    if (v == NULL) {
        *what = "absent";
        return CMN_NOTFOUND;
    }
    if (s == NULL) {
        *what = "not a string";
        return CMN_INVALID;
    }
    /* json_string_length counts an embedded NUL that strlen would hide */
    if (looks_like_object(s) || strlen(s) != json_string_length(v) ||
        !sso_claims_usable_name(s) || strlen(s) >= out_size) {
        *what = "not a usable name";
        return CMN_INVALID;
    }
    memcpy(out, s, strlen(s) + 1);
    return CMN_OK;
}

/* Step 2: sub holds a JSON object; it must name the user. */
static int
user_in_sub(const char *sub, const char *user_claim, char *out, size_t out_size,
            struct cmn_err *why)
{
    const char *names[3] = {user_claim, "user_id", "upn"};
    char reasons[CMN_ERRLEN] = "";
    json_error_t jerr;
    json_t *obj = json_loads(sub, JSON_REJECT_DUPLICATES, &jerr);
    int rc = CMN_INVALID;

    if (!json_is_object(obj)) {
        cmn_err_set(why, "the token's sub looks like JSON but is not a JSON "
                         "object; it names no user");
        json_decref(obj);
        return CMN_INVALID;
    }
    for (size_t i = 0; i < CMN_ARRAY_LEN(names); i++) {
        const char *what = NULL;
        bool seen = false;
        for (size_t j = 0; j < i; j++) {
            seen = seen || strcmp(names[j], names[i]) == 0;
        }
        if (seen) {
            continue;
        }
        if (take_name(json_object_get(obj, names[i]), out, out_size, &what) ==
            CMN_OK) {
            rc = CMN_OK;
            break;
        }
        size_t used = strlen(reasons);
        snprintf(reasons + used, sizeof(reasons) - used, "%s%s %s",
                 used > 0 ? ", " : "", names[i], what);
    }
    if (rc != CMN_OK) {
        cmn_err_set(why,
                    "the token's sub is a JSON object that names no usable "
                    "user (%s)",
                    reasons);
    }
    json_decref(obj);
    return rc;
}

int
sso_claims_user(const json_t *claims, const char *user_claim, char *out,
                size_t out_size, struct cmn_err *why)
{
    const char *what = NULL;
    const char *sub;

    if (out_size < 2 || !json_is_object(claims)) {
        cmn_err_set(why, "the token carries no claims");
        return CMN_NOTFOUND;
    }
    if (user_claim == NULL || user_claim[0] == '\0') {
        user_claim = SSO_CLAIMS_DEFAULT_USER;
    }
    out[0] = '\0';
    if (take_name(json_object_get(claims, user_claim), out, out_size, &what) ==
        CMN_OK) {
        return CMN_OK;
    }
    sub = json_string_value(json_object_get(claims, "sub"));
    if (sub != NULL && looks_like_object(sub)) {
        return user_in_sub(sub, user_claim, out, out_size, why);
    }
    if (take_name(json_object_get(claims, "sub"), out, out_size, &what) ==
        CMN_OK) {
        return CMN_OK;
    }
    cmn_err_set(why, "the token names no user (no usable %s claim, sub %s)",
                user_claim, what);
    return CMN_NOTFOUND;
}
