/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_url.h - the one place that decides whether a URL may receive a
 * browser (return_to allow-list) and how to add a parameter to it. Pure
 * functions, no I/O. */
#ifndef SSO_URL_H
#define SSO_URL_H

#include "cmn.h"
#include "sso_config.h"

/* Split an absolute http(s) URL into its origin ("https://host[:port]",
 * scheme and host lower-cased, default port elided) and the path (starting
 * with '/', without query or fragment). Refuses userinfo, control
 * characters, spaces, backslashes, empty hosts, ports out of range and
 * dot segments in the path. *origin and *path are malloc'd. */
int sso_url_split(const char *url, char **origin, char **path) CMN_NODISCARD;

/* True when url is allowed by one of the configured entries; then *origin
 * (malloc'd, may be NULL if not wanted) is its origin, the target for
 * postMessage. */
bool sso_url_allowed(const struct sso_allowed_url *allowed, size_t n,
                     const char *url, char **origin);

/* True when url's query has a parameter whose name decodes to name (as
 * application/x-www-form-urlencoded, like the browser's URLSearchParams:
 * "hand%6fff" is "handoff"), fields split on '&' or ';', ASCII case
 * ignored. */
bool sso_url_has_param(const char *url, const char *name);

/* url with "name=value" (value escaped) added to its query, before any
 * fragment. malloc'd. */
char *sso_url_add_param(const char *url, const char *name, const char *value);

#endif
