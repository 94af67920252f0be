#!/usr/bin/env python3
"""Example AlertResponder inspector: looks attributes up in a local intel table.

Contract: a Task JSON on stdin ({"report_id", "attribute": {"type","key","value","context"}, "depth"}),
on stdout {"sections": [{"type": "host"|"user"|"binary", "content": {...}}], "new_attributes": [...]}
or nothing at all when nothing is known. A non-zero exit is recorded as a failed inspection.
It never runs a shell and never puts attribute values into a command line.
"""
import json
import os
import sys

INTEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "intel.json")


def main() -> int:
    task = json.load(sys.stdin)
    attr = task["attribute"]
    with open(INTEL, encoding="utf-8") as f:
        intel = json.load(f)
    entry = intel.get(attr["type"], {}).get(attr["value"])
    if entry is None:
        return 0  # nothing known: empty output
    kind = attr["type"]
    if kind == "ipaddr":
        content = {"ipaddr": [attr["value"]]}
        for k in ("country", "as_owner", "related_malware", "related_domains", "activities"):
            if k in entry:
                content[k] = entry[k] if isinstance(entry[k], list) or k in ("as_owner",) else [entry[k]]
        out = {"sections": [{"type": "host", "content": content}]}
    elif kind == "domain":
        content = {"related_domains": [attr["value"]], "related_malware": entry.get("related_malware", [])}
        # What the domain resolves to is a new entity: feed it back for inspection.
        new = [{"type": "ipaddr", "key": "resolved from " + attr["value"], "value": ip, "context": ["remote"]}
               for ip in entry.get("resolves_to", [])]
        out = {"sections": [{"type": "host", "content": content}], "new_attributes": new}
    elif kind == "filehashvalue":
        out = {"sections": [{"type": "binary", "content": {"related_malware": entry.get("related_malware", []),
                                                           "software": entry.get("software", [])}}]}
    else:
        return 0
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
