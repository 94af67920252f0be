//! The file being read, as every section's parser sees it: errors that name the file
//! and the key, durations, paths relative to the file, commands split into argv, and
//! the rule for plugin names. Written once so that every section reads them alike.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{parse_duration, CommandLine, ConfigError};

/// The config file a section comes from.
pub struct Source<'a> {
    /// The file, named by every error.
    path: &'a Path,
    /// Its directory, which anchors relative paths.
    base: PathBuf,
}

impl<'a> Source<'a> {
    /// The file at `path`.
    pub fn new(path: &'a Path) -> Self {
        Self {
            path,
            base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        }
    }

    /// A [`ConfigError::Parse`] of this file.
    pub fn unparsable(&self, message: String) -> ConfigError {
        ConfigError::Parse {
            path: self.path.to_path_buf(),
            message,
        }
    }

    /// A [`ConfigError::Invalid`] naming `key`.
    pub fn invalid(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// The duration written at `key`, or `default` when the key is absent.
    pub fn duration(
        &self,
        key: &str,
        value: Option<&str>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        value.map_or(Ok(default), |s| {
            parse_duration(s).map_err(|m| self.invalid(key, m))
        })
    }

    /// The directory relative paths are anchored at.
    pub fn base_dir(&self) -> &Path {
        &self.base
    }

    /// The config file.
    pub fn path(&self) -> &Path {
        self.path
    }

    /// `path` as written, if absolute; otherwise beside the config file.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base.join(path)
        }
    }

    /// The argv of the command at `key`. A program named by a relative path is found
    /// beside the config file; a bare name is left to `PATH`.
    pub fn argv(&self, key: &str, command: &CommandLine) -> Result<Vec<String>, ConfigError> {
        let mut argv = match command {
            CommandLine::Argv(v) => v.clone(),
            CommandLine::Line(s) => shell_words::split(s)
                .map_err(|e| self.invalid(key, format!("cannot split {s:?}: {e}")))?,
        };
        let Some(program) = argv.first_mut().filter(|p| !p.is_empty()) else {
            return Err(self.invalid(key, "must name a program"));
        };
        if program.contains('/') && !Path::new(program.as_str()).is_absolute() {
            *program = self
                .resolve(Path::new(program.as_str()))
                .to_string_lossy()
                .into_owned();
        }
        Ok(argv)
    }
}

/// Checks a plugin's name, which authors its sections and names it in logs and URLs.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "{name:?}: use 1-64 letters, digits, '-', '_' or '.'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Source<'static> {
        Source::new(Path::new("/etc/ar/alertresponder.toml"))
    }

    fn invalid_message(e: ConfigError) -> (String, String) {
        match e {
            ConfigError::Invalid { key, message, .. } => (key, message),
            other => panic!("not an invalid value: {other}"),
        }
    }

    #[test]
    fn a_command_line_is_split_like_a_shell_would_and_a_relative_program_found_beside_the_config() {
        let argv = source()
            .argv("k", &CommandLine::Line("bin/x --a 'b c'".into()))
            .unwrap();
        assert_eq!(argv, vec!["/etc/ar/bin/x", "--a", "b c"]);
        let argv = source()
            .argv("k", &CommandLine::Argv(vec!["whois".into(), "-h".into()]))
            .unwrap();
        assert_eq!(argv, vec!["whois", "-h"], "a bare name is left to PATH");
        let argv = source()
            .argv("k", &CommandLine::Line("/usr/bin/whois".into()))
            .unwrap();
        assert_eq!(argv, vec!["/usr/bin/whois"]);
    }

    #[test]
    fn a_command_without_a_program_or_with_an_open_quote_is_rejected_at_its_key() {
        for command in [
            CommandLine::Argv(vec![]),
            CommandLine::Argv(vec![String::new(), "x".into()]),
            CommandLine::Line("   ".into()),
        ] {
            let (key, message) = invalid_message(source().argv("a.command", &command).unwrap_err());
            assert_eq!(
                (key.as_str(), message.as_str()),
                ("a.command", "must name a program")
            );
        }
        let (key, message) = invalid_message(
            source()
                .argv("a.command", &CommandLine::Line("x 'open".into()))
                .unwrap_err(),
        );
        assert_eq!(key, "a.command");
        assert!(message.starts_with("cannot split \"x 'open\""), "{message}");
    }

    #[test]
    fn paths_are_anchored_at_the_config_directory() {
        assert_eq!(
            source().resolve(Path::new("db/x.db")),
            PathBuf::from("/etc/ar/db/x.db")
        );
        assert_eq!(
            source().resolve(Path::new("/var/x.db")),
            PathBuf::from("/var/x.db")
        );
        assert_eq!(
            Source::new(Path::new("alertresponder.toml")).resolve(Path::new("x.db")),
            PathBuf::from("x.db")
        );
    }

    #[test]
    fn a_duration_defaults_when_absent_and_names_its_key_when_bad() {
        let d = Duration::from_secs(7);
        assert_eq!(source().duration("t", None, d).unwrap(), d);
        assert_eq!(
            source().duration("t", Some("1h 30m"), d).unwrap(),
            Duration::from_secs(5400)
        );
        let (key, message) = invalid_message(source().duration("t", Some("soon"), d).unwrap_err());
        assert_eq!(key, "t");
        assert!(message.contains("is not a duration"), "{message}");
    }

    #[test]
    fn plugin_names_are_short_and_plain() {
        assert!(check_name("whois-2.v_1").is_ok());
        assert!(check_name(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "x/y", "é", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
