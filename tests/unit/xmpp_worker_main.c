/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* xmpp_worker_main.c - test-only XMPP worker executable: the same
 * fin_xmpp_worker_main() that "fsc-connector --xmpp-worker" runs, without
 * the rest of the connector (used by test_fin_xmpp). */
#include "fin_xmpp.h"

int
main(int argc, char **argv)
{
    return fin_xmpp_worker_main(argc, argv);
}
