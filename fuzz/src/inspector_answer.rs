//! `inspector_answer`: what a command inspector prints on stdout (at most
//! `MAX_INSPECTOR_OUTPUT` bytes), through `plugins::inspection_from_output`, then what
//! the inspect step does with it (`fit::bound_section_content`,
//! `fit::check_new_attribute`, `fit::cut_attribute`).
//!
//! Checked: an answer is an inspection or `InvalidOutput` (never another failure),
//! whose message names the field or says it is not JSON; an inspection's sections have
//! a type that is not blank and within `MAX_ID_LEN` and object content, its new
//! attributes are bounded like an alert's, and it serialises and parses back to itself;
//! a section's content as stored takes at most `MAX_SECTION_BYTES`; a new attribute
//! the step takes is within `MAX_NEW_ATTRIBUTE_BYTES`, one it refuses is recorded cut.

use alertresponder_core::fit::{
    bound_section_content, check_new_attribute, cut_attribute, MAX_NEW_ATTRIBUTE_BYTES,
    MAX_NEW_ATTRIBUTE_VALUE_BYTES, MAX_SECTION_BYTES,
};
use alertresponder_core::validate::MAX_ID_LEN;
use alertresponder_core::PluginError;
use alertresponder_plugins::inspection_from_output;

/// Runs one input.
pub fn check(data: &[u8]) {
    let inspection = match inspection_from_output(data) {
        Ok(i) => i,
        Err(PluginError::InvalidOutput(m)) => {
            assert!(
                m.starts_with("not valid JSON")
                    || ["$", "sections", "new_attributes"]
                        .iter()
                        .any(|f| m.starts_with(f)),
                "the error names no field: {m}"
            );
            return;
        }
        Err(other) => panic!("an answer is an inspection or invalid, not {other:?}"),
    };
    for s in &inspection.sections {
        assert!(!s.section_type.trim().is_empty() && s.section_type.len() <= MAX_ID_LEN);
        assert!(s.content.is_object(), "content {:?}", s.content);
        let (stored, cut) = bound_section_content(s.content.clone());
        let size = serde_json::to_vec(&stored).map_or(0, |v| v.len());
        assert!(
            size <= MAX_SECTION_BYTES,
            "a stored section takes {size} bytes"
        );
        assert_eq!(cut.is_none(), stored == s.content);
    }
    for a in &inspection.new_attributes {
        crate::assert_attribute_bounded(a);
        if check_new_attribute(a).is_ok() {
            let size = serde_json::to_vec(a).map_or(0, |v| v.len());
            assert!(a.value.len() <= MAX_NEW_ATTRIBUTE_VALUE_BYTES);
            assert!(
                a.key.len() <= MAX_ID_LEN,
                "a key of {} bytes taken",
                a.key.len()
            );
            assert!(size <= MAX_NEW_ATTRIBUTE_BYTES + 64, "{size} bytes taken");
        } else {
            let cut = cut_attribute(a);
            assert!(cut.value.len() <= MAX_NEW_ATTRIBUTE_VALUE_BYTES + 40);
            assert!(cut.key.len() <= MAX_ID_LEN + 40);
        }
    }
    let json = serde_json::to_vec(&inspection).expect("an inspection serialises");
    let again = inspection_from_output(&json).expect("a serialised inspection parses");
    assert_eq!(again, inspection, "round trip");
}
