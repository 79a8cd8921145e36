/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_out.c - replies to the request or to its deferred handle; see
 * sso_out.h. */
#include <stdio.h>
#include <string.h>

#include "sso_out.h"

const char *
sso_out_id(const struct sso_out *o)
{
    return o->d != NULL ? cmn_http_deferred_id(o->d) : cmn_http_req_id(o->req);
}

int
sso_out_json(struct sso_out *o, unsigned status, json_t *body)
{
    return o->d != NULL ? cmn_http_deferred_reply_json(o->d, status, body)
                        : cmn_http_reply_json(o->req, status, body);
}

int
sso_out_error(struct sso_out *o, unsigned status, const char *error,
              const char *detail)
{
    return o->d != NULL
               ? cmn_http_deferred_reply_error(o->d, status, error, detail)
               : cmn_http_reply_error(o->req, status, error, detail);
}

int
sso_out_text(struct sso_out *o, unsigned status, const char *content_type,
             const char *body, size_t len)
{
    return o->d != NULL
               ? cmn_http_deferred_reply_text(o->d, status, content_type, body,
                                              len)
               : cmn_http_reply_text(o->req, status, content_type, body, len);
}

int
sso_out_redirect(struct sso_out *o, const char *url)
{
    return o->d != NULL ? cmn_http_deferred_reply_redirect(o->d, url)
                        : cmn_http_reply_redirect(o->req, url);
}

int
sso_out_header(struct sso_out *o, const char *name, const char *value)
{
    return o->d != NULL ? cmn_http_deferred_add_header(o->d, name, value)
                        : cmn_http_add_header(o->req, name, value);
}

static void
html_escape(char *out, size_t size, const char *in)
{
    size_t j = 0;

    for (; in != NULL && *in != '\0' && j + 7 < size; in++) {
        const char *rep = NULL;
        switch (*in) {
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '&':
            rep = "&amp;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            break;
        }
        if (rep != NULL) {
            size_t n = strlen(rep);
            memcpy(out + j, rep, n);
            j += n;
        } else {
            out[j++] = *in;
        }
    }
    out[j] = '\0';
}

int
sso_out_page(struct sso_out *o, unsigned status, const char *title,
             const char *detail)
{
    char t[256], d[1024], page[2048];
    int n;

    html_escape(t, sizeof(t), title);
    html_escape(d, sizeof(d), detail);
    n = snprintf(page, sizeof(page),
                 "<!doctype html><html lang=\"en\"><head><meta "
                 "charset=\"utf-8\"><title>%s</title></head><body><h1>%s</h1>"
                 "<p>%s</p><p><small>Reference: %s</small></p></body></html>",
                 t, t, d, sso_out_id(o));
    return sso_out_text(o, status, "text/html; charset=utf-8", page,
                        (size_t)n < sizeof(page) ? (size_t)n
                                                 : sizeof(page) - 1);
}
