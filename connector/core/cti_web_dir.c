/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_web_dir.c - the default [server] web_dir: the installed copy next
 * to the binary (the .deb puts it in /usr/share/fsc/web), else the source
 * tree the binary was built from. Found from /proc/self/exe, so a package
 * unpacked under another root (dpkg -x, a container image) finds its own
 * files too. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cti_web_dir.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char installed[PATH_MAX];
static const char *chosen = FSC_WEB_DIR;

static void
choose(void)
{
    char exe[PATH_MAX], index[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash;

    if (n <= 0) {
        return;
    }
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (slash == NULL) {
        return;
    }
    *slash = '\0';
    if (snprintf(installed, sizeof(installed), "%s/%s", exe,
                 FSC_WEB_DIR_FROM_BIN) >= (int)sizeof(installed)) {
        return;
    }
    snprintf(index, sizeof(index), "%s/index.html", installed);
    if (access(index, R_OK) == 0) {
        chosen = installed;
    }
}

const char *
cti_web_dir_default(void)
{
    pthread_once(&once, choose);
    return chosen;
}
