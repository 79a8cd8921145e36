/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_xmlgen.c - request bodies for the Finesse REST API (User state,
 * MAKE_CALL, Dialog actions, wrap-up). Values come from Salesforce, so
 * each one is checked and escaped before it becomes markup. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fin_parse.h"

/* A growing string; the first failure sticks so callers can append
 * without checking each step and look once at the end. */
struct xbuf {
    char *p;
    size_t len;
    size_t cap;
    bool failed;
};

static void
xb_add(struct xbuf *b, const char *s, size_t n)
{
    if (b->failed) {
        return;
    }
    if (n > SIZE_MAX / 2 - b->len) {
        b->failed = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 256;
        char *p;

        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
xb_str(struct xbuf *b, const char *s)
{
    xb_add(b, s, strlen(s));
}

/* Escapes the five XML specials, and CR as a character reference
 * because a parser turns a literal CR into LF (end-of-line handling). */
static void
xb_esc(struct xbuf *b, const char *s)
{
    const char *run = s;

    for (; *s != '\0'; s++) {
        const char *rep;

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
        case '\r':
            rep = "&#13;";
            break;
        default:
            continue;
        }
        xb_add(b, run, (size_t)(s - run));
        xb_str(b, rep);
        run = s + 1;
    }
    xb_add(b, run, (size_t)(s - run));
}

/* <name>escaped value</name> */
static void
xb_elem(struct xbuf *b, const char *name, const char *value)
{
    xb_str(b, "<");
    xb_str(b, name);
    xb_str(b, ">");
    xb_esc(b, value);
    xb_str(b, "</");
    xb_str(b, name);
    xb_str(b, ">");
}

static char *
xb_take(struct xbuf *b)
{
    if (b->failed) {
        free(b->p);
        return NULL;
    }
    return b->p;
}

/* True when s is well-formed UTF-8 made only of XML 1.0 characters.
 * Escaping cannot make a C0 control, a surrogate, U+FFFE/U+FFFF or a
 * broken sequence legal, and Finesse would refuse the whole body with an
 * unhelpful 400; refusing here gives the caller a NULL it can report. */
static bool
xml_chars_ok(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;

    while (*s != '\0') {
        unsigned long cp;
        int more;

        if (*s < 0x80) {
            if (*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r') {
                return false;
            }
            s++;
            continue;
        }
        if (*s >= 0xC2 && *s <= 0xDF) {
            cp = *s & 0x1Fu;
            more = 1;
        } else if (*s >= 0xE0 && *s <= 0xEF) {
            cp = *s & 0x0Fu;
            more = 2;
        } else if (*s >= 0xF0 && *s <= 0xF4) {
            cp = *s & 0x07u;
            more = 3;
        } else {
            return false; /* continuation byte, overlong lead, > U+10FFFF */
        }
        s++;
        for (int i = 0; i < more; i++, s++) {
            if ((*s & 0xC0u) != 0x80u) {
                return false;
            }
            cp = (cp << 6) | (*s & 0x3Fu);
        }
        if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE ||
            cp == 0xFFFF) {
            return false;
        }
    }
    return true;
}

/* A required argument: present, not empty, XML-safe. */
static bool
required_ok(const char *s)
{
    return s != NULL && s[0] != '\0' && xml_chars_ok(s);
}

/* An optional argument: NULL and "" both mean absent (the model keeps ""
 * for "none"), otherwise it must be XML-safe. */
static bool
optional_ok(const char *s)
{
    return s == NULL || xml_chars_ok(s);
}

static bool
present(const char *s)
{
    return s != NULL && s[0] != '\0';
}

char *
fin_xml_user_state(const char *state, const char *reason_code_id,
                   const char *extension)
{
    struct xbuf b = {0};

    if (!required_ok(state) || !optional_ok(reason_code_id) ||
        !optional_ok(extension)) {
        return NULL;
    }
    xb_str(&b, "<User>");
    xb_elem(&b, "state", state);
    if (present(reason_code_id)) {
        xb_elem(&b, "reasonCodeId", reason_code_id);
    }
    if (present(extension)) {
        xb_elem(&b, "extension", extension);
    }
    xb_str(&b, "</User>");
    return xb_take(&b);
}

char *
fin_xml_make_call(const char *to, const char *from)
{
    struct xbuf b = {0};

    if (!required_ok(to) || !required_ok(from)) {
        return NULL;
    }
    xb_str(&b, "<Dialog><requestedAction>MAKE_CALL</requestedAction>");
    xb_elem(&b, "toAddress", to);
    xb_elem(&b, "fromAddress", from);
    xb_str(&b, "</Dialog>");
    return xb_take(&b);
}

char *
fin_xml_dialog_action(const char *action, const char *target, const char *to,
                      const char *dtmf)
{
    struct xbuf b = {0};

    if (!required_ok(action) || !required_ok(target) || !optional_ok(to) ||
        !optional_ok(dtmf)) {
        return NULL;
    }
    /* Element order as Cisco's finesse.js sends it. */
    xb_str(&b, "<Dialog>");
    xb_elem(&b, "targetMediaAddress", target);
    if (present(to)) {
        xb_elem(&b, "toAddress", to);
    }
    xb_elem(&b, "requestedAction", action);
    if (present(dtmf)) {
        xb_str(&b, "<actionParams><ActionParam><name>dtmfString</name>");
        xb_elem(&b, "value", dtmf);
        xb_str(&b, "</ActionParam></actionParams>");
    }
    xb_str(&b, "</Dialog>");
    return xb_take(&b);
}

char *
fin_xml_wrapup(const char *reason)
{
    struct xbuf b = {0};

    if (!required_ok(reason)) {
        return NULL;
    }
    xb_str(&b, "<Dialog><requestedAction>UPDATE_CALL_DATA</requestedAction>"
               "<mediaProperties>");
    xb_elem(&b, "wrapUpReason", reason);
    xb_str(&b, "</mediaProperties></Dialog>");
    return xb_take(&b);
}
