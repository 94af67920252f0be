#!/usr/bin/env python3
"""Example AlertResponder inspector for usernames: who is this user, what is usual for them."""
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
    json.dump({"sections": [{"type": "user", "content": {"activities": [entry["owner"]] + entry.get("activities", [])}}]},
              sys.stdout)
