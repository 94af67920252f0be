#!/usr/bin/env python3
"""Example AlertResponder inspector for usernames: who is this user, what is usual for them.

Answers a DeepAlert "user" section: {"activities": [{service_name, remote_addr, principal,
action, target, last_seen}]}.
"""
import json
import os
import sys

INTEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "intel.json")

task = json.load(sys.stdin)
attr = task["attribute"]
with open(INTEL, encoding="utf-8") as f:
    users = json.load(f).get("username", {})
entry = users.get(attr["value"])
if entry is None:
    print("{}")
else:
    def activity(action, target=""):
        return {"service_name": "hr-directory", "remote_addr": "", "principal": attr["value"],
                "action": action, "target": target, "last_seen": "2026-11-20T09:00:00Z"}
    activities = [activity("employee record", entry["owner"])] + [activity(a) for a in entry.get("activities", [])]
    json.dump({"sections": [{"type": "user", "content": {"activities": activities}}]}, sys.stdout)
