#!/usr/bin/env python3
"""Example AlertResponder emitter: appends a one-line notice per published report.

Contract: the Report JSON on stdin; exit 0 means delivered. ALERTRESPONDER_ATTEMPT is 0 on the
first try. A real emitter would open or update a ticket: `version` > 1 with `previous_result`
means "update the ticket you opened for version 1", not "open a second one".
"""
import json
import os
import sys

report = json.load(sys.stdin)
out = os.environ.get("NOTIFY_LOG", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "out", "notifications.log"))
os.makedirs(os.path.dirname(out), exist_ok=True)
first = report["alerts"][0]
verb = "updated" if report.get("version", 1) > 1 else "opened"
line = "{} ticket for report {} v{}: {} — {} ({} alerts)\n".format(
    verb, report["id"], report.get("version"), report["result"]["severity"].upper(),
    first.get("rule_name") or first["rule_id"], len(report["alerts"]))
with open(out, "a", encoding="utf-8") as f:
    f.write(line)
