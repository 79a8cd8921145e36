/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_metrics.c - process-wide Prometheus registry (text format 0.0.4).
 *
 * Registration and rendering take one mutex; updates never do. Every value
 * is a double kept as its IEEE-754 bit pattern in an _Atomic uint64_t, so
 * counters can carry fractions (cmn_metric_add(m, 0.25)) and an update is a
 * compare-and-swap loop rather than a lock. Histogram buckets are plain
 * atomic integer counts per bucket (not cumulative): an observation touches
 * one bucket, and the cumulative le= series and _count are summed at render
 * time, so _count always equals the +Inf bucket in a scrape. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_metrics.h"

enum metric_kind {
    METRIC_COUNTER,
    METRIC_GAUGE,
    METRIC_HISTOGRAM,
};

struct cmn_metric {
    enum metric_kind kind;
    char *name;   /* full name as registered, labels included */
    char *base;   /* name without the {labels} part */
    char *labels; /* inside of the braces, "" when none */
    char *help;
    _Atomic uint64_t value; /* double bits: counter/gauge value, hist sum */
    double *bounds;         /* histogram upper bounds, ascending */
    size_t nbounds;
    _Atomic uint64_t *buckets; /* nbounds + 1 counts, the last is +Inf */
};

const double cmn_metric_latency_buckets[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,  0.5,    1,     2.5,  5,     10,
};
const size_t cmn_metric_latency_buckets_n =
    CMN_ARRAY_LEN(cmn_metric_latency_buckets);

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cmn_metric **reg;
static size_t reg_len;
static size_t reg_cap;

/* Registration happens at start-up: running out of memory there leaves
 * nothing sensible to do, and the header promises never to return NULL. */
static void *
xmalloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);

    if (p == NULL) {
        fputs("cmn_metrics: out of memory\n", stderr);
        abort();
    }
    return p;
}

static char *
xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static uint64_t
dbl_bits(double v)
{
    uint64_t u;

    memcpy(&u, &v, sizeof(u));
    return u;
}

static double
bits_dbl(uint64_t u)
{
    double v;

    memcpy(&v, &u, sizeof(v));
    return v;
}

static void
atomic_add_dbl(_Atomic uint64_t *cell, double v)
{
    uint64_t old = atomic_load_explicit(cell, memory_order_relaxed);

    while (!atomic_compare_exchange_weak_explicit(
        cell, &old, dbl_bits(bits_dbl(old) + v), memory_order_relaxed,
        memory_order_relaxed)) {
    }
}

static void
metric_free(struct cmn_metric *m)
{
    if (m == NULL) {
        return;
    }
    free(m->name);
    free(m->base);
    free(m->labels);
    free(m->help);
    free(m->bounds);
    free(m->buckets);
    free(m);
}

/* Caller holds reg_lock. */
static struct cmn_metric *
find_locked(const char *name)
{
    for (size_t i = 0; i < reg_len; i++) {
        if (strcmp(reg[i]->name, name) == 0) {
            return reg[i];
        }
    }
    return NULL;
}

static struct cmn_metric *
metric_new(enum metric_kind kind, const char *name, const char *help,
           const double *bounds, size_t n)
{
    struct cmn_metric *m = xmalloc(sizeof(*m));
    const char *brace = strchr(name, '{');

    memset(m, 0, sizeof(*m));
    m->kind = kind;
    m->name = xstrndup(name, strlen(name));
    if (brace != NULL) {
        const char *end = strrchr(brace, '}');
        size_t inner = end != NULL && end > brace ? (size_t)(end - brace - 1)
                                                  : strlen(brace + 1);

        m->base = xstrndup(name, (size_t)(brace - name));
        m->labels = xstrndup(brace + 1, inner);
    } else {
        m->base = xstrndup(name, strlen(name));
        m->labels = xstrndup("", 0);
    }
    m->help =
        xstrndup(help != NULL ? help : "", help != NULL ? strlen(help) : 0);
    atomic_init(&m->value, dbl_bits(0.0));
    if (kind == METRIC_HISTOGRAM) {
        m->nbounds = n;
        m->bounds = xmalloc(n * sizeof(double));
        if (n > 0) {
            memcpy(m->bounds, bounds, n * sizeof(double));
        }
        m->buckets = xmalloc((n + 1) * sizeof(*m->buckets));
        for (size_t i = 0; i <= n; i++) {
            atomic_init(&m->buckets[i], 0);
        }
    }
    return m;
}

static struct cmn_metric *
metric_register(enum metric_kind kind, const char *name, const char *help,
                const double *bounds, size_t n)
{
    struct cmn_metric *m;

    pthread_mutex_lock(&reg_lock);
    m = find_locked(name);
    if (m != NULL) {
        goto out;
    }
    if (reg_len == reg_cap) {
        size_t cap = reg_cap == 0 ? 32 : reg_cap * 2;
        struct cmn_metric **grown = realloc(reg, cap * sizeof(*grown));

        if (grown == NULL) {
            fputs("cmn_metrics: out of memory\n", stderr);
            abort();
        }
        reg = grown;
        reg_cap = cap;
    }
    m = metric_new(kind, name, help, bounds, n);
    reg[reg_len++] = m;
out:
    pthread_mutex_unlock(&reg_lock);
    return m;
}

struct cmn_metric *
cmn_metric_counter(const char *name, const char *help)
{
    return metric_register(METRIC_COUNTER, name, help, NULL, 0);
}

struct cmn_metric *
cmn_metric_gauge(const char *name, const char *help)
{
    return metric_register(METRIC_GAUGE, name, help, NULL, 0);
}

struct cmn_metric *
cmn_metric_histogram(const char *name, const char *help, const double *bounds,
                     size_t n)
{
    return metric_register(METRIC_HISTOGRAM, name, help, bounds, n);
}

void
cmn_metric_inc(struct cmn_metric *m)
{
    cmn_metric_add(m, 1.0);
}

/* On a histogram this is an observation, so a wrong-kind call still lands
 * somewhere sensible instead of corrupting the sum. */
void
cmn_metric_add(struct cmn_metric *m, double v)
{
    if (m == NULL) {
        return;
    }
    if (m->kind == METRIC_HISTOGRAM) {
        cmn_metric_observe(m, v);
        return;
    }
    atomic_add_dbl(&m->value, v);
}

/* Only gauges can be set: a counter must never go backwards. */
void
cmn_metric_set(struct cmn_metric *m, double v)
{
    if (m == NULL || m->kind != METRIC_GAUGE) {
        return;
    }
    atomic_store_explicit(&m->value, dbl_bits(v), memory_order_relaxed);
}

void
cmn_metric_observe(struct cmn_metric *m, double seconds)
{
    size_t i;

    if (m == NULL || m->kind != METRIC_HISTOGRAM) {
        return;
    }
    for (i = 0; i < m->nbounds; i++) {
        if (seconds <= m->bounds[i]) {
            break;
        }
    }
    atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
    atomic_add_dbl(&m->value, seconds);
}

/* --- rendering --- */

struct sbuf {
    char *p;
    size_t len;
    size_t cap;
    bool failed;
};

static void CMN_PRINTF(2, 3) sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed) {
        return;
    }
    for (;;) {
        size_t room = b->cap - b->len;

        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n + 1;
        char *grown = realloc(b->p, cap);

        if (grown == NULL) {
            b->failed = true;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
}

/* Shortest text that reads back as the same double ("1", "0.25", "+Inf"),
 * which is also what Prometheus clients print for le= bounds. */
static void
fmt_double(double v, char out[40])
{
    if (isnan(v)) {
        snprintf(out, 40, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, 40, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(out, 40, "%.*g", prec, v);
        if (strtod(out, NULL) == v) {
            return;
        }
    }
}

/* HELP text escapes backslash and newline (format 0.0.4). */
static void
render_help(struct sbuf *b, const struct cmn_metric *m)
{
    static const char *const type_names[] = {
        [METRIC_COUNTER] = "counter",
        [METRIC_GAUGE] = "gauge",
        [METRIC_HISTOGRAM] = "histogram",
    };

    sb_printf(b, "# HELP %s ", m->base);
    for (const char *c = m->help; *c != '\0'; c++) {
        if (*c == '\\') {
            sb_printf(b, "\\\\");
        } else if (*c == '\n') {
            sb_printf(b, "\\n");
        } else {
            sb_printf(b, "%c", *c);
        }
    }
    sb_printf(b, "\n# TYPE %s %s\n", m->base, type_names[m->kind]);
}

static void
render_series(struct sbuf *b, const struct cmn_metric *m)
{
    char num[40];

    if (m->kind != METRIC_HISTOGRAM) {
        fmt_double(bits_dbl(atomic_load(&m->value)), num);
        sb_printf(b, "%s %s\n", m->name, num);
        return;
    }

    const char *sep = m->labels[0] != '\0' ? "," : "";
    unsigned long long cum = 0;

    for (size_t i = 0; i <= m->nbounds; i++) {
        char le[40];

        cum += atomic_load(&m->buckets[i]);
        if (i < m->nbounds) {
            fmt_double(m->bounds[i], le);
        } else {
            snprintf(le, sizeof(le), "+Inf");
        }
        sb_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", m->base, m->labels, sep,
                  le, cum);
    }
    fmt_double(bits_dbl(atomic_load(&m->value)), num);
    if (m->labels[0] != '\0') {
        sb_printf(b, "%s_sum{%s} %s\n", m->base, m->labels, num);
        sb_printf(b, "%s_count{%s} %llu\n", m->base, m->labels, cum);
    } else {
        sb_printf(b, "%s_sum %s\n", m->base, num);
        sb_printf(b, "%s_count %llu\n", m->base, cum);
    }
}

/* Series are grouped under their base name in order of first registration,
 * so a family registered in pieces still gets one HELP/TYPE header. */
int
cmn_metrics_render(char **out, size_t *len)
{
    struct sbuf b = {0};
    bool *done = NULL;
    int rc = CMN_OK;

    *out = NULL;
    if (len != NULL) {
        *len = 0;
    }
    b.cap = 4096;
    b.p = malloc(b.cap);
    if (b.p == NULL) {
        return CMN_NOMEM;
    }
    b.p[0] = '\0';

    pthread_mutex_lock(&reg_lock);
    done = calloc(reg_len + 1, sizeof(*done));
    if (done == NULL) {
        rc = CMN_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < reg_len; i++) {
        if (done[i]) {
            continue;
        }
        render_help(&b, reg[i]);
        for (size_t j = i; j < reg_len; j++) {
            if (!done[j] && strcmp(reg[j]->base, reg[i]->base) == 0) {
                render_series(&b, reg[j]);
                done[j] = true;
            }
        }
    }
    if (b.failed) {
        rc = CMN_NOMEM;
    }
out:
    pthread_mutex_unlock(&reg_lock);
    free(done);
    if (rc != CMN_OK) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    if (len != NULL) {
        *len = b.len;
    }
    return CMN_OK;
}

void
cmn_metrics_reset(void)
{
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < reg_len; i++) {
        metric_free(reg[i]);
    }
    free(reg);
    reg = NULL;
    reg_len = 0;
    reg_cap = 0;
    pthread_mutex_unlock(&reg_lock);
}
