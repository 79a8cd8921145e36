/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_admin.c - what admins need from a running connector: the durable
 * outbox (how many call logs wait, the dead letters and why) and replaying
 * dead letters once the cause is fixed. Bearer [server] admin_key_file;
 * absent key: the endpoints answer 404. These are short Redis calls, made
 * on the HTTP thread: admin traffic is rare. */
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "cmn_seal.h"
#include "cti_admin.h"
#include "sf_outbox.h"

static bool
admin(struct cmn_http_req *req, struct cti_app *app)
{
    const char *key = cmn_http_req_bearer(req);

    if (app->cfg->admin_key == NULL) {
        cmn_http_reply_error(req, 404, "not_found", "no admin key configured");
        return false;
    }
    if (key == NULL ||
        !cmn_ct_streq(key, (const char *)app->cfg->admin_key->data)) {
        cmn_log_warn("event=admin_auth_failed peer=%s", cmn_http_req_peer(req));
        cmn_http_add_header(req, "WWW-Authenticate", "Bearer realm=\"admin\"");
        cmn_http_reply_error(req, 401, "unauthorized", "admin key required");
        return false;
    }
    if (cti_engine_outbox(app->engine) == NULL) {
        cmn_http_reply_error(req, 404, "not_found",
                             "no [salesforce] section: no outbox");
        return false;
    }
    return true;
}

int
cti_admin_outbox(struct cmn_http_req *req, void *appv)
{
    struct cti_app *app = appv;
    struct sf_outbox *ob;
    struct cmn_err err = {{0}};
    struct sf_outbox_stats st;
    long long pending = -1;
    json_t *dead = NULL;

    if (!admin(req, app)) {
        return CMN_OK;
    }
    ob = cti_engine_outbox(app->engine);
    if (sf_outbox_pending(ob, &pending, &err) != CMN_OK ||
        sf_outbox_dead_list(ob, &dead, &err) != CMN_OK) {
        return cmn_http_reply_error(req, 503, "store_unavailable", err.msg);
    }
    cti_engine_outbox_stats(app->engine, &st);
    return cmn_http_reply_json(
        req, 200,
        json_pack("{s:I, s:o, s:{s:I, s:I, s:I, s:I}}", "pending",
                  (json_int_t)pending, "dead", dead, "this_host", "written",
                  (json_int_t)st.written, "retries", (json_int_t)st.retries,
                  "dead", (json_int_t)st.dead, "reclaimed",
                  (json_int_t)st.reclaimed));
}

/* POST /admin/v1/outbox/replay {"index": N} or {"all": true}, and
 * "force": true to replay dead letters that are not authenticated (an
 * admin who checked them: entries from before outbox MACs, say). */
int
cti_admin_replay(struct cmn_http_req *req, void *appv)
{
    struct cti_app *app = appv;
    struct cmn_err err = {{0}};
    size_t replayed = 0, unauthenticated = 0;
    json_t *body, *force_v;
    bool force;
    long index;
    int rc;

    if (!admin(req, app)) {
        return CMN_OK;
    }
    body = cmn_http_req_json(req);
    if (body == NULL) {
        return CMN_OK;
    }
    force_v = json_object_get(body, "force");
    force = json_is_true(force_v);
    if (force_v != NULL && !json_is_boolean(force_v)) {
        json_decref(body);
        return cmn_http_reply_error(req, 400, "invalid_request",
                                    "\"force\" is true or false");
    }
    if (json_is_true(json_object_get(body, "all"))) {
        index = SF_OUTBOX_ALL;
    } else if (json_is_integer(json_object_get(body, "index")) &&
               json_integer_value(json_object_get(body, "index")) >= 0) {
        index = (long)json_integer_value(json_object_get(body, "index"));
    } else {
        json_decref(body);
        return cmn_http_reply_error(req, 400, "invalid_request",
                                    "{\"index\": N} or {\"all\": true}");
    }
    json_decref(body);
    rc = sf_outbox_replay(cti_engine_outbox(app->engine), index, force,
                          &replayed, &unauthenticated, &err);
    if (rc == CMN_NOTFOUND) {
        return cmn_http_reply_error(req, 404, "not_found",
                                    "no dead letter at that index");
    }
    if (rc == CMN_DENIED) {
        return cmn_http_reply_error(req, 409, "unauthenticated", err.msg);
    }
    if (rc == CMN_INVALID) {
        return cmn_http_reply_error(req, 409, "malformed", err.msg);
    }
    if (rc != CMN_OK) {
        return cmn_http_reply_error(req, 503, "store_unavailable", err.msg);
    }
    cmn_log_notice("event=outbox_replayed entries=%zu unauthenticated_left=%zu "
                   "forced=%d",
                   replayed, unauthenticated, force);
    return cmn_http_reply_json(
        req, 200,
        json_pack("{s:I, s:I}", "replayed", (json_int_t)replayed,
                  "unauthenticated", (json_int_t)unauthenticated));
}
