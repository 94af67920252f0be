//! `tester/config.json`: which deployed stacks the tests run against. The same file
//! drives `make deploy-test-stacks` (scripts/deploy.py), so it also holds the deploy
//! settings (bucket, prefix, architecture), which the tests ignore.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Names another config file than `tester/config.json`.
pub const CONFIG_ENV: &str = "TESTER_CONFIG";

/// What the tests need to find the stacks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    /// The region both stacks are in.
    pub region: String,
    /// The AlertResponder stack under test (deployed with short delays).
    pub main_stack_name: String,
    /// The tester stack (tester/template.yaml).
    pub tester_stack_name: String,
}

/// `$TESTER_CONFIG`, or `config.json` beside this crate's manifest.
pub fn config_path() -> PathBuf {
    std::env::var_os(CONFIG_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("config.json"))
}

/// The config at `path`; `None` when there is no such file (the tests are skipped);
/// an error naming the file and the field when it is there but wrong.
pub fn load(path: &Path) -> Result<Option<Config>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let config: Config =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for (field, value) in [
        ("Region", &config.region),
        ("MainStackName", &config.main_stack_name),
        ("TesterStackName", &config.tester_stack_name),
    ] {
        if value.trim().is_empty() {
            return Err(format!("{}: {field} is empty", path.display()));
        }
    }
    Ok(Some(config))
}

/// The line printed when the tests do not run: how to point them at a stack.
pub fn skipped_line(path: &Path) -> String {
    format!(
        "SKIPPED: the deployed-stack tests did not run: {} not found. Copy tester/config.example.json \
         there and deploy the stacks it names (`make deploy-test-stacks`), or set {CONFIG_ENV}; \
         see README \"Testing against your own AWS account\".",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_skips_a_bad_one_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        assert_eq!(load(&path), Ok(None));
        assert!(skipped_line(&path).contains("make deploy-test-stacks"));

        std::fs::write(&path, r#"{"Region": "eu-west-1", "MainStackName": "ar"}"#).unwrap();
        let err = load(&path).unwrap_err();
        assert!(err.contains("TesterStackName"), "{err}");

        std::fs::write(
            &path,
            r#"{"Region": "eu-west-1", "MainStackName": " ", "TesterStackName": "t"}"#,
        )
        .unwrap();
        assert!(load(&path).unwrap_err().contains("MainStackName is empty"));

        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.json");
        let config = load(&example).unwrap().expect("the example parses");
        assert_eq!(config.tester_stack_name, "alertresponder-tester");
    }
}
