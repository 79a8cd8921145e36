/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_config.c - INI files parsed with libinih into a flat list of
 * (section, key, value, line) entries, and typed getters whose errors name
 * the file, the line and the key. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "cmn_config.h"

#define CFG_MAX_SIZE (1024 * 1024)
/* Our configs have a few dozen keys; the cap keeps the duplicate check
 * (quadratic) cheap on hostile input such as fuzz cases. */
#define CFG_MAX_ENTRIES 4096
/* libinih copies section names into a 50-byte buffer and silently cuts
 * longer ones; a name that arrives this long may have been cut. */
#define CFG_SECTION_CUT 49

struct cfg_entry {
    char *section;
    char *key;
    char *value;
    int line;
};

struct cmn_config {
    char *name;
    struct cfg_entry *ents;
    size_t n;
    size_t cap;
};

/* State shared by the line reader and the handler during one parse. */
struct cfg_parse {
    struct cmn_config *cfg;
    const char *text;
    size_t len;
    size_t off;
    int lineno;   /* line most recently handed to libinih */
    int err_line; /* first error we detected ourselves, 0 if none */
    bool stop;    /* reader error: end the parse */
    struct cmn_err err;
};

static void
cfg_free_entries(struct cmn_config *cfg)
{
    for (size_t i = 0; i < cfg->n; i++) {
        free(cfg->ents[i].section);
        free(cfg->ents[i].key);
        free(cfg->ents[i].value);
    }
    free(cfg->ents);
    cfg->ents = NULL;
    cfg->n = 0;
    cfg->cap = 0;
}

void
cmn_config_free(struct cmn_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    cfg_free_entries(cfg);
    free(cfg->name);
    free(cfg);
}

const char *
cmn_config_name(const struct cmn_config *cfg)
{
    return cfg->name;
}

static const struct cfg_entry *
cfg_find(const struct cmn_config *cfg, const char *section, const char *key)
{
    for (size_t i = 0; i < cfg->n; i++) {
        if (strcmp(cfg->ents[i].section, section) == 0 &&
            strcmp(cfg->ents[i].key, key) == 0) {
            return &cfg->ents[i];
        }
    }
    return NULL;
}

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool
valid_name(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.')) {
            return false;
        }
    }
    return true;
}

static void parse_fail(struct cfg_parse *ps, const char *fmt, ...)
    CMN_PRINTF(2, 3);

/* Record the first error we detect ourselves, prefixed "name:line: ". */
static void
parse_fail(struct cfg_parse *ps, const char *fmt, ...)
{
    char why[CMN_ERRLEN];
    va_list ap;

    if (ps->err_line != 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    ps->err_line = ps->lineno;
    cmn_err_set(&ps->err, "%s:%d: %s", ps->cfg->name, ps->lineno, why);
}

/* fgets-like reader for ini_parse_stream. It hands libinih one line at a
 * time, already cleaned up:
 * - leading blanks are removed, which turns off libinih's multi-line
 *   values (an indented "key = v" would otherwise silently become part of
 *   the previous value);
 * - comments are removed (whole-line ";" or "#", inline " ;"), so the
 *   Debian build's 200-byte line limit applies to "key = value" only;
 * - a line still too long, or one holding a NUL byte, ends the parse with
 *   an error instead of being split by libinih into two lines. */
static char *
cfg_reader(char *str, int num, void *stream)
{
    struct cfg_parse *ps = stream;
    const char *line;
    const char *eol;
    size_t n;

    if (ps->stop || ps->off >= ps->len || num < 2) {
        return NULL;
    }
    line = ps->text + ps->off;
    eol = memchr(line, '\n', ps->len - ps->off);
    n = eol != NULL ? (size_t)(eol - line) : ps->len - ps->off;
    ps->off += n + (eol != NULL ? 1 : 0);
    ps->lineno++;

    if (memchr(line, '\0', n) != NULL) {
        parse_fail(ps, "NUL byte in line");
        ps->stop = true;
        return NULL;
    }
    while (n > 0 && is_blank(*line)) {
        line++;
        n--;
    }
    if (n > 0 && (*line == ';' || *line == '#')) {
        n = 0;
    }
    for (size_t i = 1; i < n; i++) {
        if (line[i] == ';' && is_blank(line[i - 1])) {
            n = i;
            break;
        }
    }
    while (n > 0 && is_blank(line[n - 1])) {
        n--;
    }
    /* libinih ignores whatever follows "]" on a section line. */
    if (n > 0 && line[0] == '[' && line[n - 1] != ']') {
        parse_fail(ps, "syntax error");
    }
    /* Keep one byte for libinih's own line-end handling besides the NUL. */
    if (n > (size_t)num - 2) {
        parse_fail(ps, "line too long (over %d characters without comments)",
                   num - 2);
        ps->stop = true;
        return NULL;
    }
    memcpy(str, line, n);
    str[n] = '\0';
    return str;
}

static int
cfg_handler(void *user, const char *section, const char *name,
            const char *value)
{
    struct cfg_parse *ps = user;
    struct cmn_config *cfg = ps->cfg;
    const struct cfg_entry *dup;
    struct cfg_entry *e;

    if (ps->err_line != 0) {
        /* libinih keeps going after an error; the first one is reported. */
        return 1;
    }
    if (section[0] == '\0') {
        parse_fail(ps, "key outside of any [section]");
        return 0;
    }
    if (!valid_name(section) || strlen(section) >= CFG_SECTION_CUT) {
        parse_fail(ps, "invalid section name (use letters, digits, _ - .)");
        return 0;
    }
    if (!valid_name(name)) {
        parse_fail(ps, "[%s] invalid key name (use letters, digits, _ - .)",
                   section);
        return 0;
    }
    dup = cfg_find(cfg, section, name);
    if (dup != NULL) {
        parse_fail(ps, "[%s] %s: duplicate key (first set on line %d)", section,
                   name, dup->line);
        return 0;
    }
    if (cfg->n >= CFG_MAX_ENTRIES) {
        parse_fail(ps, "too many keys (over %d)", CFG_MAX_ENTRIES);
        return 0;
    }
    if (cfg->n == cfg->cap) {
        size_t cap = cfg->cap != 0 ? cfg->cap * 2 : 32;
        struct cfg_entry *ents = realloc(cfg->ents, cap * sizeof(*ents));
        if (ents == NULL) {
            parse_fail(ps, "out of memory");
            return 0;
        }
        cfg->ents = ents;
        cfg->cap = cap;
    }
    e = &cfg->ents[cfg->n];
    e->section = strdup(section);
    e->key = strdup(name);
    e->value = strdup(value != NULL ? value : "");
    e->line = ps->lineno;
    if (e->section == NULL || e->key == NULL || e->value == NULL) {
        free(e->section);
        free(e->key);
        free(e->value);
        parse_fail(ps, "out of memory");
        return 0;
    }
    cfg->n++;
    return 1;
}

struct cmn_config *
cmn_config_parse(const char *name, const char *text, size_t len,
                 struct cmn_err *err)
{
    struct cmn_config *cfg = NULL;
    struct cfg_parse ps;
    int rc;

    if (name == NULL) {
        name = "<config>";
    }
    if (len > CFG_MAX_SIZE) {
        cmn_err_set(err, "%s: larger than 1 MiB", name);
        goto fail;
    }
    cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL) {
        cmn_err_set(err, "%s: out of memory", name);
        goto fail;
    }
    cfg->name = strdup(name);
    if (cfg->name == NULL) {
        cmn_err_set(err, "%s: out of memory", name);
        goto fail;
    }
    memset(&ps, 0, sizeof(ps));
    ps.cfg = cfg;
    ps.text = text;
    ps.len = text != NULL ? len : 0;

    rc = ini_parse_stream(cfg_reader, &ps, cfg_handler, &ps);
    /* libinih returns the line of the first error it saw, which may be one
     * of ours (the handler refused) or its own syntax error. */
    if (rc > 0 && (ps.err_line == 0 || rc < ps.err_line)) {
        cmn_err_set(err, "%s:%d: syntax error", cfg->name, rc);
        goto fail;
    }
    if (ps.err_line != 0) {
        cmn_err_set(err, "%s", ps.err.msg);
        goto fail;
    }
    if (rc != 0) {
        cmn_err_set(err, "%s: parse failed", cfg->name);
        goto fail;
    }
    return cfg;
fail:
    cmn_config_free(cfg);
    return NULL;
}

struct cmn_config *
cmn_config_load(const char *path, struct cmn_err *err)
{
    struct cmn_config *cfg = NULL;
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        cmn_err_set(err, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        cmn_err_set(err, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        cmn_err_set(err, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > CFG_MAX_SIZE) {
        cmn_err_set(err, "%s: larger than 1 MiB", path);
        goto out;
    }
    /* One byte more than the limit tells a file that grew after fstat. */
    buf = malloc(CFG_MAX_SIZE + 1);
    if (buf == NULL) {
        cmn_err_set(err, "%s: out of memory", path);
        goto out;
    }
    while (len < CFG_MAX_SIZE + 1) {
        ssize_t r = read(fd, buf + len, CFG_MAX_SIZE + 1 - len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            cmn_err_set(err, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0) {
            break;
        }
        len += (size_t)r;
    }
    cfg = cmn_config_parse(path, buf, len, err);
out:
    free(buf);
    if (fd >= 0) {
        close(fd);
    }
    return cfg;
}

const char *
cmn_config_get(const struct cmn_config *cfg, const char *section,
               const char *key)
{
    const struct cfg_entry *e = cfg_find(cfg, section, key);

    return e != NULL ? e->value : NULL;
}

bool
cmn_config_has_section(const struct cmn_config *cfg, const char *section)
{
    for (size_t i = 0; i < cfg->n; i++) {
        if (strcmp(cfg->ents[i].section, section) == 0) {
            return true;
        }
    }
    return false;
}

static void cfg_verr(const struct cmn_config *cfg, int line,
                     const char *section, const char *key, struct cmn_err *err,
                     const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

/* "name:line: [section] key: why", or without ":line" for line 0. */
static void
cfg_verr(const struct cmn_config *cfg, int line, const char *section,
         const char *key, struct cmn_err *err, const char *fmt, va_list ap)
{
    char why[CMN_ERRLEN];

    vsnprintf(why, sizeof(why), fmt, ap);
    if (line > 0) {
        cmn_err_set(err, "%s:%d: [%s] %s: %s", cfg->name, line, section, key,
                    why);
    } else {
        cmn_err_set(err, "%s: [%s] %s: %s", cfg->name, section, key, why);
    }
}

static void cfg_err(const struct cmn_config *cfg, int line, const char *section,
                    const char *key, struct cmn_err *err, const char *fmt, ...)
    CMN_PRINTF(6, 7);

static void
cfg_err(const struct cmn_config *cfg, int line, const char *section,
        const char *key, struct cmn_err *err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cfg_verr(cfg, line, section, key, err, fmt, ap);
    va_end(ap);
}

void
cmn_config_errf(const struct cmn_config *cfg, const char *section,
                const char *key, struct cmn_err *err, const char *fmt, ...)
{
    const struct cfg_entry *e = cfg_find(cfg, section, key);
    va_list ap;

    va_start(ap, fmt);
    cfg_verr(cfg, e != NULL ? e->line : 0, section, key, err, fmt, ap);
    va_end(ap);
}

int
cmn_config_str(const struct cmn_config *cfg, const char *section,
               const char *key, bool required, const char *def,
               const char **out, struct cmn_err *err)
{
    const struct cfg_entry *e = cfg_find(cfg, section, key);

    if (e == NULL) {
        if (required) {
            cfg_err(cfg, 0, section, key, err, "required");
            return CMN_INVALID;
        }
        *out = def;
        return CMN_OK;
    }
    /* "key =" with nothing after it is almost always an unfinished edit;
     * for a required key it must not pass as a value. */
    if (required && e->value[0] == '\0') {
        cfg_err(cfg, e->line, section, key, err, "must not be empty");
        return CMN_INVALID;
    }
    *out = e->value;
    return CMN_OK;
}

int
cmn_config_long(const struct cmn_config *cfg, const char *section,
                const char *key, long def, long min, long max, long *out,
                struct cmn_err *err)
{
    const struct cfg_entry *e = cfg_find(cfg, section, key);
    const char *p;
    char *end = NULL;
    long v;

    if (e == NULL) {
        *out = def;
        return CMN_OK;
    }
    /* Decimal digits only: strtol alone would take leading blanks, a '+'
     * and, with base 0, octal "010" or hex "0x10". */
    p = e->value;
    if (*p == '-') {
        p++;
    }
    if (*p == '\0') {
        goto bad;
    }
    for (; *p; p++) {
        if (*p < '0' || *p > '9') {
            goto bad;
        }
    }
    errno = 0;
    v = strtol(e->value, &end, 10);
    if (errno == ERANGE || v < min || v > max) {
        cfg_err(cfg, e->line, section, key, err, "must be between %ld and %ld",
                min, max);
        return CMN_INVALID;
    }
    if (end == e->value || *end != '\0') {
        goto bad;
    }
    *out = v;
    return CMN_OK;
bad:
    cfg_err(cfg, e->line, section, key, err, "expected a decimal integer");
    return CMN_INVALID;
}

int
cmn_config_bool(const struct cmn_config *cfg, const char *section,
                const char *key, bool def, bool *out, struct cmn_err *err)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    const struct cfg_entry *e = cfg_find(cfg, section, key);

    if (e == NULL) {
        *out = def;
        return CMN_OK;
    }
    for (size_t i = 0; i < CMN_ARRAY_LEN(yes); i++) {
        if (strcasecmp(e->value, yes[i]) == 0) {
            *out = true;
            return CMN_OK;
        }
        if (strcasecmp(e->value, no[i]) == 0) {
            *out = false;
            return CMN_OK;
        }
    }
    cfg_err(cfg, e->line, section, key, err,
            "expected true/false, yes/no, on/off or 1/0");
    return CMN_INVALID;
}

int
cmn_config_list(const struct cmn_config *cfg, const char *section,
                const char *key, bool required, char ***out, size_t *n,
                struct cmn_err *err)
{
    const struct cfg_entry *e = cfg_find(cfg, section, key);
    const char *value = e != NULL ? e->value : "";
    size_t items = 0;
    size_t vlen = strlen(value);
    char **vec;
    char *copy;
    char *p;

    *out = NULL;
    *n = 0;
    if (value[0] == '\0' && required) {
        cfg_err(cfg, e != NULL ? e->line : 0, section, key, err, "required");
        return CMN_INVALID;
    }
    if (value[0] != '\0') {
        items = 1;
        for (const char *q = value; *q; q++) {
            if (*q == ',') {
                items++;
            }
        }
    }
    /* One block: the pointer array, then a copy of the value split in
     * place, so that the caller frees it all with one free(). An absent
     * key gives an empty array, never NULL, so callers can always loop. */
    vec = malloc((items + 1) * sizeof(*vec) + vlen + 1);
    if (vec == NULL) {
        cfg_err(cfg, e != NULL ? e->line : 0, section, key, err,
                "out of memory");
        return CMN_NOMEM;
    }
    copy = (char *)(vec + items + 1);
    memcpy(copy, value, vlen + 1);
    p = copy;
    for (size_t i = 0; i < items; i++) {
        char *comma = strchr(p, ',');
        char *end;

        if (comma != NULL) {
            *comma = '\0';
        }
        while (is_blank(*p)) {
            p++;
        }
        end = p + strlen(p);
        while (end > p && is_blank(end[-1])) {
            *--end = '\0';
        }
        if (*p == '\0') {
            cfg_err(cfg, e->line, section, key, err, "empty item in list");
            free(vec);
            return CMN_INVALID;
        }
        vec[i] = p;
        p = comma != NULL ? comma + 1 : end;
    }
    vec[items] = NULL;
    *out = vec;
    *n = items;
    return CMN_OK;
}

/* Path of a file named in the config: relative paths are taken from the
 * config file's directory so that a service's working directory does not
 * matter. Returns a malloc'd string or NULL. */
static char *
cfg_resolve_path(const struct cmn_config *cfg, const char *path)
{
    const char *slash = strrchr(cfg->name, '/');
    size_t dlen;
    char *full;

    if (path[0] == '/' || slash == NULL) {
        return strdup(path);
    }
    dlen = (size_t)(slash - cfg->name) + 1;
    full = malloc(dlen + strlen(path) + 1);
    if (full == NULL) {
        return NULL;
    }
    memcpy(full, cfg->name, dlen);
    memcpy(full + dlen, path, strlen(path) + 1);
    return full;
}

/* "<key>_file = path" read as a secret or as a public file. */
static int
cfg_file(const struct cmn_config *cfg, const char *section, const char *key,
         bool required, size_t max_len, bool trim, bool secret,
         struct cmn_secret **out, struct cmn_err *err)
{
    const struct cfg_entry *e;
    struct cmn_err serr;
    char fkey[128];
    char *path = NULL;
    int rc = CMN_INVALID;

    *out = NULL;
    e = cfg_find(cfg, section, key);
    if (e != NULL) {
        cfg_err(cfg, e->line, section, key, err,
                secret ? "use %s_file = path (secrets are never inline)"
                       : "use %s_file = path",
                key);
        goto out;
    }
    if ((size_t)snprintf(fkey, sizeof(fkey), "%s_file", key) >= sizeof(fkey)) {
        cfg_err(cfg, 0, section, key, err, "key name too long");
        goto out;
    }
    e = cfg_find(cfg, section, fkey);
    if (e == NULL) {
        if (required) {
            cfg_err(cfg, 0, section, fkey, err, "required");
            goto out;
        }
        rc = CMN_OK;
        goto out;
    }
    if (e->value[0] == '\0') {
        cfg_err(cfg, e->line, section, fkey, err, "must not be empty");
        goto out;
    }
    path = cfg_resolve_path(cfg, e->value);
    if (path == NULL) {
        cfg_err(cfg, e->line, section, fkey, err, "out of memory");
        rc = CMN_NOMEM;
        goto out;
    }
    *out = secret ? cmn_secret_read_file(path, max_len, trim, &serr)
                  : cmn_public_read_file(path, max_len, &serr);
    if (*out == NULL) {
        cfg_err(cfg, e->line, section, fkey, err, "%s", serr.msg);
        goto out;
    }
    rc = CMN_OK;
out:
    free(path);
    return rc;
}

int
cmn_config_secret(const struct cmn_config *cfg, const char *section,
                  const char *key, bool required, size_t max_len, bool trim,
                  struct cmn_secret **out, struct cmn_err *err)
{
    return cfg_file(cfg, section, key, required, max_len, trim, true, out, err);
}

int
cmn_config_public_file(const struct cmn_config *cfg, const char *section,
                       const char *key, bool required, size_t max_len,
                       struct cmn_secret **out, struct cmn_err *err)
{
    return cfg_file(cfg, section, key, required, max_len, false, false, out,
                    err);
}

/* Does "section.key" (or "section.*") appear in known? With key NULL:
 * does any entry of that section appear? */
static bool
cfg_known(const char *const *known, const char *section, const char *key)
{
    size_t slen = strlen(section);

    for (size_t i = 0; known != NULL && known[i] != NULL; i++) {
        const char *k = known[i];

        if (strncmp(k, section, slen) != 0 || k[slen] != '.') {
            continue;
        }
        if (key == NULL || strcmp(k + slen + 1, "*") == 0 ||
            strcmp(k + slen + 1, key) == 0) {
            return true;
        }
    }
    return false;
}

int
cmn_config_check_known(const struct cmn_config *cfg, const char *const *known,
                       struct cmn_err *err)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const struct cfg_entry *e = &cfg->ents[i];
        char fkey[128];

        if (!cfg_known(known, e->section, NULL)) {
            cmn_err_set(err, "%s:%d: [%s]: unknown section", cfg->name, e->line,
                        e->section);
            return CMN_INVALID;
        }
        if (cfg_known(known, e->section, e->key)) {
            continue;
        }
        /* "password = x" where "password_file" is known: say why, rather
         * than only that the key is unknown. */
        if ((size_t)snprintf(fkey, sizeof(fkey), "%s_file", e->key) <
                sizeof(fkey) &&
            cfg_known(known, e->section, fkey)) {
            cfg_err(cfg, e->line, e->section, e->key, err,
                    "use %s_file = path (secrets are never inline)", e->key);
            return CMN_INVALID;
        }
        cfg_err(cfg, e->line, e->section, e->key, err, "unknown key");
        return CMN_INVALID;
    }
    return CMN_OK;
}
