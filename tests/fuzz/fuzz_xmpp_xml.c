/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_xmpp_xml.c - what an XMPP server (or anyone between it and us) can
 * send: arbitrary bytes into the stanza parser in both framings and into a
 * whole session that has just connected.
 *
 * Input: byte 0 picks the framing (bit 0: WebSocket messages, split at NUL
 * bytes; else a stream fed in chunks of 1 + byte 1 bytes) and whether a
 * session (bit 1) or the bare parser runs. The session must never write
 * more than one final event, never crash, and free everything. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_xml.h"
#include "fin_xmpp_session.h"
#include "fin_xmpp_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int finals;

static void
on_open(void *cls, const struct fin_xmpp_el *root)
{
    (void)cls;
    (void)fin_xmpp_el_attr(root, "id");
}

static void
on_stanza(void *cls, const struct fin_xmpp_el *st)
{
    (void)cls;
    /* walk it: every child, every attribute */
    for (const struct fin_xmpp_el *c = st->children; c != NULL; c = c->next) {
        (void)fin_xmpp_el_child(c, "x", NULL);
        (void)fin_xmpp_el_attr(c, "id");
    }
}

static void
on_close(void *cls)
{
    (void)cls;
}

static int
f_send(void *io, const char *d, size_t n)
{
    (void)io;
    (void)d;
    (void)n;
    return CMN_OK;
}

static int
f_tls(void *io)
{
    (void)io;
    return CMN_OK;
}

static void
f_close(void *io)
{
    (void)io;
}

static void
f_event(void *cls, const struct fin_xmpp_event *ev)
{
    (void)cls;
    if (ev->kind == FIN_XMPP_OFFLINE || ev->kind == FIN_XMPP_AUTH_FAILED) {
        if (++finals > 1) {
            abort();
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    const struct fin_xmpp_parser_cbs cbs = {on_open, on_stanza, on_close};
    const struct fin_xmpp_session_io io = {.send = f_send,
                                           .start_tls = f_tls,
                                           .close = f_close,
                                           .event = f_event};
    bool ws, use_session;
    size_t chunk, off = 2;
    struct fin_xmpp_parser *p = NULL;
    struct fin_xmpp_session *s = NULL;

    if (!init) {
        cmn_xml_init();
        init = true;
    }
    if (size < 2) {
        return 0;
    }
    ws = data[0] & 1;
    use_session = data[0] & 2;
    chunk = 1 + data[1];
    finals = 0;
    if (use_session) {
        struct cmn_err err = {{0}};
        struct fin_xmpp_session_opts o = {
            .agent = "1001",
            .jid = "1001@finesse.test",
            .password = "pw",
            .framing = ws ? FIN_XMPP_FRAMING_WEBSOCKET : FIN_XMPP_FRAMING_STREAM,
            .starttls = true,
            .max_stanza = 65536,
        };
        s = fin_xmpp_session_new(&o, &io, 0, &err);
        if (s == NULL) {
            abort();
        }
        fin_xmpp_session_transport_up(s, false);
    } else {
        p = fin_xmpp_parser_new(ws ? FIN_XMPP_FRAMING_WEBSOCKET
                                   : FIN_XMPP_FRAMING_STREAM,
                                65536, &cbs, NULL);
        if (p == NULL) {
            abort();
        }
    }
    while (off < size) {
        size_t n;
        if (ws) {
            const uint8_t *nul = memchr(data + off, 0, size - off);
            n = nul ? (size_t)(nul - (data + off)) : size - off;
        } else {
            n = size - off < chunk ? size - off : chunk;
        }
        if (s != NULL && ws) {
            fin_xmpp_session_message(s, (const char *)data + off, n);
        } else if (s != NULL) {
            fin_xmpp_session_data(s, (const char *)data + off, n);
            /* a STARTTLS proceed: pretend the handshake succeeded */
            fin_xmpp_session_secured(s);
        } else if (ws) {
            if (fin_xmpp_parser_message(p, (const char *)data + off, n) !=
                CMN_OK) {
                break; /* refused for good */
            }
        } else if (fin_xmpp_parser_feed(p, (const char *)data + off, n) !=
                   CMN_OK) {
            if (fin_xmpp_parser_reset(p) == CMN_OK) {
                abort(); /* a failed parser stays failed */
            }
            break;
        }
        off += n + (ws ? 1 : 0);
    }
    if (s != NULL) {
        fin_xmpp_session_tick(s, 100000); /* timeouts */
        fin_xmpp_session_close(s, false);
        fin_xmpp_session_transport_down(s, FIN_XMPP_DOWN_CLOSED, "end");
        fin_xmpp_session_free(s);
    }
    fin_xmpp_parser_free(p);
    return 0;
}
