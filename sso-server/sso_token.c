/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_token.c - single-flight refresh of IdS tokens across instances.
 *
 * Rotating refresh tokens are one-time: if A and B both redeemed the same
 * one, the second would get invalid_grant and the agent would be logged
 * out. So exactly one caller per session redeems, under a Redis lock, and
 * publishes the result with a compare-and-set on the session version. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmn_log.h"
#include "sso_ids.h"
#include "sso_keys.h"
#include "sso_token.h"

#define POLL_MS         20
#define BACKOFF_FAIL_MS 5000

bool
sso_token_refresh_due(const struct sso_config *cfg, const struct sso_session *s,
                      long long now)
{
    long long life = s->access_expires_at - s->access_issued_at;

    if (life <= 0) {
        return true;
    }
    return now >= s->access_issued_at + (long long)(cfg->refresh_at * life);
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

enum redeem_result {
    REDEEM_DONE,      /* *s refreshed and stored */
    REDEEM_ENDED,     /* invalid_grant: session marked ended */
    REDEEM_TRANSIENT, /* IdS unavailable: retry later */
    REDEEM_LOST,      /* the session changed or vanished meanwhile */
};

/* Under the lock: redeem s->refresh_token once and publish the result. */
static enum redeem_result
redeem(struct sso_app *app, struct sso_gen *g, const char *sid,
       struct sso_session *s, struct cmn_err *err)
{
    struct sso_token_response tr;
    long long expected = s->version;
    long long now;
    int rc;

    if (s->refresh_token == NULL) {
        snprintf(s->ended, sizeof(s->ended), "no refresh token");
        rc = sso_store_session_cas(&g->store, sid, expected, s, err);
        return rc == CMN_OK ? REDEEM_ENDED : REDEEM_LOST;
    }
    sso_ids_refresh(g->cfg, s->refresh_token, &tr);
    now = cmn_wall_sec();
    switch (tr.outcome) {
    case SSO_TOKEN_OK:
        break;
    case SSO_TOKEN_INVALID_GRANT:
        cmn_metric_inc(app->m.refresh_invalid_grant);
        snprintf(s->ended, sizeof(s->ended),
                 "refresh token rejected by IdS (invalid_grant)");
        cmn_log_notice("event=session_ended user=%s reason=invalid_grant",
                       s->user);
        sso_token_response_cleanup(&tr);
        rc = sso_store_session_cas(&g->store, sid, expected, s, err);
        return rc == CMN_OK ? REDEEM_ENDED : REDEEM_LOST;
    default:
        cmn_metric_inc(app->m.refresh_failed);
        cmn_err_set(err, "IdS %s (%s)", sso_token_outcome_str(tr.outcome),
                    tr.error);
        sso_token_response_cleanup(&tr);
        return REDEEM_TRANSIENT;
    }
    {
        struct cmn_err jerr = {{0}};
        if (sso_keys_check(g->keys, tr.access_token, NULL, &jerr) ==
            SSO_KEYS_REFUSED) {
            /* e.g. a key IdS does not serve (yet), or a wrong
             * jwt_public_key_file. The old refresh token is spent now:
             * keep the rotated one (and the old access token) so the
             * session survives until the key is fixed, and back off like
             * any transient failure. */
            cmn_log_err("event=ids_token_rejected user=%s detail=\"%s\"",
                        s->user[0] != '\0' ? s->user : "-", jerr.msg);
            cmn_err_set(err, "IdS token failed verification: %s", jerr.msg);
            cmn_metric_inc(app->m.refresh_failed);
            if (tr.refresh_token != NULL) {
                free(s->refresh_token);
                s->refresh_token = tr.refresh_token;
                tr.refresh_token = NULL;
                if (tr.refresh_expires_in > 0) {
                    s->refresh_expires_at = now + tr.refresh_expires_in;
                }
                if (sso_store_session_cas(&g->store, sid, expected, s, err) !=
                    CMN_OK) {
                    sso_token_response_cleanup(&tr);
                    return REDEEM_LOST;
                }
            }
            sso_token_response_cleanup(&tr);
            return REDEEM_TRANSIENT;
        }
    }
    cmn_metric_inc(app->m.refresh_ok);
    free(s->access_token);
    s->access_token = tr.access_token;
    tr.access_token = NULL;
    if (tr.refresh_token != NULL) {
        /* rotation: the old one is spent, keep only the new one */
        free(s->refresh_token);
        s->refresh_token = tr.refresh_token;
        tr.refresh_token = NULL;
        if (tr.refresh_expires_in > 0) {
            s->refresh_expires_at = now + tr.refresh_expires_in;
        }
    }
    s->access_issued_at = now;
    s->access_expires_at = now + tr.expires_in;
    sso_token_response_cleanup(&tr);
    rc = sso_store_session_cas(&g->store, sid, expected, s, err);
    if (rc != CMN_OK) {
        /* the redeemed tokens cannot be published: log loudly, this is the
         * one path that can cost a session */
        cmn_log_err("event=refresh_publish_failed user=%s rc=%s detail=\"%s\"",
                    s->user, cmn_rc_str(rc), err->msg);
        return REDEEM_LOST;
    }
    cmn_log_info("event=token_refreshed user=%s version=%lld expires_in=%lld",
                 s->user, s->version, s->access_expires_at - now);
    return REDEEM_DONE;
}

static enum sso_token_status
status_of(const struct sso_session *s, long long now)
{
    if (s->ended[0] != '\0') {
        return SSO_TOKEN_SESSION_ENDED;
    }
    return s->access_expires_at > now ? SSO_TOKEN_CURRENT : SSO_TOKEN_IDS_DOWN;
}

static enum sso_token_status
load(struct sso_gen *g, const char *sid, struct sso_session *s,
     struct cmn_err *err)
{
    /* A Sentinel failover leaves no master for ~2 s: ride it out here
     * (reads are idempotent) instead of failing the connector's call */
    long long give_up = cmn_now_ms() + g->cfg->failover_wait_ms;
    int rc;

    for (;;) {
        rc = sso_store_session_get(&g->store, sid, s, err);
        if ((rc != CMN_IO && rc != CMN_ERR) || cmn_now_ms() >= give_up) {
            break;
        }
        sleep_ms(100);
    }
    if (rc == CMN_NOTFOUND) {
        return SSO_TOKEN_NO_SESSION;
    }
    if (rc != CMN_OK) {
        return SSO_TOKEN_STORE_DOWN;
    }
    return SSO_TOKEN_CURRENT;
}

enum sso_token_status
sso_token_get(struct sso_app *app, struct sso_gen *g, const char *sid,
              struct sso_session *s, struct cmn_err *err)
{
    char owner[SSO_ID_LEN];
    enum sso_token_status st;
    long long deadline;
    bool waited = false;

    st = load(g, sid, s, err);
    if (st != SSO_TOKEN_CURRENT) {
        return st;
    }
    if (s->ended[0] != '\0' ||
        !sso_token_refresh_due(g->cfg, s, cmn_wall_sec())) {
        return status_of(s, cmn_wall_sec());
    }
    /* IdS failed a moment ago: serve the still-valid token rather than
     * hammering IdS on every fetch */
    if (s->access_expires_at > cmn_wall_sec() &&
        sso_store_refresh_backoff(&g->store, sid)) {
        return SSO_TOKEN_CURRENT;
    }
    if (cmn_random_id(owner, sizeof(owner), SSO_ID_BYTES) != CMN_OK) {
        return SSO_TOKEN_STORE_DOWN;
    }
    /* Long enough for a holder to finish (its lock TTL) and for us to take
     * over once if it died. */
    deadline = cmn_now_ms() + 2 * g->cfg->lock_ttl_ms + 1000;
    for (;;) {
        long long seen = s->version;
        int rc = sso_store_lock(&g->store, sid, owner, err);

        if (rc == CMN_OK) {
            /* re-read under the lock: another instance may have just
             * finished a refresh and released */
            sso_session_cleanup(s);
            st = load(g, sid, s, err);
            if (st != SSO_TOKEN_CURRENT || s->ended[0] != '\0' ||
                !sso_token_refresh_due(g->cfg, s, cmn_wall_sec())) {
                sso_store_unlock(&g->store, sid, owner);
                return st != SSO_TOKEN_CURRENT ? st
                                               : status_of(s, cmn_wall_sec());
            }
            enum redeem_result rr = redeem(app, g, sid, s, err);
            sso_store_unlock(&g->store, sid, owner);
            switch (rr) {
            case REDEEM_DONE:
                return SSO_TOKEN_CURRENT;
            case REDEEM_ENDED:
                return SSO_TOKEN_SESSION_ENDED;
            case REDEEM_TRANSIENT:
                sso_store_refresh_backoff_set(&g->store, sid, BACKOFF_FAIL_MS);
                return status_of(s, cmn_wall_sec());
            case REDEEM_LOST:
                /* someone else wrote, or the agent logged out: report what
                 * is stored now, never redeem twice in one call */
                sso_session_cleanup(s);
                st = load(g, sid, s, err);
                return st != SSO_TOKEN_CURRENT ? st
                                               : status_of(s, cmn_wall_sec());
            }
        } else if (rc != CMN_AGAIN) {
            return SSO_TOKEN_STORE_DOWN;
        } else if (!waited) {
            waited = true;
            cmn_metric_inc(app->m.refresh_waited);
        }
        if (cmn_now_ms() > deadline) {
            cmn_err_set(err, "timed out waiting for another refresh");
            return status_of(s, cmn_wall_sec()) == SSO_TOKEN_CURRENT
                       ? SSO_TOKEN_CURRENT
                       : SSO_TOKEN_IDS_DOWN;
        }
        sleep_ms(POLL_MS);
        struct sso_session fresh;
        st = load(g, sid, &fresh, err);
        if (st != SSO_TOKEN_CURRENT) {
            return st;
        }
        if (fresh.version != seen || fresh.ended[0] != '\0') {
            sso_session_cleanup(s);
            *s = fresh;
            if (s->ended[0] != '\0' ||
                !sso_token_refresh_due(g->cfg, s, cmn_wall_sec())) {
                return status_of(s, cmn_wall_sec());
            }
        } else {
            sso_session_cleanup(&fresh);
        }
    }
}
