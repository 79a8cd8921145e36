/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_jobs.c - fixed thread pool with a bounded FIFO queue. */
#include <pthread.h>
#include <stdlib.h>

#include "cmn_jobs.h"

struct job {
    cmn_job_fn fn;
    void *arg;
    struct job *next;
};

struct cmn_jobs {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    struct job *head, *tail;
    size_t queued, max_queued;
    bool stopping;
    int nthreads;
    pthread_t threads[];
};

static void *
run(void *p)
{
    struct cmn_jobs *j = p;

    pthread_mutex_lock(&j->lock);
    for (;;) {
        while (j->head == NULL && !j->stopping) {
            pthread_cond_wait(&j->ready, &j->lock);
        }
        struct job *job = j->head;
        if (job == NULL) {
            break; /* stopping and drained */
        }
        j->head = job->next;
        if (j->head == NULL) {
            j->tail = NULL;
        }
        j->queued--;
        pthread_mutex_unlock(&j->lock);
        job->fn(job->arg);
        free(job);
        pthread_mutex_lock(&j->lock);
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

struct cmn_jobs *
cmn_jobs_new(int threads, size_t max_queued)
{
    struct cmn_jobs *j =
        calloc(1, sizeof(*j) + (size_t)threads * sizeof(pthread_t));

    if (j == NULL) {
        return NULL;
    }
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->ready, NULL);
    j->max_queued = max_queued;
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&j->threads[i], NULL, run, j) != 0) {
            break;
        }
        j->nthreads++;
    }
    if (j->nthreads == 0) {
        free(j);
        return NULL;
    }
    return j;
}

int
cmn_jobs_submit(struct cmn_jobs *j, cmn_job_fn fn, void *arg)
{
    struct job *job = malloc(sizeof(*job));
    int rc = CMN_OK;

    if (job == NULL) {
        return CMN_NOMEM;
    }
    job->fn = fn;
    job->arg = arg;
    job->next = NULL;
    pthread_mutex_lock(&j->lock);
    if (j->stopping || j->queued >= j->max_queued) {
        rc = CMN_AGAIN;
    } else {
        if (j->tail != NULL) {
            j->tail->next = job;
        } else {
            j->head = job;
        }
        j->tail = job;
        j->queued++;
        pthread_cond_signal(&j->ready);
    }
    pthread_mutex_unlock(&j->lock);
    if (rc != CMN_OK) {
        free(job);
    }
    return rc;
}

void
cmn_jobs_free(struct cmn_jobs *j)
{
    if (j == NULL) {
        return;
    }
    pthread_mutex_lock(&j->lock);
    j->stopping = true;
    pthread_cond_broadcast(&j->ready);
    pthread_mutex_unlock(&j->lock);
    for (int i = 0; i < j->nthreads; i++) {
        pthread_join(j->threads[i], NULL);
    }
    pthread_mutex_destroy(&j->lock);
    pthread_cond_destroy(&j->ready);
    free(j);
}
