/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_token_response.h - parser for the IdS token endpoint's answer
 * (RFC 6749 §5.1 success, §5.2 error). Bytes in, struct out, no I/O. */
#ifndef SSO_TOKEN_RESPONSE_H
#define SSO_TOKEN_RESPONSE_H

#include "cmn.h"

#define SSO_TOKEN_MAX 16384 /* longest token accepted, bytes */

enum sso_token_outcome {
    SSO_TOKEN_OK = 0,
    SSO_TOKEN_INVALID_GRANT, /* code or refresh token refused: final */
    SSO_TOKEN_REJECTED,      /* other OAuth error (invalid_client...) */
    SSO_TOKEN_UNAVAILABLE,   /* 5xx, 429, temporarily_unavailable */
    SSO_TOKEN_MALFORMED,     /* not a usable answer */
};

struct sso_token_response {
    enum sso_token_outcome outcome;
    char *access_token;  /* malloc'd; secret */
    char *refresh_token; /* may be NULL (refresh grant without rotation) */
    char *id_token;      /* may be NULL */
    char *token_type;
    long expires_in;             /* seconds, > 0 */
    long refresh_expires_in;     /* seconds, 0 when not given */
    char error[64];              /* OAuth error code when not OK */
    char error_description[256]; /* sanitised: printable ASCII only */
};

/* Classify an answer of status http_status with body (not necessarily
 * NUL-terminated). Always fills out->outcome; returns CMN_OK only for
 * SSO_TOKEN_OK. Free with sso_token_response_cleanup. */
int sso_token_response_parse(long http_status, const char *body, size_t len,
                             struct sso_token_response *out);
void sso_token_response_cleanup(struct sso_token_response *r);

const char *sso_token_outcome_str(enum sso_token_outcome o);

#endif
