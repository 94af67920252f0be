#!/usr/bin/env python3
"""Example AlertResponder inspector: looks attributes up in a local intel table.

Contract: a Task JSON on stdin ({"report_id", "attribute": {"type","key","value","context"}, "depth"}),
on stdout {"sections": [{"type": "host"|"user"|"binary", "content": {...}}], "new_attributes": [...]}
or nothing at all when nothing is known. A non-zero exit is recorded as a failed inspection.
Section content follows DeepAlert's types (lists of strings and of entity objects), so that
DeepAlert emitters and reviewers can read it. It never runs a shell and never puts attribute
values into a command line.
"""
import json
import os
import sys

INTEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "intel.json")
SOURCE = "example-intel"


def malware(names, seen, sha256=""):
    return [{"sha256": sha256, "timestamp": seen, "relation": "communicating",
             "scans": [{"vendor": SOURCE, "name": n, "positive": True, "source": SOURCE}]} for n in names]


def main() -> int:
    task = json.load(sys.stdin)
    attr = task["attribute"]
    with open(INTEL, encoding="utf-8") as f:
        intel = json.load(f)
    entry = intel.get(attr["type"], {}).get(attr["value"])
    if entry is None:
        return 0  # nothing known: empty output
    seen = entry.get("last_seen", "2026-11-20T09:00:00Z")
    kind = attr["type"]
    if kind == "ipaddr":
        content = {"ipaddr": [attr["value"]]}
        if "country" in entry:
            content["country"] = [entry["country"]]
        if "as_owner" in entry:
            content["as_owner"] = [entry["as_owner"]]
        if "related_domains" in entry:
            content["related_domains"] = [{"name": d, "timestamp": seen, "source": SOURCE} for d in entry["related_domains"]]
        if "related_malware" in entry:
            content["related_malware"] = malware(entry["related_malware"], seen)
        if "activities" in entry:
            content["activities"] = [{"service_name": SOURCE, "remote_addr": attr["value"], "principal": "",
                                      "action": a, "target": "", "last_seen": seen} for a in entry["activities"]]
        out = {"sections": [{"type": "host", "content": content}]}
    elif kind == "domain":
        content = {"related_domains": [{"name": attr["value"], "timestamp": seen, "source": SOURCE}],
                   "related_malware": malware(entry.get("related_malware", []), seen)}
        # What the domain resolves to is a new entity: feed it back for inspection.
        new = [{"type": "ipaddr", "key": "resolved from " + attr["value"], "value": ip, "context": ["remote"]}
               for ip in entry.get("resolves_to", [])]
        out = {"sections": [{"type": "host", "content": content}], "new_attributes": new}
    elif kind == "filehashvalue":
        out = {"sections": [{"type": "binary", "content": {
            "related_malware": malware(entry.get("related_malware", []), seen, entry.get("sha256", "")),
            "software": entry.get("software", [])}}]}
    else:
        return 0
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
