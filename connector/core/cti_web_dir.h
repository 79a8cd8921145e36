/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cti_web_dir.h - where the softphone's files are when [server] web_dir
 * does not say. */
#ifndef CTI_WEB_DIR_H
#define CTI_WEB_DIR_H

/* <directory of this executable>/FSC_WEB_DIR_FROM_BIN (../share/fsc/web:
 * an installed package, wherever its prefix or root) when that holds
 * index.html, else FSC_WEB_DIR (the source tree: builds, tests). The
 * string is static; any thread. */
const char *cti_web_dir_default(void);

#endif
