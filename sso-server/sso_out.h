/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_out.h - where a handler's answer goes: the request itself (quick
 * work done on the HTTP thread) or its deferred handle (work that waits on
 * IdS or on a Redis failover, done on a job thread so that the HTTP pool
 * threads never block). The same reply code serves both. */
#ifndef SSO_OUT_H
#define SSO_OUT_H

#include <jansson.h>

#include "cmn_httpd.h"

struct sso_out {
    struct cmn_http_req *req;    /* answer here... */
    struct cmn_http_deferred *d; /* ...or here (job thread) */
};

const char *sso_out_id(const struct sso_out *o);
int sso_out_json(struct sso_out *o, unsigned status, json_t *body);
int sso_out_error(struct sso_out *o, unsigned status, const char *error,
                  const char *detail);
int sso_out_text(struct sso_out *o, unsigned status, const char *content_type,
                 const char *body, size_t len);
int sso_out_redirect(struct sso_out *o, const char *url);
/* Before the reply. */
int sso_out_header(struct sso_out *o, const char *name, const char *value);
/* A small HTML page for people (sign-in errors): status, a title and a
 * sentence, all escaped, with the request id as a reference. */
int sso_out_page(struct sso_out *o, unsigned status, const char *title,
                 const char *detail);

#endif
