/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_http.h - fsc-sso's HTTP handlers (DESIGN.md §4) and route table. */
#ifndef SSO_HTTP_H
#define SSO_HTTP_H

#include "cmn_httpd.h"
#include "sso_app.h"

/* browser sign-in (sso_http_login.c) */
int sso_http_login(struct cmn_http_req *req, void *app);
int sso_http_callback(struct cmn_http_req *req, void *app);

/* The checks every sign-in start makes on return_to (allowed, at most
 * SSO_RETURN_TO_MAX, no handoff parameter), login_hint (printable, at most
 * SSO_HINT_MAX), mode, and the client's start rate: CMN_AGAIN when they
 * pass (nothing replied yet), else the reply queued (400, 429). */
int sso_http_login_check(struct cmn_http_req *req, struct sso_app *app,
                         struct sso_gen *g, const char **return_to,
                         const char **hint, bool *popup);
/* The IdS leg: state, nonce, PKCE and the browser binding stored (the
 * __Host-fsc_login cookie set), 302 to IdS authorize. ls holds return_to,
 * login_hint, popup (and the SAML user when the IdP came first); the rest
 * is filled here. */
int sso_http_login_ids(struct cmn_http_req *req, struct sso_gen *g,
                       struct sso_login_state *ls);

/* SAML SP (sso_http_saml.c) */
int sso_http_saml_metadata(struct cmn_http_req *req, void *app);
int sso_http_saml_login(struct cmn_http_req *req, void *app);
int sso_http_saml_acs(struct cmn_http_req *req, void *app);

/* SAML Single Logout (sso_http_slo.c, sso_http_saml_logout.c) */
int sso_http_saml_slo(struct cmn_http_req *req, void *app);
int sso_http_saml_logout(struct cmn_http_req *req, void *app);
/* POST /v1/saml-logout {"session", "return_to"} (service key) */
int sso_http_saml_logout_code(struct cmn_http_req *req, void *app);

/* service API for fsc-connector (sso_http_service.c) */
/* The service key (Bearer), checked in constant time; false: the 401 is
 * queued. */
bool sso_http_service_authorised(struct cmn_http_req *req,
                                 const struct sso_gen *g);
int sso_http_handoff(struct cmn_http_req *req, void *app);
int sso_http_sessions(struct cmn_http_req *req, void *app);
/* DELETE /v1/sessions?user=USER (fscctl session revoke) */
int sso_http_revoke_user(struct cmn_http_req *req, void *app);

/* operations (sso_http_ops.c) */
int sso_http_healthz(struct cmn_http_req *req, void *app);
int sso_http_readyz(struct cmn_http_req *req, void *app);
int sso_http_metrics(struct cmn_http_req *req, void *app);
int sso_http_metrics_public(struct cmn_http_req *req, void *app);

/* A small HTML page for people (sign-in errors): status, a title and a
 * sentence, all escaped. */
int sso_http_page(struct cmn_http_req *req, unsigned status, const char *title,
                  const char *detail);

extern const struct cmn_http_route sso_http_routes[];
extern const size_t sso_http_nroutes;
extern const struct cmn_http_route sso_http_metrics_routes[];
extern const size_t sso_http_metrics_nroutes;

#endif
