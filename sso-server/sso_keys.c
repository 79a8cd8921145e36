/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_keys.c - IdS's token key: fetched with the client credentials,
 * rotated on an unknown signature (at most once a minute, previous key
 * kept), shared with the other instance through Redis (sealed), and the
 * token check built on it. See sso_keys.h. */
#include <openssl/pem.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_log.h"
#include "sso_ids.h"
#include "sso_jwt.h"
#include "sso_keys.h"

#define REFETCH_MIN_MS 60000 /* unknown signature: one IdS fetch a minute */
#define RETRY_READY_MS 5000  /* verify = required without a key */

struct sso_keys {
    pthread_mutex_t lock;       /* cur, prev, generation, status, retry */
    pthread_mutex_t fetch_lock; /* one refresh at a time; last_fetch_ms */
    const struct sso_config *cfg;
    struct sso_store *store;
    EVP_PKEY *cur;            /* NULL: no key (yet) */
    EVP_PKEY *prev;           /* the key before the last rotation */
    unsigned long generation; /* bumped whenever cur changes */
    bool from_file;           /* jwt_public_key_file: never fetched */
    long long last_fetch_ms;  /* last on-demand IdS fetch (monotonic) */
    long long last_retry_ms;  /* last readiness retry (monotonic) */
    bool retry_running;
    char status[200]; /* why there is no key */
};

const char *
sso_verify_mode_str(enum sso_verify_mode m)
{
    switch (m) {
    case SSO_VERIFY_AUTO:
        return "auto";
    case SSO_VERIFY_REQUIRED:
        return "required";
    default:
        return "off";
    }
}

struct sso_keys *
sso_keys_new(const struct sso_config *cfg, struct sso_store *store,
             struct cmn_err *err)
{
    struct sso_keys *k = calloc(1, sizeof(*k));

    if (k == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&k->lock, NULL);
    pthread_mutex_init(&k->fetch_lock, NULL);
    k->cfg = cfg;
    k->store = store;
    snprintf(k->status, sizeof(k->status), "not fetched yet");
    if (cfg->jwt_public_key_file != NULL) {
        k->cur = sso_jwt_key_load(cfg->jwt_public_key_file, err);
        if (k->cur == NULL) {
            sso_keys_free(k);
            return NULL;
        }
        k->from_file = true;
    }
    return k;
}

void
sso_keys_free(struct sso_keys *k)
{
    if (k == NULL) {
        return;
    }
    EVP_PKEY_free(k->cur);
    EVP_PKEY_free(k->prev);
    pthread_mutex_destroy(&k->lock);
    pthread_mutex_destroy(&k->fetch_lock);
    free(k);
}

/* --- the held keys --- */

static unsigned long
snapshot(struct sso_keys *k, EVP_PKEY **cur, EVP_PKEY **prev)
{
    unsigned long gen;

    pthread_mutex_lock(&k->lock);
    *cur = k->cur;
    *prev = k->prev;
    if (*cur != NULL) {
        EVP_PKEY_up_ref(*cur);
    }
    if (*prev != NULL) {
        EVP_PKEY_up_ref(*prev);
    }
    gen = k->generation;
    pthread_mutex_unlock(&k->lock);
    return gen;
}

static void
set_status(struct sso_keys *k, const char *why)
{
    pthread_mutex_lock(&k->lock);
    snprintf(k->status, sizeof(k->status), "%s", why);
    pthread_mutex_unlock(&k->lock);
}

/* Make key current (taken); the old current becomes the previous one.
 * False (key freed) when it is the key already held. old_fp gets the
 * fingerprint of the key it replaced ("-" for none). */
static bool
install(struct sso_keys *k, EVP_PKEY *key, char old_fp[17])
{
    pthread_mutex_lock(&k->lock);
    sso_jwt_key_fingerprint(k->cur, old_fp);
    if (k->cur != NULL && EVP_PKEY_eq(k->cur, key) == 1) {
        pthread_mutex_unlock(&k->lock);
        EVP_PKEY_free(key);
        return false;
    }
    EVP_PKEY_free(k->prev);
    k->prev = k->cur;
    k->cur = key;
    k->generation++;
    pthread_mutex_unlock(&k->lock);
    return true;
}

/* --- Redis copy: {"cur": PEM, "prev": PEM or null} --- */

static char *
pem_of(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *out = NULL;
    long n;

    if (bio != NULL && key != NULL && PEM_write_bio_PUBKEY(bio, key) == 1) {
        n = BIO_get_mem_data(bio, &data);
        out = n > 0 ? strndup(data, (size_t)n) : NULL;
    }
    BIO_free(bio);
    return out;
}

static void
cache_put(struct sso_keys *k)
{
    EVP_PKEY *cur, *prev;
    char *cur_pem, *prev_pem, *text = NULL;
    struct cmn_err err = {{0}};
    json_t *doc;

    (void)snapshot(k, &cur, &prev);
    cur_pem = pem_of(cur);
    prev_pem = pem_of(prev);
    doc = cur_pem != NULL
              ? json_pack("{s:s, s:s?, s:I}", "cur", cur_pem, "prev", prev_pem,
                          "at", (json_int_t)cmn_wall_sec())
              : NULL;
    text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (text != NULL && sso_store_idskey_put(k->store, text, &err) != CMN_OK) {
        /* the other instance will fetch for itself */
        cmn_log_warn("event=ids_key_cache_failed detail=\"%s\"", err.msg);
    }
    free(text);
    json_decref(doc);
    free(cur_pem);
    free(prev_pem);
    EVP_PKEY_free(cur);
    EVP_PKEY_free(prev);
}

/* Take the keys the other instance cached when they differ from ours.
 * True when cur changed. */
static bool
adopt_cached(struct sso_keys *k, const char *reason)
{
    struct cmn_err err = {{0}};
    char *text = NULL, old_fp[17], fp[17];
    json_error_t jerr;
    json_t *doc;
    const char *pem;
    EVP_PKEY *key = NULL;
    bool changed = false;
    int rc = sso_store_idskey_get(k->store, &text, &err);

    if (rc != CMN_OK) {
        if (rc != CMN_NOTFOUND) {
            cmn_log_warn("event=ids_key_cache_unreadable rc=%s detail=\"%s\"",
                         cmn_rc_str(rc), err.msg);
        }
        return false;
    }
    doc = json_loads(text, 0, &jerr);
    free(text);
    pem = json_string_value(json_object_get(doc, "cur"));
    if (pem != NULL) {
        key = sso_jwt_key_parse(pem, strlen(pem), &err);
    }
    if (key != NULL) {
        sso_jwt_key_fingerprint(key, fp);
        changed = install(k, key, old_fp);
    }
    if (changed) {
        const char *prev = json_string_value(json_object_get(doc, "prev"));
        pthread_mutex_lock(&k->lock);
        if (k->prev == NULL && prev != NULL) {
            k->prev = sso_jwt_key_parse(prev, strlen(prev), &err);
        }
        pthread_mutex_unlock(&k->lock);
        cmn_log_notice("event=ids_key_adopted source=redis key=%s previous=%s "
                       "reason=%s",
                       fp, old_fp, reason);
    }
    json_decref(doc);
    return changed;
}

enum fetch_result { FETCH_CHANGED, FETCH_SAME, FETCH_FAILED };

/* Fetch, install and share; why says what failed. */
static enum fetch_result
fetch_and_install(struct sso_keys *k, char old_fp[17], char fp[17], char *why,
                  size_t why_size)
{
    EVP_PKEY *key = sso_ids_fetch_key(k->cfg, why, why_size);

    if (key == NULL) {
        set_status(k, why);
        return FETCH_FAILED;
    }
    sso_jwt_key_fingerprint(key, fp);
    if (!install(k, key, old_fp)) {
        return FETCH_SAME;
    }
    cache_put(k);
    return FETCH_CHANGED;
}

void
sso_keys_start(struct sso_keys *k)
{
    const struct sso_config *cfg = k->cfg;
    char why[200] = "", old_fp[17], fp[17];

    if (k->from_file) {
        sso_jwt_key_fingerprint(k->cur, fp);
        cmn_log_notice("event=token_verification mode=on source=file key=%s "
                       "file=%s iss=%s aud=%s reason=\"[ids] "
                       "jwt_public_key_file is set: that key only\"",
                       fp, cfg->jwt_public_key_file,
                       cfg->jwt_issuer ? cfg->jwt_issuer : "-",
                       cfg->jwt_audience ? cfg->jwt_audience : "-");
        return;
    }
    if (cfg->verify == SSO_VERIFY_OFF) {
        set_status(k, "[ids] verify = off");
        cmn_log_notice("event=token_verification mode=off verify=off "
                       "reason=\"[ids] verify = off: token claims are read, "
                       "not checked\"");
        return;
    }
    pthread_mutex_lock(&k->fetch_lock);
    if (fetch_and_install(k, old_fp, fp, why, sizeof(why)) != FETCH_FAILED) {
        cmn_log_notice("event=token_verification mode=on verify=%s "
                       "source=ids key=%s url=%s iss=%s reason=\"IdS serves "
                       "its token key (IdS 12.6(2) or later)\"",
                       sso_verify_mode_str(cfg->verify), fp,
                       cfg->public_key_url,
                       cfg->jwt_issuer ? cfg->jwt_issuer : "-");
    } else if (adopt_cached(k, "start")) {
        EVP_PKEY *cur, *prev;
        (void)snapshot(k, &cur, &prev);
        sso_jwt_key_fingerprint(cur, fp);
        EVP_PKEY_free(cur);
        EVP_PKEY_free(prev);
        cmn_log_notice("event=token_verification mode=on verify=%s "
                       "source=redis key=%s reason=\"IdS key endpoint: %s; "
                       "using the key this pair cached\"",
                       sso_verify_mode_str(cfg->verify), fp, why);
    } else if (cfg->verify == SSO_VERIFY_AUTO) {
        cmn_log_warn("event=token_verification mode=off verify=auto "
                     "url=%s reason=\"IdS serves no token key (%s): tokens "
                     "are not verified\"",
                     cfg->public_key_url, why);
    } else {
        cmn_log_err("event=token_verification mode=required ready=false "
                    "url=%s reason=\"no IdS token key (%s): not ready until "
                    "IdS serves one\"",
                    cfg->public_key_url, why);
    }
    pthread_mutex_unlock(&k->fetch_lock);
}

/* A token did not verify with what we hold (or we hold nothing): look for
 * a newer key, in Redis first, then at IdS at most once a minute. True
 * when cur changed since seen_gen. */
static bool
refresh(struct sso_keys *k, unsigned long seen_gen, const char *reason)
{
    char why[200] = "", old_fp[17], fp[17];
    bool changed;
    long long now;

    pthread_mutex_lock(&k->fetch_lock);
    pthread_mutex_lock(&k->lock);
    changed = k->generation != seen_gen; /* someone refreshed meanwhile */
    pthread_mutex_unlock(&k->lock);
    if (changed || k->from_file) {
        pthread_mutex_unlock(&k->fetch_lock);
        return changed;
    }
    if (adopt_cached(k, reason)) {
        pthread_mutex_unlock(&k->fetch_lock);
        return true;
    }
    now = cmn_now_ms();
    if (k->last_fetch_ms != 0 && now - k->last_fetch_ms < REFETCH_MIN_MS) {
        /* an IdS that serves no key (auto) skips at every sign-in: quiet */
        enum cmn_log_level lvl =
            strcmp(reason, "no_key") == 0 ? CMN_LOG_DEBUG : CMN_LOG_INFO;
        cmn_log_(lvl,
                 "event=ids_key_fetch_skipped reason=%s "
                 "detail=\"at most one fetch a minute\" next_in_s=%lld",
                 reason,
                 (REFETCH_MIN_MS - (now - k->last_fetch_ms) + 999) / 1000);
        pthread_mutex_unlock(&k->fetch_lock);
        return false;
    }
    k->last_fetch_ms = now;
    switch (fetch_and_install(k, old_fp, fp, why, sizeof(why))) {
    case FETCH_CHANGED:
        changed = true;
        if (strcmp(old_fp, "-") != 0) {
            cmn_log_notice("event=ids_key_rotated key=%s previous=%s "
                           "reason=%s",
                           fp, old_fp, reason);
        } else {
            cmn_log_notice("event=token_verification mode=on verify=%s "
                           "source=ids key=%s reason=\"IdS now serves its "
                           "token key\"",
                           sso_verify_mode_str(k->cfg->verify), fp);
        }
        break;
    case FETCH_SAME:
        cmn_log_warn("event=ids_key_unchanged key=%s reason=%s detail=\"IdS "
                     "still serves the key held: the token is not signed by "
                     "IdS's key\"",
                     fp, reason);
        break;
    default:
        cmn_log_warn("event=ids_key_fetch_failed reason=%s detail=\"%s\"",
                     reason, why);
        break;
    }
    pthread_mutex_unlock(&k->fetch_lock);
    return changed;
}

static enum sso_jwt_verdict
try_keys(EVP_PKEY *cur, EVP_PKEY *prev, const char *token,
         const struct sso_jwt_expect *want, json_t **claims,
         struct cmn_err *err)
{
    enum sso_jwt_verdict v = sso_jwt_check(cur, token, want, claims, err);

    if (v == SSO_JWT_BAD_SIGNATURE && prev != NULL) {
        /* a token signed just before IdS rotated its key */
        v = sso_jwt_check(prev, token, want, claims, err);
    }
    return v;
}

enum sso_keys_result
sso_keys_check(struct sso_keys *k, const char *token, json_t **claims,
               struct cmn_err *err)
{
    const struct sso_config *cfg = k->cfg;
    const struct sso_jwt_expect want = {cfg->jwt_issuer, cfg->jwt_audience};
    bool required = k->from_file || cfg->verify == SSO_VERIFY_REQUIRED;
    enum sso_jwt_verdict v;
    EVP_PKEY *cur, *prev;
    unsigned long gen;
    json_t *unchecked = NULL;

    if (claims != NULL) {
        *claims = NULL;
    }
    if (sso_jwt_claims(token, &unchecked) != CMN_OK) {
        if (required) {
            cmn_err_set(err, "the token cannot be read (encrypted, as IdS "
                             "before 12.6(2) issues them) and [ids] verify = "
                             "required");
            return SSO_KEYS_REFUSED;
        }
        return SSO_KEYS_OPAQUE;
    }
    if (cfg->verify == SSO_VERIFY_OFF && !k->from_file) {
        goto unverified;
    }
    gen = snapshot(k, &cur, &prev);
    if (cur == NULL) {
        EVP_PKEY_free(prev);
        (void)refresh(k, gen, "no_key");
        gen = snapshot(k, &cur, &prev);
        if (cur == NULL) {
            EVP_PKEY_free(prev);
            if (!required) {
                goto unverified; /* auto: IdS serves no key */
            }
            pthread_mutex_lock(&k->lock);
            cmn_err_set(err, "no IdS token key to verify with (%s)", k->status);
            pthread_mutex_unlock(&k->lock);
            json_decref(unchecked);
            return SSO_KEYS_REFUSED;
        }
    }
    v = try_keys(cur, prev, token, &want, claims, err);
    EVP_PKEY_free(cur);
    EVP_PKEY_free(prev);
    if (v == SSO_JWT_BAD_SIGNATURE && refresh(k, gen, "unknown_signature")) {
        (void)snapshot(k, &cur, &prev);
        v = try_keys(cur, prev, token, &want, claims, err);
        EVP_PKEY_free(cur);
        EVP_PKEY_free(prev);
    }
    json_decref(unchecked);
    return v == SSO_JWT_VALID ? SSO_KEYS_VERIFIED : SSO_KEYS_REFUSED;
unverified:
    if (claims != NULL) {
        *claims = unchecked;
    } else {
        json_decref(unchecked);
    }
    return SSO_KEYS_UNVERIFIED;
}

bool
sso_keys_ready(struct sso_keys *k, char *why, size_t why_size)
{
    bool ok;

    if (k->from_file || k->cfg->verify != SSO_VERIFY_REQUIRED) {
        return true;
    }
    pthread_mutex_lock(&k->lock);
    ok = k->cur != NULL;
    if (!ok) {
        snprintf(why, why_size,
                 "[ids] verify = required and no IdS token key: %s", k->status);
    }
    pthread_mutex_unlock(&k->lock);
    return ok;
}

bool
sso_keys_retry_due(struct sso_keys *k)
{
    long long now = cmn_now_ms();
    bool due;

    pthread_mutex_lock(&k->lock);
    due = k->cur == NULL && !k->retry_running &&
          (k->last_retry_ms == 0 || now - k->last_retry_ms >= RETRY_READY_MS);
    if (due) {
        k->retry_running = true;
        k->last_retry_ms = now;
    }
    pthread_mutex_unlock(&k->lock);
    return due;
}

void
sso_keys_retry(struct sso_keys *k)
{
    char why[200] = "", old_fp[17], fp[17];
    bool got;

    pthread_mutex_lock(&k->fetch_lock);
    got = adopt_cached(k, "not_ready") ||
          fetch_and_install(k, old_fp, fp, why, sizeof(why)) == FETCH_CHANGED;
    pthread_mutex_unlock(&k->fetch_lock);
    if (got) {
        cmn_log_notice("event=token_verification mode=on verify=%s ready=true "
                       "reason=\"IdS serves its token key now\"",
                       sso_verify_mode_str(k->cfg->verify));
    } else {
        cmn_log_info("event=ids_key_retry_failed detail=\"%s\"", why);
    }
    pthread_mutex_lock(&k->lock);
    k->retry_running = false;
    pthread_mutex_unlock(&k->lock);
}
