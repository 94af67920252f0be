//! `alertresponder check`: the configuration checked the way a runtime will use it.
//!
//! - `--runtime embedded` (default) builds every plugin as `serve` would: secrets
//!   resolved, policy parsed, databases opened, clients built.
//! - `--runtime aws` reads the plugin sections as the stack's functions will (commands
//!   and files rejected, Lambda `function`s accepted) and builds the built-ins too,
//!   resolving `{ secret = … }` references through Secrets Manager when this build has
//!   AWS support (`--features aws`).
//! - `--plan` prints, as JSON, what `make deploy` needs to put the file in front of the
//!   stack: the files to upload beside it, the Secrets Manager secrets to grant, the
//!   Lambda functions to allow, the built-in kinds (the `aws` one needs its read-only
//!   policy). It resolves no secret: the deployer need not be able to read them.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use alertresponder_core::ports::SystemClock;
use alertresponder_plugins::config::{InspectorSource, PluginsConfig, Runtime, Source};
use anyhow::Context;
use serde::Serialize;

use crate::app;
use crate::config::Config;

/// The runtime a configuration is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckRuntime {
    /// `alertresponder run` / `serve` on this machine.
    Embedded,
    /// The AWS stack's functions.
    Aws,
}

/// What `make deploy` reads.
#[derive(Debug, Serialize, PartialEq)]
pub struct Plan {
    /// Files to upload beside the config, relative to its directory.
    pub files: Vec<PathBuf>,
    /// Secrets Manager names or ARNs the functions may read, and only these.
    pub secrets: Vec<String>,
    /// Lambda functions the stack invokes.
    pub functions: PlanFunctions,
    /// Built-in inspector kinds, once each.
    pub kinds: Vec<&'static str>,
    /// How many inspectors (a stack with none takes no inspection task).
    pub inspectors: usize,
    /// How many emitters.
    pub emitters: usize,
}

/// The Lambda functions a configuration names.
#[derive(Debug, Serialize, PartialEq, Default)]
pub struct PlanFunctions {
    /// Inspector functions.
    pub inspectors: Vec<String>,
    /// Reviewer functions.
    pub reviewers: Vec<String>,
}

/// Checks `config` for the embedded runtime: builds every plugin; prints a summary.
pub async fn check_embedded(config: &Config) -> anyhow::Result<()> {
    let p = app::plugins(config, None, Arc::new(SystemClock)).await?;
    println!(
        "config ok: {} inspector(s), {} reviewer(s), {} emitter(s); database {}",
        p.inspectors.len(),
        p.reviewers.len(),
        p.emitters.len(),
        config.database.display()
    );
    Ok(())
}

/// Checks the file at `path` as the AWS functions will read it; prints a summary, or
/// the plan.
pub async fn check_aws(path: &Path, plan: bool) -> anyhow::Result<()> {
    {
        {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config {}", path.display()))?;
            let source = Source::new(path);
            let plugins = PluginsConfig::from_toml(&text, &source, Runtime::Aws)?;
            if plan {
                let plan = plan_of(&plugins, &source)?;
                // A closed pipe (`| head`) is an error, not a panic.
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", serde_json::to_string_pretty(&plan)?)?;
                return Ok(());
            }
            let aws_config = Config {
                source: Some(path.to_path_buf()),
                inspectors: plugins
                    .inspectors
                    .iter()
                    .filter(|i| !matches!(i.source, InspectorSource::Function(_)))
                    .cloned()
                    .collect(),
                reviewer: alertresponder_plugins::config::ReviewerConfig {
                    function: None,
                    ..plugins.reviewer.clone()
                },
                emitters: plugins.emitters.clone(),
                ..Config::default()
            };
            let p = app::plugins(&aws_config, None, Arc::new(SystemClock)).await?;
            let functions = plugins.inspectors.len() - aws_config.inspectors.len()
                + usize::from(plugins.reviewer.function.is_some());
            println!(
                "config ok for AWS: {} built-in inspector(s), {} reviewer(s), {} emitter(s), {} Lambda function(s) (not invoked)",
                p.inspectors.len(),
                p.reviewers.len(),
                p.emitters.len(),
                functions
            );
            Ok(())
        }
    }
}

/// The deployment plan of `plugins`, read from the file at `source`.
pub fn plan_of(plugins: &PluginsConfig, source: &Source) -> anyhow::Result<Plan> {
    let base = source.base_dir();
    let mut files = Vec::new();
    for f in plugins.files(source) {
        let relative = f
            .strip_prefix(base)
            .ok()
            .filter(|r| r.components().all(|c| matches!(c, Component::Normal(_))));
        let Some(relative) = relative else {
            anyhow::bail!(
                "{} is outside the config's directory {}: keep the files the config names beside it (make deploy uploads that directory's files)",
                f.display(),
                display_dir(base)
            );
        };
        if !f.is_file() {
            anyhow::bail!("{} does not exist (named by the config)", f.display());
        }
        files.push(relative.to_path_buf());
    }
    let mut kinds = Vec::new();
    let mut functions = PlanFunctions::default();
    for i in &plugins.inspectors {
        match &i.source {
            InspectorSource::Builtin { kind, .. } if !kinds.contains(&kind.name()) => {
                kinds.push(kind.name())
            }
            InspectorSource::Function(arn) => functions.inspectors.push(arn.clone()),
            _ => {}
        }
    }
    if let Some(arn) = &plugins.reviewer.function {
        functions.reviewers.push(arn.clone());
    }
    Ok(Plan {
        files,
        secrets: plugins.secrets_manager_ids(),
        functions,
        kinds,
        inspectors: plugins.inspectors.len(),
        emitters: plugins.emitters.len(),
    })
}

fn display_dir(p: &Path) -> String {
    if p.as_os_str().is_empty() {
        ".".into()
    } else {
        p.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str, dir: &Path) -> anyhow::Result<Plan> {
        let path = dir.join("alertresponder.toml");
        let source = Source::new(&path);
        let plugins = PluginsConfig::from_toml(text, &source, Runtime::Aws)?;
        plan_of(&plugins, &source)
    }

    #[test]
    fn the_plan_names_files_secrets_functions_and_kinds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("geo")).unwrap();
        std::fs::write(dir.path().join("policy.rego"), "package x").unwrap();
        std::fs::write(dir.path().join("geo/asn.mmdb"), "x").unwrap();
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:whois";
        let p = plan(
            &format!(
                r#"
database = "ignored on AWS"
[[inspector]]
name = "vt"
kind = "virustotal"
api_key = {{ secret = "ar/vt" }}
[[inspector]]
name = "geo"
kind = "geoip"
asn_db = "geo/asn.mmdb"
[[inspector]]
name = "whois"
function = "{arn}"
[reviewer]
policy = "policy.rego"
[[emitter]]
name = "hook"
url = {{ secret = "ar/hook" }}
"#
            ),
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            p,
            Plan {
                files: vec![PathBuf::from("policy.rego"), PathBuf::from("geo/asn.mmdb")],
                secrets: vec!["ar/vt".into(), "ar/hook".into()],
                functions: PlanFunctions {
                    inspectors: vec![arn.into()],
                    reviewers: vec![],
                },
                kinds: vec!["virustotal", "geoip"],
                inspectors: 3,
                emitters: 1,
            }
        );
    }

    #[test]
    fn a_file_outside_the_config_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("conf");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(dir.path().join("policy.rego"), "package x").unwrap();
        let e = plan("[reviewer]\npolicy = \"../policy.rego\"", &inner)
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside the config's directory"), "{e}");
        let e = plan("[reviewer]\npolicy = \"absent.rego\"", &inner)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }
}
