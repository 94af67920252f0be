//! The tags a quarantine leaves on an instance, and the identifiers it accepts.
//!
//! | tag key | value |
//! |---------|-------|
//! | `alertresponder:quarantine` | the report ID; written last: its presence means "isolated" |
//! | `alertresponder:quarantine-groups:<eni-id>` | the interface's previous groups, space-separated, at most [`GROUPS_PER_TAG`] |
//! | `alertresponder:quarantine-groups:<eni-id>:<n>` | the next [`GROUPS_PER_TAG`] of them (`n` from 2) |
//!
//! A tag value holds at most 256 characters; a group ID is at most 20 (`sg-` and 17
//! hex digits), so twelve fit one tag (251 characters with their separators) and an
//! interface's sixteen groups (EC2's most) take two. Space-separated, the value is the
//! argument list of `aws ec2 modify-network-interface-attribute --groups` as it is.
//! The group the fan-out creates carries [`GROUP_TAG`].

use std::collections::BTreeMap;

/// The marker: the report that isolated the instance.
pub const MARKER: &str = "alertresponder:quarantine";
/// The prefix of the previous-groups tags (the interface ID follows).
pub const GROUPS_PREFIX: &str = "alertresponder:quarantine-groups:";
/// On the quarantine group the fan-out created (value `true`): only such a group may
/// have its rules revoked (the IAM condition of `template.yaml`).
pub const GROUP_TAG: &str = "alertresponder:quarantine-group";
/// Longest tag value EC2 accepts.
pub const MAX_TAG_VALUE: usize = 256;
/// Group IDs per previous-groups tag.
pub const GROUPS_PER_TAG: usize = 12;
/// Most security groups one interface can have (EC2's quota at its highest).
pub const MAX_GROUPS_PER_INTERFACE: usize = 16;

/// `^i-[0-9a-f]{8,17}$`.
pub fn valid_instance_id(s: &str) -> bool {
    hex_id(s, "i-")
}

/// `^sg-[0-9a-f]{8,17}$`.
pub fn valid_group_id(s: &str) -> bool {
    hex_id(s, "sg-")
}

/// `^eni-[0-9a-f]{8,17}$`.
pub fn valid_interface_id(s: &str) -> bool {
    hex_id(s, "eni-")
}

fn hex_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|hex| {
        (8..=17).contains(&hex.len())
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The tags that record `groups` as the previous groups of `interface`: one per
/// [`GROUPS_PER_TAG`] groups, each value within [`MAX_TAG_VALUE`].
pub fn encode_groups(interface: &str, groups: &[String]) -> Vec<(String, String)> {
    if groups.is_empty() {
        return vec![(format!("{GROUPS_PREFIX}{interface}"), String::new())];
    }
    groups
        .chunks(GROUPS_PER_TAG)
        .enumerate()
        .map(|(i, chunk)| {
            let key = if i == 0 {
                format!("{GROUPS_PREFIX}{interface}")
            } else {
                format!("{GROUPS_PREFIX}{interface}:{}", i + 1)
            };
            (key, chunk.join(" "))
        })
        .collect()
}

/// A recorded tag that is not what [`encode_groups`] writes (edited by hand, or by
/// someone who may change the instance's tags): the release refuses to guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tag {key}: {message}")]
pub struct TagError {
    /// The tag key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// The previous groups recorded in `tags` (any tags: others are ignored), by
/// interface, in the order they were recorded.
pub fn decode_groups(tags: &[(String, String)]) -> Result<BTreeMap<String, Vec<String>>, TagError> {
    let mut parts: BTreeMap<String, BTreeMap<usize, Vec<String>>> = BTreeMap::new();
    for (key, value) in tags {
        let Some(rest) = key.strip_prefix(GROUPS_PREFIX) else {
            continue;
        };
        let err = |message: &str| TagError {
            key: key.chars().take(128).collect(),
            message: message.into(),
        };
        let (interface, part) = match rest.split_once(':') {
            None => (rest, 1),
            Some((interface, n)) => match n.parse::<usize>() {
                Ok(n) if (2..=MAX_GROUPS_PER_INTERFACE.div_ceil(GROUPS_PER_TAG)).contains(&n) => {
                    (interface, n)
                }
                _ => return Err(err("not a continuation number this release writes")),
            },
        };
        if !valid_interface_id(interface) {
            return Err(err("not a network interface ID"));
        }
        let groups: Vec<String> = value.split_whitespace().map(str::to_string).collect();
        if let Some(bad) = groups.iter().find(|g| !valid_group_id(g)) {
            let bad: String = bad.chars().take(40).collect();
            return Err(err(&format!("{bad:?} is not a security group ID")));
        }
        parts
            .entry(interface.to_string())
            .or_default()
            .insert(part, groups);
    }
    let mut out = BTreeMap::new();
    for (interface, chunks) in parts {
        if !chunks.contains_key(&1) {
            return Err(TagError {
                key: format!("{GROUPS_PREFIX}{interface}"),
                message: "missing, while a continuation of it is present".into(),
            });
        }
        out.insert(interface, chunks.into_values().flatten().collect());
    }
    Ok(out)
}

/// Every tag key of ours among `tags` (the marker and the previous groups).
pub fn our_keys(tags: &[(String, String)]) -> Vec<String> {
    tags.iter()
        .filter(|(k, _)| k == MARKER || k.starts_with(GROUPS_PREFIX))
        .map(|(k, _)| k.clone())
        .collect()
}

/// The marker's value: the report that isolated the instance.
pub fn marker(tags: &[(String, String)]) -> Option<&str> {
    tags.iter()
        .find(|(k, _)| k == MARKER)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("sg-{i:017x}")).collect()
    }

    #[test]
    fn identifiers_are_accepted_only_in_their_aws_form() {
        assert!(valid_instance_id("i-0123456789abcdef0"));
        assert!(valid_instance_id("i-12345678"));
        for bad in [
            "i-1234567",
            "i-0123456789abcdef01",
            "i-0123456789ABCDEF0",
            "i-12345678 i-87654321",
            "i-12345678;rm",
            "--instance-ids",
            "",
        ] {
            assert!(!valid_instance_id(bad), "{bad}");
        }
        assert!(valid_group_id("sg-0123456789abcdef0"));
        assert!(!valid_group_id("sg-xyz12345"));
        assert!(valid_interface_id("eni-0123456789abcdef0"));
    }

    #[test]
    fn sixteen_groups_take_two_tags_each_within_the_value_bound_and_come_back_in_order() {
        let eni = "eni-0123456789abcdef0";
        let all = groups(16);
        let tags = encode_groups(eni, &all);
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].0, format!("{GROUPS_PREFIX}{eni}"));
        assert_eq!(tags[1].0, format!("{GROUPS_PREFIX}{eni}:2"));
        for (k, v) in &tags {
            assert!(v.len() <= MAX_TAG_VALUE, "{k}: {}", v.len());
            assert!(k.len() <= 128);
        }
        assert_eq!(tags[0].1.len(), 12 * 20 + 11);
        // Stored in any order, with tags of others around them.
        let mut stored = vec![("Name".to_string(), "web".to_string())];
        stored.extend(tags.into_iter().rev());
        stored.push((MARKER.into(), "report".into()));
        let decoded = decode_groups(&stored).unwrap();
        assert_eq!(decoded.get(eni), Some(&all));
        assert_eq!(decoded.len(), 1);
        let one = encode_groups(eni, &groups(1));
        assert_eq!(
            one,
            vec![(format!("{GROUPS_PREFIX}{eni}"), groups(1)[0].clone())]
        );
    }

    #[test]
    fn a_tampered_record_is_refused_naming_its_tag() {
        let eni = "eni-0123456789abcdef0";
        for (key, value) in [
            (
                format!("{GROUPS_PREFIX}{eni}"),
                "sg-12345678 $(reboot)".to_string(),
            ),
            (format!("{GROUPS_PREFIX}eni-x"), "sg-12345678".to_string()),
            (format!("{GROUPS_PREFIX}{eni}:9"), "sg-12345678".to_string()),
            (format!("{GROUPS_PREFIX}{eni}:2"), "sg-12345678".to_string()),
        ] {
            let err = decode_groups(&[(key.clone(), value)]).unwrap_err();
            assert!(err.key.starts_with(GROUPS_PREFIX), "{err}");
        }
    }
}
