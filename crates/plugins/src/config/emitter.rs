//! `[[emitter]]`: where published reports go (a command, an HTTP endpoint, a file).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use super::source::{check_name, Source};
use super::{ConfigError, RawEmitter, Runtime, DEFAULT_PLUGIN_TIMEOUT};
use crate::secret::MaybeSecret;

/// Where an emitter sends reports.
#[derive(Debug, Clone, PartialEq)]
pub enum EmitterTarget {
    /// A command that reads the report on stdin.
    Command(Vec<String>),
    /// An HTTP endpoint that receives a POST.
    Url {
        /// The URL, or a reference to it (a webhook URL is often its own secret).
        url: MaybeSecret,
        /// Extra headers (e.g. authorization, which must be a secret reference).
        headers: Vec<(String, MaybeSecret)>,
    },
    /// A JSON-lines file (`-` for stdout).
    File(PathBuf),
}

/// One emitter.
#[derive(Debug, Clone, PartialEq)]
pub struct EmitterConfig {
    /// Its name.
    pub name: String,
    /// Where it sends.
    pub target: EmitterTarget,
    /// How long one delivery may take.
    pub timeout: Duration,
}

/// Reads and checks the `[[emitter]]` tables, in order. Names are unique among
/// emitters, since delivery jobs are keyed by them.
pub(super) fn emitters(
    raw: &[RawEmitter],
    source: &Source,
    runtime: Runtime,
) -> Result<Vec<EmitterConfig>, ConfigError> {
    let mut names = HashSet::new();
    let mut emitters = Vec::with_capacity(raw.len());
    for (i, emitter) in raw.iter().enumerate() {
        let key = format!("emitter[{i}]");
        check_name(&emitter.name).map_err(|m| source.invalid(format!("{key}.name"), m))?;
        if !names.insert(emitter.name.as_str()) {
            return Err(source.invalid(
                format!("{key}.name"),
                format!("{:?} is used by another emitter", emitter.name),
            ));
        }
        let target = target(emitter, &key, source)?;
        if runtime == Runtime::Aws {
            match &target {
                EmitterTarget::Command(_) => {
                    return Err(source.invalid(
                        format!("{key}.command"),
                        "commands do not run on AWS: use `url`",
                    ))
                }
                EmitterTarget::File(_) => {
                    return Err(source.invalid(
                        format!("{key}.file"),
                        "the AWS functions keep no files: use `url` (published reports stay in the report table)",
                    ))
                }
                EmitterTarget::Url { .. } => {}
            }
        }
        if !emitter.headers.is_empty() && !matches!(target, EmitterTarget::Url { .. }) {
            return Err(source.invalid(
                format!("{key}.headers"),
                "only an url emitter takes headers",
            ));
        }
        emitters.push(EmitterConfig {
            name: emitter.name.clone(),
            target,
            timeout: source.duration(
                &format!("{key}.timeout"),
                emitter.timeout.as_deref(),
                DEFAULT_PLUGIN_TIMEOUT,
            )?,
        });
    }
    Ok(emitters)
}

/// The one target an emitter table names.
fn target(emitter: &RawEmitter, key: &str, source: &Source) -> Result<EmitterTarget, ConfigError> {
    match (&emitter.command, &emitter.url, &emitter.file) {
        (Some(command), None, None) => Ok(EmitterTarget::Command(
            source.argv(&format!("{key}.command"), command)?,
        )),
        (None, Some(url), None) => {
            if let MaybeSecret::Plain(url) = url {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(source.invalid(
                        format!("{key}.url"),
                        format!("{url:?} is not an http(s) URL"),
                    ));
                }
            }
            for (name, value) in &emitter.headers {
                if matches!(value, MaybeSecret::Plain(_)) && is_credential_header(name) {
                    return Err(source.invalid(
                        format!("{key}.headers.{name}"),
                        "a credential is never written in the file: use { env = \"…\" }, \
                         { secret = \"…\" } or { file = \"…\" }",
                    ));
                }
            }
            Ok(EmitterTarget::Url {
                url: url.clone(),
                headers: emitter
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
        }
        // `-` is stdout, not a file named `-` beside the config.
        (None, None, Some(file)) if file.as_os_str() == "-" => {
            Ok(EmitterTarget::File(file.clone()))
        }
        (None, None, Some(file)) => Ok(EmitterTarget::File(source.resolve(file))),
        _ => Err(source.invalid(key, "needs exactly one of command, url, file")),
    }
}

/// Whether a header named `name` carries a credential.
fn is_credential_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "authorization"
        || ["token", "key", "secret", "signature", "password", "auth"]
            .iter()
            .any(|w| n.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{invalid, invalid_for, load};
    use crate::secret::SecretRef;

    #[test]
    fn each_kind_of_target_is_read() {
        let c = load(
            r#"
[[emitter]]
name = "ticket"
command = ["./open-ticket.sh", "--queue", "soc"]
timeout = "1m"
[[emitter]]
name = "hook"
url = "https://hooks.example.com/x"
headers = { Authorization = { env = "HOOK_TOKEN" }, X-Team = "soc" }
[[emitter]]
name = "log"
file = "out/reports.jsonl"
[[emitter]]
name = "stdout"
file = "-"
"#,
        )
        .unwrap();
        assert_eq!(
            c.emitters,
            vec![
                EmitterConfig {
                    name: "ticket".into(),
                    target: EmitterTarget::Command(vec![
                        "/etc/ar/./open-ticket.sh".into(),
                        "--queue".into(),
                        "soc".into()
                    ]),
                    timeout: Duration::from_secs(60),
                },
                EmitterConfig {
                    name: "hook".into(),
                    target: EmitterTarget::Url {
                        url: MaybeSecret::Plain("https://hooks.example.com/x".into()),
                        headers: vec![
                            (
                                "Authorization".into(),
                                MaybeSecret::Secret(SecretRef::Env("HOOK_TOKEN".into()))
                            ),
                            ("X-Team".into(), MaybeSecret::Plain("soc".into()))
                        ],
                    },
                    timeout: DEFAULT_PLUGIN_TIMEOUT,
                },
                EmitterConfig {
                    name: "log".into(),
                    target: EmitterTarget::File(PathBuf::from("/etc/ar/out/reports.jsonl")),
                    timeout: DEFAULT_PLUGIN_TIMEOUT,
                },
                EmitterConfig {
                    name: "stdout".into(),
                    target: EmitterTarget::File(PathBuf::from("-")),
                    timeout: DEFAULT_PLUGIN_TIMEOUT,
                },
            ]
        );
    }

    #[test]
    fn an_emitter_names_exactly_one_target() {
        for targets in [
            "",
            "command = \"a\"\nurl = \"http://b\"",
            "url = \"http://b\"\nfile = \"-\"",
        ] {
            assert_eq!(
                invalid(&format!("[[emitter]]\nname = \"x\"\n{targets}")),
                (
                    "emitter[0]".into(),
                    "needs exactly one of command, url, file".into()
                ),
                "{targets}"
            );
        }
    }

    #[test]
    fn a_bad_emitter_is_rejected_at_its_key() {
        assert_eq!(
            invalid("[[emitter]]\nname = \"x\"\nurl = \"ftp://b\""),
            (
                "emitter[0].url".into(),
                "\"ftp://b\" is not an http(s) URL".into()
            )
        );
        assert_eq!(
            invalid("[[emitter]]\nname = \"x\"\nfile = \"-\"\nheaders = { A = \"b\" }"),
            (
                "emitter[0].headers".into(),
                "only an url emitter takes headers".into()
            )
        );
        assert_eq!(
            invalid(
                "[[emitter]]\nname = \"x\"\nfile = \"-\"\n[[emitter]]\nname = \"x\"\nfile = \"-\""
            ),
            (
                "emitter[1].name".into(),
                "\"x\" is used by another emitter".into()
            )
        );
        assert_eq!(
            invalid("[[emitter]]\nname = \"x\"\ncommand = \"\""),
            ("emitter[0].command".into(), "must name a program".into())
        );
        let (key, _) = invalid("[[emitter]]\nname = \"\"\nfile = \"-\"");
        assert_eq!(key, "emitter[0].name");
        let (key, _) = invalid("[[emitter]]\nname = \"x\"\nfile = \"-\"\ntimeout = \"x\"");
        assert_eq!(key, "emitter[0].timeout");
    }

    #[test]
    fn a_credential_header_written_in_the_file_is_rejected() {
        let (key, message) = invalid(
            "[[emitter]]\nname = \"x\"\nurl = \"https://h.example\"\nheaders = { Authorization = \"Bearer t\" }",
        );
        assert_eq!(key, "emitter[0].headers.Authorization");
        assert!(message.contains("never written in the file") && !message.contains("Bearer t"));
        let (key, _) = invalid(
            "[[emitter]]\nname = \"x\"\nurl = \"https://h.example\"\nheaders = { X-Api-Key = \"k\" }",
        );
        assert_eq!(key, "emitter[0].headers.X-Api-Key");
    }

    #[test]
    fn a_webhook_url_may_be_a_secret_and_aws_takes_only_urls() {
        let c = load("[[emitter]]\nname = \"hook\"\nurl = { secret = \"ar/hook\" }").unwrap();
        assert_eq!(c.secrets_manager_ids(), vec!["ar/hook".to_string()]);
        assert_eq!(
            invalid_for("[[emitter]]\nname = \"x\"\nfile = \"-\"", Runtime::Aws).0,
            "emitter[0].file"
        );
        assert_eq!(
            invalid_for("[[emitter]]\nname = \"x\"\ncommand = \"a\"", Runtime::Aws).0,
            "emitter[0].command"
        );
    }
}
