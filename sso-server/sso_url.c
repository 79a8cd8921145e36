/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sso_url.c - return_to allow-list checks and query building.
 *
 * An open redirect here would hand a one-time handoff code to an attacker,
 * so the parser is deliberately strict: anything unusual is refused rather
 * than normalised. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_httpc.h"
#include "sso_url.h"

#define SSO_URL_MAX 2048

static bool
has_bad_chars(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '\\' || *p == '"' || *p == '<' ||
            *p == '>' || *p == '`' || *p == '\'') {
            return true;
        }
    }
    return false;
}

/* Refuse "/./", "/../", a trailing "/." or "/..", also percent-encoded,
 * so that "/softphone/../admin" cannot pass a prefix check. */
static bool
has_dot_segment(const char *path)
{
    const char *p = path;

    while ((p = strchr(p, '/')) != NULL) {
        p++;
        size_t n = strcspn(p, "/");
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
            return true;
        }
    }
    return strstr(path, "%2e") != NULL || strstr(path, "%2E") != NULL ||
           strstr(path, "%2f") != NULL || strstr(path, "%2F") != NULL;
}

int
sso_url_split(const char *url, char **origin, char **path)
{
    const char *scheme_end, *host, *host_end, *p;
    const char *scheme;
    long port = 0;
    char hostbuf[256];
    size_t hostlen;

    *origin = NULL;
    *path = NULL;
    if (url == NULL || strlen(url) > SSO_URL_MAX || has_bad_chars(url)) {
        return CMN_INVALID;
    }
    if (strncasecmp(url, "https://", 8) == 0) {
        scheme = "https";
        scheme_end = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        scheme = "http";
        scheme_end = url + 7;
    } else {
        return CMN_INVALID;
    }
    host = scheme_end;
    host_end = host + strcspn(host, "/?#");
    /* userinfo ("https://good@evil") is a classic allow-list bypass */
    if (memchr(host, '@', (size_t)(host_end - host)) != NULL) {
        return CMN_INVALID;
    }
    p = host;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(host_end - p));
        if (close == NULL) {
            return CMN_INVALID;
        }
        p = close + 1;
    } else {
        while (p < host_end && *p != ':') {
            p++;
        }
    }
    hostlen = (size_t)(p - host);
    if (hostlen == 0 || hostlen >= sizeof(hostbuf)) {
        return CMN_INVALID;
    }
    for (size_t i = 0; i < hostlen; i++) {
        unsigned char c = (unsigned char)host[i];
        if (!(isalnum(c) || c == '.' || c == '-' || c == '[' || c == ']' ||
              c == ':')) {
            return CMN_INVALID;
        }
        hostbuf[i] = (char)tolower(c);
    }
    hostbuf[hostlen] = '\0';
    if (p < host_end) {
        char *end;
        if (*p != ':' || p + 1 == host_end) {
            return CMN_INVALID;
        }
        port = strtol(p + 1, &end, 10);
        if (end != host_end || port < 1 || port > 65535) {
            return CMN_INVALID;
        }
    }
    if ((strcmp(scheme, "https") == 0 && port == 443) ||
        (strcmp(scheme, "http") == 0 && port == 80)) {
        port = 0;
    }

    const char *path_start = host_end;
    size_t pathlen = strcspn(path_start, "?#");
    size_t olen = strlen(scheme) + 3 + hostlen + 8;
    char *o = malloc(olen);
    char *pa = malloc(pathlen + 2);
    if (o == NULL || pa == NULL) {
        free(o);
        free(pa);
        return CMN_NOMEM;
    }
    if (port != 0) {
        snprintf(o, olen, "%s://%s:%ld", scheme, hostbuf, port);
    } else {
        snprintf(o, olen, "%s://%s", scheme, hostbuf);
    }
    if (pathlen == 0) {
        pa[0] = '/';
        pa[1] = '\0';
    } else {
        memcpy(pa, path_start, pathlen);
        pa[pathlen] = '\0';
    }
    if (pa[0] != '/' || has_dot_segment(pa)) {
        free(o);
        free(pa);
        return CMN_INVALID;
    }
    *origin = o;
    *path = pa;
    return CMN_OK;
}

bool
sso_url_allowed(const struct sso_allowed_url *allowed, size_t n,
                const char *url, char **origin)
{
    char *o = NULL, *p = NULL;
    bool ok = false;

    if (origin != NULL) {
        *origin = NULL;
    }
    if (sso_url_split(url, &o, &p) != CMN_OK) {
        return false;
    }
    for (size_t i = 0; i < n && !ok; i++) {
        ok = strcmp(o, allowed[i].origin) == 0 &&
             strncmp(p, allowed[i].path, strlen(allowed[i].path)) == 0;
    }
    if (ok && origin != NULL) {
        *origin = o;
        o = NULL;
    }
    free(o);
    free(p);
    return ok;
}

char *
sso_url_add_param(const char *url, const char *name, const char *value)
{
    char *ev = cmn_url_escape(value);
    if (ev == NULL) {
        return NULL;
    }
    size_t frag = strcspn(url, "#");
    bool has_query = memchr(url, '?', frag) != NULL;
    char sep =
        has_query
            ? (frag > 0 && (url[frag - 1] == '?' || url[frag - 1] == '&') ? '\0'
                                                                          : '&')
            : '?';
    size_t len = strlen(url) + strlen(name) + strlen(ev) + 4;
    char *out = malloc(len);
    if (out != NULL) {
        if (sep != '\0') {
            snprintf(out, len, "%.*s%c%s=%s%s", (int)frag, url, sep, name, ev,
                     url + frag);
        } else {
            snprintf(out, len, "%.*s%s=%s%s", (int)frag, url, name, ev,
                     url + frag);
        }
    }
    free(ev);
    return out;
}

static int
hex_digit(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Does the query field name [p, end) decode to name? Decoded as
 * application/x-www-form-urlencoded (URLSearchParams): '+' is a space,
 * %XX a byte, a '%' without two hex digits itself; compared ignoring
 * ASCII case, so that no parser's reading of it is "handoff". */
static bool
field_name_is(const char *p, const char *end, const char *name)
{
    size_t i = 0, n = strlen(name);

    while (p < end) {
        int c = (unsigned char)*p;
        if (c == '+') {
            c = ' ';
            p++;
        } else if (c == '%' && end - p >= 3 && hex_digit(p[1]) >= 0 &&
                   hex_digit(p[2]) >= 0) {
            c = hex_digit(p[1]) << 4 | hex_digit(p[2]);
            p += 3;
        } else {
            p++;
        }
        if (i >= n || tolower(c) != tolower((unsigned char)name[i])) {
            return false;
        }
        i++;
    }
    return i == n;
}

bool
sso_url_has_param(const char *url, const char *name)
{
    const char *q = strchr(url, '?');
    const char *end;

    if (q == NULL) {
        return false;
    }
    end = q + strcspn(q, "#");
    /* fields are split on '&' (URLSearchParams) and on ';' (parsers that
     * also accept it): refusing more than needed is the safe side */
    for (const char *p = q + 1; p < end;) {
        size_t flen = strcspn(p, "&;#");
        const char *fend = p + flen < end ? p + flen : end;
        const char *eq = memchr(p, '=', (size_t)(fend - p));

        if (field_name_is(p, eq != NULL ? eq : fend, name)) {
            return true;
        }
        p = fend + 1;
    }
    return false;
}
