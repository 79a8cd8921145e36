/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fscctl_http.c - one JSON request from fscctl to a daemon's HTTP API,
 * with the key as a Bearer token (wiped after use, never printed) and one
 * clear line when the daemon cannot be reached. */
#include <stdio.h>
#include <string.h>

#include "cmn_httpc.h"
#include "fscctl.h"

int
fscctl_http_json(const struct fscctl_target *t, const char *method,
                 const char *path, const char *body, long *status, json_t **out)
{
    char url[FSCCTL_URL_MAX + 256];
    char auth[4200];
    const char *headers[3] = {auth, "Content-Type: application/json", NULL};
    struct cmn_httpc_req req;
    struct cmn_httpc_resp resp;
    struct cmn_err err = {{0}};
    int rc;

    *out = NULL;
    snprintf(url, sizeof(url), "%s%s", t->base, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
             t->key != NULL ? (const char *)t->key->data : "");
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.url = url;
    req.headers = headers;
    req.body = body;
    req.body_len = body != NULL ? strlen(body) : 0;
    req.ca_file = t->ca_file;
    req.timeout_ms = 10000;
    rc = cmn_httpc_do(&req, &resp, &err);
    cmn_wipe(auth, sizeof(auth));
    if (rc != CMN_OK && resp.status == 0) {
        fprintf(stderr,
                "fscctl: cannot reach %s at %s: %s\n"
                "fscctl: is it running, and is that its address (%s)?\n",
                t->daemon, t->base, err.msg, t->address_from);
        cmn_httpc_resp_cleanup(&resp);
        return FSCCTL_UNREACHABLE;
    }
    if (rc != CMN_OK) {
        fprintf(stderr, "fscctl: %s at %s: %s\n", t->daemon, t->base, err.msg);
        cmn_httpc_resp_cleanup(&resp);
        return 1;
    }
    *status = resp.status;
    *out =
        json_loadb(resp.body != NULL ? resp.body : "", resp.body_len, 0, NULL);
    cmn_httpc_resp_cleanup(&resp);
    if (*out == NULL) {
        fprintf(stderr,
                "fscctl: %s at %s answered HTTP %ld without a JSON body: "
                "is that %s's address?\n",
                t->daemon, t->base, *status, t->daemon);
        return 1;
    }
    return 0;
}
