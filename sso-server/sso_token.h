/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_token.h - the current access token of a session, refreshed at the
 * configured share of its lifetime (Cisco: 75 %), single-flight across
 * every fsc-sso instance sharing the Redis. */
#ifndef SSO_TOKEN_H
#define SSO_TOKEN_H

#include "sso_app.h"

enum sso_token_status {
    SSO_TOKEN_CURRENT = 0,   /* *s holds a usable access token */
    SSO_TOKEN_NO_SESSION,    /* unknown or expired session */
    SSO_TOKEN_SESSION_ENDED, /* IdS refused the refresh token; s->ended */
    SSO_TOKEN_IDS_DOWN,      /* token expired and IdS cannot refresh it */
    SSO_TOKEN_STORE_DOWN,    /* Redis unreachable: fail closed */
};

/* Returns the session with a token valid now, refreshing it first when due.
 * How the race is settled: whoever takes the Redis lock (SET NX PX, owner
 * token) re-reads the session, redeems the refresh token once and writes
 * the result with a compare-and-set on the session version; everyone else
 * polls the session until its version changes. A lock whose holder died
 * expires (lock_ttl_ms) and a waiter takes over with the refresh token
 * that was never redeemed. Free *s with sso_session_cleanup. */
enum sso_token_status sso_token_get(struct sso_app *app, struct sso_gen *g,
                                    const char *sid, struct sso_session *s,
                                    struct cmn_err *err);

/* True when the token must be refreshed now. */
bool sso_token_refresh_due(const struct sso_config *cfg,
                           const struct sso_session *s, long long now);

#endif
