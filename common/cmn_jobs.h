/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_jobs.h - a small pool of threads for blocking work (Finesse REST,
 * IdS and fsc-sso calls, Redis waits) so that HTTP threads never block.
 * Jobs run in FIFO order; a job owns its argument. */
#ifndef CMN_JOBS_H
#define CMN_JOBS_H

#include "cmn.h"

struct cmn_jobs;

typedef void (*cmn_job_fn)(void *arg);

struct cmn_jobs *cmn_jobs_new(int threads, size_t max_queued);
/* CMN_AGAIN when the queue is full (the caller answers 503). */
int cmn_jobs_submit(struct cmn_jobs *j, cmn_job_fn fn, void *arg) CMN_NODISCARD;
/* Runs the queued jobs, then joins the threads. */
void cmn_jobs_free(struct cmn_jobs *j);

#endif
