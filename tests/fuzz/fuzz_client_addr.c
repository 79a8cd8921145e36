/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_client_addr.c - what a request brings that decides who it is
 * counted as, on arbitrary bytes: X-Forwarded-For (cmn_net_client, behind
 * trusted proxies), the counting key of an address, and return_to's query
 * (sso_url_has_param, sso_url_allowed). Input: peer address, '\n',
 * X-Forwarded-For, '\n', a URL. The client found is always a parsable
 * address, the peer, or one the header named. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_net.h"
#include "sso_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cmn_net nets[2];
    static const struct cmn_netlist trusted = {nets, 2};
    static char origin_a[] = "https://connector.example.com";
    static char path_a[] = "/softphone/";
    static const struct sso_allowed_url allowed[] = {{origin_a, path_a}};
    char *text = malloc(size + 1), *xff, *url;
    char out[CMN_ADDR_MAX], key[CMN_ADDR_MAX];
    unsigned char a[16];
    int family;

    if (text == NULL) {
        return 0;
    }
    if (nets[0].family == 0 &&
        (cmn_net_parse("10.0.0.0/8", &nets[0]) != CMN_OK ||
         cmn_net_parse("fd00::/8", &nets[1]) != CMN_OK)) {
        abort();
    }
    memcpy(text, data, size);
    text[size] = '\0';
    xff = strchr(text, '\n');
    if (xff != NULL) {
        *xff++ = '\0';
    }
    url = xff != NULL ? strchr(xff, '\n') : NULL;
    if (url != NULL) {
        *url++ = '\0';
    }
    cmn_net_client(&trusted, text, xff, out);
    if (strlen(out) >= CMN_ADDR_MAX) {
        abort();
    }
    /* a client behind the proxies is an address (the peer may be junk) */
    if (cmn_addr_parse(text, &family, a) && !cmn_addr_parse(out, &family, a)) {
        abort();
    }
    cmn_net_count_key(out, key);
    if (url != NULL) {
        char *origin = NULL;
        (void)sso_url_has_param(url, "handoff");
        if (sso_url_allowed(allowed, 1, url, &origin) &&
            strcmp(origin, "https://connector.example.com") != 0) {
            abort();
        }
        free(origin);
    }
    free(text);
    return 0;
}
