/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* test_metrics.c - exact Prometheus text for counters, gauges and
 * histograms (labels merged with le), and lock-free updates that add up. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cmn_metrics.h"

static int
reset(void **state)
{
    (void)state;
    cmn_metrics_reset();
    return 0;
}

static char *
render(void)
{
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(cmn_metrics_render(&text, &len), CMN_OK);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    return text;
}

static void
test_empty(void **state)
{
    char *text;

    (void)state;
    text = render();
    assert_string_equal(text, "");
    free(text);
}

static void
test_counter_and_gauge(void **state)
{
    struct cmn_metric *c;
    struct cmn_metric *g;
    char *text;

    (void)state;
    c = cmn_metric_counter("app_logins_total", "Logins.");
    g = cmn_metric_gauge("app_sessions", "Open sessions.");
    assert_ptr_equal(cmn_metric_counter("app_logins_total", "again"), c);
    cmn_metric_inc(c);
    cmn_metric_inc(c);
    cmn_metric_add(c, 0.5);
    cmn_metric_set(c, 100); /* ignored: counters never go backwards */
    cmn_metric_set(g, 7);
    cmn_metric_add(g, -2);
    text = render();
    assert_string_equal(text, "# HELP app_logins_total Logins.\n"
                              "# TYPE app_logins_total counter\n"
                              "app_logins_total 2.5\n"
                              "# HELP app_sessions Open sessions.\n"
                              "# TYPE app_sessions gauge\n"
                              "app_sessions 5\n");
    free(text);
}

static void
test_labels_share_header(void **state)
{
    char *text;

    (void)state;
    cmn_metric_inc(cmn_metric_counter("app_req_total{result=\"ok\"}",
                                      "Requests.\nBy result \\ kind."));
    cmn_metric_inc(cmn_metric_gauge("app_other", "Other."));
    cmn_metric_add(
        cmn_metric_counter("app_req_total{result=\"error\"}", "ignored help"),
        3);
    cmn_metric_inc(cmn_metric_counter("app_req_total{result=\"ok\"}", "x"));
    text = render();
    assert_string_equal(text, "# HELP app_req_total Requests.\\nBy result \\\\ "
                              "kind.\n"
                              "# TYPE app_req_total counter\n"
                              "app_req_total{result=\"ok\"} 2\n"
                              "app_req_total{result=\"error\"} 3\n"
                              "# HELP app_other Other.\n"
                              "# TYPE app_other gauge\n"
                              "app_other 1\n");
    free(text);
}

static void
test_histogram_plain(void **state)
{
    static const double bounds[] = {0.1, 1, 2.5};
    struct cmn_metric *h;
    char *text;

    (void)state;
    h = cmn_metric_histogram("app_lat_seconds", "Latency.", bounds, 3);
    cmn_metric_observe(h, 0.05);
    cmn_metric_observe(h, 0.1); /* le is inclusive */
    cmn_metric_observe(h, 0.5);
    cmn_metric_observe(h, 3);
    text = render();
    assert_string_equal(text, "# HELP app_lat_seconds Latency.\n"
                              "# TYPE app_lat_seconds histogram\n"
                              "app_lat_seconds_bucket{le=\"0.1\"} 2\n"
                              "app_lat_seconds_bucket{le=\"1\"} 3\n"
                              "app_lat_seconds_bucket{le=\"2.5\"} 3\n"
                              "app_lat_seconds_bucket{le=\"+Inf\"} 4\n"
                              "app_lat_seconds_sum 3.65\n"
                              "app_lat_seconds_count 4\n");
    free(text);
}

static void
test_histogram_labels_merge_le(void **state)
{
    static const double bounds[] = {0.25, 0.5};
    struct cmn_metric *a;
    struct cmn_metric *b;
    char *text;

    (void)state;
    a = cmn_metric_histogram("app_dur_seconds{route=\"/a\",code=\"200\"}",
                             "Duration.", bounds, 2);
    b = cmn_metric_histogram("app_dur_seconds{route=\"/b\"}", "Duration.",
                             bounds, 2);
    cmn_metric_observe(a, 0.25);
    cmn_metric_observe(b, 1);
    text = render();
    assert_string_equal(
        text,
        "# HELP app_dur_seconds Duration.\n"
        "# TYPE app_dur_seconds histogram\n"
        "app_dur_seconds_bucket{route=\"/a\",code=\"200\",le=\"0.25\"} 1\n"
        "app_dur_seconds_bucket{route=\"/a\",code=\"200\",le=\"0.5\"} 1\n"
        "app_dur_seconds_bucket{route=\"/a\",code=\"200\",le=\"+Inf\"} "
        "1\n"
        "app_dur_seconds_sum{route=\"/a\",code=\"200\"} 0.25\n"
        "app_dur_seconds_count{route=\"/a\",code=\"200\"} 1\n"
        "app_dur_seconds_bucket{route=\"/b\",le=\"0.25\"} 0\n"
        "app_dur_seconds_bucket{route=\"/b\",le=\"0.5\"} 0\n"
        "app_dur_seconds_bucket{route=\"/b\",le=\"+Inf\"} 1\n"
        "app_dur_seconds_sum{route=\"/b\"} 1\n"
        "app_dur_seconds_count{route=\"/b\"} 1\n");
    free(text);
}

static void
test_latency_buckets(void **state)
{
    struct cmn_metric *h;
    char *text;

    (void)state;
    assert_int_equal(cmn_metric_latency_buckets_n, 14);
    assert_true(cmn_metric_latency_buckets[0] == 0.0005);
    assert_true(cmn_metric_latency_buckets[13] == 10);
    h = cmn_metric_histogram("lat", "L.", cmn_metric_latency_buckets,
                             cmn_metric_latency_buckets_n);
    cmn_metric_observe(h, 0.003);
    text = render();
    assert_non_null(strstr(text, "lat_bucket{le=\"0.0005\"} 0\n"
                                 "lat_bucket{le=\"0.001\"} 0\n"
                                 "lat_bucket{le=\"0.0025\"} 0\n"
                                 "lat_bucket{le=\"0.005\"} 1\n"));
    assert_non_null(strstr(text, "lat_bucket{le=\"10\"} 1\n"
                                 "lat_bucket{le=\"+Inf\"} 1\n"
                                 "lat_sum 0.003\n"
                                 "lat_count 1\n"));
    free(text);
}

#define NTHREADS 8
#define NITER    20000

struct worker_arg {
    struct cmn_metric *c;
    struct cmn_metric *h;
};

static void *
worker(void *p)
{
    struct worker_arg *a = p;

    for (int i = 0; i < NITER; i++) {
        cmn_metric_inc(a->c);
        cmn_metric_observe(a->h, 0.5);
        /* Registration of an existing name from many threads. */
        if (i % 1000 == 0) {
            cmn_metric_inc(cmn_metric_counter("conc_extra_total", "E."));
        }
    }
    return NULL;
}

static void
test_concurrent_updates(void **state)
{
    static const double bounds[] = {1};
    struct worker_arg a;
    pthread_t t[NTHREADS];
    char *text;
    char want[256];

    (void)state;
    a.c = cmn_metric_counter("conc_total", "C.");
    a.h = cmn_metric_histogram("conc_seconds", "H.", bounds, 1);
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, worker, &a), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(t[i], NULL);
    }
    text = render();
    snprintf(want, sizeof(want), "conc_total %d\n", NTHREADS * NITER);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof(want),
             "conc_seconds_bucket{le=\"1\"} %d\n"
             "conc_seconds_bucket{le=\"+Inf\"} %d\n"
             "conc_seconds_sum %d\n"
             "conc_seconds_count %d\n",
             NTHREADS * NITER, NTHREADS * NITER, NTHREADS * NITER / 2,
             NTHREADS * NITER);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof(want), "conc_extra_total %d\n",
             NTHREADS * NITER / 1000);
    assert_non_null(strstr(text, want));
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_empty, reset),
        cmocka_unit_test_setup(test_counter_and_gauge, reset),
        cmocka_unit_test_setup(test_labels_share_header, reset),
        cmocka_unit_test_setup(test_histogram_plain, reset),
        cmocka_unit_test_setup(test_histogram_labels_merge_le, reset),
        cmocka_unit_test_setup(test_latency_buckets, reset),
        cmocka_unit_test_setup(test_concurrent_updates, reset),
    };

    return cmocka_run_group_tests(tests, NULL, reset);
}
