/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_log.c - key=value log lines on stderr, one write per line, with
 * control characters escaped so network input cannot forge lines. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "cmn_log.h"

/* A line never exceeds this; longer text is cut and ends in "...". */
#define LOG_LINE_MAX 4096
/* Longest request id kept; ids are ours (random) so this is generous. */
#define LOG_REQ_MAX 64

static atomic_int log_level = CMN_LOG_INFO;
static char log_proc[64] = "fsc";
static FILE *log_stream; /* NULL means stderr */
static _Thread_local char log_req[LOG_REQ_MAX + 1];

static const char *const level_names[] = {
    [CMN_LOG_ERR] = "err",       [CMN_LOG_WARN] = "warn",
    [CMN_LOG_NOTICE] = "notice", [CMN_LOG_INFO] = "info",
    [CMN_LOG_DEBUG] = "debug",
};

void
cmn_log_init(const char *proc, enum cmn_log_level level)
{
    if (proc != NULL) {
        snprintf(log_proc, sizeof(log_proc), "%s", proc);
    }
    cmn_log_set_level(level);
}

void
cmn_log_set_level(enum cmn_log_level level)
{
    if ((int)level < CMN_LOG_ERR) {
        level = CMN_LOG_ERR;
    }
    if (level > CMN_LOG_DEBUG) {
        level = CMN_LOG_DEBUG;
    }
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

bool
cmn_log_enabled(enum cmn_log_level level)
{
    /* Relaxed is enough: a level change needs no ordering with the lines
     * written around it, and this runs before every log call. */
    return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

int
cmn_log_parse_level(const char *s, enum cmn_log_level *out)
{
    if (s == NULL) {
        return CMN_INVALID;
    }
    for (size_t i = 0; i < CMN_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum cmn_log_level)i;
            return CMN_OK;
        }
    }
    return CMN_INVALID;
}

void
cmn_log_set_request_id(const char *id)
{
    if (id == NULL) {
        log_req[0] = '\0';
        return;
    }
    snprintf(log_req, sizeof(log_req), "%s", id);
}

void
cmn_log_set_stream(FILE *fp)
{
    log_stream = fp;
}

/* Append src to buf[*pos..cap) with control characters escaped. Stops
 * before an escape sequence that would not fit whole. Returns false when
 * some of src did not fit. */
static bool
append_escaped(char *buf, size_t *pos, size_t cap, const char *src)
{
    static const char hex[] = "0123456789abcdef";

    for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
        char esc[4];
        size_t n;

        if (*p == '\n') {
            memcpy(esc, "\\n", 2);
            n = 2;
        } else if (*p == '\r') {
            memcpy(esc, "\\r", 2);
            n = 2;
        } else if (*p == '\t') {
            memcpy(esc, "\\t", 2);
            n = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[*p >> 4];
            esc[3] = hex[*p & 0xf];
            n = 4;
        } else {
            esc[0] = (char)*p;
            n = 1;
        }
        if (*pos + n > cap) {
            return false;
        }
        memcpy(buf + *pos, esc, n);
        *pos += n;
    }
    return true;
}

/* Plain append of trusted text; false when cut. */
static bool
append_raw(char *buf, size_t *pos, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if (*pos + n > cap) {
        n = cap - *pos;
        memcpy(buf + *pos, src, n);
        *pos += n;
        return false;
    }
    memcpy(buf + *pos, src, n);
    *pos += n;
    return true;
}

static void
format_ts(char *out, size_t size)
{
    long long ms = cmn_wall_ms();
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;

    if (gmtime_r(&sec, &tm) == NULL) {
        snprintf(out, size, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

void
cmn_log_write(enum cmn_log_level level, const char *fn, const char *fmt, ...)
{
    char text[LOG_LINE_MAX];
    char line[LOG_LINE_MAX];
    /* Room for any int in every field keeps -Wformat-truncation quiet. */
    char ts[96];
    char tail[8 + 4 * LOG_REQ_MAX];
    size_t pos = 0;
    size_t tail_len = 0;
    size_t cap;
    bool cut = false;
    va_list ap;
    FILE *fp = log_stream != NULL ? log_stream : stderr;

    if ((int)level < CMN_LOG_ERR || level > CMN_LOG_DEBUG) {
        level = CMN_LOG_ERR;
    }
    va_start(ap, fmt);
    /* vsnprintf truncation is reported below through the length. */
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0) {
        snprintf(text, sizeof(text), "log_format_error=1");
        n = 0;
    }
    if ((size_t)n >= sizeof(text)) {
        cut = true;
    }

    /* The request id and newline are built first so that they survive a
     * truncated message: req= is what ties a line to its request. */
    if (log_req[0] != '\0') {
        memcpy(tail, " req=", 5);
        tail_len = 5;
        append_escaped(tail, &tail_len, sizeof(tail) - 1, log_req);
    }
    tail[tail_len++] = '\n';

    format_ts(ts, sizeof(ts));
    /* Leave room for "..." and the tail. */
    cap = sizeof(line) - tail_len - 3;
    append_raw(line, &pos, cap, "ts=");
    append_raw(line, &pos, cap, ts);
    append_raw(line, &pos, cap, " level=");
    append_raw(line, &pos, cap, level_names[level]);
    append_raw(line, &pos, cap, " proc=");
    append_escaped(line, &pos, cap, log_proc);
    append_raw(line, &pos, cap, " fn=");
    append_escaped(line, &pos, cap, fn != NULL ? fn : "?");
    if (text[0] != '\0') {
        append_raw(line, &pos, cap, " ");
        if (!append_escaped(line, &pos, cap, text)) {
            cut = true;
        }
    }
    if (cut) {
        memcpy(line + pos, "...", 3);
        pos += 3;
    }
    memcpy(line + pos, tail, tail_len);
    pos += tail_len;

    /* One fwrite per line: stdio locks the stream for the call, so lines
     * from several threads never interleave. */
    fwrite(line, 1, pos, fp);
    fflush(fp);
}

void
cmn_log_fingerprint(const char *secret, char out[13])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    const char *s = secret != NULL ? secret : "";

    if (EVP_Digest(s, strlen(s), md, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len < 6) {
        memcpy(out, "000000000000", 13);
        return;
    }
    for (size_t i = 0; i < 6; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[12] = '\0';
}
