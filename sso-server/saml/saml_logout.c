/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* saml_logout.c - Single Logout messages (saml-core-2.0-os §3.7, the
 * Single Logout Profile of saml-profiles-2.0-os §4.4) over HTTP-Redirect:
 * the LogoutRequest and LogoutResponse we send, and the checks on those the
 * IdP sends us. The binding itself (query, signature, inflate) is
 * saml_redirect.c; replay, InResponseTo and RelayState need Redis and are
 * the daemon's (sso_http_slo.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_xml.h"
#include "saml_int.h"

/* saml-profiles-2.0-os §4.4.4.1: an Issuer with a Format must say entity */
#define NAMEID_FORMAT_ENTITY "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"

/* ` name="escaped value"` for a non-empty value, "" otherwise; malloc'd */
static char *
xml_attr(const char *name, const char *value)
{
    char *e, *out;
    size_t n;

    if (value == NULL || value[0] == '\0') {
        return strdup("");
    }
    e = saml_xml_escape(value);
    if (e == NULL) {
        return NULL;
    }
    n = strlen(name) + strlen(e) + 5;
    out = malloc(n);
    if (out != NULL) {
        snprintf(out, n, " %s=\"%s\"", name, e);
    }
    free(e);
    return out;
}

char *
saml_logout_request_url(const struct saml_idp *idp, const char *sp_entity_id,
                        const char *id, const struct saml_logout_subject *who,
                        const char *relay_state, long long now,
                        const struct saml_sp_key *key)
{
    char t[32], *xml = NULL, *url = NULL;
    char *e_dest = NULL, *e_sp = NULL, *e_nid = NULL, *a_fmt = NULL,
         *a_nq = NULL, *a_spnq = NULL, *e_si = NULL;
    size_t n = 0;

    if (idp->slo_url == NULL || key == NULL || key->pkey == NULL ||
        who == NULL || who->name_id == NULL) {
        return NULL;
    }
    saml_time_format(now, t);
    e_dest = saml_xml_escape(idp->slo_url);
    e_sp = saml_xml_escape(sp_entity_id);
    e_nid = saml_xml_escape(who->name_id);
    a_fmt = xml_attr("Format", who->format);
    a_nq = xml_attr("NameQualifier", who->name_qualifier);
    a_spnq = xml_attr("SPNameQualifier", who->sp_name_qualifier);
    e_si = saml_xml_escape(who->session_index ? who->session_index : "");
    if (e_dest && e_sp && e_nid && a_fmt && a_nq && a_spnq && e_si) {
        n = strlen(e_dest) + strlen(e_sp) + strlen(e_nid) + strlen(a_fmt) +
            strlen(a_nq) + strlen(a_spnq) + strlen(e_si) + 1024;
        xml = malloc(n);
    }
    if (xml != NULL) {
        int k = snprintf(
            xml, n,
            "<samlp:LogoutRequest xmlns:samlp=\"" SAML_NS_PROTOCOL "\" "
            "xmlns:saml=\"" SAML_NS_ASSERTION "\" ID=\"%s\" Version=\"2.0\" "
            "IssueInstant=\"%s\" Destination=\"%s\">"
            "<saml:Issuer>%s</saml:Issuer>"
            "<saml:NameID%s%s%s>%s</saml:NameID>",
            id, t, e_dest, e_sp, a_nq, a_spnq, a_fmt, e_nid);
        if (e_si[0] != '\0') {
            k += snprintf(xml + k, n - (size_t)k,
                          "<samlp:SessionIndex>%s</samlp:SessionIndex>", e_si);
        }
        snprintf(xml + k, n - (size_t)k, "</samlp:LogoutRequest>");
        url = saml_redirect_url(idp->slo_url, "SAMLRequest", xml, relay_state,
                                key);
    }
    free(xml);
    free(e_dest);
    free(e_sp);
    free(e_nid);
    free(a_fmt);
    free(a_nq);
    free(a_spnq);
    free(e_si);
    return url;
}

char *
saml_logout_response_url(const struct saml_idp *idp, const char *sp_entity_id,
                         const char *id, const char *in_response_to,
                         const char *status, const char *sub_status,
                         const char *relay_state, long long now,
                         const struct saml_sp_key *key)
{
    char t[32], *xml = NULL, *url = NULL, *sub = NULL;
    char *e_dest, *e_sp, *e_irt, *e_st;
    size_t n = 0;

    if (idp->slo_url == NULL || key == NULL || key->pkey == NULL) {
        return NULL;
    }
    saml_time_format(now, t);
    e_dest = saml_xml_escape(idp->slo_url);
    e_sp = saml_xml_escape(sp_entity_id);
    e_irt = saml_xml_escape(in_response_to);
    e_st = saml_xml_escape(status != NULL ? status : SAML_STATUS_SUCCESS);
    sub = xml_attr("Value", sub_status);
    if (e_dest && e_sp && e_irt && e_st && sub) {
        n = strlen(e_dest) + strlen(e_sp) + strlen(e_irt) + strlen(e_st) +
            strlen(sub) + 1024;
        xml = malloc(n);
    }
    if (xml != NULL) {
        snprintf(xml, n,
                 "<samlp:LogoutResponse xmlns:samlp=\"" SAML_NS_PROTOCOL "\" "
                 "xmlns:saml=\"" SAML_NS_ASSERTION "\" ID=\"%s\" "
                 "Version=\"2.0\" IssueInstant=\"%s\" Destination=\"%s\" "
                 "InResponseTo=\"%s\"><saml:Issuer>%s</saml:Issuer>"
                 "<samlp:Status><samlp:StatusCode Value=\"%s\">%s%s%s"
                 "</samlp:StatusCode></samlp:Status></samlp:LogoutResponse>",
                 id, t, e_dest, e_irt, e_sp, e_st,
                 sub[0] ? "<samlp:StatusCode" : "", sub, sub[0] ? "/>" : "");
        url = saml_redirect_url(idp->slo_url, "SAMLResponse", xml, relay_state,
                                key);
    }
    free(xml);
    free(e_dest);
    free(e_sp);
    free(e_irt);
    free(e_st);
    free(sub);
    return url;
}

/* --- what the IdP sends us --- */

/* An attribute that is present must be usable (1..SAML_MAX_VALUE, no
 * control characters); *out malloc'd, or NULL when absent. */
static bool
optional_attr(const xmlNode *n, const char *name, char **out)
{
    char buf[SAML_MAX_VALUE + 2];

    *out = NULL;
    if (saml_attr(n, name, buf, sizeof(buf)) == NULL) {
        return true;
    }
    if (!saml_value_ok(buf)) {
        return false;
    }
    *out = strdup(buf);
    return *out != NULL;
}

static enum saml_reason
check_header(xmlNodePtr root, const struct saml_idp *idp,
             const char *expected_destination, long long now, long skew_s,
             struct saml_redirect_msg *out, struct cmn_err *why)
{
    char buf[SAML_MAX_VALUE + 2];
    xmlNodePtr issuer;
    const char *text;

    if (saml_attr(root, "Version", buf, sizeof(buf)) == NULL ||
        strcmp(buf, "2.0") != 0 ||
        saml_attr(root, "ID", buf, sizeof(buf)) == NULL ||
        !saml_value_ok(buf) || strlen(buf) > 256) {
        cmn_err_set(why, "not SAML 2.0, or no usable ID");
        return SAML_R_NOT_LOGOUT;
    }
    out->id = strdup(buf);
    if (saml_attr(root, "IssueInstant", buf, sizeof(buf)) == NULL ||
        (out->issue_instant = saml_time_parse(buf)) < 0) {
        cmn_err_set(why, "no readable IssueInstant");
        return SAML_R_NOT_LOGOUT;
    }
    /* profiles §4.4.4.1/§4.4.4.2: the Issuer MUST be present */
    issuer = saml_child(root, SAML_NS_ASSERTION, "Issuer");
    text = cmn_xml_text(issuer);
    if (issuer == NULL ||
        saml_count_children(root, SAML_NS_ASSERTION, "Issuer") != 1 ||
        text == NULL || strcmp(text, idp->entity_id) != 0 ||
        (saml_attr(issuer, "Format", buf, sizeof(buf)) != NULL &&
         strcmp(buf, NAMEID_FORMAT_ENTITY) != 0)) {
        cmn_err_set(why, "Issuer '%.120s' is not the IdP's entityID",
                    text != NULL ? text : "(absent or not plain text)");
        return SAML_R_ISSUER;
    }
    out->issuer = strdup(idp->entity_id);
    /* bindings §3.4.5.2: a signed message MUST carry its Destination */
    if (saml_attr(root, "Destination", buf, sizeof(buf)) == NULL ||
        strcmp(buf, expected_destination) != 0) {
        cmn_err_set(why, "Destination '%.120s' is not this SLO endpoint",
                    saml_attr(root, "Destination", buf, sizeof(buf))
                        ? buf
                        : "(absent)");
        return SAML_R_DESTINATION;
    }
    if (out->issue_instant > now + skew_s) {
        cmn_err_set(why, "IssueInstant is %lld s in the future",
                    out->issue_instant - now);
        return SAML_R_NOT_YET_VALID;
    }
    if (out->issue_instant < now - SAML_REDIRECT_MAX_AGE_S - skew_s) {
        cmn_err_set(why, "IssueInstant is %lld s old (at most %d)",
                    now - out->issue_instant, SAML_REDIRECT_MAX_AGE_S);
        return SAML_R_EXPIRED;
    }
    return SAML_OK;
}

static enum saml_reason
check_request(xmlNodePtr root, long long now, long skew_s,
              struct saml_redirect_msg *out, struct cmn_err *why)
{
    char buf[64];
    xmlNodePtr nameid;
    const char *text;

    if (saml_attr(root, "NotOnOrAfter", buf, sizeof(buf)) != NULL) {
        out->not_on_or_after = saml_time_parse(buf);
        if (out->not_on_or_after < 0) {
            cmn_err_set(why, "NotOnOrAfter is not an xs:dateTime");
            return SAML_R_NOT_LOGOUT;
        }
        if (now >= out->not_on_or_after + skew_s) {
            cmn_err_set(why, "the LogoutRequest expired %lld s ago",
                        now - out->not_on_or_after);
            return SAML_R_EXPIRED;
        }
    }
    if (saml_child(root, SAML_NS_ASSERTION, "EncryptedID") != NULL ||
        saml_child(root, SAML_NS_ASSERTION, "BaseID") != NULL) {
        cmn_err_set(why, "an EncryptedID or BaseID is not supported");
        return SAML_R_NAMEID;
    }
    nameid = saml_child(root, SAML_NS_ASSERTION, "NameID");
    text = cmn_xml_text(nameid);
    if (nameid == NULL ||
        saml_count_children(root, SAML_NS_ASSERTION, "NameID") != 1 ||
        !saml_value_ok(text)) {
        cmn_err_set(why, "%s",
                    nameid == NULL ? "no NameID"
                    : text == NULL ? "the NameID is not one plain text node "
                                     "(a comment or element inside it)"
                                   : "not exactly one usable NameID");
        return SAML_R_NAMEID;
    }
    out->name_id = strdup(text);
    if (!optional_attr(nameid, "Format", &out->name_id_format) ||
        !optional_attr(nameid, "NameQualifier", &out->name_qualifier) ||
        !optional_attr(nameid, "SPNameQualifier", &out->sp_name_qualifier)) {
        cmn_err_set(why, "a NameID attribute is empty or not text");
        return SAML_R_NAMEID;
    }
    for (xmlNodePtr c = root->children; c != NULL; c = c->next) {
        if (!saml_is(c, SAML_NS_PROTOCOL, "SessionIndex")) {
            continue;
        }
        text = cmn_xml_text(c);
        if (!saml_value_ok(text)) {
            cmn_err_set(why, "a SessionIndex is empty or not one plain "
                             "text node");
            return SAML_R_NAMEID;
        }
        if (out->nsession_indexes == SAML_MAX_SESSION_INDEXES) {
            cmn_err_set(why, "more than %d SessionIndex elements",
                        SAML_MAX_SESSION_INDEXES);
            return SAML_R_SCHEMA;
        }
        out->session_indexes[out->nsession_indexes++] = strdup(text);
    }
    return SAML_OK;
}

static enum saml_reason
check_response(xmlNodePtr root, struct saml_redirect_msg *out,
               struct cmn_err *why)
{
    char buf[SAML_MAX_VALUE + 2];
    xmlNodePtr st = saml_child(root, SAML_NS_PROTOCOL, "Status");
    xmlNodePtr code = saml_child(st, SAML_NS_PROTOCOL, "StatusCode");
    xmlNodePtr sub = saml_child(code, SAML_NS_PROTOCOL, "StatusCode");

    if (code == NULL || saml_attr(code, "Value", buf, sizeof(buf)) == NULL ||
        !saml_value_ok(buf)) {
        cmn_err_set(why, "the LogoutResponse has no StatusCode");
        return SAML_R_SCHEMA;
    }
    out->status = strdup(buf);
    out->success = strcmp(buf, SAML_STATUS_SUCCESS) == 0;
    if (sub != NULL && saml_attr(sub, "Value", buf, sizeof(buf)) != NULL &&
        saml_value_ok(buf)) {
        out->sub_status = strdup(buf);
    }
    if (!optional_attr(root, "InResponseTo", &out->in_response_to)) {
        cmn_err_set(why, "InResponseTo is empty or not text");
        return SAML_R_UNKNOWN_REQUEST;
    }
    return SAML_OK;
}

enum saml_reason
saml_logout_parse(const char *xml, size_t len, bool is_request,
                  const struct saml_idp *idp, const char *expected_destination,
                  long long now, long skew_s, struct saml_redirect_msg *out,
                  struct cmn_err *why)
{
    struct cmn_err perr = {{0}};
    xmlDocPtr doc;
    xmlNodePtr root;
    enum saml_reason r;

    out->is_request = is_request;
    if (saml_init(why) != CMN_OK) {
        return SAML_R_MALFORMED;
    }
    doc = cmn_xml_parse(xml, len, SAML_MAX_INFLATED, &perr);
    if (doc == NULL) {
        cmn_err_set(why, "%s", perr.msg);
        return strstr(perr.msg, "DOCTYPE") ? SAML_R_DOCTYPE : SAML_R_MALFORMED;
    }
    root = xmlDocGetRootElement(doc);
    /* the parameter says which one it must be */
    if (!saml_is(root, SAML_NS_PROTOCOL,
                 is_request ? "LogoutRequest" : "LogoutResponse")) {
        cmn_err_set(why, "%s does not carry a %s",
                    is_request ? "SAMLRequest" : "SAMLResponse",
                    is_request ? "LogoutRequest" : "LogoutResponse");
        r = SAML_R_NOT_LOGOUT;
    } else {
        r = check_header(root, idp, expected_destination, now, skew_s, out,
                         why);
        if (r == SAML_OK) {
            r = is_request ? check_request(root, now, skew_s, out, why)
                           : check_response(root, out, why);
        }
    }
    xmlFreeDoc(doc);
    return r;
}

enum saml_reason
saml_redirect_decode(const char *q, const struct saml_idp *idp,
                     const char *expected_destination, bool allow_sha1,
                     long long now, long skew_s, struct saml_redirect_msg *out,
                     struct cmn_err *why)
{
    struct saml_redirect_in in;
    enum saml_reason r;

    memset(out, 0, sizeof(*out));
    if (saml_init(why) != CMN_OK) {
        return SAML_R_MALFORMED;
    }
    r = saml_redirect_unwrap(q, idp, allow_sha1, &in, why);
    if (r != SAML_OK) {
        return r;
    }
    r = saml_logout_parse(in.xml, in.xml_len, in.is_request, idp,
                          expected_destination, now, skew_s, out, why);
    out->relay_state = in.relay_state;
    in.relay_state = NULL;
    saml_redirect_in_cleanup(&in);
    if (r != SAML_OK) {
        saml_redirect_msg_cleanup(out);
    }
    return r;
}

void
saml_redirect_msg_cleanup(struct saml_redirect_msg *m)
{
    free(m->id);
    free(m->issuer);
    free(m->relay_state);
    free(m->name_id);
    free(m->name_id_format);
    free(m->name_qualifier);
    free(m->sp_name_qualifier);
    for (size_t i = 0; i < m->nsession_indexes; i++) {
        free(m->session_indexes[i]);
    }
    free(m->in_response_to);
    free(m->status);
    free(m->sub_status);
    memset(m, 0, sizeof(*m));
}
