/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_token_response.c - classify and parse IdS token endpoint answers.
 *
 * The distinction that matters to callers is final vs transient: an
 * invalid_grant ends a session, while a 503 or a garbled body must only
 * make the caller retry later with the same refresh token. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cmn_secret.h"
#include "sso_token_response.h"

static void
copy_sanitised(char *dst, size_t size, const char *src)
{
    size_t j = 0;

    for (size_t i = 0; src != NULL && src[i] != '\0' && j + 1 < size; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[j] = '\0';
}

/* A token is a visible-ASCII string (RFC 6750 b64token is narrower, but
 * IdS tokens are JWTs, which fit). Anything else is refused so it can
 * never break a header or a log line. */
static char *
take_token(json_t *obj, const char *name, bool required, bool *bad)
{
    json_t *v = json_object_get(obj, name);
    const char *s;
    size_t len;

    if (v == NULL || json_is_null(v)) {
        if (required) {
            *bad = true;
        }
        return NULL;
    }
    if (!json_is_string(v)) {
        *bad = true;
        return NULL;
    }
    s = json_string_value(v);
    len = json_string_length(v);
    if (len == 0 || len > SSO_TOKEN_MAX || strlen(s) != len) {
        *bad = true;
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f) {
            *bad = true;
            return NULL;
        }
    }
    return strdup(s);
}

static long
take_seconds(json_t *obj, const char *name, bool *bad)
{
    json_t *v = json_object_get(obj, name);

    if (v == NULL) {
        return 0;
    }
    /* some servers send numbers as strings */
    if (json_is_string(v)) {
        char *end;
        long n = strtol(json_string_value(v), &end, 10);
        if (*end != '\0' || n <= 0 || n > 10L * 365 * 86400) {
            *bad = true;
            return 0;
        }
        return n;
    }
    if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
        json_integer_value(v) > 10LL * 365 * 86400) {
        *bad = true;
        return 0;
    }
    return (long)json_integer_value(v);
}

static int
parse_error(long status, json_t *root, struct sso_token_response *out)
{
    json_t *e = root != NULL ? json_object_get(root, "error") : NULL;

    if (e != NULL && json_is_string(e)) {
        copy_sanitised(out->error, sizeof(out->error), json_string_value(e));
        copy_sanitised(
            out->error_description, sizeof(out->error_description),
            json_string_value(json_object_get(root, "error_description")));
    } else {
        snprintf(out->error, sizeof(out->error), "http_%ld", status);
    }
    if (status >= 500 || status == 429 ||
        strcmp(out->error, "temporarily_unavailable") == 0 ||
        strcmp(out->error, "server_error") == 0) {
        out->outcome = SSO_TOKEN_UNAVAILABLE;
    } else if (strcmp(out->error, "invalid_grant") == 0) {
        out->outcome = SSO_TOKEN_INVALID_GRANT;
    } else if (e == NULL) {
        out->outcome = SSO_TOKEN_MALFORMED;
    } else {
        out->outcome = SSO_TOKEN_REJECTED;
    }
    return CMN_ERR;
}

int
sso_token_response_parse(long http_status, const char *body, size_t len,
                         struct sso_token_response *out)
{
    json_t *root = NULL;
    json_error_t jerr;
    bool bad = false;
    int rc = CMN_ERR;

    memset(out, 0, sizeof(*out));
    out->outcome = SSO_TOKEN_MALFORMED;
    if (body != NULL && len > 0 && len <= 256 * 1024) {
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (root != NULL && !json_is_object(root)) {
            json_decref(root);
            root = NULL;
        }
    }
    if (http_status != 200) {
        rc = parse_error(http_status, root, out);
        goto out;
    }
    if (root == NULL) {
        snprintf(out->error, sizeof(out->error), "malformed_json");
        goto out;
    }
    out->access_token = take_token(root, "access_token", true, &bad);
    out->refresh_token = take_token(root, "refresh_token", false, &bad);
    out->id_token = take_token(root, "id_token", false, &bad);
    out->token_type = take_token(root, "token_type", true, &bad);
    out->expires_in = take_seconds(root, "expires_in", &bad);
    out->refresh_expires_in =
        take_seconds(root, "refresh_token_expires_in", &bad);
    if (!bad && out->token_type != NULL &&
        strcasecmp(out->token_type, "Bearer") != 0) {
        bad = true;
    }
    if (!bad && out->expires_in == 0) {
        /* RFC 6749 says RECOMMENDED; without it we cannot schedule the
         * refresh, so assume a conservative five minutes */
        out->expires_in = 300;
    }
    if (bad) {
        snprintf(out->error, sizeof(out->error), "malformed_token_response");
        sso_token_response_cleanup(out);
        out->outcome = SSO_TOKEN_MALFORMED;
        goto out;
    }
    out->outcome = SSO_TOKEN_OK;
    rc = CMN_OK;
out:
    json_decref(root);
    return rc;
}

static void
free_secret_str(char **s)
{
    if (*s != NULL) {
        cmn_wipe(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

void
sso_token_response_cleanup(struct sso_token_response *r)
{
    free_secret_str(&r->access_token);
    free_secret_str(&r->refresh_token);
    free_secret_str(&r->id_token);
    free(r->token_type);
    r->token_type = NULL;
}

const char *
sso_token_outcome_str(enum sso_token_outcome o)
{
    switch (o) {
    case SSO_TOKEN_OK:
        return "ok";
    case SSO_TOKEN_INVALID_GRANT:
        return "invalid_grant";
    case SSO_TOKEN_REJECTED:
        return "rejected";
    case SSO_TOKEN_UNAVAILABLE:
        return "unavailable";
    default:
        return "malformed";
    }
}
