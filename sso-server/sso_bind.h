/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_bind.h - binds a sign-in to the browser that started it (against
 * login CSRF: an attacker sending a victim their own callback link, or
 * posting their own SAML Response from the victim's browser, would sign
 * the victim in as the attacker).
 *
 * The start sets a random value in a cookie and stores its SHA-256 with
 * the pending state (IdS state, SAML request); the step that consumes the
 * state refuses a request whose cookie does not hash to it. Two cookies,
 * both __Host- (Secure, Path=/, no Domain: no subdomain can set them),
 * HttpOnly, holding the same value per browser:
 *   __Host-fsc_login  SameSite=Lax: checked at /sso/callback, a top-level
 *                     GET from IdS, which Lax cookies reach;
 *   __Host-fsc_saml   SameSite=None: checked at /sso/saml/acs, a
 *                     cross-site POST from the IdP, which Lax cookies do
 *                     not reach.
 * The value is reused while the browser holds it, so two sign-ins running
 * at once in one browser both complete. */
#ifndef SSO_BIND_H
#define SSO_BIND_H

#include "cmn_httpd.h"
#include "sso_store.h"

#define SSO_BIND_COOKIE      "__Host-fsc_login"
#define SSO_BIND_COOKIE_SAML "__Host-fsc_saml"
#define SSO_BIND_HASH_LEN    65 /* SHA-256 hex + NUL */

/* The browser's value: the request's (either cookie) when well-formed,
 * else a new random one. CMN_ERR without randomness. */
int sso_bind_value(struct cmn_http_req *req,
                   char value[SSO_ID_LEN]) CMN_NODISCARD;

/* Set-Cookie on the reply req is about to get. cross_site: SameSite=None
 * (the SAML cookie) instead of Lax. */
int sso_bind_set_cookie(struct cmn_http_req *req, const char *name,
                        const char *value, long max_age_s, bool cross_site);

void sso_bind_hash(const char *value, char out[SSO_BIND_HASH_LEN]);

/* True when the request's cookie `name` hashes to want (constant time).
 * An empty want (a state from before binding) never matches. */
bool sso_bind_check(struct cmn_http_req *req, const char *name,
                    const char *want);

#endif
