# Example review policy. AlertResponder evaluates data.alertresponder.review.result
# with the compiled report as input; it must be {"severity": "safe" | "unclassified" | "urgent",
# "reason": "..."}. Undefined means "no decision" (unclassified unless another reviewer decides).
package alertresponder.review

import rego.v1

# Research scanners whose probes are expected noise.
scanners := {"AS64502 Research Scanner Project"}

# Malware any inspector linked to the report: names of positive scans
# (section content follows DeepAlert's types: related_malware is a list of
# {sha256, timestamp, scans: [{vendor, name, positive, source}], relation}).
malware contains scan.name if {
	some section in input.sections
	some entry in section.content.related_malware
	some scan in entry.scans
	scan.positive
}

# Owners of the remote hosts the inspectors know (as_owner is a list).
remote_owners contains owner if {
	some section in input.sections
	section.type == "host"
	some owner in section.content.as_owner
}

only_scanners if {
	count(remote_owners) > 0
	every owner in remote_owners {
		owner in scanners
	}
}

result := {"severity": "urgent", "reason": sprintf("linked to malware: %s", [concat(", ", sort(malware))])} if {
	count(malware) > 0
} else := {"severity": "safe", "reason": "synthetic self-test alert"} if {
	every alert in input.alerts {
		alert.detector == "selftest"
	}
} else := {"severity": "safe", "reason": "only known research scanners involved"} if {
	only_scanners
} else := {"severity": "unclassified", "reason": "no rule matched: a person should look"}
