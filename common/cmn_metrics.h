/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_metrics.h - process-wide Prometheus metrics (text format 0.0.4).
 *
 * Metrics are registered once at start-up and updated lock-free from any
 * thread. A name may carry labels: "fsc_sso_refresh_total{result=\"ok\"}";
 * series sharing a base name are rendered under one HELP/TYPE header. */
#ifndef CMN_METRICS_H
#define CMN_METRICS_H

#include "cmn.h"

struct cmn_metric;

/* Registration returns the existing metric if the full name was registered
 * before. Never NULL (aborts on allocation failure at start-up). */
struct cmn_metric *cmn_metric_counter(const char *name, const char *help);
struct cmn_metric *cmn_metric_gauge(const char *name, const char *help);
/* Histogram with upper bounds in seconds, ascending; +Inf is implied. */
struct cmn_metric *cmn_metric_histogram(const char *name, const char *help,
                                        const double *bounds, size_t n);

void cmn_metric_inc(struct cmn_metric *m);
void cmn_metric_add(struct cmn_metric *m, double v);
void cmn_metric_set(struct cmn_metric *m, double v); /* gauges */
void cmn_metric_observe(struct cmn_metric *m, double seconds);

/* Default latency buckets: 0.5 ms .. 10 s. */
extern const double cmn_metric_latency_buckets[];
extern const size_t cmn_metric_latency_buckets_n;

/* Render every metric; *out malloc'd text, free with free(). */
int cmn_metrics_render(char **out, size_t *len) CMN_NODISCARD;

/* Forget all metrics (tests only). */
void cmn_metrics_reset(void);

#endif
