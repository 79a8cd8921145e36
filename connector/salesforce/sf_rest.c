/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sf_rest.c - Task upsert, SOSL phone search and agent -> User lookup on
 * the Salesforce REST API, with pure reply parsers. */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_httpc.h"
#include "cmn_log.h"
#include "sf_rest.h"

#define SF_BODY_MAX      (128 * 1024) /* upsert request body */
#define SF_REPLY_MAX     (1024 * 1024)
#define SF_AGENT_ID_MAX  64
#define SF_CACHE_BUCKETS 1024
#define SF_CACHE_MAX     8192
#define SF_CACHE_HIT_MS  (10 * 60 * 1000)
#define SF_CACHE_MISS_MS (60 * 1000)

struct user_entry {
    struct user_entry *next;
    long long expires_ms;
    bool found;
    char id[SF_ID_LEN + 1];
    char agent[]; /* NUL-terminated */
};

struct sf {
    const struct sf_config *cfg;
    struct sf_auth *auth;
    atomic_llong last_ok_ms; /* monotonic time of the last 2xx reply */
    pthread_mutex_t cache_mu;
    struct user_entry *cache[SF_CACHE_BUCKETS];
    size_t ncache;
};

/* ---- pure helpers ---- */

bool
sf_id_ok(const char *s)
{
    size_t n = 0;

    if (s == NULL) {
        return false;
    }
    for (; s[n] != '\0'; n++) {
        if (!isalnum((unsigned char)s[n]) || n > SF_ID_LEN) {
            return false;
        }
    }
    return n == 15 || n == 18;
}

static void
copy_trunc(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "");
}

static void
error_from_json(const json_t *root, char code[64], char msg[160])
{
    const json_t *e = json_is_array(root) ? json_array_get(root, 0) : root;

    code[0] = '\0';
    msg[0] = '\0';
    if (!json_is_object(e)) {
        return;
    }
    copy_trunc(code, 64, json_string_value(json_object_get(e, "errorCode")));
    copy_trunc(msg, 160, json_string_value(json_object_get(e, "message")));
    if (code[0] == '\0') {
        /* OAuth-style errors on some endpoints */
        copy_trunc(code, 64, json_string_value(json_object_get(e, "error")));
        copy_trunc(msg, 160,
                   json_string_value(json_object_get(e, "error_description")));
    }
}

static json_t *
load_json(const char *body, size_t len)
{
    if (body == NULL || len == 0 || len > SF_REPLY_MAX) {
        return NULL;
    }
    return json_loadb(body, len, 0, NULL);
}

void
sf_error_parse(const char *body, size_t len, char code[64], char msg[160])
{
    json_t *root = load_json(body, len);

    error_from_json(root, code, msg);
    json_decref(root);
}

static int result_set(struct sf_result *r, enum sf_outcome o, const char *fmt,
                      ...) CMN_PRINTF(3, 4);

static int
result_set(struct sf_result *r, enum sf_outcome o, const char *fmt, ...)
{
    va_list ap;

    r->outcome = o;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
    va_end(ap);
    return o == SF_OK ? CMN_OK : o == SF_TRANSIENT ? CMN_AGAIN : CMN_INVALID;
}

int
sf_upsert_response_parse(long status, const char *body, size_t len,
                         struct sf_result *r)
{
    json_t *root = load_json(body, len);
    char code[64];
    char msg[160];
    int rc;

    memset(r, 0, sizeof(*r));
    r->status = status;
    if (status == 200 || status == 201 || status == 204) {
        const char *id = json_string_value(json_object_get(root, "id"));
        json_t *created = json_object_get(root, "created");

        r->created = status == 201 || json_is_true(created);
        if (sf_id_ok(id)) {
            copy_trunc(r->id, sizeof(r->id), id);
        }
        rc = result_set(r, SF_OK, "%s", r->created ? "created" : "updated");
        goto out;
    }
    if (status == 300) {
        rc = result_set(r, SF_PERMANENT,
                        "HTTP 300: the external id matches %zu records",
                        json_is_array(root) ? json_array_size(root) : 0);
        goto out;
    }
    error_from_json(root, code, msg);
    if (status == 408 || status == 429 || status >= 500 ||
        strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0 ||
        strcmp(code, "UNABLE_TO_LOCK_ROW") == 0 ||
        strcmp(code, "SERVER_UNAVAILABLE") == 0) {
        rc = result_set(r, SF_TRANSIENT, "HTTP %ld %s: %s", status, code, msg);
    } else if (status == 401) {
        /* still refused after a fresh token: fixable by an admin */
        rc = result_set(r, SF_TRANSIENT, "HTTP 401 %s: %s", code, msg);
    } else if (status >= 300 && status < 500) {
        rc = result_set(r, SF_PERMANENT, "HTTP %ld %s: %s", status, code, msg);
    } else {
        rc = result_set(r, SF_TRANSIENT, "HTTP %ld: unexpected reply", status);
    }
out:
    json_decref(root);
    return rc;
}

/* An item error of a collections reply: {"statusCode", "message"}. */
static void
item_result(const json_t *res, struct sf_result *r)
{
    const json_t *e = json_array_get(json_object_get(res, "errors"), 0);
    const char *id = json_string_value(json_object_get(res, "id"));
    char code[64], msg[160];

    memset(r, 0, sizeof(*r));
    r->status = 200;
    if (json_is_true(json_object_get(res, "success"))) {
        r->created = json_is_true(json_object_get(res, "created"));
        if (sf_id_ok(id)) {
            copy_trunc(r->id, sizeof(r->id), id);
        }
        (void)result_set(r, SF_OK, "%s", r->created ? "created" : "updated");
        return;
    }
    copy_trunc(code, sizeof(code),
               json_string_value(json_object_get(e, "statusCode")));
    copy_trunc(msg, sizeof(msg),
               json_string_value(json_object_get(e, "message")));
    if (strcmp(code, "UNABLE_TO_LOCK_ROW") == 0 ||
        strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0 ||
        strcmp(code, "SERVER_UNAVAILABLE") == 0 ||
        strcmp(code, "ALL_OR_NONE_OPERATION_ROLLED_BACK") == 0) {
        (void)result_set(r, SF_TRANSIENT, "%s: %s", code, msg);
    } else {
        (void)result_set(r, SF_PERMANENT, "%s: %s",
                         code[0] != '\0' ? code : "UNKNOWN_ERROR", msg);
    }
}

int
sf_upsert_collection_parse(long status, const char *body, size_t len,
                           struct sf_batch_item *items, size_t n)
{
    json_t *root = status == 200 ? load_json(body, len) : NULL;
    struct sf_result whole;
    int rc;

    if (status == 200 && json_is_array(root) && json_array_size(root) == n) {
        bool shaped = true;
        for (size_t i = 0; i < n; i++) {
            const json_t *res = json_array_get(root, i);
            if (!json_is_object(res) ||
                !json_is_boolean(json_object_get(res, "success"))) {
                shaped = false;
            }
        }
        if (shaped) {
            for (size_t i = 0; i < n; i++) {
                item_result(json_array_get(root, i), &items[i].r);
            }
            json_decref(root);
            return CMN_OK;
        }
    }
    json_decref(root);
    if (status == 200) {
        memset(&whole, 0, sizeof(whole));
        whole.status = status;
        rc = result_set(&whole, SF_TRANSIENT,
                        "HTTP 200: unreadable collections reply for %zu "
                        "records",
                        n);
    } else {
        rc = sf_upsert_response_parse(status, body, len, &whole);
        if (status >= 200 && status < 300) {
            /* 201/204 are not collection answers: resend */
            rc = result_set(&whole, SF_TRANSIENT,
                            "HTTP %ld: not a collections reply", status);
        }
    }
    for (size_t i = 0; i < n; i++) {
        items[i].r = whole;
    }
    return rc;
}

int
sf_sosl_escape(const char *in, char *out, size_t size)
{
    static const char reserved[] = "?&|!{}[]()^~*:\\\"'+-";
    size_t o = 0;

    for (const char *p = in; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            return CMN_INVALID;
        }
        if (strchr(reserved, *p) != NULL) {
            if (o + 1 >= size) {
                return CMN_INVALID;
            }
            out[o++] = '\\';
        }
        if (o + 1 >= size) {
            return CMN_INVALID;
        }
        out[o++] = *p;
    }
    if (size == 0) {
        return CMN_INVALID;
    }
    out[o] = '\0';
    return CMN_OK;
}

int
sf_soql_escape(const char *in, char *out, size_t size)
{
    size_t o = 0;

    for (const char *p = in; *p != '\0'; p++) {
        char esc = 0;

        switch (*p) {
        case '\'':
            esc = '\'';
            break;
        case '"':
            esc = '"';
            break;
        case '\\':
            esc = '\\';
            break;
        case '\n':
            esc = 'n';
            break;
        case '\r':
            esc = 'r';
            break;
        case '\t':
            esc = 't';
            break;
        case '\b':
            esc = 'b';
            break;
        case '\f':
            esc = 'f';
            break;
        default:
            if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                return CMN_INVALID;
            }
        }
        if (o + (esc != 0 ? 2 : 1) >= size) {
            return CMN_INVALID;
        }
        if (esc != 0) {
            out[o++] = '\\';
            out[o++] = esc;
        } else {
            out[o++] = *p;
        }
    }
    if (size == 0) {
        return CMN_INVALID;
    }
    out[o] = '\0';
    return CMN_OK;
}

int
sf_sosl_phone_query(const char *number, char *out, size_t size)
{
    char term[40];
    char esc[80];
    size_t n = 0;
    size_t digits = 0;
    int w;

    if (number == NULL) {
        return CMN_INVALID;
    }
    for (const char *p = number; *p != '\0'; p++) {
        if (isdigit((unsigned char)*p)) {
            if (++digits > 32) {
                return CMN_INVALID;
            }
            term[n++] = *p;
        } else if (*p == '+' && digits == 0 && n == 0) {
            term[n++] = '+';
        }
    }
    term[n] = '\0';
    if (digits < 2 || sf_sosl_escape(term, esc, sizeof(esc)) != CMN_OK) {
        return CMN_INVALID;
    }
    w = snprintf(out, size,
                 "FIND {%s} IN PHONE FIELDS RETURNING Contact(Id,Name),"
                 "Lead(Id,Name),Account(Id,Name)",
                 esc);
    return w > 0 && (size_t)w < size ? CMN_OK : CMN_INVALID;
}

int
sf_sosl_response_parse(const char *body, size_t len, json_t **records,
                       struct cmn_err *err)
{
    json_t *root = load_json(body, len);
    json_t *list;
    json_t *out = NULL;
    size_t i;
    json_t *rec;
    int rc = CMN_INVALID;

    *records = NULL;
    list = json_is_array(root) ? root : json_object_get(root, "searchRecords");
    if (!json_is_array(list)) {
        cmn_err_set(err, "search: reply has no searchRecords array");
        goto out;
    }
    out = json_array();
    if (out == NULL) {
        rc = CMN_NOMEM;
        goto out;
    }
    json_array_foreach(list, i, rec)
    {
        const json_t *attrs = json_object_get(rec, "attributes");
        const char *type = json_string_value(json_object_get(attrs, "type"));
        const char *id = json_string_value(json_object_get(rec, "Id"));
        const char *name = json_string_value(json_object_get(rec, "Name"));

        if (json_array_size(out) >= SF_SEARCH_MAX) {
            break;
        }
        if (!sf_id_ok(id) || type == NULL || !sf_api_name_ok(type)) {
            continue;
        }
        if (json_array_append_new(
                out, json_pack("{s:s, s:s, s:s}", "type", type, "id", id,
                               "name", name != NULL ? name : "")) != 0) {
            rc = CMN_NOMEM;
            goto out;
        }
    }
    *records = out;
    out = NULL;
    rc = CMN_OK;
out:
    json_decref(out);
    json_decref(root);
    return rc;
}

int
sf_soql_user_response_parse(const char *body, size_t len,
                            char out[SF_ID_LEN + 1], struct cmn_err *err)
{
    json_t *root = load_json(body, len);
    json_t *recs = json_object_get(root, "records");
    const char *id;
    int rc = CMN_INVALID;

    out[0] = '\0';
    if (!json_is_array(recs)) {
        cmn_err_set(err, "query: reply has no records array");
        goto out;
    }
    if (json_array_size(recs) == 0) {
        cmn_err_set(err, "query: no User with this agent id");
        rc = CMN_NOTFOUND;
        goto out;
    }
    if (json_array_size(recs) > 1) {
        cmn_err_set(err, "query: several Users carry this agent id");
        goto out;
    }
    id = json_string_value(json_object_get(json_array_get(recs, 0), "Id"));
    if (!sf_id_ok(id)) {
        cmn_err_set(err, "query: record without a valid Id");
        goto out;
    }
    copy_trunc(out, SF_ID_LEN + 1, id);
    rc = CMN_OK;
out:
    json_decref(root);
    return rc;
}

/* ---- client ---- */

struct sf *
sf_new(const struct sf_config *cfg, struct cmn_err *err)
{
    struct sf *sf;

    if (cfg == NULL || !cfg->sf_enabled) {
        cmn_err_set(err, "salesforce: not configured");
        return NULL;
    }
    sf = calloc(1, sizeof(*sf));
    if (sf == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    sf->cfg = cfg;
    sf->auth = sf_auth_new(cfg, err);
    if (sf->auth == NULL) {
        free(sf);
        return NULL;
    }
    pthread_mutex_init(&sf->cache_mu, NULL);
    return sf;
}

void
sf_free(struct sf *sf)
{
    if (sf == NULL) {
        return;
    }
    for (size_t i = 0; i < SF_CACHE_BUCKETS; i++) {
        struct user_entry *e = sf->cache[i];
        while (e != NULL) {
            struct user_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    pthread_mutex_destroy(&sf->cache_mu);
    sf_auth_free(sf->auth);
    free(sf);
}

struct sf_auth *
sf_auth_of(struct sf *sf)
{
    return sf->auth;
}

const struct sf_config *
sf_config_of(const struct sf *sf)
{
    return sf->cfg;
}

/* One REST call as the integration user; path starts with '/'. A 401
 * invalidates that token and the call is made once more with a new one.
 * CMN_OK when an HTTP reply arrived (resp filled, any status). */
static int
sf_call(struct sf *sf, const char *method, const char *path, const char *body,
        size_t body_len, struct cmn_httpc_resp *resp, struct cmn_err *err)
{
    char instance[SF_URL_MAX];
    char auth[SF_TOKEN_MAX + 32];
    char *url = NULL;
    size_t url_len;
    int rc = CMN_ERR;

    memset(resp, 0, sizeof(*resp));
    url_len = SF_URL_MAX + strlen(path) + 1;
    url = malloc(url_len);
    if (url == NULL) {
        cmn_err_set(err, "out of memory");
        return CMN_NOMEM;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        struct cmn_secret *tok = NULL;
        struct cmn_httpc_req req;
        const char *headers[4];
        size_t nh = 0;

        rc = sf_auth_token(sf->auth, &tok, instance, err);
        if (rc != CMN_OK) {
            break;
        }
        snprintf(url, url_len, "%s%s", instance, path);
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", tok->data);
        headers[nh++] = auth;
        headers[nh++] = "Accept: application/json";
        if (body != NULL) {
            headers[nh++] = "Content-Type: application/json";
        }
        headers[nh] = NULL;
        memset(&req, 0, sizeof(req));
        req.method = method;
        req.url = url;
        req.headers = headers;
        req.body = body;
        req.body_len = body_len;
        req.ca_file = sf->cfg->ca_file;
        req.timeout_ms = sf->cfg->timeout_ms;
        req.max_response = SF_REPLY_MAX;
        rc = cmn_httpc_do(&req, resp, err);
        cmn_wipe(auth, sizeof(auth));
        if (rc == CMN_OK && resp->status == 401 && attempt == 0) {
            cmn_log_info("event=sf_unauthorized method=%s action=remint",
                         method);
            sf_auth_invalidate(sf->auth, tok);
            cmn_secret_free(tok);
            cmn_httpc_resp_cleanup(resp);
            memset(resp, 0, sizeof(*resp));
            continue;
        }
        cmn_secret_free(tok);
        break;
    }
    if (rc == CMN_OK && resp->status >= 200 && resp->status < 300) {
        atomic_store(&sf->last_ok_ms, cmn_now_ms());
    }
    free(url);
    return rc;
}

long long
sf_last_ok_ms(struct sf *sf)
{
    return atomic_load(&sf->last_ok_ms);
}

static bool
ext_id_ok(const char *s)
{
    size_t n;

    if (s == NULL) {
        return false;
    }
    n = strlen(s);
    if (n == 0 || n > SF_EXT_ID_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            return false;
        }
    }
    return true;
}

int
sf_task_upsert(struct sf *sf, const char *external_id, json_t *fields,
               struct sf_result *r)
{
    const struct sf_config *c = sf->cfg;
    struct cmn_httpc_resp resp;
    struct cmn_err err = {{0}};
    json_t *copy = NULL;
    char *body = NULL;
    char *esc = NULL;
    char *path = NULL;
    size_t path_len;
    long long t0 = cmn_now_ms();
    int rc;

    memset(r, 0, sizeof(*r));
    memset(&resp, 0, sizeof(resp));
    if (!ext_id_ok(external_id) || !json_is_object(fields)) {
        return result_set(r, SF_PERMANENT, "bad external id or fields");
    }
    copy = json_copy(fields);
    if (copy != NULL) {
        json_object_del(copy, c->task_external_id_field);
        json_object_del(copy, "Id");
        body = json_dumps(copy, JSON_COMPACT);
    }
    esc = cmn_url_escape(external_id);
    path_len = strlen(c->api_version) + strlen(c->task_external_id_field) +
               (esc != NULL ? strlen(esc) : 0) + 64;
    path = malloc(path_len);
    if (body == NULL || esc == NULL || path == NULL) {
        rc = result_set(r, SF_TRANSIENT, "out of memory");
        goto out;
    }
    if (strlen(body) > SF_BODY_MAX) {
        rc = result_set(r, SF_PERMANENT, "task fields over %d bytes",
                        SF_BODY_MAX);
        goto out;
    }
    snprintf(path, path_len, "/services/data/v%s/sobjects/Task/%s/%s",
             c->api_version, c->task_external_id_field, esc);
    rc = sf_call(sf, "PATCH", path, body, strlen(body), &resp, &err);
    if (rc != CMN_OK) {
        r->status = 0;
        rc = result_set(r, SF_TRANSIENT, "%s: %s", cmn_rc_str(rc), err.msg);
    } else {
        rc = sf_upsert_response_parse(resp.status, resp.body, resp.body_len, r);
    }
    if (r->outcome == SF_OK) {
        cmn_log_debug("event=sf_task_upsert ext_id=%s status=%ld created=%d "
                      "ms=%lld",
                      external_id, r->status, r->created ? 1 : 0,
                      cmn_now_ms() - t0);
    } else {
        cmn_log_warn("event=sf_task_upsert ext_id=%s status=%ld outcome=%s "
                     "reason=%s ms=%lld",
                     external_id, r->status,
                     r->outcome == SF_TRANSIENT ? "transient" : "permanent",
                     r->reason, cmn_now_ms() - t0);
    }
out:
    cmn_httpc_resp_cleanup(&resp);
    json_decref(copy);
    free(body);
    free(esc);
    free(path);
    return rc;
}

int
sf_task_upsert_batch(struct sf *sf, struct sf_batch_item *items, size_t n)
{
    const struct sf_config *c = sf->cfg;
    struct sf_batch_item *sent[SF_BATCH_MAX];
    struct cmn_httpc_resp resp;
    struct cmn_err err = {{0}};
    json_t *records = json_array();
    json_t *req_body = json_object();
    char *body = NULL;
    char path[512];
    size_t nsent = 0;
    long long t0 = cmn_now_ms();
    int rc = CMN_OK;

    memset(&resp, 0, sizeof(resp));
    if (n > SF_BATCH_MAX) {
        n = SF_BATCH_MAX;
    }
    for (size_t i = 0; i < n; i++) {
        struct sf_batch_item *it = &items[i];
        json_t *rec;
        char *one;

        memset(&it->r, 0, sizeof(it->r));
        if (!ext_id_ok(it->external_id) || !json_is_object(it->fields)) {
            (void)result_set(&it->r, SF_PERMANENT, "bad external id or fields");
            continue;
        }
        rec = json_copy(it->fields);
        if (rec == NULL || records == NULL) {
            json_decref(rec);
            (void)result_set(&it->r, SF_TRANSIENT, "out of memory");
            continue;
        }
        json_object_del(rec, "Id");
        one = json_dumps(rec, JSON_COMPACT);
        if (one == NULL || strlen(one) > SF_BODY_MAX) {
            (void)result_set(&it->r, one == NULL ? SF_TRANSIENT : SF_PERMANENT,
                             one == NULL ? "out of memory"
                                         : "task fields over 131072 bytes");
            free(one);
            json_decref(rec);
            continue;
        }
        free(one);
        /* the record names its type and carries the external id itself
         * (the URL names only the field) */
        json_object_set_new(rec, "attributes",
                            json_pack("{s:s}", "type", "Task"));
        json_object_set_new(rec, c->task_external_id_field,
                            json_string(it->external_id));
        json_array_append_new(records, rec);
        sent[nsent++] = it;
    }
    if (nsent == 0) {
        goto out;
    }
    if (req_body == NULL ||
        json_object_set_new(req_body, "allOrNone", json_false()) != 0 ||
        json_object_set(req_body, "records", records) != 0 ||
        (body = json_dumps(req_body, JSON_COMPACT)) == NULL) {
        for (size_t i = 0; i < nsent; i++) {
            (void)result_set(&sent[i]->r, SF_TRANSIENT, "out of memory");
        }
        rc = CMN_AGAIN;
        goto out;
    }
    snprintf(path, sizeof(path),
             "/services/data/v%s/composite/sobjects/Task/%s", c->api_version,
             c->task_external_id_field);
    rc = sf_call(sf, "PATCH", path, body, strlen(body), &resp, &err);
    if (rc != CMN_OK) {
        for (size_t i = 0; i < nsent; i++) {
            sent[i]->r.status = 0;
            (void)result_set(&sent[i]->r, SF_TRANSIENT, "%s: %s",
                             cmn_rc_str(rc), err.msg);
        }
        rc = CMN_AGAIN;
    } else {
        /* the records sent, contiguous, for the pure parser */
        struct sf_batch_item *tmp = calloc(nsent, sizeof(*tmp));
        if (tmp == NULL) {
            for (size_t i = 0; i < nsent; i++) {
                (void)result_set(&sent[i]->r, SF_TRANSIENT, "out of memory");
            }
            rc = CMN_AGAIN;
            goto out;
        }
        rc = sf_upsert_collection_parse(resp.status, resp.body, resp.body_len,
                                        tmp, nsent);
        for (size_t i = 0; i < nsent; i++) {
            sent[i]->r = tmp[i].r;
        }
        free(tmp);
    }
    if (rc == CMN_OK) {
        cmn_log_debug("event=sf_task_upsert_batch records=%zu status=%ld "
                      "ms=%lld",
                      nsent, resp.status, cmn_now_ms() - t0);
    } else {
        cmn_log_warn("event=sf_task_upsert_batch records=%zu status=%ld "
                     "outcome=%s reason=%s ms=%lld",
                     nsent, resp.status,
                     rc == CMN_AGAIN ? "transient" : "permanent",
                     sent[0]->r.reason, cmn_now_ms() - t0);
    }
out:
    cmn_httpc_resp_cleanup(&resp);
    json_decref(records);
    json_decref(req_body);
    free(body);
    return rc;
}

/* GET <path><escaped q>; CMN_OK only for a 200 (body in resp). */
static int
sf_get_query(struct sf *sf, const char *resource, const char *q,
             struct cmn_httpc_resp *resp, struct cmn_err *err)
{
    char *esc = cmn_url_escape(q);
    char *path = NULL;
    size_t n;
    int rc;

    if (esc == NULL) {
        cmn_err_set(err, "out of memory");
        return CMN_NOMEM;
    }
    n = strlen(esc) + strlen(resource) + 64;
    path = malloc(n);
    if (path == NULL) {
        free(esc);
        cmn_err_set(err, "out of memory");
        return CMN_NOMEM;
    }
    snprintf(path, n, "/services/data/v%s/%s?q=%s", sf->cfg->api_version,
             resource, esc);
    rc = sf_call(sf, "GET", path, NULL, 0, resp, err);
    free(esc);
    free(path);
    if (rc == CMN_OK && resp->status != 200) {
        char code[64];
        char msg[160];

        sf_error_parse(resp->body, resp->body_len, code, msg);
        cmn_err_set(err, "%s: HTTP %ld %s: %s", resource, resp->status, code,
                    msg);
        rc = resp->status == 401 || resp->status == 403 ? CMN_DENIED
             : resp->status == 429 || resp->status >= 500 ||
                     strcmp(code, "REQUEST_LIMIT_EXCEEDED") == 0
                 ? CMN_AGAIN
                 : CMN_INVALID;
    }
    return rc;
}

int
sf_search_phone(struct sf *sf, const char *number, json_t **records,
                struct cmn_err *err)
{
    struct cmn_httpc_resp resp;
    char q[256];
    int rc;

    *records = NULL;
    if (sf_sosl_phone_query(number, q, sizeof(q)) != CMN_OK) {
        cmn_err_set(err, "search: not a phone number");
        return CMN_INVALID;
    }
    rc = sf_get_query(sf, "search/", q, &resp, err);
    if (rc == CMN_OK) {
        rc = sf_sosl_response_parse(resp.body, resp.body_len, records, err);
    }
    cmn_httpc_resp_cleanup(&resp);
    return rc;
}

static size_t
agent_hash(const char *s)
{
    size_t h = 5381;

    for (; *s != '\0'; s++) {
        h = h * 33 + (unsigned char)*s;
    }
    return h % SF_CACHE_BUCKETS;
}

/* CMN_OK / CMN_NOTFOUND from the cache, CMN_AGAIN when not cached. */
static int
cache_get(struct sf *sf, const char *agent, char out[SF_ID_LEN + 1])
{
    int rc = CMN_AGAIN;
    long long now = cmn_now_ms();

    pthread_mutex_lock(&sf->cache_mu);
    for (struct user_entry *e = sf->cache[agent_hash(agent)]; e != NULL;
         e = e->next) {
        if (strcmp(e->agent, agent) == 0 && e->expires_ms > now) {
            memcpy(out, e->id, SF_ID_LEN + 1);
            rc = e->found ? CMN_OK : CMN_NOTFOUND;
            break;
        }
    }
    pthread_mutex_unlock(&sf->cache_mu);
    return rc;
}

static void
cache_put(struct sf *sf, const char *agent, const char *id, bool found)
{
    size_t b = agent_hash(agent);
    size_t n = strlen(agent);
    struct user_entry **pp;
    struct user_entry *e = calloc(1, sizeof(*e) + n + 1);

    if (e == NULL) {
        return; /* a cache, not a store */
    }
    memcpy(e->agent, agent, n + 1);
    copy_trunc(e->id, sizeof(e->id), id);
    e->found = found;
    e->expires_ms = cmn_now_ms() + (found ? SF_CACHE_HIT_MS : SF_CACHE_MISS_MS);
    pthread_mutex_lock(&sf->cache_mu);
    /* drop an older entry for the same agent, and expired ones */
    pp = &sf->cache[b];
    while (*pp != NULL) {
        struct user_entry *old = *pp;
        if (strcmp(old->agent, agent) == 0 || old->expires_ms <= cmn_now_ms()) {
            *pp = old->next;
            free(old);
            sf->ncache--;
        } else {
            pp = &old->next;
        }
    }
    if (sf->ncache < SF_CACHE_MAX) {
        e->next = sf->cache[b];
        sf->cache[b] = e;
        sf->ncache++;
        e = NULL;
    }
    pthread_mutex_unlock(&sf->cache_mu);
    free(e);
}

int
sf_user_for_agent(struct sf *sf, const char *agent_id, char out[SF_ID_LEN + 1],
                  struct cmn_err *err)
{
    struct cmn_httpc_resp resp;
    char esc[2 * SF_AGENT_ID_MAX + 1];
    char q[2 * SF_AGENT_ID_MAX + SF_API_NAME_MAX + 64];
    int rc;

    out[0] = '\0';
    if (agent_id == NULL || agent_id[0] == '\0' ||
        strlen(agent_id) > SF_AGENT_ID_MAX ||
        sf_soql_escape(agent_id, esc, sizeof(esc)) != CMN_OK) {
        cmn_err_set(err, "user lookup: bad agent id");
        return CMN_INVALID;
    }
    rc = cache_get(sf, agent_id, out);
    if (rc != CMN_AGAIN) {
        if (rc == CMN_NOTFOUND) {
            cmn_err_set(err, "query: no User with this agent id (cached)");
        }
        return rc;
    }
    snprintf(q, sizeof(q), "SELECT Id FROM User WHERE %s = '%s' LIMIT 2",
             sf->cfg->agent_user_field, esc);
    rc = sf_get_query(sf, "query", q, &resp, err);
    if (rc == CMN_OK) {
        rc = sf_soql_user_response_parse(resp.body, resp.body_len, out, err);
        if (rc == CMN_OK || rc == CMN_NOTFOUND) {
            cache_put(sf, agent_id, out, rc == CMN_OK);
        }
    }
    cmn_httpc_resp_cleanup(&resp);
    return rc;
}
