/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_web.c - serves the softphone page (connector/web/) at /softphone/.
 *
 * Salesforce frames the page and appends ?sfdcIFrameOrigin=<org>&...; the
 * page then loads opencti_min.js from that origin. So the origin is
 * checked here against [salesforce] org_origins before the page is
 * served, and the Content-Security-Policy lets exactly that origin frame
 * the page and provide the script. Files are read from [server] web_dir;
 * only flat names of known types are served. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmn_log.h"
#include "cti_api.h"
#include "cti_web.h"

#define WEB_FILE_MAX (1024 * 1024)

static const char *
content_type(const char *name)
{
    /* clang-format off */
    static const struct { const char *ext, *type; } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js",   "text/javascript; charset=utf-8"},
        {".css",  "text/css; charset=utf-8"},
        {".svg",  "image/svg+xml"},
        {".png",  "image/png"},
        {".json", "application/json"},
    };
    /* clang-format on */
    const char *dot = strrchr(name, '.');

    for (size_t i = 0; dot != NULL && i < CMN_ARRAY_LEN(types); i++) {
        if (strcmp(dot, types[i].ext) == 0) {
            return types[i].type;
        }
    }
    return NULL;
}

static bool
flat_name(const char *name)
{
    size_t n = strlen(name);

    return n > 0 && n < 64 && name[0] != '.' &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789._-") == n;
}

static int
read_file(const char *dir, const char *name, char **out, size_t *len)
{
    char path[4096];
    struct stat st;
    int fd;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return CMN_NOTFOUND;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size > WEB_FILE_MAX) {
        close(fd);
        return CMN_NOTFOUND;
    }
    *out = malloc((size_t)st.st_size + 1);
    ssize_t got = *out != NULL ? read(fd, *out, (size_t)st.st_size) : -1;
    close(fd);
    if (got != st.st_size) {
        free(*out);
        return CMN_IO;
    }
    *len = (size_t)got;
    return CMN_OK;
}

bool
cti_web_origin_allowed(const struct cti_config *cfg, const char *origin)
{
    for (size_t i = 0; origin != NULL && i < cfg->norg_origins; i++) {
        if (strcmp(cfg->org_origins[i], origin) == 0) {
            return true;
        }
    }
    return false;
}

static int
serve(struct cmn_http_req *req, struct cti_app *app, const char *name)
{
    const char *type = content_type(name);
    char *body = NULL;
    size_t len = 0;
    int rc;

    if (!flat_name(name) || type == NULL) {
        return cmn_http_reply_error(req, 404, "not_found", "no such file");
    }
    rc = read_file(app->cfg->web_dir, name, &body, &len);
    if (rc != CMN_OK) {
        return cmn_http_reply_error(req, 404, "not_found", "no such file");
    }
    /* static assets may be cached by the browser; the page itself not */
    if (strcmp(name, "index.html") != 0) {
        cmn_http_add_header(req, "Cache-Control", "private, max-age=300");
    }
    rc = cmn_http_reply_text(req, 200, type, body, len);
    free(body);
    return rc;
}

int
cti_web_softphone(struct cmn_http_req *req, void *appv)
{
    struct cti_app *app = appv;
    const char *rest = cmn_http_req_path_rest(req);
    const char *origin = cmn_http_req_query(req, "sfdcIFrameOrigin");
    char csp[1024];

    if (rest[0] != '\0' && strcmp(rest, "index.html") != 0) {
        /* assets: framed with the page, loaded from our own origin */
        snprintf(csp, sizeof(csp),
                 "default-src 'none'; frame-ancestors 'self'");
        cmn_http_add_header(req, "Content-Security-Policy", csp);
        return serve(req, app, rest);
    }
    if (origin != NULL && !cti_web_origin_allowed(app->cfg, origin)) {
        cmn_log_warn("event=softphone_refused reason=foreign_origin");
        return cmn_http_reply_text(
            req, 400, "text/html; charset=utf-8",
            "<!doctype html><title>Refused</title><p>This softphone may only "
            "be opened by the Salesforce organisation it is configured "
            "for.</p>",
            strlen("<!doctype html><title>Refused</title><p>This softphone "
                   "may only be opened by the Salesforce organisation it is "
                   "configured for.</p>"));
    }
    /* the origin passed the allow-list: it may frame us and provide
     * opencti_min.js; everything else comes from our origin (and the SSO
     * popup, which is a window, not a frame or a fetch) */
    snprintf(csp, sizeof(csp),
             "default-src 'self'; script-src 'self'%s%s; style-src 'self'; "
             "img-src 'self' data:; connect-src 'self'; frame-ancestors %s; "
             "base-uri 'none'; form-action 'self'",
             origin != NULL ? " " : "", origin != NULL ? origin : "",
             origin != NULL ? origin : "'self'");
    cmn_http_add_header(req, "Content-Security-Policy", csp);
    return serve(req, app, "index.html");
}

int
cti_web_config(struct cmn_http_req *req, void *appv)
{
    struct cti_app *app = appv;
    json_t *origins = json_array();
    char sso_login[1024] = "";

    for (size_t i = 0; i < app->cfg->norg_origins; i++) {
        json_array_append_new(origins, json_string(app->cfg->org_origins[i]));
    }
    if (app->cfg->sso_public_url != NULL) {
        snprintf(sso_login, sizeof(sso_login), "%s/sso/login",
                 app->cfg->sso_public_url);
    }
    return cmn_http_reply_json(
        req, 200,
        json_pack("{s:o, s:s?, s:s}", "org_origins", origins, "sso_login_url",
                  sso_login[0] ? sso_login : NULL, "opencti_version",
                  app->cfg->opencti_version));
}
