/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_saml.h - the SAML SP's glue with the rest of fsc-sso: starting a
 * sign-in at the IdP, counting refusals, and handing a finished sign-in
 * to the softphone (shared with the IdS callback). */
#ifndef SSO_SAML_H
#define SSO_SAML_H

#include "saml.h"
#include "sso_app.h"
#include "sso_out.h"

/* Store an AuthnRequest (ID, RelayState, where to go after) and 302 the
 * browser to the IdP. Inputs were checked by sso_http_login_check. */
int sso_saml_begin(struct sso_app *app, struct sso_gen *g,
                   struct cmn_http_req *req, const char *return_to,
                   const char *hint, bool popup);

/* One log line with the specific reason and the /metrics counter
 * fsc_sso_saml_refused_total{reason="..."}. detail must hold no secret. */
void sso_saml_refused(struct sso_app *app, enum saml_reason r,
                      const char *detail);

/* Single Logout (sso_http_slo.c): its counters, registered once at
 * start; a refusal's log line and counter
 * fsc_sso_saml_logout_refused_total{reason="..."}. */
void sso_slo_metrics_init(struct sso_metrics *m);
void sso_saml_logout_refused(struct sso_app *app, enum saml_reason r,
                             const char *detail);
/* The same, then a generic page: 503 for SAML_R_STORE, else 403. */
int sso_saml_logout_refuse(struct sso_app *app, struct sso_out *o,
                           enum saml_reason r, const char *detail);

/* The SAML subject (NameID and its attributes, SessionIndex) the login
 * state carries from the ACS, into the session it becomes (which indexes
 * it for the IdP's LogoutRequest). */
void sso_saml_subject_copy(struct sso_session *s,
                           const struct sso_login_state *ls);

/* Store the session s, make a one-time handoff code and send the browser
 * to ls->return_to with it (or the popup page). */
int sso_login_deliver(struct sso_app *app, struct sso_gen *g, struct sso_out *o,
                      const struct sso_login_state *ls, struct sso_session *s);

#endif
