/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_secret.c - secrets read from owner-only files, wiped when freed;
 * public files (certificates) read with the same care but any mode. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmn_secret.h"

void
cmn_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0) {
        explicit_bzero(p, n);
    }
}

struct cmn_secret *
cmn_secret_new(const void *data, size_t len)
{
    struct cmn_secret *s;

    if (len == SIZE_MAX) {
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    s->data = malloc(len + 1);
    if (s->data == NULL) {
        free(s);
        return NULL;
    }
    if (len > 0) {
        memcpy(s->data, data, len);
    }
    s->data[len] = '\0';
    s->len = len;
    return s;
}

void
cmn_secret_free(struct cmn_secret *s)
{
    if (s == NULL) {
        return;
    }
    if (s->data != NULL) {
        cmn_wipe(s->data, s->len + 1);
        free(s->data);
    }
    free(s);
}

/* What a file must be to be read: a secret is owner-only and never a
 * symbolic link; a public file only must not be writable by others. */
enum file_kind {
    FILE_SECRET,
    FILE_PUBLIC,
};

static struct cmn_secret *
read_file(const char *path, size_t max_len, bool trim, enum file_kind kind,
          struct cmn_err *err)
{
    struct cmn_secret *s = NULL;
    unsigned char *buf = NULL;
    size_t cap = 0;
    size_t len = 0;
    struct stat st;
    int fd;

    /* O_NOFOLLOW (secrets): a symlink could point a secret at a file
     * someone else controls. O_NONBLOCK: a FIFO must not hang start-up;
     * fstat refuses it below, and the flag has no effect on regular
     * files. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK |
                        (kind == FILE_SECRET ? O_NOFOLLOW : 0));
    if (fd < 0) {
        if (errno == ELOOP && kind == FILE_SECRET) {
            cmn_err_set(err, "%s: is a symbolic link (refused)", path);
        } else {
            cmn_err_set(err, "%s: %s", path, strerror(errno));
        }
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
    if (kind == FILE_SECRET && (st.st_mode & 077) != 0) {
        cmn_err_set(err, "%s: permissions %04o are too open; chmod 600", path,
                    (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (kind == FILE_PUBLIC && (st.st_mode & 022) != 0) {
        cmn_err_set(err,
                    "%s: permissions %04o: writable by group or others; "
                    "chmod 644",
                    path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    if (st.st_size == 0) {
        cmn_err_set(err, "%s: empty file", path);
        goto out;
    }
    if (max_len == 0 || max_len >= SIZE_MAX - 2 ||
        (unsigned long long)st.st_size > max_len) {
        cmn_err_set(err, "%s: larger than %zu bytes", path, max_len);
        goto out;
    }
    /* Read up to max_len + 1 whatever fstat said: the file may grow
     * between the two calls. */
    cap = max_len + 2;
    buf = malloc(cap);
    if (buf == NULL) {
        cmn_err_set(err, "%s: out of memory", path);
        goto out;
    }
    while (len < max_len + 1) {
        ssize_t r = read(fd, buf + len, max_len + 1 - len);
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
    if (len > max_len) {
        cmn_err_set(err, "%s: larger than %zu bytes", path, max_len);
        goto out;
    }
    if (trim && len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r') {
            len--;
        }
    }
    if (len == 0) {
        cmn_err_set(err, "%s: empty file", path);
        goto out;
    }
    s = cmn_secret_new(buf, len);
    if (s == NULL) {
        cmn_err_set(err, "%s: out of memory", path);
    }
out:
    if (buf != NULL) {
        cmn_wipe(buf, cap);
        free(buf);
    }
    if (fd >= 0) {
        close(fd);
    }
    return s;
}

struct cmn_secret *
cmn_secret_read_file(const char *path, size_t max_len, bool trim,
                     struct cmn_err *err)
{
    return read_file(path, max_len, trim, FILE_SECRET, err);
}

struct cmn_secret *
cmn_public_read_file(const char *path, size_t max_len, struct cmn_err *err)
{
    return read_file(path, max_len, false, FILE_PUBLIC, err);
}
