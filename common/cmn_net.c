/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_net.c - networks, trusted proxies and client addresses; see
 * cmn_net.h. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cmn_net.h"

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0,    0,
                                            0, 0, 0, 0, 0xff, 0xff};

bool
cmn_addr_parse(const char *text, int *family, unsigned char addr[16])
{
    char buf[CMN_ADDR_MAX];
    size_t n;
    const char *colon;

    if (text == NULL) {
        return false;
    }
    text += strspn(text, " \t");
    n = strcspn(text, " \t");
    if (n == 0 || n >= sizeof(buf)) {
        return false;
    }
    if (text[0] == '[') {
        /* "[v6]" or "[v6]:port" */
        const char *close = memchr(text, ']', n);
        if (close == NULL || (close + 1 != text + n && close[1] != ':')) {
            return false;
        }
        n = (size_t)(close - text - 1);
        text++;
    } else if ((colon = memchr(text, ':', n)) != NULL &&
               memchr(colon + 1, ':', n - (size_t)(colon + 1 - text)) == NULL) {
        n = (size_t)(colon - text); /* "v4:port" */
    }
    memcpy(buf, text, n);
    buf[n] = '\0';
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, buf, addr) == 1) {
        if (memcmp(addr, v4_mapped, sizeof(v4_mapped)) == 0) {
            memmove(addr, addr + 12, 4);
            memset(addr + 4, 0, 12);
            *family = AF_INET;
        } else {
            *family = AF_INET6;
        }
        return true;
    }
    return false;
}

int
cmn_net_parse(const char *text, struct cmn_net *out)
{
    char buf[CMN_ADDR_MAX];
    const char *slash = strchr(text, '/');
    size_t n = slash != NULL ? (size_t)(slash - text) : strlen(text);
    unsigned max;

    memset(out, 0, sizeof(*out));
    if (n == 0 || n >= sizeof(buf) || strchr(text, '[') != NULL) {
        return CMN_INVALID;
    }
    memcpy(buf, text, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return CMN_INVALID;
    }
    out->bits = max;
    if (slash != NULL) {
        char *end;
        long bits = strtol(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end != '\0' || bits < 0 || bits > (long)max) {
            return CMN_INVALID;
        }
        out->bits = (unsigned)bits;
    }
    return CMN_OK;
}

static bool
net_contains(const struct cmn_net *net, int family,
             const unsigned char addr[16])
{
    unsigned full = net->bits / 8, rest = net->bits % 8;

    if (net->family != family) {
        return false;
    }
    if (memcmp(net->addr, addr, full) != 0) {
        return false;
    }
    if (rest == 0) {
        return true;
    }
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (net->addr[full] & mask) == (addr[full] & mask);
}

bool
cmn_netlist_match(const struct cmn_netlist *l, const char *addr)
{
    unsigned char a[16];
    int family;

    if (l == NULL || l->n == 0 || !cmn_addr_parse(addr, &family, a)) {
        return false;
    }
    for (size_t i = 0; i < l->n; i++) {
        if (net_contains(&l->nets[i], family, a)) {
            return true;
        }
    }
    return false;
}

void
cmn_netlist_cleanup(struct cmn_netlist *l)
{
    if (l != NULL) {
        free(l->nets);
        l->nets = NULL;
        l->n = 0;
    }
}

/* canonical text of a parsed address */
static void
addr_text(int family, const unsigned char a[16], char out[CMN_ADDR_MAX])
{
    if (inet_ntop(family, a, out, CMN_ADDR_MAX) == NULL) {
        snprintf(out, CMN_ADDR_MAX, "-");
    }
}

void
cmn_net_client(const struct cmn_netlist *trusted, const char *peer,
               const char *xff, char out[CMN_ADDR_MAX])
{
    unsigned char a[16];
    int family;
    size_t end;

    if (!cmn_addr_parse(peer, &family, a)) {
        snprintf(out, CMN_ADDR_MAX, "%s", peer != NULL ? peer : "-");
        return;
    }
    addr_text(family, a, out);
    if (xff == NULL || !cmn_netlist_match(trusted, out)) {
        return;
    }
    /* right to left: each trusted hop vouches for the one before it */
    end = strlen(xff);
    while (end > 0) {
        size_t start = end;
        char item[CMN_ADDR_MAX];

        while (start > 0 && xff[start - 1] != ',') {
            start--;
        }
        if (end - start >= sizeof(item)) {
            return;
        }
        memcpy(item, xff + start, end - start);
        item[end - start] = '\0';
        if (!cmn_addr_parse(item, &family, a)) {
            return; /* garbage: the last hop we trusted is the client */
        }
        addr_text(family, a, out);
        if (!cmn_netlist_match(trusted, out)) {
            return;
        }
        end = start > 0 ? start - 1 : 0;
    }
}

void
cmn_net_count_key(const char *addr, char out[CMN_ADDR_MAX])
{
    unsigned char a[16];
    int family;

    if (!cmn_addr_parse(addr, &family, a)) {
        snprintf(out, CMN_ADDR_MAX, "%s", addr != NULL ? addr : "-");
        return;
    }
    if (family == AF_INET6) {
        memset(a + 8, 0, 8);
    }
    addr_text(family, a, out);
    if (family == AF_INET6) {
        size_t n = strlen(out);
        snprintf(out + n, CMN_ADDR_MAX - n, "/64");
    }
}

int
cmn_config_netlist(const struct cmn_config *cfg, const char *section,
                   const char *key, struct cmn_netlist *out,
                   struct cmn_err *err)
{
    char **list = NULL;
    size_t n = 0;

    out->nets = NULL;
    out->n = 0;
    if (cmn_config_list(cfg, section, key, false, &list, &n, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (n == 0) {
        free(list);
        return CMN_OK;
    }
    out->nets = calloc(n, sizeof(*out->nets));
    if (out->nets == NULL) {
        free(list);
        cmn_err_set(err, "out of memory");
        return CMN_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (cmn_net_parse(list[i], &out->nets[i]) != CMN_OK) {
            cmn_config_errf(cfg, section, key, err,
                            "'%s' is not an address or network "
                            "(192.0.2.7, 10.0.0.0/8, 2001:db8::/32)",
                            list[i]);
            free(list);
            cmn_netlist_cleanup(out);
            return CMN_INVALID;
        }
    }
    out->n = n;
    free(list);
    return CMN_OK;
}
