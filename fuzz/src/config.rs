//! `config`: the text of `alertresponder.toml`, through the command's
//! `config::Config::from_toml` and `plugins::config::PluginsConfig::from_toml` for
//! both runtimes (what the AWS functions read from the deployment bucket).
//!
//! Checked: an error is a parse error naming the file, or an invalid value naming its
//! key; an accepted config has valid settings (`Settings::validate`), plugin names that
//! follow the rule and are unique among inspectors and among emitters; the command's
//! plugin sections are exactly what `PluginsConfig::from_toml` reads from the same
//! text for the embedded runtime; and reading is deterministic.

use std::collections::HashSet;
use std::path::Path;

use alertresponder::config::{Config, ConfigError, PluginsConfig, Runtime};
use alertresponder_plugins::config::{check_name, Source};

/// Where the text claims to come from (anchors relative paths; nothing is read).
const PATH: &str = "/etc/alertresponder/alertresponder.toml";

/// Runs one input.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new(PATH);
    let source = Source::new(path);
    let command = Config::from_toml(text, path);
    let embedded = PluginsConfig::from_toml(text, &source, Runtime::Embedded);
    let aws = PluginsConfig::from_toml(text, &source, Runtime::Aws);
    for plugins in [&embedded, &aws] {
        match plugins {
            Ok(p) => check_plugins(p),
            Err(e) => check_error(e),
        }
    }
    match &command {
        Ok(config) => {
            config
                .settings
                .validate()
                .expect("an accepted config has valid settings");
            assert!(config.concurrency > 0, "no job could run");
            let plugins = embedded
                .as_ref()
                .expect("the plugin sections of an accepted config are accepted alone");
            assert_eq!(plugins.inspectors, config.inspectors);
            assert_eq!(plugins.reviewer, config.reviewer);
            assert_eq!(plugins.emitters, config.emitters);
            let again = Config::from_toml(text, path).expect("the same text is accepted again");
            assert_eq!(&again, config, "reading is deterministic");
        }
        Err(e) => check_error(e),
    }
}

/// Plugin names follow the rule and are unique among their kind.
fn check_plugins(p: &PluginsConfig) {
    let mut seen = HashSet::new();
    for i in &p.inspectors {
        check_name(&i.name).expect("an accepted inspector name follows the rule");
        assert!(seen.insert(&i.name), "two inspectors named {:?}", i.name);
    }
    let mut seen = HashSet::new();
    for e in &p.emitters {
        check_name(&e.name).expect("an accepted emitter name follows the rule");
        assert!(seen.insert(&e.name), "two emitters named {:?}", e.name);
    }
    let _ = p.secrets_manager_ids();
    let _ = p.files(&Source::new(Path::new(PATH)));
}

/// An error names the file, and the key when a value is at fault.
fn check_error(e: &ConfigError) {
    match e {
        ConfigError::Parse { path, message } => {
            assert_eq!(path, Path::new(PATH));
            assert!(!message.is_empty());
        }
        ConfigError::Invalid { path, key, message } => {
            assert_eq!(path, Path::new(PATH));
            assert!(!key.is_empty(), "an invalid value names no key: {message}");
            assert!(!message.is_empty(), "{key}: says nothing");
        }
        ConfigError::Read { .. } => panic!("nothing is read: {e}"),
    }
}
