//! `[[inspector]]`: the external commands that inspect attributes.

use std::collections::HashSet;
use std::time::Duration;

use super::source::{check_name, Source};
use super::{ConfigError, RawInspector, DEFAULT_PLUGIN_TIMEOUT};

/// An external-command inspector.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectorConfig {
    /// Its name (author of its sections).
    pub name: String,
    /// argv.
    pub command: Vec<String>,
    /// Attribute types it takes (all when `None`).
    pub types: Option<Vec<String>>,
    /// How long it may take per attribute.
    pub timeout: Duration,
}

/// Reads and checks the `[[inspector]]` tables, in order. Names are unique among
/// inspectors, since a name authors sections.
pub(super) fn inspectors(
    raw: &[RawInspector],
    source: &Source,
) -> Result<Vec<InspectorConfig>, ConfigError> {
    let mut names = HashSet::new();
    let mut inspectors = Vec::with_capacity(raw.len());
    for (i, inspector) in raw.iter().enumerate() {
        let key = format!("inspector[{i}]");
        check_name(&inspector.name).map_err(|m| source.invalid(format!("{key}.name"), m))?;
        if !names.insert(inspector.name.as_str()) {
            return Err(source.invalid(
                format!("{key}.name"),
                format!("{:?} is used by another inspector", inspector.name),
            ));
        }
        inspectors.push(InspectorConfig {
            name: inspector.name.clone(),
            command: source.argv(&format!("{key}.command"), &inspector.command)?,
            types: inspector.types.clone(),
            timeout: source.duration(
                &format!("{key}.timeout"),
                inspector.timeout.as_deref(),
                DEFAULT_PLUGIN_TIMEOUT,
            )?,
        });
    }
    Ok(inspectors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{invalid, load};

    #[test]
    fn inspectors_keep_their_order_types_and_timeouts() {
        let c = load(
            r#"
[[inspector]]
name = "whois"
command = "./whois.sh --fast"
types = ["ipaddr", "domain"]
timeout = "10s"
[[inspector]]
name = "geo"
command = ["/opt/geo", "--json"]
"#,
        )
        .unwrap();
        assert_eq!(
            c.inspectors,
            vec![
                InspectorConfig {
                    name: "whois".into(),
                    command: vec!["/etc/ar/./whois.sh".into(), "--fast".into()],
                    types: Some(vec!["ipaddr".into(), "domain".into()]),
                    timeout: Duration::from_secs(10),
                },
                InspectorConfig {
                    name: "geo".into(),
                    command: vec!["/opt/geo".into(), "--json".into()],
                    types: None,
                    timeout: DEFAULT_PLUGIN_TIMEOUT,
                },
            ]
        );
    }

    #[test]
    fn a_bad_inspector_is_rejected_at_its_key() {
        let (key, message) = invalid("[[inspector]]\nname = \"a b\"\ncommand = \"x\"");
        assert_eq!(key, "inspector[0].name");
        assert!(message.contains("use 1-64 letters"), "{message}");
        assert_eq!(
            invalid(
                "[[inspector]]\nname = \"x\"\ncommand = \"a\"\n\
                 [[inspector]]\nname = \"x\"\ncommand = \"b\""
            ),
            (
                "inspector[1].name".into(),
                "\"x\" is used by another inspector".into()
            )
        );
        assert_eq!(
            invalid("[[inspector]]\nname = \"x\"\ncommand = []"),
            ("inspector[0].command".into(), "must name a program".into())
        );
        let (key, _) = invalid("[[inspector]]\nname = \"x\"\ncommand = \"a\"\ntimeout = \"later\"");
        assert_eq!(key, "inspector[0].timeout");
    }

    #[test]
    fn an_inspector_may_share_its_name_with_an_emitter() {
        let c = load(
            "[[inspector]]\nname = \"x\"\ncommand = \"a\"\n\
             [[emitter]]\nname = \"x\"\nfile = \"-\"",
        )
        .unwrap();
        assert_eq!((c.inspectors.len(), c.emitters.len()), (1, 1));
    }

    #[test]
    fn an_inspector_without_a_command_does_not_parse() {
        let e = load("[[inspector]]\nname = \"x\"").unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }), "{e}");
        assert!(e.to_string().contains("command"), "{e}");
    }
}
