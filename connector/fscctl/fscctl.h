/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fscctl.h - subcommands of the admin CLI that live in their own files. */
#ifndef FSCCTL_H
#define FSCCTL_H

/* fscctl finesse-check ... (fscctl_finesse_check.c); argv[0] is
 * "finesse-check". Returns the exit status. */
int fscctl_finesse_check(int argc, char **argv);

/* fscctl saml-verify ... (fscctl_saml_verify.c): a SAML Response checked
 * offline by fsc-sso's verifier; argv[0] is "saml-verify". */
int fscctl_saml_verify(int argc, char **argv);

#endif
