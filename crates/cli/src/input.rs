//! Splits input into one raw alert each: a JSON array, or one JSON object per line.
//! Each alert keeps its exact bytes, so its content message ID is stable.

use serde_json::value::RawValue;

/// One alert as read, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAlert {
    /// `file:line` or `file[index]`.
    pub origin: String,
    /// The bytes of the alert.
    pub bytes: Vec<u8>,
}

/// Splits `text` read from `name`. A text that starts with `[` and parses as an array
/// gives its elements; anything else is taken line by line (blank lines skipped), and a
/// line that is not JSON is still handed on, so that it is rejected and kept as an error.
pub fn split_alerts(name: &str, text: &str) -> Vec<RawAlert> {
    if text.trim_start().starts_with('[') {
        if let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(text) {
            return items
                .into_iter()
                .enumerate()
                .map(|(i, v)| RawAlert {
                    origin: format!("{name}[{i}]"),
                    bytes: v.get().as_bytes().to_vec(),
                })
                .collect();
        }
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| RawAlert {
            origin: format!("{name}:{}", i + 1),
            bytes: l.trim().as_bytes().to_vec(),
        })
        .collect()
}

/// The `timestamp` of an alert, if it has a valid one (used to place it in virtual time).
pub fn peek_timestamp(raw: &[u8]) -> Option<chrono::DateTime<chrono::Utc>> {
    #[derive(serde::Deserialize)]
    struct Peek {
        timestamp: Option<String>,
    }
    let p: Peek = serde_json::from_slice(raw).ok()?;
    chrono::DateTime::parse_from_rfc3339(p.timestamp.as_deref()?)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_keep_line_numbers_and_skip_blanks() {
        let v = split_alerts("a.jsonl", "{\"x\":1}\n\n{\"x\":2}\nnot json\n");
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].origin, "a.jsonl:3");
        assert_eq!(v[2].bytes, b"not json");
    }

    #[test]
    fn a_json_array_gives_its_elements_byte_for_byte() {
        let v = split_alerts("a.json", "[ {\"x\": 1}, {\"y\":2} ]");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].bytes, b"{\"x\": 1}");
        assert_eq!(v[1].origin, "a.json[1]");
    }

    #[test]
    fn timestamps_are_peeked_only_when_valid() {
        assert!(peek_timestamp(br#"{"timestamp":"2026-11-23T10:00:00Z"}"#).is_some());
        assert!(peek_timestamp(br#"{"timestamp":"noon"}"#).is_none());
        assert!(peek_timestamp(b"[").is_none());
    }
}
