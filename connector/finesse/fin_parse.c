/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fin_parse.c - Finesse XML to structs: the REST bodies and the Update
 * notification. <data> in an Update holds the same objects as the REST
 * bodies, so both go through the same node readers (parse_*_node). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/tree.h>

#include "cmn_xml.h"
#include "fin_parse.h"

/* A char-array member of a model struct filled from the child element of
 * the same meaning; tables of these keep each reader a list of names
 * rather than thirty copies of the same three calls. */
struct field {
    const char *xml; /* element local name */
    size_t off;      /* offsetof the member */
    size_t cap;      /* its size, terminator included */
};

#define FIELD(type, xml, member)               \
    {                                          \
        (xml), offsetof(struct type, member),  \
            sizeof(((struct type *)0)->member) \
    }

/* --- element lookup --- */

/* Finesse spells a few names in two cases (<ApiErrors> in REST bodies,
 * <apiErrors> in notifications; <user>/<User> inside <data>). Those, and
 * only those, are matched ignoring case; everything else is matched
 * exactly with cmn_xml_child, as Finesse itself is consistent there. */
static bool
is_ci(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && n->name != NULL &&
           strcasecmp((const char *)n->name, name) == 0;
}

static xmlNodePtr
child_ci(xmlNodePtr parent, const char *name)
{
    if (parent == NULL) {
        return NULL;
    }
    for (xmlNodePtr c = parent->children; c != NULL; c = c->next) {
        if (is_ci(c, name)) {
            return c;
        }
    }
    return NULL;
}

static xmlNodePtr
next_ci(xmlNodePtr node, const char *name)
{
    if (node == NULL) {
        return NULL;
    }
    for (xmlNodePtr c = node->next; c != NULL; c = c->next) {
        if (is_ci(c, name)) {
            return c;
        }
    }
    return NULL;
}

static xmlNodePtr
first(xmlNodePtr parent, const char *name, bool ci)
{
    return ci ? child_ci(parent, name) : cmn_xml_child(parent, name);
}

static xmlNodePtr
next(xmlNodePtr node, const char *name, bool ci)
{
    return ci ? next_ci(node, name) : cmn_xml_next(node, name);
}

/* The child element `name` of parent; *out is NULL when absent, which is
 * not an error (optional elements read as ""). Two of them are refused
 * rather than one picked: a reader taking the first and another taking
 * the last is how a wrapped document gets read two ways. */
static int
one_child(xmlNodePtr parent, const char *name, bool ci, xmlNodePtr *out,
          struct cmn_err *err)
{
    xmlNodePtr n = first(parent, name, ci);

    *out = NULL;
    if (n != NULL && next(n, name, ci) != NULL) {
        cmn_err_set(err, "<%s> appears twice", name);
        return CMN_INVALID;
    }
    *out = n;
    return CMN_OK;
}

/* Rewrites err as "what: <previous text>" so a failure deep in a dialog
 * list says where it was ("update: dialog 2: participant 1: ..."). */
static void
err_prefix(struct cmn_err *err, const char *what)
{
    char tmp[CMN_ERRLEN];

    if (err == NULL) {
        return;
    }
    memcpy(tmp, err->msg, sizeof(tmp));
    tmp[sizeof(tmp) - 1] = '\0';
    cmn_err_set(err, "%s: %s", what, tmp);
}

/* --- text values --- */

/* Copies the text of node into dst. An element holding elements or a
 * comment has no text (cmn_xml_text NULL) and is refused, as is a value
 * that does not fit: a cut extension or dialog id would name another
 * line or call, so truncation is never silent. */
static int
copy_text(xmlNodePtr node, const char *name, char *dst, size_t cap,
          struct cmn_err *err)
{
    const char *s = cmn_xml_text(node);
    size_t len;

    dst[0] = '\0';
    if (s == NULL) {
        cmn_err_set(err, "<%s> must hold only text", name);
        return CMN_INVALID;
    }
    len = strlen(s);
    if (len >= cap) {
        cmn_err_set(err, "<%s> longer than %zu bytes", name, cap - 1);
        return CMN_INVALID;
    }
    memcpy(dst, s, len + 1);
    return CMN_OK;
}

/* dst = text of parent's only child `name`, "" when there is none. */
static int
read_text(xmlNodePtr parent, const char *name, bool ci, char *dst, size_t cap,
          struct cmn_err *err)
{
    xmlNodePtr n;

    dst[0] = '\0';
    if (one_child(parent, name, ci, &n, err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (n == NULL) {
        return CMN_OK;
    }
    return copy_text(n, name, dst, cap, err);
}

static int
read_fields(xmlNodePtr parent, const struct field *f, size_t nf, bool ci,
            void *base, struct cmn_err *err)
{
    for (size_t i = 0; i < nf; i++) {
        char *dst = (char *)base + f[i].off;

        if (read_text(parent, f[i].xml, ci, dst, f[i].cap, err) != CMN_OK) {
            return CMN_INVALID;
        }
    }
    return CMN_OK;
}

static int
require(const char *value, const char *name, struct cmn_err *err)
{
    if (value[0] == '\0') {
        cmn_err_set(err, "<%s> missing or empty", name);
        return CMN_INVALID;
    }
    return CMN_OK;
}

/* "true"/"false" in any case; absent or empty is false. Anything else is
 * refused rather than guessed. */
static int
read_bool(xmlNodePtr parent, const char *name, bool *out, struct cmn_err *err)
{
    char buf[8];

    *out = false;
    if (read_text(parent, name, false, buf, sizeof(buf), err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (buf[0] == '\0' || strcasecmp(buf, "false") == 0) {
        return CMN_OK;
    }
    if (strcasecmp(buf, "true") == 0) {
        *out = true;
        return CMN_OK;
    }
    cmn_err_set(err, "<%s> is not true or false", name);
    return CMN_INVALID;
}

/* A TCP port: decimal digits only, 0..65535; absent or empty is 0. */
static int
read_port(xmlNodePtr parent, const char *name, int *out, struct cmn_err *err)
{
    char buf[8];
    long v = 0;

    *out = 0;
    if (read_text(parent, name, false, buf, sizeof(buf), err) != CMN_OK) {
        return CMN_INVALID;
    }
    for (const char *p = buf; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            cmn_err_set(err, "<%s> is not a port number", name);
            return CMN_INVALID;
        }
        v = v * 10 + (*p - '0');
    }
    if (v > 65535) {
        cmn_err_set(err, "<%s> is not a port number", name);
        return CMN_INVALID;
    }
    *out = (int)v;
    return CMN_OK;
}

/* The last path segment of a uri ("/finesse/api/ReasonCode/16" -> "16"),
 * trailing slashes ignored: Finesse writes both ".../User/1234" and
 * ".../User/1234/". */
static int
uri_last_segment(const char *uri, char *dst, size_t cap, struct cmn_err *err)
{
    size_t end = strlen(uri);
    size_t start;

    while (end > 0 && uri[end - 1] == '/') {
        end--;
    }
    start = end;
    while (start > 0 && uri[start - 1] != '/') {
        start--;
    }
    if (end - start >= cap) {
        cmn_err_set(err, "<uri> id longer than %zu bytes", cap - 1);
        return CMN_INVALID;
    }
    memcpy(dst, uri + start, end - start);
    dst[end - start] = '\0';
    return CMN_OK;
}

/* --- objects --- */

static const struct field reason_fields[] = {
    FIELD(fin_reason_code, "id", id),
    FIELD(fin_reason_code, "category", category),
    FIELD(fin_reason_code, "code", code),
    FIELD(fin_reason_code, "label", label),
};

/* <ReasonCode>: the id a PUT User takes is <id> when present (the User
 * object embeds it), else the last segment of <uri> (the list omits it). */
static int
parse_reason_node(xmlNodePtr node, struct fin_reason_code *rc,
                  struct cmn_err *err)
{
    char uri[FIN_URI_MAX];

    memset(rc, 0, sizeof(*rc));
    if (read_fields(node, reason_fields, CMN_ARRAY_LEN(reason_fields), false,
                    rc, err) != CMN_OK ||
        read_bool(node, "forAll", &rc->for_all, err) != CMN_OK ||
        read_bool(node, "systemCode", &rc->system_code, err) != CMN_OK ||
        read_text(node, "uri", false, uri, sizeof(uri), err) != CMN_OK) {
        return CMN_INVALID;
    }
    if (rc->id[0] == '\0' &&
        uri_last_segment(uri, rc->id, sizeof(rc->id), err) != CMN_OK) {
        return CMN_INVALID;
    }
    return CMN_OK;
}

static const struct field user_fields[] = {
    FIELD(fin_user, "loginId", login_id),
    FIELD(fin_user, "loginName", login_name),
    FIELD(fin_user, "state", state),
    FIELD(fin_user, "pendingState", pending_state),
    FIELD(fin_user, "reasonCodeId", reason_code_id),
    FIELD(fin_user, "stateChangeTime", state_change_time),
    FIELD(fin_user, "extension", extension),
    FIELD(fin_user, "firstName", first_name),
    FIELD(fin_user, "lastName", last_name),
    FIELD(fin_user, "teamId", team_id),
    FIELD(fin_user, "teamName", team_name),
};

static const struct field settings_fields[] = {
    FIELD(fin_user, "wrapUpOnIncoming", wrapup_on_incoming),
    FIELD(fin_user, "wrapUpOnOutgoing", wrapup_on_outgoing),
};

/* <roles><role>Agent</role><role>Supervisor</role></roles> */
static int
parse_roles(xmlNodePtr node, bool *supervisor, struct cmn_err *err)
{
    xmlNodePtr roles;

    *supervisor = false;
    if (one_child(node, "roles", false, &roles, err) != CMN_OK) {
        return CMN_INVALID;
    }
    for (xmlNodePtr r = cmn_xml_child(roles, "role"); r != NULL;
         r = cmn_xml_next(r, "role")) {
        const char *s = cmn_xml_text(r);

        if (s == NULL) {
            cmn_err_set(err, "<role> must hold only text");
            return CMN_INVALID;
        }
        if (strcmp(s, "Supervisor") == 0) {
            *supervisor = true;
        }
    }
    return CMN_OK;
}

/* <User> (REST) or <user>/<User> (Update data); the caller checked the
 * element's name. */
static int
parse_user_node(xmlNodePtr node, struct fin_user *u, struct cmn_err *err)
{
    xmlNodePtr settings, rc;

    memset(u, 0, sizeof(*u));
    if (read_fields(node, user_fields, CMN_ARRAY_LEN(user_fields), false, u,
                    err) != CMN_OK ||
        one_child(node, "settings", false, &settings, err) != CMN_OK ||
        read_fields(settings, settings_fields, CMN_ARRAY_LEN(settings_fields),
                    false, u, err) != CMN_OK ||
        parse_roles(node, &u->supervisor, err) != CMN_OK ||
        one_child(node, "ReasonCode", false, &rc, err) != CMN_OK) {
        goto fail;
    }
    if (rc != NULL && parse_reason_node(rc, &u->reason, err) != CMN_OK) {
        err_prefix(err, "ReasonCode");
        goto fail;
    }
    if (require(u->login_id, "loginId", err) != CMN_OK ||
        require(u->state, "state", err) != CMN_OK) {
        goto fail;
    }
    return CMN_OK;
fail:
    err_prefix(err, "user");
    return CMN_INVALID;
}

static const struct field part_fields[] = {
    FIELD(fin_participant, "mediaAddress", media_address),
    FIELD(fin_participant, "mediaAddressType", media_address_type),
    FIELD(fin_participant, "state", state),
    FIELD(fin_participant, "stateCause", state_cause),
};

static int
parse_participant_node(xmlNodePtr node, struct fin_participant *p,
                       struct cmn_err *err)
{
    xmlNodePtr actions;

    memset(p, 0, sizeof(*p));
    if (read_fields(node, part_fields, CMN_ARRAY_LEN(part_fields), false, p,
                    err) != CMN_OK ||
        one_child(node, "actions", false, &actions, err) != CMN_OK) {
        return CMN_INVALID;
    }
    for (xmlNodePtr a = cmn_xml_child(actions, "action"); a != NULL;
         a = cmn_xml_next(a, "action")) {
        if (p->nactions == FIN_MAX_ACTIONS) {
            cmn_err_set(err, "more than %d actions", FIN_MAX_ACTIONS);
            return CMN_INVALID;
        }
        if (copy_text(a, "action", p->actions[p->nactions],
                      sizeof(p->actions[0]), err) != CMN_OK) {
            return CMN_INVALID;
        }
        p->nactions++;
    }
    return CMN_OK;
}

/* <callvariables><CallVariable><name/><value/></CallVariable>...: the
 * call variables and the ECC ones ("user.x", "user.arr[0]") share the
 * list, kept in document order. */
static int
parse_callvars(xmlNodePtr media, struct fin_dialog *d, struct cmn_err *err)
{
    xmlNodePtr list;

    if (one_child(media, "callvariables", false, &list, err) != CMN_OK) {
        return CMN_INVALID;
    }
    for (xmlNodePtr v = cmn_xml_child(list, "CallVariable"); v != NULL;
         v = cmn_xml_next(v, "CallVariable")) {
        struct fin_var *var;

        if (d->nvars == FIN_MAX_VARS) {
            cmn_err_set(err, "more than %d call variables", FIN_MAX_VARS);
            return CMN_INVALID;
        }
        var = &d->vars[d->nvars];
        if (read_text(v, "name", false, var->name, sizeof(var->name), err) !=
                CMN_OK ||
            require(var->name, "name", err) != CMN_OK ||
            read_text(v, "value", false, var->value, sizeof(var->value), err) !=
                CMN_OK) {
            err_prefix(err, "CallVariable");
            return CMN_INVALID;
        }
        d->nvars++;
    }
    return CMN_OK;
}

static int
parse_participants(xmlNodePtr node, struct fin_dialog *d, struct cmn_err *err)
{
    xmlNodePtr list;

    if (one_child(node, "participants", false, &list, err) != CMN_OK) {
        return CMN_INVALID;
    }
    for (xmlNodePtr p = cmn_xml_child(list, "Participant"); p != NULL;
         p = cmn_xml_next(p, "Participant")) {
        if (d->nparts == FIN_MAX_PARTS) {
            cmn_err_set(err, "more than %d participants", FIN_MAX_PARTS);
            return CMN_INVALID;
        }
        if (parse_participant_node(p, &d->parts[d->nparts], err) != CMN_OK) {
            char what[32];

            snprintf(what, sizeof(what), "participant %zu", d->nparts + 1);
            err_prefix(err, what);
            return CMN_INVALID;
        }
        d->nparts++;
    }
    return CMN_OK;
}

static const struct field dialog_fields[] = {
    FIELD(fin_dialog, "id", id),
    FIELD(fin_dialog, "secondaryId", secondary_id),
    FIELD(fin_dialog, "associatedDialogUri", associated_uri),
    FIELD(fin_dialog, "mediaType", media_type),
    FIELD(fin_dialog, "state", state),
    FIELD(fin_dialog, "fromAddress", from_address),
    FIELD(fin_dialog, "toAddress", to_address),
};

static const struct field media_fields[] = {
    FIELD(fin_dialog, "callType", call_type),
    FIELD(fin_dialog, "dialedNumber", dialed_number),
    FIELD(fin_dialog, "DNIS", dnis),
    FIELD(fin_dialog, "queueName", queue_name),
    FIELD(fin_dialog, "queueNumber", queue_number),
    FIELD(fin_dialog, "wrapUpReason", wrapup_reason),
};

/* <Dialog> (REST, in <Dialogs> and <dialogs>) or <dialog> (Update data). */
static int
parse_dialog_node(xmlNodePtr node, struct fin_dialog *d, struct cmn_err *err)
{
    xmlNodePtr media;

    memset(d, 0, sizeof(*d));
    if (read_fields(node, dialog_fields, CMN_ARRAY_LEN(dialog_fields), false, d,
                    err) != CMN_OK ||
        one_child(node, "mediaProperties", false, &media, err) != CMN_OK) {
        goto fail;
    }
    if (read_fields(media, media_fields, CMN_ARRAY_LEN(media_fields), false, d,
                    err) != CMN_OK ||
        parse_callvars(media, d, err) != CMN_OK) {
        err_prefix(err, "mediaProperties");
        goto fail;
    }
    if (parse_participants(node, d, err) != CMN_OK ||
        require(d->id, "id", err) != CMN_OK ||
        require(d->state, "state", err) != CMN_OK) {
        goto fail;
    }
    return CMN_OK;
fail:
    err_prefix(err, "dialog");
    return CMN_INVALID;
}

/* The <Dialog> children of list (<Dialogs> or <dialogs>). Counted first
 * so only what is needed is allocated: a dialog is ~20 KB. */
static int
parse_dialog_list(xmlNodePtr list, struct fin_dialogs *out, struct cmn_err *err)
{
    size_t n = 0;

    out->items = NULL;
    out->n = 0;
    for (xmlNodePtr c = child_ci(list, "Dialog"); c != NULL;
         c = next_ci(c, "Dialog")) {
        if (++n > FIN_MAX_DIALOGS) {
            cmn_err_set(err, "dialogs: more than %d dialogs", FIN_MAX_DIALOGS);
            return CMN_INVALID;
        }
    }
    if (n == 0) {
        return CMN_OK;
    }
    out->items = calloc(n, sizeof(*out->items));
    if (out->items == NULL) {
        cmn_err_set(err, "dialogs: out of memory");
        return CMN_NOMEM;
    }
    for (xmlNodePtr c = child_ci(list, "Dialog"); c != NULL;
         c = next_ci(c, "Dialog")) {
        if (parse_dialog_node(c, &out->items[out->n], err) != CMN_OK) {
            char what[32];

            snprintf(what, sizeof(what), "dialogs: item %zu", out->n + 1);
            err_prefix(err, what);
            fin_dialogs_free(out);
            return CMN_INVALID;
        }
        out->n++;
    }
    return CMN_OK;
}

/* REST bodies capitalise (ApiError/ErrorType), notifications do not
 * (apiError/errorType): both read with the case-blind lookups. */
static const struct field error_fields[] = {
    FIELD(fin_api_error, "ErrorType", type),
    FIELD(fin_api_error, "ErrorMessage", message),
    FIELD(fin_api_error, "ErrorData", data),
};

static int
parse_api_errors_node(xmlNodePtr node, struct fin_api_errors *out,
                      struct cmn_err *err)
{
    memset(out, 0, sizeof(*out));
    for (xmlNodePtr e = child_ci(node, "ApiError"); e != NULL;
         e = next_ci(e, "ApiError")) {
        if (out->n == FIN_MAX_ERRORS) {
            cmn_err_set(err, "apiErrors: more than %d errors", FIN_MAX_ERRORS);
            return CMN_INVALID;
        }
        if (read_fields(e, error_fields, CMN_ARRAY_LEN(error_fields), true,
                        &out->items[out->n], err) != CMN_OK) {
            err_prefix(err, "apiErrors");
            return CMN_INVALID;
        }
        out->n++;
    }
    /* An error report that reports nothing would read as success to a
     * caller that looks at items[0]. */
    if (out->n == 0) {
        cmn_err_set(err, "apiErrors: no ApiError");
        return CMN_INVALID;
    }
    return CMN_OK;
}

static const struct field sysinfo_fields[] = {
    FIELD(fin_systeminfo, "status", status),
    FIELD(fin_systeminfo, "xmppDomain", xmpp_domain),
    FIELD(fin_systeminfo, "xmppPubSubDomain", xmpp_pubsub_domain),
    FIELD(fin_systeminfo, "deploymentType", deployment_type),
    FIELD(fin_systeminfo, "systemAuthMode", system_auth_mode),
};

/* <primaryNode>/<secondaryNode>: all "" / 0 when absent (single node). */
static int
parse_node_info(xmlNodePtr parent, const char *name, struct fin_node_info *ni,
                struct cmn_err *err)
{
    xmlNodePtr node;

    if (one_child(parent, name, false, &node, err) != CMN_OK ||
        read_text(node, "host", false, ni->host, sizeof(ni->host), err) !=
            CMN_OK ||
        read_port(node, "httpsPort", &ni->https_port, err) != CMN_OK ||
        read_port(node, "xmppPort", &ni->xmpp_port, err) != CMN_OK) {
        err_prefix(err, name);
        return CMN_INVALID;
    }
    return CMN_OK;
}

static int
parse_systeminfo_node(xmlNodePtr node, struct fin_systeminfo *si,
                      struct cmn_err *err)
{
    memset(si, 0, sizeof(*si));
    if (read_fields(node, sysinfo_fields, CMN_ARRAY_LEN(sysinfo_fields), false,
                    si, err) != CMN_OK ||
        parse_node_info(node, "primaryNode", &si->primary, err) != CMN_OK ||
        parse_node_info(node, "secondaryNode", &si->secondary, err) != CMN_OK) {
        err_prefix(err, "systemInfo");
        return CMN_INVALID;
    }
    return CMN_OK;
}

/* --- documents --- */

/* Parses a whole document (cmn_xml_parse: no DTD, caps) and hands back
 * its root when its local name is root (either case when ci). */
static int
open_doc(const char *xml, size_t len, const char *root, bool ci, xmlDocPtr *doc,
         xmlNodePtr *top, struct cmn_err *err)
{
    xmlNodePtr r;
    bool ok;

    *doc = NULL;
    *top = NULL;
    if (xml == NULL) {
        cmn_err_set(err, "%s: no document", root);
        return CMN_INVALID;
    }
    *doc = cmn_xml_parse(xml, len, (size_t)FIN_XML_MAX, err);
    if (*doc == NULL) {
        err_prefix(err, root);
        return CMN_INVALID;
    }
    r = xmlDocGetRootElement(*doc);
    ok = r != NULL && r->name != NULL &&
         (ci ? strcasecmp((const char *)r->name, root) == 0
             : strcmp((const char *)r->name, root) == 0);
    if (!ok) {
        cmn_err_set(err, "%s: root element is not <%s>", root, root);
        xmlFreeDoc(*doc);
        *doc = NULL;
        return CMN_INVALID;
    }
    *top = r;
    return CMN_OK;
}

static const struct field wrapup_fields[] = {
    FIELD(fin_wrapup_reason, "label", label),
};

static int
parse_wrapup_node(xmlNodePtr node, struct fin_wrapup_reason *w,
                  struct cmn_err *err)
{
    char uri[FIN_URI_MAX];

    memset(w, 0, sizeof(*w));
    if (read_fields(node, wrapup_fields, CMN_ARRAY_LEN(wrapup_fields), false, w,
                    err) != CMN_OK ||
        read_bool(node, "forAll", &w->for_all, err) != CMN_OK ||
        read_text(node, "uri", false, uri, sizeof(uri), err) != CMN_OK ||
        uri_last_segment(uri, w->id, sizeof(w->id), err) != CMN_OK) {
        return CMN_INVALID;
    }
    return CMN_OK;
}

static int
bad_args(struct cmn_err *err)
{
    cmn_err_set(err, "fin_parse: NULL argument");
    return CMN_INVALID;
}

/* A whole document: its root (root_name, any case when ci) read by fn into
 * out, which is zeroed first and again on failure (callers never see half
 * a result). */
typedef int (*root_parser)(xmlNodePtr root, void *out, struct cmn_err *err);

static int
parse_doc(const char *xml, size_t len, const char *root_name, bool ci,
          root_parser fn, void *out, size_t out_size, struct cmn_err *err)
{
    xmlDocPtr doc;
    xmlNodePtr root;
    int rc;

    if (out == NULL) {
        return bad_args(err);
    }
    memset(out, 0, out_size);
    rc = open_doc(xml, len, root_name, ci, &doc, &root, err);
    if (rc != CMN_OK) {
        return rc;
    }
    rc = fn(root, out, err);
    xmlFreeDoc(doc);
    if (rc != CMN_OK) {
        memset(out, 0, out_size);
    }
    return rc;
}

/* The children named `name` of a list document, each read by fn into the
 * next of at most max items of item_size bytes (`what` names them in the
 * error); *n counts them. */
typedef int (*item_parser)(xmlNodePtr node, void *item, struct cmn_err *err);

static int
parse_list(xmlNodePtr root, const char *list, const char *name,
           const char *what, size_t max, void *items, size_t item_size,
           size_t *n, item_parser fn, struct cmn_err *err)
{
    for (xmlNodePtr c = cmn_xml_child(root, name); c != NULL;
         c = cmn_xml_next(c, name)) {
        if (*n == max) {
            cmn_err_set(err, "%s: more than %zu %s", list, max, what);
            return CMN_INVALID;
        }
        if (fn(c, (char *)items + *n * item_size, err) != CMN_OK) {
            err_prefix(err, list);
            return CMN_INVALID;
        }
        (*n)++;
    }
    return CMN_OK;
}

/* typed node parsers behind the generic helpers */
static int
user_root(xmlNodePtr n, void *out, struct cmn_err *err)
{
    return parse_user_node(n, out, err);
}

static int
dialog_root(xmlNodePtr n, void *out, struct cmn_err *err)
{
    return parse_dialog_node(n, out, err);
}

static int
dialogs_root(xmlNodePtr n, void *out, struct cmn_err *err)
{
    return parse_dialog_list(n, out, err);
}

static int
api_errors_root(xmlNodePtr n, void *out, struct cmn_err *err)
{
    return parse_api_errors_node(n, out, err);
}

static int
systeminfo_root(xmlNodePtr n, void *out, struct cmn_err *err)
{
    return parse_systeminfo_node(n, out, err);
}

static int
reason_item(xmlNodePtr n, void *item, struct cmn_err *err)
{
    return parse_reason_node(n, item, err);
}

static int
wrapup_item(xmlNodePtr n, void *item, struct cmn_err *err)
{
    return parse_wrapup_node(n, item, err);
}

static int
reason_codes_root(xmlNodePtr n, void *out, struct cmn_err *err)
{
    struct fin_reason_codes *r = out;

    return parse_list(n, "ReasonCodes", "ReasonCode", "reason codes",
                      FIN_MAX_REASONS, r->items, sizeof(r->items[0]), &r->n,
                      reason_item, err);
}

static int
wrapup_reasons_root(xmlNodePtr n, void *out, struct cmn_err *err)
{
    struct fin_wrapup_reasons *w = out;

    return parse_list(n, "WrapUpReasons", "WrapUpReason", "reasons",
                      FIN_MAX_REASONS, w->items, sizeof(w->items[0]), &w->n,
                      wrapup_item, err);
}

int
fin_parse_user(const char *xml, size_t len, struct fin_user *out,
               struct cmn_err *err)
{
    return parse_doc(xml, len, "User", false, user_root, out, sizeof(*out),
                     err);
}

int
fin_parse_dialog(const char *xml, size_t len, struct fin_dialog *out,
                 struct cmn_err *err)
{
    return parse_doc(xml, len, "Dialog", false, dialog_root, out, sizeof(*out),
                     err);
}

int
fin_parse_dialogs(const char *xml, size_t len, struct fin_dialogs *out,
                  struct cmn_err *err)
{
    /* parse_dialog_list frees what it allocated when it fails */
    return parse_doc(xml, len, "Dialogs", false, dialogs_root, out,
                     sizeof(*out), err);
}

void
fin_dialogs_free(struct fin_dialogs *d)
{
    if (d == NULL) {
        return;
    }
    free(d->items);
    d->items = NULL;
    d->n = 0;
}

int
fin_parse_api_errors(const char *xml, size_t len, struct fin_api_errors *out,
                     struct cmn_err *err)
{
    return parse_doc(xml, len, "ApiErrors", true, api_errors_root, out,
                     sizeof(*out), err);
}

int
fin_parse_systeminfo(const char *xml, size_t len, struct fin_systeminfo *out,
                     struct cmn_err *err)
{
    return parse_doc(xml, len, "SystemInfo", false, systeminfo_root, out,
                     sizeof(*out), err);
}

int
fin_parse_reason_codes(const char *xml, size_t len,
                       struct fin_reason_codes *out, struct cmn_err *err)
{
    return parse_doc(xml, len, "ReasonCodes", false, reason_codes_root, out,
                     sizeof(*out), err);
}

int
fin_parse_wrapup_reasons(const char *xml, size_t len,
                         struct fin_wrapup_reasons *out, struct cmn_err *err)
{
    return parse_doc(xml, len, "WrapUpReasons", false, wrapup_reasons_root, out,
                     sizeof(*out), err);
}

/* --- Update --- */

static int
parse_event(const char *s, enum fin_update_event *out, struct cmn_err *err)
{
    /* The docs show both "put" and "PUT". */
    if (strcasecmp(s, "PUT") == 0) {
        *out = FIN_EVENT_PUT;
    } else if (strcasecmp(s, "POST") == 0) {
        *out = FIN_EVENT_POST;
    } else if (strcasecmp(s, "DELETE") == 0) {
        *out = FIN_EVENT_DELETE;
    } else {
        cmn_err_set(err, "<event> is not PUT, POST or DELETE");
        return CMN_INVALID;
    }
    return CMN_OK;
}

/* The object in <data>: exactly one element, or none. A kind we do not
 * model (<team>, ...) leaves kind UNKNOWN and is not an error, so a
 * subscription to more nodes does not break the connector. */
static int
parse_update_data(xmlNodePtr data, struct fin_update *u, struct cmn_err *err)
{
    xmlNodePtr obj = NULL;

    for (xmlNodePtr c = data->children; c != NULL; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) {
            continue;
        }
        if (obj != NULL) {
            cmn_err_set(err, "<data> holds more than one object");
            return CMN_INVALID;
        }
        obj = c;
    }
    if (obj == NULL) {
        return CMN_OK;
    }
    if (is_ci(obj, "user")) {
        u->kind = FIN_UPDATE_USER;
        return parse_user_node(obj, &u->user, err);
    }
    if (is_ci(obj, "dialogs")) {
        u->kind = FIN_UPDATE_DIALOGS;
        return parse_dialog_list(obj, &u->dialogs, err);
    }
    if (is_ci(obj, "dialog")) {
        u->kind = FIN_UPDATE_DIALOG;
        u->dialogs.items = calloc(1, sizeof(*u->dialogs.items));
        if (u->dialogs.items == NULL) {
            cmn_err_set(err, "out of memory");
            return CMN_NOMEM;
        }
        if (parse_dialog_node(obj, &u->dialogs.items[0], err) != CMN_OK) {
            return CMN_INVALID;
        }
        u->dialogs.n = 1;
        return CMN_OK;
    }
    if (is_ci(obj, "apiErrors")) {
        u->kind = FIN_UPDATE_API_ERRORS;
        return parse_api_errors_node(obj, &u->errors, err);
    }
    if (is_ci(obj, "systemInfo")) {
        u->kind = FIN_UPDATE_SYSTEMINFO;
        return parse_systeminfo_node(obj, &u->systeminfo, err);
    }
    return CMN_OK;
}

struct fin_update *
fin_update_parse(const char *xml, size_t len, struct cmn_err *err)
{
    struct fin_update *u = NULL;
    xmlDocPtr doc;
    xmlNodePtr root, data;
    char event[16];

    if (open_doc(xml, len, "Update", false, &doc, &root, err) != CMN_OK) {
        return NULL;
    }
    u = calloc(1, sizeof(*u));
    if (u == NULL) {
        cmn_err_set(err, "update: out of memory");
        goto fail;
    }
    /* Element order varies between Finesse versions: all by name. */
    if (read_text(root, "event", false, event, sizeof(event), err) != CMN_OK ||
        require(event, "event", err) != CMN_OK ||
        parse_event(event, &u->event, err) != CMN_OK ||
        read_text(root, "requestId", false, u->request_id,
                  sizeof(u->request_id), err) != CMN_OK ||
        read_text(root, "source", false, u->source, sizeof(u->source), err) !=
            CMN_OK ||
        require(u->source, "source", err) != CMN_OK ||
        one_child(root, "data", false, &data, err) != CMN_OK) {
        err_prefix(err, "update");
        goto fail;
    }
    if (data != NULL && parse_update_data(data, u, err) != CMN_OK) {
        err_prefix(err, "update");
        goto fail;
    }
    xmlFreeDoc(doc);
    return u;
fail:
    fin_update_free(u);
    xmlFreeDoc(doc);
    return NULL;
}

void
fin_update_free(struct fin_update *u)
{
    if (u == NULL) {
        return;
    }
    fin_dialogs_free(&u->dialogs);
    free(u);
}

/* --- lookups --- */

const char *
fin_dialog_var(const struct fin_dialog *d, const char *name)
{
    if (d == NULL || name == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < d->nvars && i < FIN_MAX_VARS; i++) {
        if (strcmp(d->vars[i].name, name) == 0) {
            return d->vars[i].value;
        }
    }
    return NULL;
}

const struct fin_participant *
fin_dialog_participant(const struct fin_dialog *d, const char *ext)
{
    if (d == NULL || ext == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < d->nparts && i < FIN_MAX_PARTS; i++) {
        if (strcmp(d->parts[i].media_address, ext) == 0) {
            return &d->parts[i];
        }
    }
    return NULL;
}

const struct fin_participant *
fin_dialog_other(const struct fin_dialog *d, const char *ext)
{
    if (d == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < d->nparts && i < FIN_MAX_PARTS; i++) {
        if (ext == NULL || strcmp(d->parts[i].media_address, ext) != 0) {
            return &d->parts[i];
        }
    }
    return NULL;
}

bool
fin_participant_can(const struct fin_participant *p, const char *action)
{
    if (p == NULL || action == NULL) {
        return false;
    }
    for (size_t i = 0; i < p->nactions && i < FIN_MAX_ACTIONS; i++) {
        if (strcmp(p->actions[i], action) == 0) {
            return true;
        }
    }
    return false;
}
