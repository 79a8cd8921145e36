/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_rest.h - calls to the Finesse REST API of one node (blocking, with
 * timeout): Basic or Bearer auth, requestId header, ApiErrors bodies
 * parsed, and the answers that mean "this node is down" recognised so the
 * caller can fail over. */
#ifndef FIN_REST_H
#define FIN_REST_H

#include "cmn.h"
#include "fin_model.h"

struct fin_auth {
    const char *user;     /* Basic: loginId ... */
    const char *password; /* ... and password */
    const char *bearer;   /* or SSO: the IdS access token */
};

enum fin_rest_outcome {
    FIN_REST_OK = 0,       /* 2xx */
    FIN_REST_REFUSED,      /* 4xx with ApiErrors: the request is wrong */
    FIN_REST_UNAUTHORIZED, /* 401: bad password, expired token */
    FIN_REST_NODE_DOWN,    /* 503, 5xx, timeout, refused: try the other
                              node */
};

struct fin_rest_resp {
    enum fin_rest_outcome outcome;
    long status;
    char *body; /* malloc'd, NUL-terminated */
    size_t body_len;
    struct fin_api_errors errors; /* parsed from 4xx/5xx bodies */
    long long elapsed_ms;
};

struct fin_rest_opts {
    const char *ca_file;
    long timeout_ms;
};

/* method + node base ("https://finesse-a:8445") + path ("/finesse/api/.."),
 * body (application/xml) may be NULL, request_id may be NULL. Always
 * fills resp (free with fin_rest_resp_cleanup); returns CMN_OK for 2xx,
 * otherwise a negative code with err describing the failure (ApiError
 * type and message when Finesse sent them). */
int fin_rest_call(const struct fin_rest_opts *o, const char *base,
                  const char *method, const char *path,
                  const struct fin_auth *auth, const char *body,
                  const char *request_id, struct fin_rest_resp *resp,
                  struct cmn_err *err);
void fin_rest_resp_cleanup(struct fin_rest_resp *resp);

#endif
