/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmpp_xml.c - stanzas cut out of an XMPP stream or out of RFC 7395
 * WebSocket messages with libxml2's push parser and our own SAX2
 * callbacks (no libxml2 tree: a stanza is built as a fin_xmpp_el, handed
 * to the session and freed). See fin_xmpp_xml.h for the rules. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include "fin_xmpp_xml.h"

/* Counted per element on top of its strings, so that a flood of empty
 * elements is bounded like a flood of text. */
#define XML_EL_OVERHEAD 64

struct fin_xmpp_parser {
    enum fin_xmpp_framing framing;
    size_t max_stanza;
    struct fin_xmpp_parser_cbs cbs;
    void *cls;
    xmlSAXHandler sax;
    xmlParserCtxtPtr ctxt;
    int depth;                  /* open elements in the current document */
    bool ws_frame;              /* WEBSOCKET: root is <open/> or <close/> */
    struct fin_xmpp_el *top;    /* stanza being built */
    struct fin_xmpp_el *cur;    /* its innermost open element */
    size_t bytes;               /* counted for top */
    /* WEBSOCKET: what the message holds, delivered once all of it parsed
     * (so "<a/><b/>" or "<a/>junk" delivers nothing) */
    struct fin_xmpp_el *ws_el;  /* the stanza, or <open/>'s attributes */
    enum { WS_NONE, WS_OPEN, WS_STANZA, WS_CLOSE } ws_kind;
    bool failed;                /* sticky: every later call is refused */
    bool stopped;               /* a callback asked to ignore the rest */
    char error[160];
};

/* -- elements ------------------------------------------------------------- */

const char *
fin_xmpp_el_attr(const struct fin_xmpp_el *el, const char *name)
{
    if (el == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < el->nattrs; i++) {
        if (strcmp(el->attrs[2 * i], name) == 0) {
            return el->attrs[2 * i + 1];
        }
    }
    return NULL;
}

bool
fin_xmpp_el_is(const struct fin_xmpp_el *el, const char *name, const char *ns)
{
    if (el == NULL || strcmp(el->name, name) != 0) {
        return false;
    }
    if (ns == NULL) {
        return true;
    }
    return el->ns != NULL && strcmp(el->ns, ns) == 0;
}

struct fin_xmpp_el *
fin_xmpp_el_child(const struct fin_xmpp_el *el, const char *name,
                  const char *ns)
{
    if (el == NULL) {
        return NULL;
    }
    for (struct fin_xmpp_el *c = el->children; c != NULL; c = c->next) {
        if (fin_xmpp_el_is(c, name, ns)) {
            return c;
        }
    }
    return NULL;
}

void
fin_xmpp_el_free(struct fin_xmpp_el *el)
{
    /* iterative: depth is capped, but a wide tree must not recurse */
    while (el != NULL) {
        if (el->children != NULL) {
            struct fin_xmpp_el *c = el->children;
            el->children = c->next;
            c->next = NULL;
            c->parent = NULL;
            fin_xmpp_el_free(c); /* depth <= FIN_XMPP_XML_MAX_DEPTH */
            continue;
        }
        for (size_t i = 0; i < 2 * el->nattrs; i++) {
            free(el->attrs[i]);
        }
        free(el->attrs);
        free(el->name);
        free(el->ns);
        if (el->text != NULL) {
            explicit_bzero(el->text, el->text_len);
        }
        free(el->text);
        free(el);
        el = NULL;
    }
}

/* -- SAX callbacks ---------------------------------------------------------- */

static void
xml_fail(struct fin_xmpp_parser *p, const char *fmt, ...)
{
    va_list ap;

    if (!p->failed) {
        va_start(ap, fmt);
        vsnprintf(p->error, sizeof(p->error), fmt, ap);
        va_end(ap);
    }
    p->failed = true;
    if (p->ctxt != NULL) {
        xmlStopParser(p->ctxt);
    }
}

static bool
xml_active(struct fin_xmpp_parser *p)
{
    return !p->failed && !p->stopped;
}

/* Counts n bytes against the stanza cap; false (and failed) when over. */
static bool
xml_count(struct fin_xmpp_parser *p, size_t n)
{
    if (n > p->max_stanza || p->bytes > p->max_stanza - n) {
        xml_fail(p, "stanza larger than %zu bytes", p->max_stanza);
        return false;
    }
    p->bytes += n;
    return true;
}

static char *
xml_strndup(const xmlChar *s, size_t n)
{
    char *d = malloc(n + 1);

    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static struct fin_xmpp_el *
xml_el_new(struct fin_xmpp_parser *p, const xmlChar *localname,
           const xmlChar *uri, int nattrs, const xmlChar **attrs)
{
    struct fin_xmpp_el *el;
    size_t need = XML_EL_OVERHEAD + strlen((const char *)localname) +
                  (uri ? strlen((const char *)uri) : 0);

    for (int i = 0; i < nattrs; i++) {
        need += strlen((const char *)attrs[5 * i]) + 8 +
                (size_t)(attrs[5 * i + 4] - attrs[5 * i + 3]);
    }
    if (!xml_count(p, need)) {
        return NULL;
    }
    el = calloc(1, sizeof(*el));
    if (el == NULL) {
        xml_fail(p, "out of memory");
        return NULL;
    }
    el->name = strdup((const char *)localname);
    el->ns = uri != NULL ? strdup((const char *)uri) : NULL;
    el->text = calloc(1, 1);
    el->attrs = nattrs > 0 ? calloc(2 * (size_t)nattrs, sizeof(char *)) : NULL;
    if (el->name == NULL || (uri != NULL && el->ns == NULL) ||
        el->text == NULL || (nattrs > 0 && el->attrs == NULL)) {
        fin_xmpp_el_free(el);
        xml_fail(p, "out of memory");
        return NULL;
    }
    for (int i = 0; i < nattrs; i++) {
        const xmlChar *name = attrs[5 * i];
        const xmlChar *prefix = attrs[5 * i + 1];
        size_t vlen = (size_t)(attrs[5 * i + 4] - attrs[5 * i + 3]);
        char *n;
        if (prefix != NULL) {
            size_t len = strlen((const char *)prefix) +
                         strlen((const char *)name) + 2;
            n = malloc(len);
            if (n != NULL) {
                snprintf(n, len, "%s:%s", prefix, name);
            }
        } else {
            n = strdup((const char *)name);
        }
        el->attrs[2 * i] = n;
        el->attrs[2 * i + 1] = xml_strndup(attrs[5 * i + 3], vlen);
        el->nattrs = (size_t)i + 1;
        if (n == NULL || el->attrs[2 * i + 1] == NULL) {
            fin_xmpp_el_free(el);
            xml_fail(p, "out of memory");
            return NULL;
        }
    }
    return el;
}

static void
xml_on_start(void *user, const xmlChar *localname, const xmlChar *prefix,
             const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
             int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
    struct fin_xmpp_parser *p = user;
    struct fin_xmpp_el *el;

    (void)prefix;
    (void)nb_namespaces;
    (void)namespaces;
    (void)nb_defaulted;
    if (!xml_active(p)) {
        return;
    }
    if (p->depth == 0) {
        bool stream_root =
            p->framing == FIN_XMPP_FRAMING_STREAM &&
            strcmp((const char *)localname, "stream") == 0 && uri != NULL &&
            strcmp((const char *)uri, FIN_XMPP_NS_STREAM) == 0;
        bool frame = p->framing == FIN_XMPP_FRAMING_WEBSOCKET && uri != NULL &&
                     strcmp((const char *)uri, FIN_XMPP_NS_FRAMING) == 0;
        if (p->framing == FIN_XMPP_FRAMING_STREAM && !stream_root) {
            xml_fail(p, "expected <stream:stream>, got <%s>", localname);
            return;
        }
        if (stream_root || (frame && strcmp((const char *)localname, "open") == 0)) {
            el = xml_el_new(p, localname, uri, nb_attributes, attributes);
            p->bytes = 0;
            if (el == NULL) {
                return;
            }
            p->depth++;
            p->ws_frame = frame;
            if (frame) {
                p->ws_el = el;
                p->ws_kind = WS_OPEN;
                return;
            }
            if (p->cbs.on_open != NULL) {
                p->cbs.on_open(p->cls, el);
            }
            fin_xmpp_el_free(el);
            return;
        }
        if (frame && strcmp((const char *)localname, "close") == 0) {
            p->depth++;
            p->ws_frame = true;
            p->ws_kind = WS_CLOSE;
            return;
        }
        if (frame) {
            xml_fail(p, "unknown framing element <%s>", localname);
            return;
        }
    }
    if (p->ws_frame) {
        xml_fail(p, "children in a framing element");
        return;
    }
    if (p->depth - (p->framing == FIN_XMPP_FRAMING_STREAM ? 1 : 0) >=
        FIN_XMPP_XML_MAX_DEPTH) {
        xml_fail(p, "elements nested deeper than %d", FIN_XMPP_XML_MAX_DEPTH);
        return;
    }
    el = xml_el_new(p, localname, uri, nb_attributes, attributes);
    if (el == NULL) {
        return;
    }
    p->depth++;
    if (p->cur == NULL) {
        p->top = el;
    } else {
        el->parent = p->cur;
        if (p->cur->last_child != NULL) {
            p->cur->last_child->next = el;
        } else {
            p->cur->children = el;
        }
        p->cur->last_child = el;
    }
    p->cur = el;
}

static void
xml_on_end(void *user, const xmlChar *localname, const xmlChar *prefix,
           const xmlChar *uri)
{
    struct fin_xmpp_parser *p = user;

    (void)localname;
    (void)prefix;
    (void)uri;
    if (!xml_active(p)) {
        return;
    }
    p->depth--;
    if (p->cur == NULL) {
        /* the stream root (an <open/> or <close/> frame is delivered when
         * its message has parsed) */
        if (p->framing == FIN_XMPP_FRAMING_STREAM && p->cbs.on_close != NULL) {
            p->cbs.on_close(p->cls);
        }
        return;
    }
    if (p->cur != p->top) {
        p->cur = p->cur->parent;
        return;
    }
    {
        struct fin_xmpp_el *done = p->top;
        p->top = p->cur = NULL;
        p->bytes = 0;
        if (p->framing == FIN_XMPP_FRAMING_WEBSOCKET) {
            p->ws_el = done;
            p->ws_kind = WS_STANZA;
            return;
        }
        if (p->cbs.on_stanza != NULL) {
            p->cbs.on_stanza(p->cls, done);
        }
        fin_xmpp_el_free(done);
    }
}

static bool
xml_all_space(const xmlChar *s, int len)
{
    for (int i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') {
            return false;
        }
    }
    return true;
}

static void
xml_on_text(void *user, const xmlChar *s, int len)
{
    struct fin_xmpp_parser *p = user;
    struct fin_xmpp_el *el = p->cur;
    size_t n = (size_t)len;

    if (!xml_active(p) || len <= 0) {
        return;
    }
    if (el == NULL) {
        /* whitespace between stanzas is a keepalive (RFC 6120 §4.6.1) */
        if (!xml_all_space(s, len)) {
            xml_fail(p, "text outside a stanza");
        }
        return;
    }
    if (!xml_count(p, n)) {
        return;
    }
    if (el->text_len + n + 1 > el->text_cap) {
        size_t cap = el->text_cap ? el->text_cap : 64;
        while (cap < el->text_len + n + 1) {
            cap *= 2;
        }
        char *t = realloc(el->text, cap);
        if (t == NULL) {
            xml_fail(p, "out of memory");
            return;
        }
        el->text = t;
        el->text_cap = cap;
    }
    memcpy(el->text + el->text_len, s, n);
    el->text_len += n;
    el->text[el->text_len] = '\0';
}

static void
xml_on_doctype(void *user, const xmlChar *name, const xmlChar *ext_id,
               const xmlChar *sys_id)
{
    (void)name;
    (void)ext_id;
    (void)sys_id;
    xml_fail(user, "DOCTYPE refused");
}

static void
xml_on_comment(void *user, const xmlChar *value)
{
    (void)value;
    xml_fail(user, "XML comment refused");
}

static void
xml_on_pi(void *user, const xmlChar *target, const xmlChar *data)
{
    (void)target;
    (void)data;
    xml_fail(user, "processing instruction refused");
}

static void
xml_on_error(void *user, xmlErrorPtr e)
{
    struct fin_xmpp_parser *p = user;
    char msg[120];
    size_t n;

    if (e == NULL || e->level == XML_ERR_WARNING) {
        return;
    }
    snprintf(msg, sizeof(msg), "%s",
             e->message != NULL ? e->message : "parse error");
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
        msg[--n] = '\0';
    }
    xml_fail(p, "malformed XML: %s", msg);
}

/* -- parser ----------------------------------------------------------------- */

static void
xml_drop_tree(struct fin_xmpp_parser *p)
{
    fin_xmpp_el_free(p->top);
    fin_xmpp_el_free(p->ws_el);
    p->ws_el = NULL;
    p->ws_kind = WS_NONE;
    p->top = p->cur = NULL;
    p->bytes = 0;
    p->depth = 0;
    p->ws_frame = false;
}

static int
xml_new_ctxt(struct fin_xmpp_parser *p)
{
    if (p->ctxt != NULL) {
        xmlFreeParserCtxt(p->ctxt);
    }
    p->ctxt = xmlCreatePushParserCtxt(&p->sax, p, NULL, 0, NULL);
    if (p->ctxt == NULL) {
        return CMN_NOMEM;
    }
    /* NOENT: attribute values with &amp; come out decoded (without it
     * libxml2 hands SAX "&#38;"); safe because a DOCTYPE stops the parse
     * before any entity could be declared */
    xmlCtxtUseOptions(p->ctxt, XML_PARSE_NONET | XML_PARSE_NOENT);
    return CMN_OK;
}

struct fin_xmpp_parser *
fin_xmpp_parser_new(enum fin_xmpp_framing framing, size_t max_stanza,
                    const struct fin_xmpp_parser_cbs *cbs, void *cls)
{
    struct fin_xmpp_parser *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        return NULL;
    }
    p->framing = framing;
    p->max_stanza = max_stanza;
    p->cbs = *cbs;
    p->cls = cls;
    /* only our callbacks: no libxml2 tree is ever built */
    p->sax.initialized = XML_SAX2_MAGIC;
    p->sax.startElementNs = xml_on_start;
    p->sax.endElementNs = xml_on_end;
    p->sax.characters = xml_on_text;
    p->sax.cdataBlock = xml_on_text;
    p->sax.internalSubset = xml_on_doctype;
    p->sax.comment = xml_on_comment;
    p->sax.processingInstruction = xml_on_pi;
    p->sax.serror = xml_on_error;
    if (xml_new_ctxt(p) != CMN_OK) {
        free(p);
        return NULL;
    }
    return p;
}

void
fin_xmpp_parser_free(struct fin_xmpp_parser *p)
{
    if (p == NULL) {
        return;
    }
    xml_drop_tree(p);
    if (p->ctxt != NULL) {
        xmlFreeParserCtxt(p->ctxt);
    }
    free(p);
}

int
fin_xmpp_parser_feed(struct fin_xmpp_parser *p, const char *buf, size_t len)
{
    if (p->framing != FIN_XMPP_FRAMING_STREAM) {
        xml_fail(p, "stream bytes given to a WebSocket parser");
        return CMN_INVALID;
    }
    if (p->failed) {
        return CMN_INVALID;
    }
    if (p->stopped || len == 0) {
        return CMN_OK;
    }
    while (len > 0) {
        /* libxml2 takes an int length */
        int n = len > (1u << 20) ? (1 << 20) : (int)len;
        int rc = xmlParseChunk(p->ctxt, buf, n, 0);
        if (p->failed) {
            return CMN_INVALID;
        }
        if (p->stopped) {
            return CMN_OK;
        }
        if (rc != 0) {
            xml_fail(p, "malformed XML (libxml2 error %d)", rc);
            return CMN_INVALID;
        }
        buf += n;
        len -= (size_t)n;
    }
    return CMN_OK;
}

int
fin_xmpp_parser_message(struct fin_xmpp_parser *p, const char *buf, size_t len)
{
    int rc;

    if (p->framing != FIN_XMPP_FRAMING_WEBSOCKET) {
        xml_fail(p, "a message given to a stream parser");
        return CMN_INVALID;
    }
    if (p->failed) {
        return CMN_INVALID;
    }
    if (len > p->max_stanza) {
        xml_fail(p, "message larger than %zu bytes", p->max_stanza);
        return CMN_INVALID;
    }
    if (xml_all_space((const xmlChar *)buf, (int)len)) {
        return CMN_OK; /* nothing, or whitespace: a keepalive at most */
    }
    /* a fresh document per message (RFC 7395 §3.3.3) */
    xml_drop_tree(p);
    p->stopped = false;
    if (xmlCtxtResetPush(p->ctxt, NULL, 0, NULL, NULL) != 0) {
        xml_fail(p, "out of memory");
        return CMN_INVALID;
    }
    xmlCtxtUseOptions(p->ctxt, XML_PARSE_NONET | XML_PARSE_NOENT);
    rc = xmlParseChunk(p->ctxt, buf, (int)len, 1);
    if (p->failed) {
        return CMN_INVALID;
    }
    if (p->stopped) {
        return CMN_OK;
    }
    if (rc != 0 || p->depth != 0 || p->top != NULL || p->ws_kind == WS_NONE) {
        xml_fail(p, "malformed XML message (libxml2 error %d)", rc);
        return CMN_INVALID;
    }
    /* the whole message is one well-formed element: deliver it */
    {
        struct fin_xmpp_el *el = p->ws_el;
        int kind = p->ws_kind;
        p->ws_el = NULL;
        p->ws_kind = WS_NONE;
        if (kind == WS_OPEN && p->cbs.on_open != NULL) {
            p->cbs.on_open(p->cls, el);
        } else if (kind == WS_STANZA && p->cbs.on_stanza != NULL) {
            p->cbs.on_stanza(p->cls, el);
        } else if (kind == WS_CLOSE && p->cbs.on_close != NULL) {
            p->cbs.on_close(p->cls);
        }
        fin_xmpp_el_free(el);
    }
    return CMN_OK;
}

void
fin_xmpp_parser_stop(struct fin_xmpp_parser *p)
{
    p->stopped = true;
    if (p->ctxt != NULL) {
        xmlStopParser(p->ctxt);
    }
}

int
fin_xmpp_parser_reset(struct fin_xmpp_parser *p)
{
    if (p->failed) {
        return CMN_INVALID;
    }
    xml_drop_tree(p);
    p->stopped = false;
    if (p->framing == FIN_XMPP_FRAMING_WEBSOCKET) {
        return CMN_OK; /* every message is a new document anyway */
    }
    return xml_new_ctxt(p);
}

const char *
fin_xmpp_parser_error(const struct fin_xmpp_parser *p)
{
    return p->failed ? p->error : "";
}

/* -- output ----------------------------------------------------------------- */

static void
out_append(struct fin_xmpp_out *o, const char *s, size_t n)
{
    if (o->oom) {
        return;
    }
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n + 1) {
            cap *= 2;
        }
        char *d = malloc(cap);
        if (d == NULL) {
            o->oom = true;
            return;
        }
        if (o->data != NULL) {
            memcpy(d, o->data, o->len);
            explicit_bzero(o->data, o->cap);
            free(o->data);
        }
        o->data = d;
        o->cap = cap;
    }
    memcpy(o->data + o->len, s, n);
    o->len += n;
    o->data[o->len] = '\0';
}

void
fin_xmpp_out_raw(struct fin_xmpp_out *o, const char *s)
{
    out_append(o, s, strlen(s));
}

void
fin_xmpp_out_esc(struct fin_xmpp_out *o, const char *s)
{
    const char *run = s;

    for (; *s != '\0'; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        default:
            continue;
        }
        out_append(o, run, (size_t)(s - run));
        out_append(o, rep, strlen(rep));
        run = s + 1;
    }
    out_append(o, run, (size_t)(s - run));
}

void
fin_xmpp_out_free(struct fin_xmpp_out *o)
{
    if (o->data != NULL) {
        explicit_bzero(o->data, o->cap);
        free(o->data);
    }
    memset(o, 0, sizeof(*o));
}
