/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_httpc.c - blocking outbound HTTP(S) on libcurl easy handles.
 *
 * Each thread keeps one easy handle (pthread key, cleaned up when the
 * thread exits) and resets it per call: curl_easy_reset keeps the
 * handle's connection cache, so consecutive calls to the same host reuse
 * the keep-alive connection and TLS session. Request and response bodies
 * are never logged: token requests carry secrets both ways. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_httpc.h"

#define DEFAULT_TIMEOUT_MS         5000L
#define DEFAULT_CONNECT_TIMEOUT_MS 2000L
#define DEFAULT_MAX_RESPONSE       (1024u * 1024u)

static pthread_key_t handle_key;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;
static bool handle_key_ok;

struct collect {
    char *buf;
    size_t len;
    size_t cap;
    size_t max;
    bool too_big;
    bool nomem;
};

static void
handle_destroy(void *p)
{
    curl_easy_cleanup(p);
}

static void
handle_key_init(void)
{
    handle_key_ok = pthread_key_create(&handle_key, handle_destroy) == 0;
}

static CURL *
thread_handle(void)
{
    CURL *h;

    pthread_once(&handle_once, handle_key_init);
    if (!handle_key_ok) {
        return NULL;
    }
    h = pthread_getspecific(handle_key);
    if (h != NULL) {
        return h;
    }
    h = curl_easy_init();
    if (h != NULL && pthread_setspecific(handle_key, h) != 0) {
        curl_easy_cleanup(h);
        h = NULL;
    }
    return h;
}

int
cmn_httpc_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? CMN_OK : CMN_ERR;
}

/* Stops at max bytes: returning short makes curl fail with
 * CURLE_WRITE_ERROR, which cmn_httpc_do maps to CMN_INVALID. */
static size_t
on_body(char *data, size_t size, size_t nmemb, void *cls)
{
    struct collect *c = cls;
    size_t n = size * nmemb;

    if (n > c->max - c->len) {
        c->too_big = true;
        return 0;
    }
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap == 0 ? 4096 : c->cap;
        char *grown;

        while (cap < c->len + n + 1) {
            cap *= 2;
        }
        grown = realloc(c->buf, cap);
        if (grown == NULL) {
            c->nomem = true;
            return 0;
        }
        c->buf = grown;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    c->buf[c->len] = '\0';
    return n;
}

/* Scheme and host only: a full URL may carry tokens in its query. */
static void
url_origin(const char *url, char *out, size_t size)
{
    CURLU *u = curl_url();
    char *scheme = NULL;
    char *host = NULL;

    snprintf(out, size, "?");
    if (u == NULL) {
        return;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        snprintf(out, size, "%s://%s", scheme, host);
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
}

static bool
slist_add(struct curl_slist **list, const char *line)
{
    struct curl_slist *next = curl_slist_append(*list, line);

    if (next == NULL) {
        return false;
    }
    *list = next;
    return true;
}

static void
set_method(CURL *h, const struct cmn_httpc_req *req)
{
    const char *m = req->method != NULL ? req->method : "GET";
    const char *body = req->body != NULL ? req->body : "";
    size_t body_len = req->body != NULL ? req->body_len : 0;

    if (strcmp(m, "GET") == 0 && req->body == NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        return;
    }
    if (strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        return;
    }
    if (strcmp(m, "DELETE") == 0 && req->body == NULL) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
        return;
    }
    /* POSTFIELDS gives every method a fixed-length body; CUSTOMREQUEST
     * then renames the verb (PUT, PATCH...). */
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (strcmp(m, "POST") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    }
}

int
cmn_httpc_do(const struct cmn_httpc_req *req, struct cmn_httpc_resp *resp,
             struct cmn_err *err)
{
    CURL *h;
    struct curl_slist *hdrs = NULL;
    struct collect body = {0};
    char errbuf[CURL_ERROR_SIZE] = "";
    char origin[256];
    const char *method;
    char *ctype = NULL;
    long long t0;
    long timeout_ms;
    CURLcode cc;
    int rc = CMN_ERR;

    memset(resp, 0, sizeof(*resp));
    if (req == NULL || req->url == NULL) {
        cmn_err_set(err, "httpc: no URL");
        return CMN_INVALID;
    }
    method = req->method != NULL ? req->method : "GET";
    url_origin(req->url, origin, sizeof(origin));
    h = thread_handle();
    if (h == NULL) {
        cmn_err_set(err, "httpc: cannot create a curl handle");
        return CMN_NOMEM;
    }
    curl_easy_reset(h);
    body.max =
        req->max_response != 0 ? req->max_response : DEFAULT_MAX_RESPONSE;
    timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : DEFAULT_TIMEOUT_MS;

    /* Library threads must never see curl's SIGALRM-based DNS timeout. */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (req->ca_file != NULL) {
        /* DESIGN §4: ca_file *adds* a trust anchor. CAINFO alone would
         * replace the system bundle, so the system's hashed certificate
         * directory stays in use beside it. */
        curl_easy_setopt(h, CURLOPT_CAINFO, req->ca_file);
        curl_easy_setopt(h, CURLOPT_CAPATH, "/etc/ssl/certs");
    }
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     req->connect_timeout_ms > 0 ? req->connect_timeout_ms
                                                 : DEFAULT_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)body.max);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    if (req->basic_user != NULL && req->basic_pass != NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, req->basic_user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, req->basic_pass);
    }
    for (const char *const *p = req->headers; p != NULL && *p != NULL; p++) {
        if (!slist_add(&hdrs, *p)) {
            cmn_err_set(err, "httpc: out of memory");
            rc = CMN_NOMEM;
            goto out;
        }
    }
    /* No "Expect: 100-continue" round trip before bodies. */
    if (!slist_add(&hdrs, "Expect:")) {
        cmn_err_set(err, "httpc: out of memory");
        rc = CMN_NOMEM;
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    set_method(h, req);

    t0 = cmn_now_ms();
    cc = curl_easy_perform(h);
    resp->elapsed_ms = cmn_now_ms() - t0;
    if (cc != CURLE_OK) {
        const char *why = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc);

        if (cc == CURLE_OPERATION_TIMEDOUT) {
            rc = CMN_TIMEOUT;
            cmn_err_set(err, "%s %s: no answer within %ld ms", method, origin,
                        timeout_ms);
        } else if (body.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
            rc = CMN_INVALID;
            cmn_err_set(err, "%s %s: response larger than %zu bytes", method,
                        origin, body.max);
        } else if (body.nomem || cc == CURLE_OUT_OF_MEMORY) {
            rc = CMN_NOMEM;
            cmn_err_set(err, "%s %s: out of memory", method, origin);
        } else if (cc == CURLE_URL_MALFORMAT ||
                   cc == CURLE_UNSUPPORTED_PROTOCOL) {
            rc = CMN_INVALID;
            cmn_err_set(err, "%s %s: %s", method, origin, why);
        } else {
            rc = CMN_IO;
            cmn_err_set(err, "%s %s: %s", method, origin, why);
        }
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK &&
        ctype != NULL) {
        snprintf(resp->content_type, sizeof(resp->content_type), "%s", ctype);
    }
    if (body.buf == NULL) {
        body.buf = calloc(1, 1);
        if (body.buf == NULL) {
            cmn_err_set(err, "httpc: out of memory");
            rc = CMN_NOMEM;
            goto out;
        }
    }
    resp->body = body.buf;
    resp->body_len = body.len;
    body.buf = NULL;
    rc = CMN_OK;
out:
    if (rc != CMN_OK) {
        resp->status = 0;
    }
    /* Drop our pointers (headers, body, credentials) from the cached
     * handle now rather than at the next call. */
    curl_easy_reset(h);
    curl_slist_free_all(hdrs);
    free(body.buf);
    return rc;
}

void
cmn_httpc_resp_cleanup(struct cmn_httpc_resp *resp)
{
    if (resp == NULL) {
        return;
    }
    free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

char *
cmn_url_escape(const char *s)
{
    char *esc;
    char *copy;

    if (s == NULL) {
        return NULL;
    }
    /* A NULL handle is allowed since curl 7.82. */
    esc = curl_easy_escape(NULL, s, 0);
    if (esc == NULL) {
        return NULL;
    }
    /* Copied so that callers free() it like everything else we return. */
    copy = strdup(esc);
    /* Form values are often secrets (passwords, client secrets). */
    explicit_bzero(esc, strlen(esc));
    curl_free(esc);
    return copy;
}

int
cmn_form_add(char **form, const char *key, const char *value)
{
    char *k = NULL;
    char *v = NULL;
    char *grown;
    size_t old;
    size_t need;
    int rc = CMN_NOMEM;

    if (form == NULL || key == NULL) {
        return CMN_INVALID;
    }
    k = cmn_url_escape(key);
    v = cmn_url_escape(value != NULL ? value : "");
    if (k == NULL || v == NULL) {
        goto out;
    }
    old = *form != NULL ? strlen(*form) : 0;
    need = old + (old > 0 ? 1 : 0) + strlen(k) + 1 + strlen(v) + 1;
    grown = realloc(*form, need);
    if (grown == NULL) {
        goto out;
    }
    snprintf(grown + old, need - old, "%s%s=%s", old > 0 ? "&" : "", k, v);
    *form = grown;
    rc = CMN_OK;
out:
    free(k);
    if (v != NULL) {
        explicit_bzero(v, strlen(v));
    }
    free(v);
    return rc;
}
