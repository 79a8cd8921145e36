/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmpp_xml.h - XMPP's XML, as it arrives from a server: a small element
 * tree for stanzas and a parser that cuts them out of either framing.
 *
 *   FIN_XMPP_FRAMING_STREAM     TCP (RFC 6120): one endless document, the
 *                               <stream:stream> root opened once, every
 *                               child of the root a stanza; bytes arrive in
 *                               arbitrary pieces (fin_xmpp_parser_feed).
 *   FIN_XMPP_FRAMING_WEBSOCKET  RFC 7395: every WebSocket message is one
 *                               complete element: <open/>, <close/> (namespace
 *                               urn:ietf:params:xml:ns:xmpp-framing) or a
 *                               stanza (fin_xmpp_parser_message).
 *
 * Both report the same three things to the session: the stream opened
 * (with the root's or <open/>'s attributes), a stanza (an element tree the
 * callback borrows), the stream closed. Pure: bytes in, callbacks out, no
 * I/O, so it can be fuzzed (tests/fuzz/fuzz_xmpp_xml.c).
 *
 * Hardening (libxml2 2.9 push parser with SAX2 callbacks): a DOCTYPE stops
 * the parse before any of it is read, so no entity is ever declared (no
 * expansion, no external load) and only the five predefined entities and
 * character references exist; comments and processing instructions are
 * refused (RFC 6120 §11.1 forbids them); a stanza may hold at most
 * max_stanza bytes of names, attributes and text, and nest at most
 * FIN_XMPP_XML_MAX_DEPTH deep. Any violation is a parse error: the parser
 * stops for good and the session ends. */
#ifndef FIN_XMPP_XML_H
#define FIN_XMPP_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "cmn.h"

#define FIN_XMPP_XML_MAX_DEPTH 32
#define FIN_XMPP_NS_STREAM     "http://etherx.jabber.org/streams"
#define FIN_XMPP_NS_FRAMING    "urn:ietf:params:xml:ns:xmpp-framing"
#define FIN_XMPP_NS_CLIENT     "jabber:client"

/* One element: local name, namespace URI (NULL when none), attributes as
 * name/value pairs (names with their prefix when they have one, e.g.
 * "xml:lang"), the element's own character data (entities decoded) and
 * its child elements. */
struct fin_xmpp_el {
    char *name;
    char *ns;
    char **attrs; /* 2 * nattrs strings */
    size_t nattrs;
    char *text; /* NUL-terminated, "" when none */
    size_t text_len;
    size_t text_cap;
    struct fin_xmpp_el *children;
    struct fin_xmpp_el *last_child;
    struct fin_xmpp_el *next;
    struct fin_xmpp_el *parent;
};

/* Value of attribute name, NULL when absent. */
const char *fin_xmpp_el_attr(const struct fin_xmpp_el *el, const char *name);
/* First child with this local name and namespace (ns NULL: any). */
struct fin_xmpp_el *fin_xmpp_el_child(const struct fin_xmpp_el *el,
                                      const char *name, const char *ns);
/* True when el has this local name and namespace (ns NULL: any). */
bool fin_xmpp_el_is(const struct fin_xmpp_el *el, const char *name,
                    const char *ns);
void fin_xmpp_el_free(struct fin_xmpp_el *el);

enum fin_xmpp_framing {
    FIN_XMPP_FRAMING_STREAM,
    FIN_XMPP_FRAMING_WEBSOCKET,
};

struct fin_xmpp_parser_cbs {
    /* the stream header (STREAM) or <open/> (WEBSOCKET): root holds its
     * attributes (id, from, version), no children */
    void (*on_open)(void *cls, const struct fin_xmpp_el *root);
    /* a complete top-level element; borrowed for the call */
    void (*on_stanza)(void *cls, const struct fin_xmpp_el *stanza);
    /* </stream:stream> or <close/> */
    void (*on_close)(void *cls);
};

struct fin_xmpp_parser;

/* max_stanza: cap on one stanza's names, attributes and text, in bytes. */
struct fin_xmpp_parser *fin_xmpp_parser_new(enum fin_xmpp_framing framing,
                                            size_t max_stanza,
                                            const struct fin_xmpp_parser_cbs *cbs,
                                            void *cls);
void fin_xmpp_parser_free(struct fin_xmpp_parser *p);

/* STREAM: the next bytes, any split. CMN_OK, or CMN_INVALID with
 * fin_xmpp_parser_error() saying why (the parser then refuses everything).
 * A callback may call fin_xmpp_parser_stop() (the stream is about to
 * restart after STARTTLS or SASL): the rest of buf is then ignored. */
int fin_xmpp_parser_feed(struct fin_xmpp_parser *p, const char *buf,
                         size_t len) CMN_NODISCARD;
/* WEBSOCKET: one whole message (it must be exactly one element; an empty
 * or all-whitespace message is ignored). Same return values. */
int fin_xmpp_parser_message(struct fin_xmpp_parser *p, const char *buf,
                            size_t len) CMN_NODISCARD;
/* Ignore the rest of the bytes being fed (from a callback). */
void fin_xmpp_parser_stop(struct fin_xmpp_parser *p);
/* A new stream begins (RFC 6120 §4.3.3 stream restart): forget the old
 * root; the next bytes must open a new one. */
int fin_xmpp_parser_reset(struct fin_xmpp_parser *p) CMN_NODISCARD;
/* Why the last call failed ("" when it did not). */
const char *fin_xmpp_parser_error(const struct fin_xmpp_parser *p);

/* A growing buffer for the stanzas the session writes. Appends never fail
 * on their own: an allocation failure sets oom, which the writer checks
 * once before sending. */
struct fin_xmpp_out {
    char *data; /* NUL-terminated */
    size_t len;
    size_t cap;
    bool oom;
};

/* s as is (markup). */
void fin_xmpp_out_raw(struct fin_xmpp_out *o, const char *s);
/* s as character data or an attribute value: & < > " ' escaped. */
void fin_xmpp_out_esc(struct fin_xmpp_out *o, const char *s);
/* Wipes (stanzas may carry a password) and frees. */
void fin_xmpp_out_free(struct fin_xmpp_out *o);

#endif
