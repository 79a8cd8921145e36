/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_rest.c - the Finesse REST client. Credentials never reach a log
 * line; error text carries Finesse's ErrorType/ErrorMessage only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_httpc.h"
#include "cmn_secret.h"
#include "fin_parse.h"
#include "fin_rest.h"

static void
classify(struct fin_rest_resp *r, int rc, struct cmn_err *err)
{
    struct cmn_err perr;

    if (rc != CMN_OK) {
        r->outcome = FIN_REST_NODE_DOWN;
        return;
    }
    if (r->status >= 200 && r->status < 300) {
        r->outcome = FIN_REST_OK;
        return;
    }
    if (r->body_len > 0 && fin_parse_api_errors(r->body, r->body_len,
                                                &r->errors, &perr) != CMN_OK) {
        r->errors.n = 0;
    }
    if (r->status == 401) {
        r->outcome = FIN_REST_UNAUTHORIZED;
    } else if (r->status >= 500) {
        /* 503 SERVER_OUT_OF_SERVICE, and 500s while the node restarts:
         * "retry after several seconds is likely to succeed" */
        r->outcome = FIN_REST_NODE_DOWN;
    } else {
        r->outcome = FIN_REST_REFUSED;
    }
    if (r->errors.n > 0) {
        cmn_err_set(err, "Finesse %ld %s: %s", r->status,
                    r->errors.items[0].type, r->errors.items[0].message);
    } else {
        cmn_err_set(err, "Finesse answered %ld", r->status);
    }
}

int
fin_rest_call(const struct fin_rest_opts *o, const char *base,
              const char *method, const char *path, const struct fin_auth *auth,
              const char *body, const char *request_id,
              struct fin_rest_resp *resp, struct cmn_err *err)
{
    char url[1024], bearer[16384 + 32], rid[FIN_ID_MAX + 16];
    const char *headers[5];
    size_t nh = 0;
    struct cmn_httpc_resp hr = {0};
    int rc;

    memset(resp, 0, sizeof(*resp));
    if ((size_t)snprintf(url, sizeof(url), "%s%s", base, path) >= sizeof(url)) {
        cmn_err_set(err, "URL too long");
        resp->outcome = FIN_REST_REFUSED;
        return CMN_INVALID;
    }
    headers[nh++] = "Accept: application/xml";
    if (body != NULL) {
        headers[nh++] = "Content-Type: application/xml";
    }
    if (auth->bearer != NULL) {
        snprintf(bearer, sizeof(bearer), "Authorization: Bearer %s",
                 auth->bearer);
        headers[nh++] = bearer;
    }
    if (request_id != NULL) {
        snprintf(rid, sizeof(rid), "requestId: %s", request_id);
        headers[nh++] = rid;
    }
    headers[nh] = NULL;
    struct cmn_httpc_req req = {
        .method = method,
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = body != NULL ? strlen(body) : 0,
        .basic_user = auth->bearer == NULL ? auth->user : NULL,
        .basic_pass = auth->bearer == NULL ? auth->password : NULL,
        .ca_file = o->ca_file,
        .timeout_ms = o->timeout_ms,
        .connect_timeout_ms = o->timeout_ms < 2000 ? o->timeout_ms : 2000,
        .max_response = 4 * 1024 * 1024,
    };
    rc = cmn_httpc_do(&req, &hr, err);
    if (auth->bearer != NULL) {
        cmn_wipe(bearer, sizeof(bearer));
    }
    resp->status = hr.status;
    resp->body = hr.body;
    resp->body_len = hr.body_len;
    resp->elapsed_ms = hr.elapsed_ms;
    hr.body = NULL;
    cmn_httpc_resp_cleanup(&hr);
    classify(resp, rc, err);
    return resp->outcome == FIN_REST_OK ? CMN_OK
           : resp->outcome == FIN_REST_NODE_DOWN
               ? (rc != CMN_OK ? rc : CMN_AGAIN)
           : resp->outcome == FIN_REST_UNAUTHORIZED ? CMN_DENIED
                                                    : CMN_INVALID;
}

void
fin_rest_resp_cleanup(struct fin_rest_resp *resp)
{
    free(resp->body);
    resp->body = NULL;
}
