# SPDX-License-Identifier: AGPL-3.0-or-later
"""deploy/salesforce/fsc-call-center.xml, the call-center definition admins
import into Salesforce, follows the rules of reference/salesforce.md §1.4
(required items, name and size limits, https adapter URL, Lightning
compatibility), names the connector's softphone path, and sf-sim's Open CTI
stand-in serves it to the framed page as getCallCenterSettings."""
import json
import os
import re
import sys
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import stack  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
XML = os.path.join(ROOT, "deploy", "salesforce", "fsc-call-center.xml")
REQUIRED = {"reqGeneralInfo": ["reqInternalName", "reqDisplayName", "reqAdapterUrl", "reqUseApi",
                               "reqSoftphoneHeight", "reqSoftphoneWidth"],
            "reqDialingOptions": ["reqOutsidePrefix", "reqLongDistPrefix",
                                  "reqInternationalPrefix"]}


def items(root):
    out = {}
    for sec in root.findall("section"):
        for it in sec.findall("item"):
            out[(sec.get("name"), it.get("name"))] = (it.text or "").strip(), it.get("sortOrder")
    return out


def main():
    root = ET.parse(XML).getroot()
    assert root.tag == "callCenter", "root element callCenter, got %s" % root.tag
    got = items(root)
    for sec, names in REQUIRED.items():
        for n in names:
            assert (sec, n) in got, "required item %s/%s missing" % (sec, n)
    name, order = got[("reqGeneralInfo", "reqInternalName")]
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,39}", name) and order == "0", \
        "reqInternalName: <= 40 alphanumerics starting with a letter, sortOrder 0: %r" % name
    display, order = got[("reqGeneralInfo", "reqDisplayName")]
    assert 0 < len(display) <= 1000 and order == "1", "reqDisplayName: %r" % display
    url = urllib.parse.urlsplit(got[("reqGeneralInfo", "reqAdapterUrl")][0])
    assert url.scheme == "https" and url.path == "/softphone/", \
        "reqAdapterUrl: https and the connector's /softphone/ page: %r" % (url,)
    assert got[("reqGeneralInfo", "reqUseApi")][0] == "true", "reqUseApi true (Open CTI)"
    h = int(got[("reqGeneralInfo", "reqSoftphoneHeight")][0])
    w = int(got[("reqGeneralInfo", "reqSoftphoneWidth")][0])
    assert 240 <= h <= 2560 and 200 <= w <= 1920, "Lightning softphone size limits: %dx%d" % (w, h)
    mode = got.get(("reqGeneralInfo", "reqSalesforceCompatibilityMode"), ("Classic",))[0]
    assert mode in ("Lightning", "Classic_and_Lightning"), \
        "reqSalesforceCompatibilityMode must allow Lightning (the default is Classic): %r" % mode
    assert not any(n == "reqLightningPhone" for _, n in got), "reqLightningPhone does not exist"
    print("ok  %s: every required item, %s, https adapter URL on /softphone/, %dx%d, %s"
          % (os.path.basename(XML), name, w, h, mode))

    # sf-sim (Salesforce's side) loads it and the framed page gets it back
    sf = stack.SfSim(extra_args=["--call-center", XML])
    status, _, body = stack.http("POST", sf.api_url + "/sim/opencti", body={
        "kind": "call", "tab": "cc", "method": "getCallCenterSettings", "args": {}})
    assert status == 200, "getCallCenterSettings through sf-sim: %d" % status
    settings = json.loads(body)["response"]["returnValue"]
    assert settings["/reqGeneralInfo/reqAdapterUrl"] == "https://connector.example.com/softphone/" \
        and settings["/reqGeneralInfo/reqSalesforceCompatibilityMode"] == "Lightning", settings
    sf.stop()
    print("ok  sf-sim serves it as getCallCenterSettings (the map Salesforce gives the softphone)")
    print("PASS")


if __name__ == "__main__":
    main()
