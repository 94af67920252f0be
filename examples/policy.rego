# Example review policy. AlertResponder evaluates data.alertresponder.review.result
# with the compiled report as input; it must be {"severity": "safe" | "unclassified" | "urgent",
# "reason": "..."}. Undefined means "no decision" (unclassified unless another reviewer decides).
package alertresponder.review

import rego.v1

# Research scanners whose probes are expected noise.
scanners := {"AS64502 Research Scanner Project"}

# Malware any inspector linked to the report.
malware contains name if {
	some section in input.sections
	some name in section.content.related_malware
}

# Owners of the remote hosts the inspectors know.
remote_owners contains owner if {
	some section in input.sections
	section.type == "host"
	owner := section.content.as_owner
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
