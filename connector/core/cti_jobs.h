/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_jobs.h - a small pool of threads for blocking work (Finesse REST,
 * fsc-sso calls) so that HTTP threads never block. Jobs run in FIFO
 * order; a job owns its argument. */
#ifndef CTI_JOBS_H
#define CTI_JOBS_H

#include "cmn.h"

struct cti_jobs;

typedef void (*cti_job_fn)(void *arg);

struct cti_jobs *cti_jobs_new(int threads, size_t max_queued);
/* CMN_AGAIN when the queue is full (the caller answers 503). */
int cti_jobs_submit(struct cti_jobs *j, cti_job_fn fn, void *arg) CMN_NODISCARD;
/* Runs the queued jobs, then joins the threads. */
void cti_jobs_free(struct cti_jobs *j);

#endif
