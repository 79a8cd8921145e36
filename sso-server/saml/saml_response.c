/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* saml_response.c - the Response verifier: structure first (one
 * Assertion, unique IDs, signatures only where they bind), then the
 * signatures, then what the Assertion says (saml-profiles-2.0-os §4.1.4.3,
 * reference/sso.md §3). The same libxml2 tree is used for verifying and
 * for reading, and values are read only from the nodes that were
 * verified. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xmlsec/xmltree.h>

#include "cmn_xml.h"
#include "saml_int.h"

#define MAX_IDS 256

struct verify {
    const struct saml_idp *idp;
    const struct saml_sp *sp;
    long long now;
    struct saml_assertion *out;
    struct saml_report *report;
    struct cmn_err *why;
    const char *ids[MAX_IDS]; /* every ID/Id/xml:id value seen */
    size_t nids;
};

static enum saml_reason CMN_PRINTF(4, 5)
    fail(struct verify *v, const char *check, enum saml_reason r,
         const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    saml_check(v->report, check, SAML_FAIL, "%s", msg);
    cmn_err_set(v->why, "%s", msg);
    return r;
}

/* Depth-first over elements, no recursion. */
static xmlNodePtr
next_element(xmlNodePtr n, xmlNodePtr top)
{
    if (n->children != NULL) {
        for (xmlNodePtr c = n->children; c; c = c->next) {
            if (c->type == XML_ELEMENT_NODE) {
                return c;
            }
        }
    }
    while (n != NULL && n != top) {
        for (xmlNodePtr s = n->next; s; s = s->next) {
            if (s->type == XML_ELEMENT_NODE) {
                return s;
            }
        }
        n = n->parent;
    }
    return NULL;
}

/* Every ID-like attribute value (SAML "ID", XML-DSig/Enc "Id", xml:id)
 * must be unique across the message and its decrypted assertion:
 * xmlsec1 resolves "#x" to the first element registered, and libxml2
 * registers xml:id by itself, so a second holder of the value is how a
 * wrapped element gets verified in place of another. */
static enum saml_reason
collect_ids(struct verify *v, xmlNodePtr top)
{
    for (xmlNodePtr n = top; n != NULL; n = next_element(n, top)) {
        for (xmlAttrPtr a = n->properties; a != NULL; a = a->next) {
            bool xml_id = a->ns != NULL && a->ns->href != NULL &&
                          strcmp((const char *)a->ns->href,
                                 "http://www.w3.org/XML/1998/namespace") == 0 &&
                          strcmp((const char *)a->name, "id") == 0;
            bool plain =
                a->ns == NULL && (strcmp((const char *)a->name, "ID") == 0 ||
                                  strcmp((const char *)a->name, "Id") == 0);
            const char *val;
            if (!xml_id && !plain) {
                continue;
            }
            val = a->children != NULL && a->children->content != NULL
                      ? (const char *)a->children->content
                      : "";
            if (xml_id) {
                return fail(v, "unique_ids", SAML_R_DUPLICATE_ID,
                            "xml:id attribute (%s) is not used by SAML", val);
            }
            for (size_t i = 0; i < v->nids; i++) {
                if (strcmp(v->ids[i], val) == 0) {
                    return fail(v, "unique_ids", SAML_R_DUPLICATE_ID,
                                "ID '%.80s' appears twice", val);
                }
            }
            if (v->nids == MAX_IDS) {
                return fail(v, "unique_ids", SAML_R_DUPLICATE_ID,
                            "more than 256 ID attributes");
            }
            v->ids[v->nids++] = val;
        }
    }
    return SAML_OK;
}

static size_t
count_elements(xmlNodePtr top, const char *ns, const char *name,
               xmlNodePtr *first)
{
    size_t n = 0;

    for (xmlNodePtr e = top; e != NULL; e = next_element(e, top)) {
        if (saml_is(e, ns, name)) {
            if (n++ == 0 && first != NULL) {
                *first = e;
            }
        }
    }
    return n;
}

/* Every ds:Signature must sit directly in the Response or the Assertion,
 * one each at most. *resp_sig / *assert_sig get them. */
static enum saml_reason
place_signatures(struct verify *v, xmlNodePtr top, xmlNodePtr response,
                 xmlNodePtr assertion, xmlNodePtr *resp_sig,
                 xmlNodePtr *assert_sig)
{
    for (xmlNodePtr e = top; e != NULL; e = next_element(e, top)) {
        xmlNodePtr *slot;
        if (!saml_is(e, SAML_NS_DSIG, "Signature")) {
            continue;
        }
        if (response != NULL && e->parent == response) {
            slot = resp_sig;
        } else if (assertion != NULL && e->parent == assertion) {
            slot = assert_sig;
        } else {
            return fail(v, "signature_placement", SAML_R_SIGNATURE_PLACEMENT,
                        "a Signature inside %s, not directly in the "
                        "Response or the Assertion",
                        e->parent != NULL ? (const char *)e->parent->name
                                          : "?");
        }
        if (*slot != NULL) {
            return fail(v, "signature_placement", SAML_R_SIGNATURE_PLACEMENT,
                        "two Signatures in one %s",
                        (const char *)e->parent->name);
        }
        *slot = e;
    }
    return SAML_OK;
}

static const char *
id_of(xmlNodePtr n, char *buf, size_t size)
{
    const char *id = saml_attr(n, "ID", buf, size);

    return id != NULL && id[0] != '\0' ? id : NULL;
}

static enum saml_reason
verify_signature(struct verify *v, const char *check, xmlNodePtr sig,
                 xmlNodePtr parent)
{
    char id[256];
    struct cmn_err why = {{0}};
    enum saml_reason r;

    if (id_of(parent, id, sizeof(id)) == NULL) {
        return fail(v, check, SAML_R_SIGNATURE_REFERENCE,
                    "the signed element has no ID");
    }
    r = saml_sig_check(sig, id, v->sp->allow_sha1, &why);
    if (r == SAML_OK) {
        r = saml_sig_verify(sig, v->idp, v->sp->allow_sha1, &why);
    }
    if (r != SAML_OK) {
        return fail(v, check, r, "%s", why.msg);
    }
    saml_check(v->report, check, SAML_PASS, "verified (key from metadata)");
    return SAML_OK;
}

/* A user name as the rest of fsc-sso takes it: printable ASCII without
 * space, quote or backslash, 1..255 (sso_claims_usable_name's rule). */
static bool
usable_user(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > 255) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            return false;
        }
    }
    return true;
}

static bool
issuer_ok(xmlNodePtr issuer, const char *entity_id)
{
    char fmt[160];
    const char *text = cmn_xml_text(issuer);

    if (text == NULL || strcmp(text, entity_id) != 0) {
        return false;
    }
    return saml_attr(issuer, "Format", fmt, sizeof(fmt)) == NULL ||
           strcmp(fmt, "urn:oasis:names:tc:SAML:2.0:nameid-format:entity") == 0;
}

/* Response-level checks on what was verified. */
static enum saml_reason
check_response(struct verify *v, xmlNodePtr resp)
{
    char buf[2048];
    const char *dest, *irt;
    xmlNodePtr status, code, issuer;

    dest = saml_attr(resp, "Destination", buf, sizeof(buf));
    if (v->sp->acs_url == NULL) { /* fscctl without --acs-url */
        saml_check(v->report, "destination", SAML_SKIP,
                   "%.150s (not compared: no ACS URL given)",
                   dest ? dest : "absent");
    } else if (dest != NULL ? strcmp(dest, v->sp->acs_url) != 0
                            : v->out->response_signed) {
        return fail(v, "destination", SAML_R_DESTINATION,
                    "Destination '%.120s' is not this ACS",
                    dest ? dest : "(absent in a signed Response)");
    } else {
        saml_check(v->report, "destination", dest ? SAML_PASS : SAML_SKIP, "%s",
                   dest ? "the ACS URL" : "absent (unsigned Response)");
    }
    status = saml_child(resp, SAML_NS_PROTOCOL, "Status");
    code = saml_child(status, SAML_NS_PROTOCOL, "StatusCode");
    if (code == NULL || saml_attr(code, "Value", buf, sizeof(buf)) == NULL ||
        strcmp(buf, SAML_STATUS_SUCCESS) != 0) {
        xmlNodePtr sub = saml_child(code, SAML_NS_PROTOCOL, "StatusCode");
        char sbuf[300];
        if (sub != NULL && saml_attr(sub, "Value", sbuf, sizeof(sbuf))) {
            size_t n = strlen(buf);
            snprintf(buf + n, sizeof(buf) - n, " / %s", sbuf);
        }
        return fail(v, "status", SAML_R_STATUS, "Status %.180s",
                    code ? buf : "missing");
    }
    saml_check(v->report, "status", SAML_PASS, "Success");
    issuer = saml_child(resp, SAML_NS_ASSERTION, "Issuer");
    if (issuer != NULL && !issuer_ok(issuer, v->idp->entity_id)) {
        return fail(v, "response_issuer", SAML_R_ISSUER,
                    "Response Issuer '%.120s' is not the IdP's entityID",
                    cmn_xml_text(issuer) ? cmn_xml_text(issuer) : "?");
    }
    saml_check(v->report, "response_issuer", issuer ? SAML_PASS : SAML_SKIP,
               "%s", issuer ? v->idp->entity_id : "absent (optional)");
    irt = saml_attr(resp, "InResponseTo", buf, sizeof(buf));
    if (irt != NULL && irt[0] != '\0') {
        v->out->in_response_to = strdup(irt);
    }
    return SAML_OK;
}

/* saml-profiles §4.1.4.2: a bearer SubjectConfirmation whose
 * SubjectConfirmationData has Recipient = ACS, NotOnOrAfter in the future,
 * no NotBefore, and the request's InResponseTo. */
static enum saml_reason
check_subject_confirmation(struct verify *v, xmlNodePtr subject)
{
    enum saml_reason first = SAML_R_SUBJECT_CONFIRMATION;
    const char *first_msg = "no bearer SubjectConfirmation";
    char buf[2048], t[64];
    const char *irt = v->out->in_response_to;

    for (xmlNodePtr sc = subject->children; sc != NULL; sc = sc->next) {
        xmlNodePtr d;
        long long noa;
        if (!saml_is(sc, SAML_NS_ASSERTION, "SubjectConfirmation") ||
            saml_attr(sc, "Method", buf, sizeof(buf)) == NULL ||
            strcmp(buf, SAML_CM_BEARER) != 0) {
            continue;
        }
        d = saml_child(sc, SAML_NS_ASSERTION, "SubjectConfirmationData");
        if (d == NULL) {
            first_msg = "bearer SubjectConfirmation without data";
            continue;
        }
        if (saml_attr(d, "Recipient", buf, sizeof(buf)) == NULL ||
            (v->sp->acs_url != NULL && strcmp(buf, v->sp->acs_url) != 0)) {
            if (first == SAML_R_SUBJECT_CONFIRMATION) {
                first = SAML_R_RECIPIENT;
                first_msg = "Recipient is not this ACS";
            }
            continue;
        }
        if (saml_attr(d, "NotBefore", buf, sizeof(buf)) != NULL) {
            first_msg = "bearer confirmation with NotBefore";
            continue;
        }
        noa = saml_attr(d, "NotOnOrAfter", t, sizeof(t)) ? saml_time_parse(t)
                                                         : -1;
        if (noa < 0 || v->now >= noa + v->sp->clock_skew_s) {
            if (first == SAML_R_SUBJECT_CONFIRMATION) {
                first = SAML_R_EXPIRED;
                first_msg = "SubjectConfirmationData NotOnOrAfter has passed";
            }
            continue;
        }
        const char *dirt = saml_attr(d, "InResponseTo", buf, sizeof(buf));
        if ((dirt == NULL) != (irt == NULL) ||
            (dirt != NULL && strcmp(dirt, irt) != 0)) {
            if (first == SAML_R_SUBJECT_CONFIRMATION) {
                first = SAML_R_IN_RESPONSE_TO;
                first_msg = "InResponseTo differs between the Response and "
                            "its SubjectConfirmationData";
            }
            continue;
        }
        if (v->out->not_on_or_after == 0 || noa < v->out->not_on_or_after) {
            v->out->not_on_or_after = noa;
        }
        saml_check(v->report, "subject_confirmation", SAML_PASS,
                   "bearer, Recipient = ACS, until %s", t);
        return SAML_OK;
    }
    return fail(v, "subject_confirmation", first, "%s", first_msg);
}

static enum saml_reason
check_conditions(struct verify *v, xmlNodePtr a)
{
    xmlNodePtr c = saml_child(a, SAML_NS_ASSERTION, "Conditions");
    char t[64];
    long long nb = -1, noa = -1;
    size_t restrictions = 0;

    if (c == NULL) {
        return fail(v, "audience", SAML_R_AUDIENCE,
                    "no Conditions (an AudienceRestriction is "
                    "required)");
    }
    if (saml_attr(c, "NotBefore", t, sizeof(t)) != NULL &&
        ((nb = saml_time_parse(t)) < 0 || nb > v->now + v->sp->clock_skew_s)) {
        return fail(v, "not_before", SAML_R_NOT_YET_VALID,
                    "Conditions NotBefore %.40s is in the future", t);
    }
    saml_check(v->report, "not_before", nb >= 0 ? SAML_PASS : SAML_SKIP, "%s",
               nb >= 0 ? t : "absent");
    if (saml_attr(c, "NotOnOrAfter", t, sizeof(t)) != NULL &&
        ((noa = saml_time_parse(t)) < 0 ||
         v->now >= noa + v->sp->clock_skew_s)) {
        return fail(v, "not_on_or_after", SAML_R_EXPIRED,
                    "Conditions NotOnOrAfter %.40s has passed", t);
    }
    saml_check(v->report, "not_on_or_after", noa >= 0 ? SAML_PASS : SAML_SKIP,
               "%s", noa >= 0 ? t : "absent");
    if (noa >= 0 &&
        (v->out->not_on_or_after == 0 || noa < v->out->not_on_or_after)) {
        v->out->not_on_or_after = noa;
    }
    for (xmlNodePtr r = c->children; r != NULL; r = r->next) {
        bool ours = false;
        if (saml_is(r, SAML_NS_ASSERTION, "Condition")) {
            return fail(v, "audience", SAML_R_SCHEMA,
                        "an unknown Condition type");
        }
        if (!saml_is(r, SAML_NS_ASSERTION, "AudienceRestriction")) {
            continue;
        }
        restrictions++;
        for (xmlNodePtr au = r->children; au != NULL; au = au->next) {
            const char *text = saml_is(au, SAML_NS_ASSERTION, "Audience")
                                   ? cmn_xml_text(au)
                                   : NULL;
            ours |= text != NULL && (v->sp->entity_id == NULL ||
                                     strcmp(text, v->sp->entity_id) == 0);
        }
        if (!ours) {
            return fail(v, "audience", SAML_R_AUDIENCE,
                        "an AudienceRestriction without %.120s",
                        v->sp->entity_id ? v->sp->entity_id : "an Audience");
        }
    }
    if (restrictions == 0) {
        return fail(v, "audience", SAML_R_AUDIENCE, "no AudienceRestriction");
    }
    saml_check(v->report, "audience", v->sp->entity_id ? SAML_PASS : SAML_SKIP,
               "%s",
               v->sp->entity_id ? v->sp->entity_id
                                : "not compared: no SP entityID given");
    return SAML_OK;
}

/* The user and groups attributes: plain text values only. */
static enum saml_reason
read_attributes(struct verify *v, xmlNodePtr a)
{
    const char *ua = v->sp->user_attribute, *ga = v->sp->groups_attribute;
    bool user_found = false;
    char name[512];

    for (xmlNodePtr st = a->children; st != NULL; st = st->next) {
        if (!saml_is(st, SAML_NS_ASSERTION, "AttributeStatement")) {
            continue;
        }
        for (xmlNodePtr at = st->children; at != NULL; at = at->next) {
            bool is_user, is_groups;
            if (!saml_is(at, SAML_NS_ASSERTION, "Attribute") ||
                saml_attr(at, "Name", name, sizeof(name)) == NULL) {
                continue;
            }
            is_user = ua != NULL && strcmp(name, ua) == 0;
            is_groups = ga != NULL && strcmp(name, ga) == 0;
            if (!is_user && !is_groups) {
                continue;
            }
            for (xmlNodePtr val = at->children; val; val = val->next) {
                const char *text;
                if (!saml_is(val, SAML_NS_ASSERTION, "AttributeValue")) {
                    continue;
                }
                text = cmn_xml_text(val);
                if (!saml_value_ok(text)) {
                    return fail(v, "attributes", SAML_R_ATTRIBUTE,
                                "a value of %.100s is not one plain text "
                                "node",
                                name);
                }
                if (is_user) {
                    if (user_found) {
                        return fail(v, "attributes", SAML_R_ATTRIBUTE,
                                    "%.100s has more than one value", name);
                    }
                    user_found = true;
                    v->out->user = strdup(text);
                }
                if (is_groups && v->out->ngroups < SAML_MAX_GROUPS) {
                    v->out->groups[v->out->ngroups++] = strdup(text);
                }
            }
        }
    }
    if (ua != NULL && !user_found) {
        return fail(v, "attributes", SAML_R_ATTRIBUTE,
                    "no %.100s attribute (user_attribute)", ua);
    }
    saml_check(v->report, "attributes", SAML_PASS, "%zu group(s)",
               v->out->ngroups);
    return SAML_OK;
}

static enum saml_reason
check_assertion(struct verify *v, xmlNodePtr a)
{
    char buf[512], t[64];
    xmlNodePtr issuer, subject, nameid, authn;
    const char *text;
    enum saml_reason r;

    if (saml_attr(a, "Version", buf, sizeof(buf)) == NULL ||
        strcmp(buf, "2.0") != 0 || id_of(a, buf, sizeof(buf)) == NULL) {
        return fail(v, "assertion", SAML_R_SCHEMA,
                    "the Assertion is not SAML 2.0 with an ID");
    }
    v->out->assertion_id = strdup(buf);
    issuer = saml_child(a, SAML_NS_ASSERTION, "Issuer");
    if (issuer == NULL || !issuer_ok(issuer, v->idp->entity_id)) {
        return fail(v, "assertion_issuer", SAML_R_ISSUER,
                    "Assertion Issuer '%.120s' is not the IdP's entityID",
                    issuer && cmn_xml_text(issuer) ? cmn_xml_text(issuer)
                                                   : "(absent)");
    }
    v->out->issuer = strdup(v->idp->entity_id);
    saml_check(v->report, "assertion_issuer", SAML_PASS, "%s",
               v->idp->entity_id);
    subject = saml_child(a, SAML_NS_ASSERTION, "Subject");
    if (subject == NULL) {
        return fail(v, "nameid", SAML_R_NAMEID, "no Subject");
    }
    if (saml_child(subject, SAML_NS_ASSERTION, "EncryptedID") != NULL) {
        return fail(v, "nameid", SAML_R_NAMEID,
                    "an encrypted NameID is not supported");
    }
    nameid = saml_child(subject, SAML_NS_ASSERTION, "NameID");
    text = cmn_xml_text(nameid);
    if (nameid == NULL ||
        saml_count_children(subject, SAML_NS_ASSERTION, "NameID") != 1 ||
        !saml_value_ok(text)) {
        return fail(v, "nameid", SAML_R_NAMEID, "%s",
                    nameid == NULL ? "no NameID"
                    : text == NULL ? "the NameID is not one plain text node "
                                     "(a comment or element inside it)"
                                   : "the NameID is empty or not text");
    }
    v->out->name_id = strdup(text);
    /* kept as given: a LogoutRequest names the principal the same way */
    v->out->name_id_format =
        saml_strdup(saml_attr(nameid, "Format", buf, sizeof(buf)));
    v->out->name_qualifier =
        saml_strdup(saml_attr(nameid, "NameQualifier", buf, sizeof(buf)));
    v->out->sp_name_qualifier =
        saml_strdup(saml_attr(nameid, "SPNameQualifier", buf, sizeof(buf)));
    saml_check(v->report, "nameid", SAML_PASS, "%.150s", text);
    r = check_subject_confirmation(v, subject);
    if (r == SAML_OK) {
        r = check_conditions(v, a);
    }
    if (r != SAML_OK) {
        return r;
    }
    authn = saml_child(a, SAML_NS_ASSERTION, "AuthnStatement");
    if (authn == NULL) {
        return fail(v, "authn_statement", SAML_R_AUTHN_STATEMENT,
                    "no AuthnStatement");
    }
    v->out->session_index =
        saml_strdup(saml_attr(authn, "SessionIndex", buf, sizeof(buf)));
    /* when the user authenticated at the IdP: a LogoutRequest issued
     * later covers this sign-in (AuthnInstant is required by the schema;
     * else the Assertion's IssueInstant, else 0: before any logout) */
    if (saml_attr(authn, "AuthnInstant", t, sizeof(t)) == NULL ||
        (v->out->authn_instant = saml_time_parse(t)) < 0) {
        v->out->authn_instant =
            saml_attr(a, "IssueInstant", t, sizeof(t)) != NULL
                ? saml_time_parse(t)
                : 0;
        if (v->out->authn_instant < 0) {
            v->out->authn_instant = 0;
        }
    }
    if (saml_attr(authn, "SessionNotOnOrAfter", t, sizeof(t)) != NULL) {
        v->out->session_not_on_or_after = saml_time_parse(t);
        if (v->out->session_not_on_or_after <= v->now) {
            return fail(v, "authn_statement", SAML_R_EXPIRED,
                        "SessionNotOnOrAfter %.40s has passed", t);
        }
    }
    saml_check(v->report, "authn_statement", SAML_PASS, "present");
    r = read_attributes(v, a);
    if (r != SAML_OK) {
        return r;
    }
    if (v->out->user == NULL) {
        v->out->user = strdup(v->out->name_id);
    }
    if (!usable_user(v->out->user)) {
        return fail(v, "user", SAML_R_ATTRIBUTE,
                    "'%.100s' cannot be a user id (printable ASCII, no "
                    "spaces)",
                    v->out->user);
    }
    saml_check(v->report, "user", SAML_PASS, "%.150s", v->out->user);
    return SAML_OK;
}

/* The Response's children in schema order (saml-core §3.2.2 + §3.4):
 * Issuer? Signature? Extensions? Status (Assertion|EncryptedAssertion)*. */
static enum saml_reason
check_schema(struct verify *v, xmlNodePtr resp)
{
    int stage = 0;

    for (xmlNodePtr c = resp->children; c != NULL; c = c->next) {
        int s;
        if (c->type != XML_ELEMENT_NODE) {
            continue;
        }
        if (saml_is(c, SAML_NS_ASSERTION, "Issuer")) {
            s = 1;
        } else if (saml_is(c, SAML_NS_DSIG, "Signature")) {
            s = 2;
        } else if (saml_is(c, SAML_NS_PROTOCOL, "Extensions")) {
            s = 3;
        } else if (saml_is(c, SAML_NS_PROTOCOL, "Status")) {
            s = 4;
        } else if (saml_is(c, SAML_NS_ASSERTION, "Assertion") ||
                   saml_is(c, SAML_NS_ASSERTION, "EncryptedAssertion")) {
            s = 5;
        } else {
            return fail(v, "schema", SAML_R_SCHEMA,
                        "unexpected <%.60s> in the Response",
                        (const char *)c->name);
        }
        if (s < stage || (s == stage && s != 5)) {
            return fail(v, "schema", SAML_R_SCHEMA,
                        "<%.60s> out of order in the Response",
                        (const char *)c->name);
        }
        stage = s;
    }
    if (stage < 4) {
        return fail(v, "schema", SAML_R_SCHEMA, "no Status");
    }
    saml_check(v->report, "schema", SAML_PASS, "Response children in order");
    return SAML_OK;
}

enum saml_reason
saml_response_verify(const char *xml, size_t len, const struct saml_idp *idp,
                     const struct saml_sp *sp, long long now,
                     struct saml_assertion *out, struct saml_report *report,
                     struct cmn_err *detail)
{
    static const xmlChar *id_attrs[] = {(const xmlChar *)"ID", NULL};
    struct cmn_err scratch = {{0}}, perr = {{0}};
    struct verify v = {.idp = idp,
                       .sp = sp,
                       .now = now,
                       .out = out,
                       .report = report,
                       .why = detail != NULL ? detail : &scratch};
    xmlDocPtr doc = NULL, adoc = NULL;
    xmlNodePtr resp, assertion = NULL, enc = NULL, resp_sig = NULL,
                     assert_sig = NULL, atop;
    enum saml_reason r;
    char buf[256];
    size_t na, ne;

    memset(out, 0, sizeof(*out));
    if (saml_init(v.why) != CMN_OK) {
        return SAML_R_MALFORMED;
    }
    if (len > SAML_MAX_RESPONSE) {
        r = fail(&v, "size", SAML_R_TOO_LARGE, "larger than %s", "256 KiB");
        goto out;
    }
    doc = cmn_xml_parse(xml, len, SAML_MAX_RESPONSE, &perr);
    if (doc == NULL) {
        bool dtd = strstr(perr.msg, "DOCTYPE") != NULL ||
                   strstr(perr.msg, "entity") != NULL;
        r = fail(&v, "parse", dtd ? SAML_R_DOCTYPE : SAML_R_MALFORMED, "%s",
                 perr.msg);
        goto out;
    }
    saml_check(report, "parse", SAML_PASS, "well-formed, no DTD");
    resp = xmlDocGetRootElement(doc);
    if (!saml_is(resp, SAML_NS_PROTOCOL, "Response") ||
        saml_attr(resp, "Version", buf, sizeof(buf)) == NULL ||
        strcmp(buf, "2.0") != 0 || id_of(resp, buf, sizeof(buf)) == NULL) {
        r = fail(&v, "response", SAML_R_NOT_RESPONSE,
                 "the root is not a SAML 2.0 samlp:Response with an ID");
        goto out;
    }
    out->response_id = strdup(buf);
    if ((r = collect_ids(&v, resp)) != SAML_OK) {
        goto out;
    }
    saml_check(report, "unique_ids", SAML_PASS, "%zu ID attributes", v.nids);
    if ((r = check_schema(&v, resp)) != SAML_OK) {
        goto out;
    }
    /* exactly one Assertion or EncryptedAssertion in the whole message,
     * directly in the Response: none hidden in Extensions, Advice,
     * Object or a wrapping copy (XSW) */
    na = count_elements(resp, SAML_NS_ASSERTION, "Assertion", &assertion);
    ne = count_elements(resp, SAML_NS_ASSERTION, "EncryptedAssertion", &enc);
    if (na + ne != 1 || (assertion != NULL && assertion->parent != resp) ||
        (enc != NULL && enc->parent != resp)) {
        snprintf(buf, sizeof(buf),
                 "%zu Assertion(s) and %zu "
                 "EncryptedAssertion(s), not one directly in the Response",
                 na, ne);
        r = fail(&v, "one_assertion", SAML_R_ASSERTION_COUNT, "%s", buf);
        goto out;
    }
    saml_check(report, "one_assertion", SAML_PASS, "%s",
               enc ? "one EncryptedAssertion" : "one Assertion");
    if ((r = place_signatures(&v, resp, resp, assertion, &resp_sig,
                              &assert_sig)) != SAML_OK) {
        goto out;
    }
    saml_check(report, "signature_placement", SAML_PASS,
               "Response: %s, Assertion: %s", resp_sig ? "signed" : "no",
               enc          ? "(encrypted)"
               : assert_sig ? "signed"
                            : "no");
    xmlSecAddIDs(doc, resp, id_attrs);
    if (resp_sig != NULL) {
        if ((r = verify_signature(&v, "response_signature", resp_sig, resp)) !=
            SAML_OK) {
            goto out;
        }
        out->response_signed = true;
    }
    if (enc != NULL) {
        struct cmn_err why = {{0}};
        xmlNodePtr wrapper;
        r = saml_decrypt_assertion(enc, sp->key, &adoc, &why);
        if (r != SAML_OK) {
            r = fail(&v, "decrypt", r, "%s", why.msg);
            goto out;
        }
        out->encrypted = true;
        wrapper = xmlDocGetRootElement(adoc);
        na =
            count_elements(wrapper, SAML_NS_ASSERTION, "Assertion", &assertion);
        if (na != 1 || assertion->parent != wrapper ||
            count_elements(wrapper, SAML_NS_ASSERTION, "EncryptedAssertion",
                           NULL) != 0) {
            r = fail(&v, "decrypt", SAML_R_ASSERTION_COUNT,
                     "the decrypted content is not one Assertion");
            goto out;
        }
        for (xmlNodePtr c = wrapper->children; c != NULL; c = c->next) {
            if (c->type == XML_ELEMENT_NODE && c != assertion) {
                r = fail(&v, "decrypt", SAML_R_ASSERTION_COUNT,
                         "the decrypted content is not one Assertion");
                goto out;
            }
        }
        saml_check(report, "decrypt", SAML_PASS, "RSA-OAEP + AES");
        if ((r = collect_ids(&v, assertion)) != SAML_OK ||
            (r = place_signatures(&v, assertion, NULL, assertion, &resp_sig,
                                  &assert_sig)) != SAML_OK) {
            goto out;
        }
        xmlSecAddIDs(adoc, assertion, id_attrs);
        if (assert_sig == NULL) {
            r = fail(&v, "assertion_signature", SAML_R_SIGNATURE_MISSING,
                     "the decrypted Assertion is not signed");
            goto out;
        }
    }
    atop = assertion;
    if (assert_sig != NULL) {
        if ((r = verify_signature(&v, "assertion_signature", assert_sig,
                                  atop)) != SAML_OK) {
            goto out;
        }
        out->assertion_signed = true;
    } else {
        saml_check(report, "assertion_signature", SAML_SKIP,
                   "not signed (the Response signature covers it)");
    }
    if (!out->response_signed && !out->assertion_signed) {
        r = fail(&v, "signed", SAML_R_SIGNATURE_MISSING,
                 "neither the Response nor the Assertion is signed");
        goto out;
    }
    if ((r = check_response(&v, resp)) != SAML_OK ||
        (r = check_assertion(&v, atop)) != SAML_OK) {
        goto out;
    }
    saml_check(report, "in_response_to", SAML_SKIP, "%s",
               out->in_response_to ? out->in_response_to
                                   : "absent: IdP-initiated");
    r = SAML_OK;
out:
    if (adoc != NULL) {
        xmlFreeDoc(adoc);
    }
    if (doc != NULL) {
        xmlFreeDoc(doc);
    }
    if (r != SAML_OK) {
        saml_assertion_cleanup(out);
    }
    return r;
}

void
saml_assertion_cleanup(struct saml_assertion *a)
{
    free(a->response_id);
    free(a->assertion_id);
    free(a->issuer);
    free(a->in_response_to);
    free(a->name_id);
    free(a->name_id_format);
    free(a->name_qualifier);
    free(a->sp_name_qualifier);
    free(a->session_index);
    free(a->user);
    for (size_t i = 0; i < a->ngroups; i++) {
        free(a->groups[i]);
    }
    memset(a, 0, sizeof(*a));
}
