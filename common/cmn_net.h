/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_net.h - client addresses: lists of networks ([server]
 * trusted_proxies), the client behind a trusted reverse proxy
 * (X-Forwarded-For) and the key under which one client is counted.
 * Pure functions, no I/O. */
#ifndef CMN_NET_H
#define CMN_NET_H

#include "cmn.h"
#include "cmn_config.h"

#define CMN_ADDR_MAX 64 /* an address as text, NUL included */

/* One network: an address and a prefix length. */
struct cmn_net {
    int family;             /* AF_INET or AF_INET6 */
    unsigned char addr[16]; /* network order; the first 4 for AF_INET */
    unsigned bits;
};

struct cmn_netlist {
    struct cmn_net *nets; /* malloc'd; NULL when empty */
    size_t n;
};

/* "10.0.0.0/8", "192.0.2.7" (a /32), "2001:db8::/32", "::1" (a /128).
 * Bits below the prefix are ignored. CMN_INVALID for anything else. */
int cmn_net_parse(const char *text, struct cmn_net *out) CMN_NODISCARD;

/* An address as text ("192.0.2.7", "2001:db8::1", "[2001:db8::1]",
 * "192.0.2.7:443"): family and bytes; an IPv4-mapped IPv6 address
 * ("::ffff:192.0.2.7") is the IPv4 address. False when it is none. */
bool cmn_addr_parse(const char *text, int *family, unsigned char addr[16]);

/* True when addr (text) is inside one of the list's networks. */
bool cmn_netlist_match(const struct cmn_netlist *l, const char *addr);

void cmn_netlist_cleanup(struct cmn_netlist *l);

/* The client of a request: peer itself unless peer is in trusted; then
 * the addresses of xff (every X-Forwarded-For value, comma-separated, in
 * the order received) are read from the right, each proxy appending the
 * address it saw, and the first one not in trusted is the client (the
 * left-most when all are). Anything left of a value that does not parse
 * is ignored: what a client wrote itself never counts. out gets the
 * address in canonical text. */
void cmn_net_client(const struct cmn_netlist *trusted, const char *peer,
                    const char *xff, char out[CMN_ADDR_MAX]);

/* The key under which a client address is counted (rate limits,
 * failure counts): an IPv4 address itself, an IPv6 address's /64 (one
 * host is routinely given a whole /64, and would otherwise count as
 * 2^64 clients). */
void cmn_net_count_key(const char *addr, char out[CMN_ADDR_MAX]);

/* <section> <key> = comma-separated networks (cmn_net_parse); absent:
 * an empty list. Errors name file, line and key. */
int cmn_config_netlist(const struct cmn_config *cfg, const char *section,
                       const char *key, struct cmn_netlist *out,
                       struct cmn_err *err) CMN_NODISCARD;

#endif
