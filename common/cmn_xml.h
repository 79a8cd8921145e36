/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* cmn_xml.h - hardened libxml2 parsing for untrusted documents.
 *
 * No DTD (a document with a DOCTYPE is refused), no entity expansion, no
 * network, no XInclude, a size cap before parsing and a depth cap. Errors
 * never go to libxml2's default stderr handler. */
#ifndef CMN_XML_H
#define CMN_XML_H

#include <libxml/tree.h>

#include "cmn.h"

#define CMN_XML_MAX_DEPTH 64

/* Call once at start-up (thread-safe after that). */
void cmn_xml_init(void);

/* Parse len bytes; refuses len > max_len. Free with xmlFreeDoc. NULL and
 * err filled on any failure. */
xmlDocPtr cmn_xml_parse(const char *buf, size_t len, size_t max_len,
                        struct cmn_err *err);

/* First element child of parent with this local name (namespace ignored),
 * or NULL. */
xmlNodePtr cmn_xml_child(xmlNodePtr parent, const char *name);
/* Next element sibling after node with this local name, or NULL. */
xmlNodePtr cmn_xml_next(xmlNodePtr node, const char *name);

/* Text of an element that must hold only text (a single text or CDATA
 * run); NULL when the element has element or comment children, which is
 * how comment-injection attacks hide. Borrowed from the document. */
const char *cmn_xml_text(xmlNodePtr node);
/* cmn_xml_text(cmn_xml_child(parent, name)), "" for an empty element. */
const char *cmn_xml_child_text(xmlNodePtr parent, const char *name);

#endif
