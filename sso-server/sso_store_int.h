/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_store_int.h - what sso_store.c shares with the other sso_store_*.c
 * files (not for callers): key names, sealed records, the session indexes
 * (a Redis set of session-key hashes per user or per SAML subject). */
#ifndef SSO_STORE_INT_H
#define SSO_STORE_INT_H

#include <jansson.h>

#include "sso_store.h"

#define SSO_STORE_KEY_MAX 160

/* prefix + "sso:" + kind + ":" + sha256_hex(id) */
void sso_store_key(const struct sso_store *st, const char *kind, const char *id,
                   char key[SSO_STORE_KEY_MAX]);

/* SET key NX EX ttl_s with obj sealed under key (DURABLE); CMN_AGAIN when
 * the key exists. */
int sso_store_put_sealed(struct sso_store *st, const char *key, json_t *obj,
                         long ttl_s, struct cmn_err *err) CMN_NODISCARD;
/* GETDEL key and open it: CMN_NOTFOUND when absent, CMN_INVALID when it
 * does not open (*obj NULL). *obj json_decref'd by the caller. */
int sso_store_take_sealed(struct sso_store *st, const char *key, json_t **obj,
                          struct cmn_err *err) CMN_NODISCARD;
/* A string member (or "") into a fixed buffer. */
void sso_store_copy_str(char *dst, size_t size, json_t *v);

/* Add sid to the set kind:<sha256(id)>, TTL max_lifetime_s. */
int sso_store_index_add(struct sso_store *st, const char *kind, const char *id,
                        const char *sid, struct cmn_err *err) CMN_NODISCARD;
/* End the sessions of that set that match accepts (NULL: all). */
typedef bool (*sso_store_match_fn)(const struct sso_session *s, void *arg);
int sso_store_index_sessions_delete(struct sso_store *st, const char *kind,
                                    const char *id, sso_store_match_fn match,
                                    void *match_arg, sso_store_ended_fn each,
                                    void *arg, size_t *n,
                                    struct cmn_err *err) CMN_NODISCARD;

/* sso_store_slo.c: index a new session under its SAML subject. */
int sso_store_saml_index_add(struct sso_store *st, const char *name_id,
                             const char *sid,
                             struct cmn_err *err) CMN_NODISCARD;

#endif
