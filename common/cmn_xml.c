/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_xml.c - libxml2 parsing for untrusted documents (SAML): no DTD, no
 * entities, no network, size and depth caps, errors kept out of stderr. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlerror.h>

#include "cmn_xml.h"

/* Per-parse state, reached from libxml2 callbacks through ctxt->_private. */
struct xml_parse {
    bool doctype; /* a DOCTYPE was seen: the parse was stopped */
    bool have_error;
    char error[160]; /* first libxml2 message, for err */
    int error_line;
};

/* Swallows libxml2's global (per-thread) generic error output. */
static void
xml_silent(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

void
cmn_xml_init(void)
{
    xmlInitParser();
    /* The generic handler is per thread in libxml2 2.9: set it for this
     * thread and as the default for threads created later. Our own parses
     * use a per-context handler (below); this catches errors raised
     * without a parser context. */
    xmlSetGenericErrorFunc(NULL, xml_silent);
    xmlThrDefSetGenericErrorFunc(NULL, xml_silent);
}

static void
xml_on_error(void *user, xmlErrorPtr e)
{
    xmlParserCtxtPtr ctxt = user;
    struct xml_parse *xp = ctxt != NULL ? ctxt->_private : NULL;
    size_t n;

    if (xp == NULL || xp->have_error || e == NULL ||
        e->level == XML_ERR_WARNING) {
        return;
    }
    xp->have_error = true;
    xp->error_line = e->line;
    snprintf(xp->error, sizeof(xp->error), "%s",
             e->message != NULL ? e->message : "parse error");
    n = strlen(xp->error);
    while (n > 0 && (xp->error[n - 1] == '\n' || xp->error[n - 1] == ' ')) {
        xp->error[--n] = '\0';
    }
}

/* SAX hook called at "<!DOCTYPE name ...", before any of the internal
 * subset is read: stopping here means no entity is ever declared, so no
 * expansion (billion laughs) and no external load (XXE) can happen. */
static void
xml_on_doctype(void *user, const xmlChar *name, const xmlChar *ext_id,
               const xmlChar *sys_id)
{
    xmlParserCtxtPtr ctxt = user;
    struct xml_parse *xp = ctxt->_private;

    (void)name;
    (void)ext_id;
    (void)sys_id;
    if (xp != NULL) {
        xp->doctype = true;
    }
    xmlStopParser(ctxt);
}

/* Walk the whole tree without recursion: depth cap, and no node kind that
 * only a DTD can produce. */
static int
xml_check_tree(xmlDocPtr doc, struct cmn_err *err)
{
    xmlNodePtr node = doc->children;
    int depth = 1;

    while (node != NULL) {
        switch (node->type) {
        case XML_ENTITY_REF_NODE:
        case XML_ENTITY_NODE:
        case XML_ENTITY_DECL:
        case XML_DTD_NODE:
        case XML_DOCUMENT_TYPE_NODE:
        case XML_XINCLUDE_START:
        case XML_XINCLUDE_END:
            cmn_err_set(err, "xml: entity or DTD node refused");
            return CMN_INVALID;
        default:
            break;
        }
        if (node->type == XML_ELEMENT_NODE && depth > CMN_XML_MAX_DEPTH) {
            cmn_err_set(err, "xml: nesting deeper than %d", CMN_XML_MAX_DEPTH);
            return CMN_INVALID;
        }
        if (node->type == XML_ELEMENT_NODE) {
            for (xmlAttrPtr a = node->properties; a != NULL; a = a->next) {
                for (xmlNodePtr c = a->children; c != NULL; c = c->next) {
                    if (c->type != XML_TEXT_NODE) {
                        cmn_err_set(err, "xml: entity in attribute refused");
                        return CMN_INVALID;
                    }
                }
            }
        }
        if (node->children != NULL && node->type != XML_ENTITY_REF_NODE) {
            node = node->children;
            depth++;
            continue;
        }
        while (node != NULL && node->next == NULL) {
            node = node->parent;
            depth--;
            if (node == NULL || node == (xmlNodePtr)doc) {
                return CMN_OK;
            }
        }
        if (node != NULL) {
            node = node->next;
        }
    }
    return CMN_OK;
}

xmlDocPtr
cmn_xml_parse(const char *buf, size_t len, size_t max_len, struct cmn_err *err)
{
    struct xml_parse xp;
    xmlParserCtxtPtr ctxt = NULL;
    xmlDocPtr doc = NULL;
    /* NONET: never fetch anything. Deliberately absent: NOENT (expand
     * entities), DTDLOAD, DTDATTR, DTDVALID, XINCLUDE, HUGE (lifts the
     * built-in depth and size limits), NOCDATA (CDATA must stay visible
     * to cmn_xml_text). NOBLANKS would change signed content. */
    const int options = XML_PARSE_NONET;

    memset(&xp, 0, sizeof(xp));
    if (buf == NULL || len > max_len || len > INT_MAX) {
        cmn_err_set(err, "xml: document larger than %zu bytes", max_len);
        goto fail;
    }
    ctxt = xmlNewParserCtxt();
    if (ctxt == NULL) {
        cmn_err_set(err, "xml: out of memory");
        goto fail;
    }
    /* A per-context handler is thread-safe, unlike the global ones. */
    ctxt->_private = &xp;
    ctxt->sax->serror = xml_on_error;
    ctxt->sax->internalSubset = xml_on_doctype;
    doc =
        xmlCtxtReadMemory(ctxt, buf, (int)len, "untrusted.xml", NULL, options);
    if (xp.doctype) {
        cmn_err_set(err, "xml: DOCTYPE refused");
        goto fail;
    }
    if (doc == NULL || !ctxt->wellFormed) {
        if (xp.have_error) {
            cmn_err_set(err, "xml: line %d: %s", xp.error_line, xp.error);
        } else {
            cmn_err_set(err, "xml: not well-formed");
        }
        goto fail;
    }
    /* An undefined namespace prefix leaves the document "well-formed" to
     * libxml2, but names in it no longer mean what a signer meant. */
    if (!ctxt->nsWellFormed) {
        cmn_err_set(err, "xml: line %d: %s", xp.error_line,
                    xp.have_error ? xp.error : "namespace error");
        goto fail;
    }
    /* Belt and braces: the hook above should make these impossible. */
    if (doc->intSubset != NULL || doc->extSubset != NULL) {
        cmn_err_set(err, "xml: DOCTYPE refused");
        goto fail;
    }
    if (xmlDocGetRootElement(doc) == NULL) {
        cmn_err_set(err, "xml: no root element");
        goto fail;
    }
    if (xml_check_tree(doc, err) != CMN_OK) {
        goto fail;
    }
    xmlFreeParserCtxt(ctxt);
    return doc;
fail:
    if (doc != NULL) {
        xmlFreeDoc(doc);
    }
    if (ctxt != NULL) {
        xmlFreeParserCtxt(ctxt);
    }
    return NULL;
}

static bool
xml_is(xmlNodePtr node, const char *name)
{
    return node->type == XML_ELEMENT_NODE && node->name != NULL &&
           strcmp((const char *)node->name, name) == 0;
}

xmlNodePtr
cmn_xml_child(xmlNodePtr parent, const char *name)
{
    if (parent == NULL) {
        return NULL;
    }
    for (xmlNodePtr c = parent->children; c != NULL; c = c->next) {
        if (xml_is(c, name)) {
            return c;
        }
    }
    return NULL;
}

xmlNodePtr
cmn_xml_next(xmlNodePtr node, const char *name)
{
    if (node == NULL) {
        return NULL;
    }
    for (xmlNodePtr c = node->next; c != NULL; c = c->next) {
        if (xml_is(c, name)) {
            return c;
        }
    }
    return NULL;
}

const char *
cmn_xml_text(xmlNodePtr node)
{
    xmlNodePtr c;

    if (node == NULL || node->type != XML_ELEMENT_NODE) {
        return NULL;
    }
    c = node->children;
    if (c == NULL) {
        return "";
    }
    /* Exactly one text or CDATA child. Anything else (a comment, an
     * element, a PI, or text split in two by a CDATA section) is how
     * "user@evil.com<!---->.victim.com" gets a partial read past a
     * signature check, so the whole value is refused. */
    if (c->next != NULL ||
        (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE)) {
        return NULL;
    }
    return c->content != NULL ? (const char *)c->content : "";
}

const char *
cmn_xml_child_text(xmlNodePtr parent, const char *name)
{
    return cmn_xml_text(cmn_xml_child(parent, name));
}
