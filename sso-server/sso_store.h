/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_store.h - everything fsc-sso keeps in Redis, sealed.
 *
 * Keys (all under the configured prefix, all with a TTL):
 *   sso:state:<sha256(state)>     login in progress (nonce, PKCE verifier,
 *                                 return_to, the hash of the browser's
 *                                 binding cookie); consumed once with
 *                                 GETDEL (and WAIT, as every consuming
 *                                 GETDEL: a failover must not bring a
 *                                 consumed state or code back)
 *   sso:handoff:<sha256(code)>    one-time handoff code -> session id, 60 s
 *   sso:sess:<sha256(sid)>        "<version>:" + sealed session record
 *   sso:lock:<sha256(sid)>        refresh lock: owner token, PX lock_ttl
 *   sso:rfail:<sha256(sid)>       refresh back-off after a transient IdS
 *                                 failure
 *   sso:user:<sha256(user)>       set of sha256(sid) of the user's sessions
 *                                 (for revoking them all), TTL reset to
 *                                 [session] max_lifetime_s at each sign-in
 *   sso:samlreq:<sha256(ID)>      an AuthnRequest in flight: its RelayState,
 *                                 return_to, hint; consumed once (GETDEL)
 *                                 by the response's InResponseTo, on A or B
 *   sso:samlseen:<sha256(issuer|assertion ID)>
 *                                 replay cache: SET NX until the assertion's
 *                                 NotOnOrAfter + skew (shared by A and B);
 *                                 the IdP's LogoutRequest IDs too
 *   sso:samlsub:<sha256(IdP entityID|NameID)>
 *                                 set of sha256(sid) of the sessions a
 *                                 SAML subject signed in (for the IdP's
 *                                 LogoutRequest), TTL reset to
 *                                 max_lifetime_s at each sign-in
 *   sso:samlgone:<sha256(IdP entityID|NameID|SessionIndex or "")>
 *                                 the IssueInstant of the IdP's latest
 *                                 LogoutRequest for that subject (and IdP
 *                                 session): sign-ins authenticated at or
 *                                 before it are refused, also those still
 *                                 on their way; kept state_ttl_s + 5 min,
 *                                 or to the request's NotOnOrAfter
 *   sso:samlout:<sha256(code)>    SP-initiated logout: the one-time code
 *                                 the browser brings to /sso/saml/logout
 *                                 (the ended session's SAML subject,
 *                                 return_to), 60 s, consumed once
 *   sso:samllogout:<sha256(ID)>   a LogoutRequest of ours in flight: its
 *                                 RelayState and return_to; consumed once
 *                                 by the LogoutResponse's InResponseTo
 *   sso:idskey                    IdS's token-signing public key(s) as one
 *                                 instance fetched them, for the other (a
 *                                 trust anchor: sealed like the rest), 1 day
 * Redis only ever sees hashes of ids and sealed values, so a copy of the
 * database gives away no session, code or token. Each sealed value is
 * bound (AEAD additional data) to its key. */
#ifndef SSO_STORE_H
#define SSO_STORE_H

#include "cmn_redis.h"
#include "sso_config.h"

#define SSO_ID_BYTES 32 /* 256-bit ids: session, handoff code, state */
#define SSO_ID_LEN   44 /* base64url chars + NUL */
#define SSO_USER_MAX 256
/* What a sign-in start may store per request (anyone can start one, and
 * each start is a record in Redis for state_ttl_s): return_to and
 * login_hint are capped well below the arrays, so a record stays under
 * 2 KB in Redis (1.7 KB measured at the caps, key and overhead included;
 * it_sso_login_flood). */
#define SSO_RETURN_TO_MAX 1024
#define SSO_HINT_MAX      128
/* A SAML NameID as the verifier accepts it (SAML_MAX_VALUE + NUL), its
 * attributes and a SessionIndex (read into 512-byte buffers) */
#define SSO_SAML_NAME_MAX 1025
#define SSO_SAML_ATTR_MAX 512

struct sso_store {
    struct cmn_redis *redis;
    const struct sso_config *cfg;
};

struct sso_login_state {
    char nonce[SSO_ID_LEN];
    char verifier[SSO_ID_LEN];
    char return_to[2100];
    char login_hint[SSO_USER_MAX];
    bool popup;
    long long created;
    char bind_hash[65]; /* SHA-256 hex of the browser's binding cookie
                           (sso_bind.h) */
    /* set when the IdP signed the user in first ([saml]): IdS's token
     * must name this user, and the session remembers the SAML subject */
    char saml_user[SSO_USER_MAX];
    char saml_name_id[SSO_SAML_NAME_MAX];
    char saml_session_index[SSO_SAML_ATTR_MAX];
    /* the NameID's attributes, echoed in LogoutRequests */
    char saml_name_id_format[SSO_SAML_ATTR_MAX];
    char saml_name_qualifier[SSO_SAML_ATTR_MAX];
    char saml_sp_name_qualifier[SSO_SAML_ATTR_MAX];
    long long saml_authn_instant; /* AuthnInstant at the IdP */
};

/* An AuthnRequest sent to the IdP, waiting for its Response. */
struct sso_saml_request {
    char relay_state[SSO_ID_LEN];
    char return_to[2100];
    char login_hint[SSO_USER_MAX];
    bool popup;
    long long created;
    char bind_hash[65]; /* SHA-256 hex of the browser's binding cookie */
};

struct sso_session {
    long long version;            /* bumped by every write */
    char user[SSO_USER_MAX];      /* "" when the token is opaque (IdS
                                     before 12.6(2)): the connector proves
                                     who it is with Finesse */
    char user_hint[SSO_USER_MAX]; /* login_hint of /sso/login, or "" */
    char *access_token;           /* secret */
    char *refresh_token;          /* secret; may be NULL */
    long long access_issued_at;   /* unix s */
    long long access_expires_at;  /* unix s */
    long long refresh_expires_at; /* unix s, 0 = unknown */
    long long created_at;
    char ended[128]; /* non-empty: session over, why */
    /* signed in through the SAML IdP: the subject (for logout) */
    char saml_name_id[SSO_SAML_NAME_MAX];
    char saml_session_index[SSO_SAML_ATTR_MAX];
    char saml_name_id_format[SSO_SAML_ATTR_MAX];
    char saml_name_qualifier[SSO_SAML_ATTR_MAX];
    char saml_sp_name_qualifier[SSO_SAML_ATTR_MAX];
    long long saml_authn_instant; /* AuthnInstant at the IdP */
    bool saml_only;               /* no IdS token: access_token is NULL */
};

void sso_session_cleanup(struct sso_session *s);

/* True for a syntactically valid id (base64url, 43 chars). */
bool sso_id_valid(const char *id);

/* --- login state --- */
int sso_store_state_put(struct sso_store *st, const char *state,
                        const struct sso_login_state *ls,
                        struct cmn_err *err) CMN_NODISCARD;
/* CMN_NOTFOUND: unknown, expired or already used. */
int sso_store_state_take(struct sso_store *st, const char *state,
                         struct sso_login_state *ls,
                         struct cmn_err *err) CMN_NODISCARD;

/* --- sessions --- */
/* Creates a session (version 1) under a new random id (out: sid). */
int sso_store_session_create(struct sso_store *st, struct sso_session *s,
                             char sid[SSO_ID_LEN],
                             struct cmn_err *err) CMN_NODISCARD;
/* CMN_NOTFOUND if absent. */
int sso_store_session_get(struct sso_store *st, const char *sid,
                          struct sso_session *s,
                          struct cmn_err *err) CMN_NODISCARD;
/* Replace the session only if its stored version is still
 * expected_version (s->version is set to expected + 1). CMN_AGAIN when
 * someone else wrote first. */
int sso_store_session_cas(struct sso_store *st, const char *sid,
                          long long expected_version, struct sso_session *s,
                          struct cmn_err *err) CMN_NODISCARD;
/* Delete; fills *s with the last record when found (for revocation). */
int sso_store_session_delete(struct sso_store *st, const char *sid,
                             struct sso_session *s,
                             struct cmn_err *err) CMN_NODISCARD;

/* End every session of a user (sessions with a known user only: an
 * opaque token's session has none and is ended by id). Each ended record
 * is passed to each (for revocation at IdS) and then cleaned up. *n gets
 * how many were ended. A session that expired meanwhile is skipped. */
typedef void (*sso_store_ended_fn)(const struct sso_session *s, void *arg);
int sso_store_user_sessions_delete(struct sso_store *st, const char *user,
                                   sso_store_ended_fn each, void *arg,
                                   size_t *n,
                                   struct cmn_err *err) CMN_NODISCARD;

/* --- handoff codes --- */
int sso_store_handoff_put(struct sso_store *st, const char *code,
                          const char *sid, struct cmn_err *err) CMN_NODISCARD;
/* Consumed atomically: a second take finds nothing (CMN_NOTFOUND). */
int sso_store_handoff_take(struct sso_store *st, const char *code,
                           char sid[SSO_ID_LEN],
                           struct cmn_err *err) CMN_NODISCARD;

/* --- IdS token keys (sso_keys.c) --- */
/* Store text (a JSON document of PEM keys) sealed under sso:idskey. */
int sso_store_idskey_put(struct sso_store *st, const char *text,
                         struct cmn_err *err) CMN_NODISCARD;
/* *text malloc'd (free); CMN_NOTFOUND when absent, CMN_INVALID when it
 * does not open under the seal key (planted or another pair's). */
int sso_store_idskey_get(struct sso_store *st, char **text,
                         struct cmn_err *err) CMN_NODISCARD;

/* --- SAML (sso_http_saml.c) --- */
int sso_store_saml_request_put(struct sso_store *st, const char *id,
                               const struct sso_saml_request *rq,
                               struct cmn_err *err) CMN_NODISCARD;
/* Consumed once: CMN_NOTFOUND when unknown, expired or already used. */
int sso_store_saml_request_take(struct sso_store *st, const char *id,
                                struct sso_saml_request *rq,
                                struct cmn_err *err) CMN_NODISCARD;
/* Record issuer|assertion_id until expire_at (unix s): CMN_OK the first
 * time, CMN_AGAIN when it was seen before (a replay), anything else when
 * Redis cannot say (the caller fails closed). */
int sso_store_saml_seen(struct sso_store *st, const char *issuer,
                        const char *assertion_id, long long expire_at,
                        struct cmn_err *err) CMN_NODISCARD;

/* --- SAML Single Logout (sso_store_slo.c) --- */
/* Sessions are indexed by their SAML subject at creation (when
 * s->saml_name_id is set): sso_store_session_create fails if the index
 * cannot be written, so that no session escapes the IdP's logout; and it
 * answers CMN_DENIED (the session removed again) when a LogoutRequest
 * covers the session's authentication (sso_store_saml_logged_out). */

/* Before ending the sessions: remember that the IdP logged the subject
 * out at logout_instant (its IssueInstant, IdP clock), for each of its
 * SessionIndexes or (nsi == 0) for all, until expire_at at least
 * (saml-core-2.0-os §3.7.3.1: the logout applies to a matching assertion
 * "even if the assertion arrives after the logout request"). */
int sso_store_saml_logout_mark(struct sso_store *st, const char *name_id,
                               char *const *session_indexes, size_t nsi,
                               long long logout_instant, long long expire_at,
                               struct cmn_err *err) CMN_NODISCARD;
/* CMN_DENIED when a LogoutRequest issued at or after authn_instant named
 * this subject (for all its sessions, or this SessionIndex); CMN_OK when
 * none did; anything else when Redis cannot say (fail closed). */
int sso_store_saml_logged_out(struct sso_store *st, const char *name_id,
                              const char *session_index,
                              long long authn_instant,
                              struct cmn_err *err) CMN_NODISCARD;

/* End the sessions the IdP's LogoutRequest names: those of this NameID
 * (under the configured IdP), and when nsi > 0 only those whose
 * SessionIndex is one of session_indexes. each and *n as in
 * sso_store_user_sessions_delete. */
int sso_store_saml_sessions_delete(struct sso_store *st, const char *name_id,
                                   char *const *session_indexes, size_t nsi,
                                   sso_store_ended_fn each, void *arg,
                                   size_t *n,
                                   struct cmn_err *err) CMN_NODISCARD;

/* SP-initiated logout: what a one-time logout code stands for (the
 * ended session's SAML subject and where the browser goes at the end). */
struct sso_saml_logout {
    char name_id[SSO_SAML_NAME_MAX];
    char name_id_format[SSO_SAML_ATTR_MAX];
    char name_qualifier[SSO_SAML_ATTR_MAX];
    char sp_name_qualifier[SSO_SAML_ATTR_MAX];
    char session_index[SSO_SAML_ATTR_MAX];
    char return_to[2100];
};
int sso_store_saml_logout_code_put(struct sso_store *st, const char *code,
                                   const struct sso_saml_logout *lo,
                                   struct cmn_err *err) CMN_NODISCARD;
/* Consumed once: CMN_NOTFOUND when unknown, expired or already used. */
int sso_store_saml_logout_code_take(struct sso_store *st, const char *code,
                                    struct sso_saml_logout *lo,
                                    struct cmn_err *err) CMN_NODISCARD;

/* A LogoutRequest of ours waiting for the IdP's LogoutResponse. */
struct sso_saml_logout_request {
    char relay_state[SSO_ID_LEN];
    char return_to[2100];
    long long created;
};
int sso_store_saml_logout_request_put(struct sso_store *st, const char *id,
                                      const struct sso_saml_logout_request *rq,
                                      struct cmn_err *err) CMN_NODISCARD;
/* Consumed once, on A or B: CMN_NOTFOUND when unknown, expired or used. */
int sso_store_saml_logout_request_take(struct sso_store *st, const char *id,
                                       struct sso_saml_logout_request *rq,
                                       struct cmn_err *err) CMN_NODISCARD;

/* --- refresh lock --- */
/* CMN_OK when acquired, CMN_AGAIN when someone holds it. */
int sso_store_lock(struct sso_store *st, const char *sid, const char *owner,
                   struct cmn_err *err) CMN_NODISCARD;
void sso_store_unlock(struct sso_store *st, const char *sid, const char *owner);
/* Transient-failure back-off marker. */
void sso_store_refresh_backoff_set(struct sso_store *st, const char *sid,
                                   long ms);
bool sso_store_refresh_backoff(struct sso_store *st, const char *sid);

#endif
