/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_sf_fake.h - an in-process fake of the external Salesforce org for
 * the test_sf_* tests (cmn_httpd on a loopback port): the JWT bearer token
 * endpoint (verifies the RS256 assertion with OpenSSL), the Task upsert on
 * the external-ID field (stores by external id, can be told to fail),
 * SOSL search and SOQL query. Included by the tests, not a test itself. */
#ifndef TEST_SF_FAKE_H
#define TEST_SF_FAKE_H

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cmn_httpd.h"
#include "cmn_seal.h"

#define FAKE_TASKS_MAX 2048

struct fake_task {
    char ext[160];
    int writes;      /* 2xx answers for this external id */
    int creates;     /* 201s: must end at 1 */
    char body[1024]; /* last body written */
};

struct fake_sf {
    struct cmn_httpd *d;
    char base[64];
    EVP_PKEY *key; /* verifies assertions (the test holds the pair) */
    char client_id[64];
    char user[64];
    char aud[128];

    pthread_mutex_t mu;
    unsigned mints;
    unsigned serial; /* token numbering, never reset */
    unsigned bad_assertions;
    char token[64];         /* the one valid token; "" = none */
    int fail_503;           /* next N upserts: 503 */
    int fail_401;           /* next N upserts: 401 (and the token dies) */
    int fail_403_limit;     /* next N upserts: 403 REQUEST_LIMIT_EXCEEDED */
    int fail_token_503;     /* next N token requests: 503 */
    char fail_400_ext[160]; /* upserts of this id: 400 (until cleared) */
    char fail_300_ext[160]; /* upserts of this id: 300 */
    long delay_ms;          /* every upsert sleeps this long */
    bool collections_404;   /* an org below API 46: no collections */
    unsigned upsert_requests;
    unsigned collection_requests; /* sObject Collections upserts */
    unsigned collection_records;  /* records in them */
    unsigned queries;             /* SOQL requests */
    unsigned searches;            /* SOSL requests */
    char last_q[512];             /* decoded q of the last search/query */
    struct fake_task tasks[FAKE_TASKS_MAX];
    int ntasks;
};

static struct fake_sf fake;

static const char *
fstr(const json_t *v)
{
    const char *s = json_string_value(v);

    return s != NULL ? s : "";
}

static bool
fake_verify_assertion(const char *jwt)
{
    const char *d1 = strchr(jwt, '.');
    const char *d2 = d1 != NULL ? strchr(d1 + 1, '.') : NULL;
    unsigned char *hdr = NULL, *cl = NULL, *sig = NULL;
    size_t hl, cll, sl;
    json_t *h = NULL, *c = NULL;
    EVP_MD_CTX *md = NULL;
    bool ok = false;
    long long exp, now = cmn_wall_sec();

    if (d2 == NULL || strchr(d2 + 1, '.') != NULL ||
        cmn_base64url_decode(jwt, (size_t)(d1 - jwt), &hdr, &hl) != CMN_OK ||
        cmn_base64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &cl, &cll) !=
            CMN_OK ||
        cmn_base64url_decode(d2 + 1, strlen(d2 + 1), &sig, &sl) != CMN_OK) {
        goto out;
    }
    h = json_loadb((const char *)hdr, hl, 0, NULL);
    c = json_loadb((const char *)cl, cll, 0, NULL);
    if (!json_is_object(h) || json_object_size(h) != 1 ||
        strcmp(fstr(json_object_get(h, "alg")), "RS256") != 0) {
        goto out;
    }
    exp = json_integer_value(json_object_get(c, "exp"));
    if (strcmp(fstr(json_object_get(c, "iss")), fake.client_id) != 0 ||
        strcmp(fstr(json_object_get(c, "sub")), fake.user) != 0 ||
        strcmp(fstr(json_object_get(c, "aud")), fake.aud) != 0 || exp < now ||
        exp > now + 300) {
        goto out;
    }
    md = EVP_MD_CTX_new();
    ok = md != NULL &&
         EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, fake.key) == 1 &&
         EVP_DigestVerify(md, sig, sl, (const unsigned char *)jwt,
                          (size_t)(d2 - jwt)) == 1;
out:
    EVP_MD_CTX_free(md);
    json_decref(h);
    json_decref(c);
    free(hdr);
    free(cl);
    free(sig);
    return ok;
}

static int
fake_h_token(struct cmn_http_req *req, void *app)
{
    size_t len;
    const char *body = cmn_http_req_body(req, &len);
    char *copy = strndup(body != NULL ? body : "", len);
    char *a = strstr(copy, "assertion=");
    bool grant = strstr(copy, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3A"
                              "grant-type%3Ajwt-bearer") != NULL;
    char tok[64];

    (void)app;
    if (a != NULL) {
        a += 10;
        a[strcspn(a, "&")] = '\0';
    }
    pthread_mutex_lock(&fake.mu);
    if (fake.fail_token_503 > 0) {
        fake.fail_token_503--;
        pthread_mutex_unlock(&fake.mu);
        free(copy);
        return cmn_http_reply_text(req, 503, "text/plain", "down", 4);
    }
    if (!grant || a == NULL || !fake_verify_assertion(a)) {
        fake.bad_assertions++;
        pthread_mutex_unlock(&fake.mu);
        free(copy);
        return cmn_http_reply_json(
            req, 400,
            json_pack("{s:s, s:s}", "error", "invalid_grant",
                      "error_description", "invalid assertion"));
    }
    fake.mints++;
    /* never reused across fake_reset: a client holding an old token must
     * see it refused, not accidentally valid again */
    fake.serial++;
    snprintf(fake.token, sizeof(fake.token), "00Dfake!tok%u", fake.serial);
    snprintf(tok, sizeof(tok), "%s", fake.token);
    pthread_mutex_unlock(&fake.mu);
    free(copy);
    return cmn_http_reply_json(
        req, 200,
        json_pack("{s:s, s:s, s:s, s:s}", "access_token", tok, "instance_url",
                  fake.base, "token_type", "Bearer", "scope", "api"));
}

/* 401 unless the bearer is the live token; mu held. */
static bool
fake_auth_ok(struct cmn_http_req *req)
{
    const char *b = cmn_http_req_bearer(req);

    return b != NULL && fake.token[0] != '\0' && strcmp(b, fake.token) == 0;
}

static int
fake_reply_401(struct cmn_http_req *req)
{
    return cmn_http_reply_json(req, 401,
                               json_pack("[{s:s, s:s}]", "message",
                                         "Session expired or invalid",
                                         "errorCode", "INVALID_SESSION_ID"));
}

static struct fake_task *
fake_task_get(const char *ext)
{
    for (int i = 0; i < fake.ntasks; i++) {
        if (strcmp(fake.tasks[i].ext, ext) == 0) {
            return &fake.tasks[i];
        }
    }
    if (fake.ntasks >= FAKE_TASKS_MAX) {
        return NULL;
    }
    snprintf(fake.tasks[fake.ntasks].ext, sizeof(fake.tasks[0].ext), "%s", ext);
    return &fake.tasks[fake.ntasks++];
}

static int
fake_h_upsert(struct cmn_http_req *req, void *app)
{
    const char *ext = cmn_http_req_path_rest(req);
    size_t len;
    const char *body = cmn_http_req_body(req, &len);
    json_t *fields = json_loadb(body != NULL ? body : "", len, 0, NULL);
    struct fake_task *t;
    bool created;
    long delay;

    (void)app;
    pthread_mutex_lock(&fake.mu);
    fake.upsert_requests++;
    delay = fake.delay_ms;
    pthread_mutex_unlock(&fake.mu);
    if (delay > 0) {
        usleep((useconds_t)delay * 1000);
    }
    pthread_mutex_lock(&fake.mu);
    if (!fake_auth_ok(req)) {
        pthread_mutex_unlock(&fake.mu);
        json_decref(fields);
        return fake_reply_401(req);
    }
    if (fake.fail_401 > 0) {
        fake.fail_401--;
        fake.token[0] = '\0'; /* the session ended */
        pthread_mutex_unlock(&fake.mu);
        json_decref(fields);
        return fake_reply_401(req);
    }
    if (fake.fail_503 > 0) {
        fake.fail_503--;
        pthread_mutex_unlock(&fake.mu);
        json_decref(fields);
        return cmn_http_reply_json(
            req, 503,
            json_pack("[{s:s, s:s}]", "message", "down for maintenance",
                      "errorCode", "SERVER_UNAVAILABLE"));
    }
    if (fake.fail_403_limit > 0) {
        fake.fail_403_limit--;
        pthread_mutex_unlock(&fake.mu);
        json_decref(fields);
        return cmn_http_reply_json(req, 403,
                                   json_pack("[{s:s, s:s}]", "message",
                                             "TotalRequests Limit "
                                             "exceeded.",
                                             "errorCode",
                                             "REQUEST_LIMIT_EXCEEDED"));
    }
    if (strcmp(ext, fake.fail_400_ext) == 0) {
        pthread_mutex_unlock(&fake.mu);
        json_decref(fields);
        return cmn_http_reply_json(
            req, 400,
            json_pack("[{s:s, s:s, s:[s]}]", "message",
                      "Call Type: bad value for restricted picklist field",
                      "errorCode", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                      "fields", "CallType"));
    }
    if (strcmp(ext, fake.fail_300_ext) == 0) {
        pthread_mutex_unlock(&fake.mu);
        json_decref(fields);
        return cmn_http_reply_json(
            req, 300,
            json_pack("[s, s]", "/services/data/v60.0/sobjects/Task/00T1",
                      "/services/data/v60.0/sobjects/Task/00T2"));
    }
    if (!json_is_object(fields) ||
        json_object_get(fields, "Finesse_Call_Id__c") != NULL) {
        pthread_mutex_unlock(&fake.mu);
        json_decref(fields);
        return cmn_http_reply_json(req, 400,
                                   json_pack("[{s:s, s:s}]", "message",
                                             "bad body", "errorCode",
                                             "JSON_PARSER_ERROR"));
    }
    t = fake_task_get(ext);
    if (t == NULL) {
        pthread_mutex_unlock(&fake.mu);
        json_decref(fields);
        return cmn_http_reply_text(req, 507, "text/plain", "full", 4);
    }
    created = t->creates == 0;
    t->writes++;
    if (created) {
        t->creates++;
    }
    snprintf(t->body, sizeof(t->body), "%.*s", (int)len, body);
    pthread_mutex_unlock(&fake.mu);
    json_decref(fields);
    return cmn_http_reply_json(req, created ? 201 : 200,
                               json_pack("{s:s, s:b, s:[], s:b}", "id",
                                         "00T5g00000AbCdEAAZ", "success", 1,
                                         "errors", "created", created ? 1 : 0));
}

/* One record of a collections upsert (mu held): the UpsertResult. */
static json_t *
fake_collection_record(const json_t *rec)
{
    const char *ext = fstr(json_object_get(rec, "Finesse_Call_Id__c"));
    const char *type =
        fstr(json_object_get(json_object_get(rec, "attributes"), "type"));
    struct fake_task *t;
    json_t *fields;
    char *body;
    bool created;

    if (strcmp(type, "Task") != 0 || ext[0] == '\0') {
        return json_pack("{s:n, s:b, s:[{s:s, s:s}]}", "id", "success", 0,
                         "errors", "statusCode", "INVALID_TYPE", "message",
                         "attributes.type Task and the external id needed");
    }
    if (strcmp(ext, fake.fail_400_ext) == 0) {
        return json_pack("{s:n, s:b, s:[{s:s, s:s, s:[s]}]}", "id", "success",
                         0, "errors", "statusCode",
                         "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "message",
                         "Call Type: bad value for restricted picklist field",
                         "fields", "CallType");
    }
    if (strcmp(ext, fake.fail_300_ext) == 0) {
        return json_pack("{s:n, s:b, s:[{s:s, s:s}]}", "id", "success", 0,
                         "errors", "statusCode", "DUPLICATE_EXTERNAL_ID",
                         "message", "more than one record found");
    }
    t = fake_task_get(ext);
    if (t == NULL) {
        return json_pack("{s:n, s:b, s:[{s:s, s:s}]}", "id", "success", 0,
                         "errors", "statusCode", "STORAGE_LIMIT_EXCEEDED",
                         "message", "full");
    }
    created = t->creates == 0;
    t->writes++;
    if (created) {
        t->creates++;
    }
    /* stored as a single upsert would have sent it: without the type
     * and the external id */
    fields = json_deep_copy(rec);
    json_object_del(fields, "attributes");
    json_object_del(fields, "Finesse_Call_Id__c");
    body = json_dumps(fields, JSON_COMPACT);
    snprintf(t->body, sizeof(t->body), "%s", body != NULL ? body : "");
    free(body);
    json_decref(fields);
    return json_pack("{s:s, s:b, s:[], s:b}", "id", "00T5g00000AbCdEAAZ",
                     "success", 1, "errors", "created", created ? 1 : 0);
}

/* PATCH /composite/sobjects/Task/Finesse_Call_Id__c: the request-level
 * faults as for a single upsert, then one result per record. */
static int
fake_h_collection(struct cmn_http_req *req, void *app)
{
    size_t len;
    const char *body = cmn_http_req_body(req, &len);
    json_t *root = json_loadb(body != NULL ? body : "", len, 0, NULL);
    json_t *records = json_object_get(root, "records");
    json_t *out;
    long delay;

    (void)app;
    pthread_mutex_lock(&fake.mu);
    fake.collection_requests++;
    delay = fake.delay_ms;
    pthread_mutex_unlock(&fake.mu);
    if (delay > 0) {
        usleep((useconds_t)delay * 1000);
    }
    pthread_mutex_lock(&fake.mu);
    if (!fake_auth_ok(req) || fake.fail_401 > 0) {
        if (fake.fail_401 > 0) {
            fake.fail_401--;
            fake.token[0] = '\0';
        }
        pthread_mutex_unlock(&fake.mu);
        json_decref(root);
        return fake_reply_401(req);
    }
    if (fake.collections_404) {
        pthread_mutex_unlock(&fake.mu);
        json_decref(root);
        return cmn_http_reply_json(req, 404,
                                   json_pack("[{s:s, s:s}]", "message",
                                             "The requested resource does "
                                             "not exist",
                                             "errorCode", "NOT_FOUND"));
    }
    if (fake.fail_503 > 0) {
        fake.fail_503--;
        pthread_mutex_unlock(&fake.mu);
        json_decref(root);
        return cmn_http_reply_json(
            req, 503,
            json_pack("[{s:s, s:s}]", "message", "down for maintenance",
                      "errorCode", "SERVER_UNAVAILABLE"));
    }
    if (!json_is_array(records) || json_array_size(records) > 200 ||
        !json_is_false(json_object_get(root, "allOrNone"))) {
        pthread_mutex_unlock(&fake.mu);
        json_decref(root);
        return cmn_http_reply_json(req, 400,
                                   json_pack("[{s:s, s:s}]", "message",
                                             "bad body", "errorCode",
                                             "JSON_PARSER_ERROR"));
    }
    out = json_array();
    for (size_t i = 0; i < json_array_size(records); i++) {
        fake.collection_records++;
        json_array_append_new(
            out, fake_collection_record(json_array_get(records, i)));
    }
    pthread_mutex_unlock(&fake.mu);
    json_decref(root);
    return cmn_http_reply_json(req, 200, out);
}

static int
fake_h_search(struct cmn_http_req *req, void *app)
{
    const char *q = cmn_http_req_query(req, "q");

    (void)app;
    pthread_mutex_lock(&fake.mu);
    if (!fake_auth_ok(req)) {
        pthread_mutex_unlock(&fake.mu);
        return fake_reply_401(req);
    }
    fake.searches++;
    snprintf(fake.last_q, sizeof(fake.last_q), "%s", q != NULL ? q : "");
    pthread_mutex_unlock(&fake.mu);
    return cmn_http_reply_json(
        req, 200,
        json_pack("{s:[{s:{s:s}, s:s, s:s}, {s:{s:s}, s:s, s:s}]}",
                  "searchRecords", "attributes", "type", "Contact", "Id",
                  "0035g00000XyZaBAAV", "Name", "Ada Lovelace", "attributes",
                  "type", "Account", "Id", "0015g00000QrStUAAZ", "Name",
                  "Analytical Engines"));
}

static int
fake_h_query(struct cmn_http_req *req, void *app)
{
    const char *q = cmn_http_req_query(req, "q");
    json_t *recs = json_array();

    (void)app;
    pthread_mutex_lock(&fake.mu);
    if (!fake_auth_ok(req)) {
        pthread_mutex_unlock(&fake.mu);
        json_decref(recs);
        return fake_reply_401(req);
    }
    fake.queries++;
    snprintf(fake.last_q, sizeof(fake.last_q), "%s", q != NULL ? q : "");
    pthread_mutex_unlock(&fake.mu);
    if (q != NULL && strstr(q, "'1001'") != NULL) {
        json_array_append_new(recs,
                              json_pack("{s:{s:s}, s:s}", "attributes", "type",
                                        "User", "Id", "0055g00000AgEnTAAB"));
    } else if (q != NULL && strstr(q, "'dup'") != NULL) {
        json_array_append_new(recs,
                              json_pack("{s:s}", "Id", "0055g00000AgEnTAAB"));
        json_array_append_new(recs,
                              json_pack("{s:s}", "Id", "0055g00000AgEnUAAB"));
    }
    return cmn_http_reply_json(req, 200,
                               json_pack("{s:I, s:b, s:o}", "totalSize",
                                         (json_int_t)json_array_size(recs),
                                         "done", 1, "records", recs));
}

static void
fake_reset(void)
{
    pthread_mutex_lock(&fake.mu);
    fake.mints = 0;
    fake.bad_assertions = 0;
    fake.token[0] = '\0';
    fake.fail_503 = fake.fail_401 = fake.fail_403_limit = 0;
    fake.fail_token_503 = 0;
    fake.fail_400_ext[0] = fake.fail_300_ext[0] = '\0';
    fake.delay_ms = 0;
    fake.collections_404 = false;
    fake.upsert_requests = fake.queries = fake.searches = 0;
    fake.collection_requests = fake.collection_records = 0;
    fake.ntasks = 0;
    memset(fake.tasks, 0, sizeof(fake.tasks));
    pthread_mutex_unlock(&fake.mu);
}

/* Writes a fresh 2048-bit RSA key (0600) to dir/sf.key, starts the fake
 * and writes an INI for the connector to dir/sf.ini (extra lines appended
 * to [salesforce]; redis_url may be NULL for a placeholder). 0 or -1. */
static int
fake_start(const char *dir, const char *redis_url, const char *extra,
           char *ini_path, size_t ini_len)
{
    static const struct cmn_http_route routes[] = {
        {"POST", "/services/oauth2/token", fake_h_token},
        {"PATCH", "/services/data/v60.0/sobjects/Task/Finesse_Call_Id__c/*",
         fake_h_upsert},
        {"PATCH",
         "/services/data/v60.0/composite/sobjects/Task/Finesse_Call_Id__c",
         fake_h_collection},
        {"GET", "/services/data/v60.0/search/", fake_h_search},
        {"GET", "/services/data/v60.0/query", fake_h_query},
    };
    struct cmn_httpd_opts o;
    struct cmn_err err = {{0}};
    char key_path[512], outbox_key_path[512];
    FILE *f;
    int fd;

    pthread_mutex_init(&fake.mu, NULL);
    fake.key = EVP_RSA_gen(2048);
    if (fake.key == NULL) {
        return -1;
    }
    snprintf(key_path, sizeof(key_path), "%s/sf.key", dir);
    fd = open(key_path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL ||
        PEM_write_PrivateKey(f, fake.key, NULL, NULL, 0, NULL, NULL) != 1) {
        return -1;
    }
    fclose(f);
    /* [salesforce] outbox_key_file: 64 hex characters */
    snprintf(outbox_key_path, sizeof(outbox_key_path), "%s/outbox.key", dir);
    fd = open(outbox_key_path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        return -1;
    }
    for (int i = 0; i < 32; i++) {
        fprintf(f, "%02x", (unsigned)(0xa0 + i));
    }
    fprintf(f, "\n");
    fclose(f);
    memset(&o, 0, sizeof(o));
    o.listen = "127.0.0.1:0";
    o.max_body = 4 * 1024 * 1024;
    fake.d = cmn_httpd_start(&o, routes, CMN_ARRAY_LEN(routes), NULL, &err);
    if (fake.d == NULL) {
        fprintf(stderr, "fake_start: %s\n", err.msg);
        return -1;
    }
    snprintf(fake.base, sizeof(fake.base), "http://127.0.0.1:%d",
             cmn_httpd_port(fake.d));
    snprintf(fake.client_id, sizeof(fake.client_id), "3MVG9fake.consumer");
    snprintf(fake.user, sizeof(fake.user), "integration@acme.example");
    snprintf(fake.aud, sizeof(fake.aud), "%s", fake.base);
    fake_reset();
    snprintf(ini_path, ini_len, "%s/sf.ini", dir);
    f = fopen(ini_path, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f,
            "[salesforce]\nlogin_url = %s/\nclient_id = %s\n"
            "jwt_key_file = %s\noutbox_key_file = %s\nintegration_user = %s\n"
            "org_origins = https://acme.lightning.force.com, "
            "https://acme.my.salesforce.com\ntimeout_ms = 3000\n%s\n"
            "[redis]\nurl = %s\nprefix = fsc:sf:\n",
            fake.base, fake.client_id, key_path, outbox_key_path, fake.user,
            extra != NULL ? extra : "",
            redis_url != NULL ? redis_url : "redis://127.0.0.1:1/0");
    return fclose(f) == 0 ? 0 : -1;
}

static void
fake_stop(void)
{
    cmn_httpd_stop(fake.d, 1000);
    fake.d = NULL;
    EVP_PKEY_free(fake.key);
    fake.key = NULL;
}

/* Snapshot of one task (zeroed when never written). */
static struct fake_task
fake_task(const char *ext)
{
    struct fake_task t;

    memset(&t, 0, sizeof(t));
    pthread_mutex_lock(&fake.mu);
    for (int i = 0; i < fake.ntasks; i++) {
        if (strcmp(fake.tasks[i].ext, ext) == 0) {
            t = fake.tasks[i];
        }
    }
    pthread_mutex_unlock(&fake.mu);
    return t;
}

/* Upsert requests answered so far (locked read). */
static unsigned
fake_upserts(void)
{
    unsigned n;

    pthread_mutex_lock(&fake.mu);
    n = fake.upsert_requests;
    pthread_mutex_unlock(&fake.mu);
    return n;
}

#endif
