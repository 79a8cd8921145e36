/* SPDX-License-Identifier: AGPL-3.0-or-later */
/* fuzz_fin_rest.c - the Finesse REST body parsers on arbitrary bytes; the
 * first byte picks the parser (0 User, 1 Dialog, 2 Dialogs, 3 ApiErrors,
 * 4 SystemInfo, 5 ReasonCodes, 6 WrapUpReasons), and 7 runs the request
 * builders the other way: whatever they accept must parse back to the
 * same value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmn_xml.h"
#include "fin_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK_STR(s)                                \
    do {                                            \
        if (strnlen((s), sizeof(s)) == sizeof(s)) { \
            abort();                                \
        }                                           \
    } while (0)

/* The models are large; static keeps them off the fuzzer's stack. */
static struct fin_user user;
static struct fin_dialog dialog;
static struct fin_api_errors errors;
static struct fin_systeminfo sysinfo;
static struct fin_reason_codes reasons;
static struct fin_wrapup_reasons wrapups;

/* body must be well-formed and <root>'s child `name` must read as v; an
 * empty v is "none" to the builders, so the element must then be absent. */
static void
check_body(char *body, const char *name, const char *v)
{
    struct cmn_err err;
    xmlDocPtr doc;
    xmlNodePtr root;
    const char *got;

    if (body == NULL) {
        return;
    }
    doc = cmn_xml_parse(body, strlen(body), 4 * FIN_XML_MAX, &err);
    if (doc == NULL) {
        abort();
    }
    root = xmlDocGetRootElement(doc);
    if (v[0] == '\0') {
        if (cmn_xml_child(root, name) != NULL) {
            abort();
        }
    } else {
        got = cmn_xml_child_text(root, name);
        if (got == NULL || strcmp(got, v) != 0) {
            abort();
        }
    }
    xmlFreeDoc(doc);
    free(body);
}

static void
builders(const char *v)
{
    char *body;

    check_body(fin_xml_make_call(v, "1001"), "toAddress", v);
    check_body(fin_xml_user_state("NOT_READY", v, NULL), "reasonCodeId", v);
    check_body(fin_xml_dialog_action("CONSULT_CALL", "1001", v, NULL),
               "toAddress", v);
    body = fin_xml_wrapup(v);
    if (body != NULL) {
        struct cmn_err err;
        xmlDocPtr doc =
            cmn_xml_parse(body, strlen(body), 4 * FIN_XML_MAX, &err);
        const char *got;

        if (doc == NULL) {
            abort();
        }
        got = cmn_xml_child_text(
            cmn_xml_child(xmlDocGetRootElement(doc), "mediaProperties"),
            "wrapUpReason");
        if (got == NULL || strcmp(got, v) != 0) {
            abort();
        }
        xmlFreeDoc(doc);
        free(body);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    struct cmn_err err;
    struct fin_dialogs list;
    const char *xml;
    int sel;

    if (!init) {
        cmn_xml_init();
        init = 1;
    }
    if (size == 0) {
        return 0;
    }
    sel = data[0] % 8;
    xml = (const char *)data + 1;
    size--;
    switch (sel) {
    case 0:
        if (fin_parse_user(xml, size, &user, &err) == CMN_OK) {
            CHECK_STR(user.login_id);
            CHECK_STR(user.reason.label);
            if (user.login_id[0] == '\0' || user.state[0] == '\0') {
                abort();
            }
        }
        break;
    case 1:
        if (fin_parse_dialog(xml, size, &dialog, &err) == CMN_OK) {
            if (dialog.nvars > FIN_MAX_VARS || dialog.nparts > FIN_MAX_PARTS) {
                abort();
            }
            for (size_t i = 0; i < dialog.nparts; i++) {
                (void)fin_dialog_other(&dialog, dialog.parts[i].media_address);
                CHECK_STR(dialog.parts[i].media_address);
            }
            for (size_t i = 0; i < dialog.nvars; i++) {
                CHECK_STR(dialog.vars[i].value);
            }
        }
        break;
    case 2:
        if (fin_parse_dialogs(xml, size, &list, &err) == CMN_OK) {
            if (list.n > FIN_MAX_DIALOGS ||
                (list.n == 0) != (list.items == NULL)) {
                abort();
            }
            fin_dialogs_free(&list);
        }
        break;
    case 3:
        if (fin_parse_api_errors(xml, size, &errors, &err) == CMN_OK &&
            (errors.n == 0 || errors.n > FIN_MAX_ERRORS)) {
            abort();
        }
        break;
    case 4:
        if (fin_parse_systeminfo(xml, size, &sysinfo, &err) == CMN_OK &&
            (sysinfo.primary.https_port < 0 ||
             sysinfo.primary.https_port > 65535)) {
            abort();
        }
        break;
    case 5:
        if (fin_parse_reason_codes(xml, size, &reasons, &err) == CMN_OK &&
            reasons.n > FIN_MAX_REASONS) {
            abort();
        }
        break;
    case 6:
        if (fin_parse_wrapup_reasons(xml, size, &wrapups, &err) == CMN_OK &&
            wrapups.n > FIN_MAX_REASONS) {
            abort();
        }
        break;
    default: {
        /* The builders take C strings: stop at the first NUL. */
        char *v = malloc(size + 1);

        if (v == NULL) {
            return 0;
        }
        memcpy(v, xml, size);
        v[size] = '\0';
        builders(v);
        free(v);
        break;
    }
    }
    return 0;
}
