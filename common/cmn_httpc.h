/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_httpc.h - blocking outbound HTTP(S) client (libcurl easy handles,
 * one cached per thread so connections are reused).
 *
 * TLS verification is always on; ca_file adds a trust anchor (private CAs,
 * test CAs) to the system's certificates in /etc/ssl/certs. Every call has a
 * total timeout and a cap on the response body. Redirects are not followed. */
#ifndef CMN_HTTPC_H
#define CMN_HTTPC_H

#include "cmn.h"

struct cmn_httpc_req {
    const char *method; /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *url;
    const char *const *headers; /* "Name: value", NULL-terminated; may be
                                   NULL */
    const char *body;           /* may be NULL */
    size_t body_len;
    const char *basic_user; /* HTTP Basic when both set */
    const char *basic_pass;
    const char *ca_file;     /* extra trust anchor, may be NULL */
    long timeout_ms;         /* total, default 5000 */
    long connect_timeout_ms; /* default 2000 */
    size_t max_response;     /* default 1 MiB: bigger -> CMN_INVALID */
};

struct cmn_httpc_resp {
    long status; /* 0 when no HTTP answer */
    char *body;  /* NUL-terminated, malloc'd */
    size_t body_len;
    char content_type[128];
    long long elapsed_ms;
};

/* Global init (curl_global_init); call once before threads start. */
int cmn_httpc_global_init(void) CMN_NODISCARD;

/* CMN_OK when an HTTP response arrived (any status: check resp->status);
 * CMN_TIMEOUT, CMN_IO (connect/TLS failure) or CMN_INVALID (oversized
 * response) with err set otherwise. Always call cmn_httpc_resp_cleanup. */
int cmn_httpc_do(const struct cmn_httpc_req *req, struct cmn_httpc_resp *resp,
                 struct cmn_err *err) CMN_NODISCARD;
void cmn_httpc_resp_cleanup(struct cmn_httpc_resp *resp);

/* application/x-www-form-urlencoded helpers: append "k=v" (escaped) with
 * '&' separators to a growing malloc'd string. */
int cmn_form_add(char **form, const char *key, const char *value) CMN_NODISCARD;
/* Percent-encode a string for a query or form value. malloc'd. */
char *cmn_url_escape(const char *s);

#endif
