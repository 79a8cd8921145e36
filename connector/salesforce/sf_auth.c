/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sf_auth.c - JWT bearer flow: RS256 assertion, token exchange, a cached
 * token shared by every thread, re-minted after a 401. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/pem.h>

#include "cmn_httpc.h"
#include "cmn_log.h"
#include "cmn_seal.h"
#include "sf_auth.h"

#define SF_TOKEN_BODY_MAX  (64 * 1024)
#define SF_JWT_LIFETIME_S  180 /* "within 3 minutes" */
#define SF_MINT_HOLDOFF_MS 1000

struct sf_auth {
    const struct sf_config *cfg;
    EVP_PKEY *key;
    char token_url[SF_URL_MAX + 32];

    pthread_mutex_t mu;       /* guards everything below; held while
                                 minting so callers wait for one mint */
    struct cmn_secret *token; /* NULL: mint on next use */
    char instance_url[SF_URL_MAX];
    long long fail_until_ms; /* hold-off after a failed mint */
    int fail_rc;
    char fail_msg[CMN_ERRLEN];
    unsigned long mints;
};

static bool
token_chars_ok(const char *s)
{
    if (s[0] == '\0' || strlen(s) > SF_TOKEN_MAX) {
        return false;
    }
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) {
            return false;
        }
    }
    return true;
}

static const char *
str_or(const json_t *o, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : def;
}

int
sf_token_response_parse(long status, const char *body, size_t len,
                        struct sf_token_response *out, struct cmn_err *err)
{
    json_t *root = NULL;
    const char *tok;
    const char *inst;
    size_t ilen;
    int rc = CMN_INVALID;

    memset(out, 0, sizeof(*out));
    if (body == NULL) {
        len = 0;
    }
    if (len > SF_TOKEN_BODY_MAX) {
        cmn_err_set(err, "token endpoint: reply too large");
        return CMN_INVALID;
    }
    if (len > 0) {
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    }
    if (status != 200) {
        if (status == 429 || status >= 500) {
            rc = CMN_AGAIN;
        } else if (status == 400 || status == 401) {
            rc = CMN_DENIED;
        }
        cmn_err_set(err, "token endpoint: HTTP %ld %.48s: %.120s", status,
                    str_or(root, "error", ""),
                    str_or(root, "error_description", ""));
        goto out;
    }
    if (!json_is_object(root)) {
        cmn_err_set(err, "token endpoint: reply is not a JSON object");
        goto out;
    }
    tok = json_string_value(json_object_get(root, "access_token"));
    inst = json_string_value(json_object_get(root, "instance_url"));
    if (tok == NULL || !token_chars_ok(tok)) {
        cmn_err_set(err, "token endpoint: no usable access_token");
        goto out;
    }
    if (inst == NULL || strlen(inst) >= SF_URL_MAX || !sf_url_allowed(inst)) {
        cmn_err_set(err, "token endpoint: instance_url is not an https URL");
        goto out;
    }
    ilen = strlen(inst);
    while (ilen > 0 && inst[ilen - 1] == '/') {
        ilen--;
    }
    memcpy(out->instance_url, inst, ilen);
    out->instance_url[ilen] = '\0';
    out->access_token = cmn_secret_new(tok, strlen(tok));
    if (out->access_token == NULL) {
        cmn_err_set(err, "out of memory");
        rc = CMN_NOMEM;
        goto out;
    }
    rc = CMN_OK;
out:
    if (root != NULL) {
        /* the token lived in this tree: wipe before freeing */
        json_t *t = json_object_get(root, "access_token");
        if (json_is_string(t)) {
            cmn_wipe((void *)(uintptr_t)json_string_value(t),
                     json_string_length(t));
        }
        json_decref(root);
    }
    return rc;
}

void
sf_token_response_cleanup(struct sf_token_response *r)
{
    if (r == NULL) {
        return;
    }
    cmn_secret_free(r->access_token);
    memset(r, 0, sizeof(*r));
}

EVP_PKEY *
sf_auth_load_key(const struct cmn_secret *pem, struct cmn_err *err)
{
    BIO *bio;
    EVP_PKEY *key = NULL;

    if (pem == NULL || pem->len == 0 || pem->len > INT32_MAX) {
        cmn_err_set(err, "jwt key: empty");
        return NULL;
    }
    bio = BIO_new_mem_buf(pem->data, (int)pem->len);
    if (bio != NULL) {
        key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    if (key == NULL) {
        cmn_err_set(err, "jwt key: not a PEM private key (unencrypted)");
        return NULL;
    }
    if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA || EVP_PKEY_bits(key) < 2048) {
        EVP_PKEY_free(key);
        cmn_err_set(err, "jwt key: expected an RSA key of 2048 bits or more");
        return NULL;
    }
    return key;
}

/* base64url of a JSON object, appended at buf+*pos. */
static int
append_b64_json(json_t *obj, char *buf, size_t size, size_t *pos)
{
    char *s = json_dumps(obj, JSON_COMPACT);
    size_t n;
    int rc = CMN_NOMEM;

    if (s == NULL) {
        return CMN_NOMEM;
    }
    n = strlen(s);
    if (*pos + 4 * n / 3 + 2 < size) {
        *pos += cmn_base64url_encode(s, n, buf + *pos, size - *pos);
        rc = CMN_OK;
    } else {
        rc = CMN_INVALID;
    }
    free(s);
    return rc;
}

int
sf_jwt_assertion(EVP_PKEY *key, const char *iss, const char *sub,
                 const char *aud, long long exp, struct cmn_secret **out,
                 struct cmn_err *err)
{
    json_t *hdr = json_pack("{s:s}", "alg", "RS256");
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I}", "iss", iss, "sub", sub,
                               "aud", aud, "exp", (json_int_t)exp);
    char buf[8192];
    size_t pos = 0;
    size_t siglen = 0;
    unsigned char sig[1024];
    EVP_MD_CTX *md = NULL;
    int rc = CMN_NOMEM;

    *out = NULL;
    if (hdr == NULL || claims == NULL) {
        cmn_err_set(err, "jwt: out of memory or bad claim");
        goto out;
    }
    rc = append_b64_json(hdr, buf, sizeof(buf), &pos);
    if (rc == CMN_OK) {
        buf[pos++] = '.';
        rc = append_b64_json(claims, buf, sizeof(buf), &pos);
    }
    if (rc != CMN_OK) {
        cmn_err_set(err, "jwt: claims too large");
        goto out;
    }
    rc = CMN_ERR;
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_PKEY_size(key) > (int)sizeof(sig) ||
        EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)buf, pos) !=
            1 ||
        siglen > sizeof(sig) ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)buf, pos) !=
            1) {
        cmn_err_set(err, "jwt: RS256 signing failed");
        goto out;
    }
    if (pos + 1 + 4 * siglen / 3 + 2 >= sizeof(buf)) {
        cmn_err_set(err, "jwt: too large");
        goto out;
    }
    buf[pos++] = '.';
    pos += cmn_base64url_encode(sig, siglen, buf + pos, sizeof(buf) - pos);
    *out = cmn_secret_new(buf, pos);
    rc = *out != NULL ? CMN_OK : CMN_NOMEM;
    if (rc != CMN_OK) {
        cmn_err_set(err, "out of memory");
    }
out:
    EVP_MD_CTX_free(md);
    cmn_wipe(buf, sizeof(buf));
    json_decref(hdr);
    json_decref(claims);
    return rc;
}

struct sf_auth *
sf_auth_new(const struct sf_config *cfg, struct cmn_err *err)
{
    struct sf_auth *a = calloc(1, sizeof(*a));

    if (a == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    a->cfg = cfg;
    a->key = sf_auth_load_key(cfg->jwt_key, err);
    if (a->key == NULL) {
        free(a);
        return NULL;
    }
    snprintf(a->token_url, sizeof(a->token_url), "%s/services/oauth2/token",
             cfg->login_url);
    pthread_mutex_init(&a->mu, NULL);
    return a;
}

void
sf_auth_free(struct sf_auth *a)
{
    if (a == NULL) {
        return;
    }
    cmn_secret_free(a->token);
    EVP_PKEY_free(a->key);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* POST the assertion; a->mu held. */
static int
mint_locked(struct sf_auth *a, struct cmn_err *err)
{
    const struct sf_config *c = a->cfg;
    struct cmn_secret *assertion = NULL;
    struct sf_token_response tr;
    struct cmn_httpc_req req;
    struct cmn_httpc_resp resp;
    const char *headers[] = {"Content-Type: application/x-www-form-urlencoded",
                             "Accept: application/json", NULL};
    char *form = NULL;
    int rc;

    memset(&resp, 0, sizeof(resp));
    rc = sf_jwt_assertion(a->key, c->client_id, c->integration_user,
                          c->jwt_audience, cmn_wall_sec() + SF_JWT_LIFETIME_S,
                          &assertion, err);
    if (rc != CMN_OK) {
        return rc;
    }
    if (cmn_form_add(&form, "grant_type",
                     "urn:ietf:params:oauth:grant-type:jwt-bearer") != CMN_OK ||
        cmn_form_add(&form, "assertion", (const char *)assertion->data) !=
            CMN_OK) {
        cmn_secret_free(assertion);
        free(form);
        cmn_err_set(err, "out of memory");
        return CMN_NOMEM;
    }
    cmn_secret_free(assertion);
    memset(&req, 0, sizeof(req));
    req.method = "POST";
    req.url = a->token_url;
    req.headers = headers;
    req.body = form;
    req.body_len = strlen(form);
    req.ca_file = c->ca_file;
    req.timeout_ms = c->timeout_ms;
    req.max_response = SF_TOKEN_BODY_MAX;
    rc = cmn_httpc_do(&req, &resp, err);
    cmn_wipe(form, strlen(form));
    free(form);
    if (rc != CMN_OK) {
        cmn_httpc_resp_cleanup(&resp);
        return rc;
    }
    rc = sf_token_response_parse(resp.status, resp.body, resp.body_len, &tr,
                                 err);
    if (resp.body != NULL) {
        cmn_wipe(resp.body, resp.body_len);
    }
    cmn_httpc_resp_cleanup(&resp);
    if (rc != CMN_OK) {
        return rc;
    }
    cmn_secret_free(a->token);
    a->token = tr.access_token;
    tr.access_token = NULL;
    memcpy(a->instance_url, tr.instance_url, sizeof(a->instance_url));
    a->mints++;
    cmn_log_info("event=sf_token_minted user=%s instance=%s mints=%lu",
                 c->integration_user, a->instance_url, a->mints);
    return CMN_OK;
}

int
sf_auth_token(struct sf_auth *a, struct cmn_secret **token,
              char instance_url[SF_URL_MAX], struct cmn_err *err)
{
    int rc = CMN_OK;

    *token = NULL;
    pthread_mutex_lock(&a->mu);
    if (a->token == NULL) {
        if (cmn_now_ms() < a->fail_until_ms) {
            rc = a->fail_rc;
            cmn_err_set(err, "%s", a->fail_msg);
            goto out;
        }
        rc = mint_locked(a, err);
        if (rc != CMN_OK) {
            a->fail_rc = rc;
            a->fail_until_ms = cmn_now_ms() + SF_MINT_HOLDOFF_MS;
            snprintf(a->fail_msg, sizeof(a->fail_msg), "%s", err->msg);
            cmn_log_warn("event=sf_token_failed user=%s rc=%s detail=%s",
                         a->cfg->integration_user, cmn_rc_str(rc), err->msg);
            goto out;
        }
    }
    *token = cmn_secret_new(a->token->data, a->token->len);
    if (*token == NULL) {
        cmn_err_set(err, "out of memory");
        rc = CMN_NOMEM;
        goto out;
    }
    memcpy(instance_url, a->instance_url, SF_URL_MAX);
out:
    pthread_mutex_unlock(&a->mu);
    return rc;
}

void
sf_auth_invalidate(struct sf_auth *a, const struct cmn_secret *stale)
{
    pthread_mutex_lock(&a->mu);
    if (a->token != NULL &&
        (stale == NULL ||
         (stale->len == a->token->len &&
          cmn_ct_equal(stale->data, a->token->data, stale->len)))) {
        cmn_secret_free(a->token);
        a->token = NULL;
        cmn_log_info("event=sf_token_invalidated user=%s",
                     a->cfg->integration_user);
    }
    pthread_mutex_unlock(&a->mu);
}

unsigned long
sf_auth_mints(const struct sf_auth *a)
{
    struct sf_auth *m = (struct sf_auth *)(uintptr_t)a;
    unsigned long n;

    pthread_mutex_lock(&m->mu);
    n = m->mints;
    pthread_mutex_unlock(&m->mu);
    return n;
}
