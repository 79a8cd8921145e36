/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fscctl.h - subcommands of the admin CLI that live in their own files,
 * and the HTTP helper they share. */
#ifndef FSCCTL_H
#define FSCCTL_H

#include <jansson.h>

#include "cmn_secret.h"

/* Exit status when the daemon cannot be reached at all (no HTTP answer):
 * distinct from 1 (it answered and refused) and 2 (usage, config). */
#define FSCCTL_UNREACHABLE 3
#define FSCCTL_URL_MAX     1024

/* Where a request goes. */
struct fscctl_target {
    const char *daemon; /* "fsc-connector", "fsc-sso": for messages */
    char base[FSCCTL_URL_MAX];
    const struct cmn_secret *key; /* sent as Bearer; may be NULL */
    const char *ca_file;          /* may be NULL */
    const char *address_from;     /* where base came from, for messages */
};

/* One request (fscctl_http.c): 0 with *status and *out (the JSON reply,
 * json_decref) for any HTTP answer; FSCCTL_UNREACHABLE or 1 after
 * printing one clear line when no usable answer came. */
int fscctl_http_json(const struct fscctl_target *t, const char *method,
                     const char *path, const char *body, long *status,
                     json_t **out);

/* fscctl finesse-check ... (fscctl_finesse_check.c); argv[0] is
 * "finesse-check". Returns the exit status. */
int fscctl_finesse_check(int argc, char **argv);

/* fscctl saml-verify ... (fscctl_saml_verify.c): a SAML Response checked
 * offline by fsc-sso's verifier; argv[0] is "saml-verify". */
int fscctl_saml_verify(int argc, char **argv);

/* fscctl check-config [--for DAEMON] FILE (fscctl_check_config.c); argv[0]
 * is "check-config". Returns the exit status. */
int fscctl_check_config(int argc, char **argv);

/* fscctl [options] session revoke USER (fscctl_session.c); argv is the
 * whole command line (options may come before or after "session").
 * Returns the exit status. */
int fscctl_session(int argc, char **argv);

#endif
