/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* sf_spool.c - the local-disk spool for call logs Redis did not take; see
 * sf_spool.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmn_log.h"
#include "sf_spool.h"

#define SPOOL_PATH_MAX 1024
#define SPOOL_LINE_MAX (256 * 1024) /* a Task's fields are at most 128 KiB */

struct sf_spool {
    pthread_mutex_t mu; /* appends, and the rename that starts a drain */
    char log[SPOOL_PATH_MAX];
    char draining[SPOOL_PATH_MAX];
    char tmp[SPOOL_PATH_MAX];
    char dir[SPOOL_PATH_MAX];
};

/* fsync of the directory: a rename or a new file survives a power cut */
static void
sync_dir(const struct sf_spool *sp)
{
    int fd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

struct sf_spool *
sf_spool_open(const char *dir, struct cmn_err *err)
{
    struct sf_spool *sp;
    int fd;

    if (strlen(dir) > SPOOL_PATH_MAX - 32) {
        cmn_err_set(err, "spool directory path too long");
        return NULL;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        cmn_err_set(err, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    sp = calloc(1, sizeof(*sp));
    if (sp == NULL) {
        cmn_err_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&sp->mu, NULL);
    snprintf(sp->dir, sizeof(sp->dir), "%s", dir);
    snprintf(sp->log, sizeof(sp->log), "%s/spool.log", dir);
    snprintf(sp->draining, sizeof(sp->draining), "%s/spool.draining", dir);
    snprintf(sp->tmp, sizeof(sp->tmp), "%s/spool.draining.tmp", dir);
    /* prove now that we can write there, not at the first Redis outage */
    fd = open(sp->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        cmn_err_set(err, "%s: %s", sp->log, strerror(errno));
        sf_spool_close(sp);
        return NULL;
    }
    close(fd);
    return sp;
}

void
sf_spool_close(struct sf_spool *sp)
{
    if (sp == NULL) {
        return;
    }
    pthread_mutex_destroy(&sp->mu);
    free(sp);
}

static int
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int
sf_spool_append(struct sf_spool *sp, const char *dialog, const json_t *fields,
                struct cmn_err *err)
{
    json_t *o = json_pack("{s:s, s:O}", "dialog", dialog, "fields", fields);
    char *line = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    int rc = CMN_IO;
    int fd;

    json_decref(o);
    if (line == NULL) {
        cmn_err_set(err, "out of memory");
        return CMN_NOMEM;
    }
    pthread_mutex_lock(&sp->mu);
    fd = open(sp->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0 && write_all(fd, line, strlen(line)) == 0 &&
        write_all(fd, "\n", 1) == 0 && fdatasync(fd) == 0) {
        rc = CMN_OK;
    } else {
        cmn_err_set(err, "%s: %s", sp->log, strerror(errno));
    }
    if (fd >= 0) {
        close(fd);
    }
    pthread_mutex_unlock(&sp->mu);
    free(line);
    return rc;
}

static bool
non_empty(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && st.st_size > 0;
}

bool
sf_spool_pending(struct sf_spool *sp)
{
    return non_empty(sp->draining) || non_empty(sp->log);
}

/* The lines of f from the current position to the end, into a new file
 * that replaces spool.draining. */
static int
keep_rest(struct sf_spool *sp, FILE *f, const char *first)
{
    FILE *out;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;

    out = fopen(sp->tmp, "we");
    if (out == NULL) {
        return -1;
    }
    if (fputs(first, out) < 0) {
        rc = -1;
    }
    while (rc == 0 && (n = getline(&line, &cap, f)) > 0) {
        if (fwrite(line, 1, (size_t)n, out) != (size_t)n) {
            rc = -1;
        }
    }
    free(line);
    if (fflush(out) != 0 || fdatasync(fileno(out)) != 0) {
        rc = -1;
    }
    if (fclose(out) != 0) {
        rc = -1;
    }
    if (rc == 0 && rename(sp->tmp, sp->draining) != 0) {
        rc = -1;
    }
    sync_dir(sp);
    return rc;
}

long
sf_spool_drain(struct sf_spool *sp, sf_spool_put_fn put, void *ud)
{
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long moved = 0;
    bool refused = false;

    if (!non_empty(sp->draining)) {
        /* start a new drain with what was appended so far */
        pthread_mutex_lock(&sp->mu);
        if (non_empty(sp->log) && rename(sp->log, sp->draining) != 0) {
            pthread_mutex_unlock(&sp->mu);
            cmn_log_err("event=spool_failed op=rename detail=\"%s\"",
                        strerror(errno));
            return -1;
        }
        pthread_mutex_unlock(&sp->mu);
        sync_dir(sp);
    }
    f = fopen(sp->draining, "re");
    if (f == NULL) {
        return errno == ENOENT ? 0 : -1;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        json_t *o =
            n < SPOOL_LINE_MAX ? json_loadb(line, (size_t)n, 0, NULL) : NULL;
        const char *dialog = json_string_value(json_object_get(o, "dialog"));
        json_t *fields = json_object_get(o, "fields");

        if (dialog == NULL || !json_is_object(fields)) {
            cmn_log_err("event=spool_line_dropped detail=\"malformed line "
                        "of %zd bytes\"",
                        n);
            json_decref(o);
            continue;
        }
        if (put(ud, dialog, fields) != CMN_OK) {
            json_decref(o);
            refused = true;
            break;
        }
        json_decref(o);
        moved++;
    }
    if (refused) {
        /* this line and the rest stay for the next drain */
        if (keep_rest(sp, f, line) != 0) {
            cmn_log_err("event=spool_failed op=keep detail=\"%s\"",
                        strerror(errno));
            moved = moved > 0 ? moved : -1;
        }
    } else if (unlink(sp->draining) != 0 && errno != ENOENT) {
        cmn_log_err("event=spool_failed op=unlink detail=\"%s\"",
                    strerror(errno));
    }
    free(line);
    fclose(f);
    return moved;
}
