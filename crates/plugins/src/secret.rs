//! Secrets in the configuration: never written in the file, only referenced.
//!
//! ```toml
//! api_key = { env = "VT_API_KEY" }             # the environment (embedded)
//! api_key = { secret = "alertresponder/vt" }   # AWS Secrets Manager, name or ARN
//! api_key = { file = "secrets/vt.key" }        # a file, relative to the config
//! ```
//!
//! A [`Secret`] never prints its value: `Debug` and `Display` show `***`, so that a
//! config, a log line or an error that carries one cannot leak it.

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::Deserialize;

use crate::error::PluginConfigError;

/// Where a secret is read from, as the configuration writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `{ env = "NAME" }`: an environment variable of the process.
    Env(String),
    /// `{ secret = "name-or-arn" }`: an AWS Secrets Manager secret (its `SecretString`).
    Secret(String),
    /// `{ file = "path" }`: a file's content, its trailing newline removed; relative
    /// to the config file.
    File(PathBuf),
    /// Several keys in one table, `{ env = "VT_API_KEY", secret = "ar/vt" }`: the first
    /// this runtime can read, in the order env, file, secret — so that one file serves
    /// a laptop (the environment) and the stack (Secrets Manager).
    AnyOf(Vec<SecretRef>),
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            env: Option<String>,
            file: Option<PathBuf>,
            secret: Option<String>,
        }
        let raw = Raw::deserialize(d)?;
        let mut any: Vec<SecretRef> = Vec::new();
        any.extend(raw.env.map(SecretRef::Env));
        any.extend(raw.file.map(SecretRef::File));
        any.extend(raw.secret.map(SecretRef::Secret));
        match any.len() {
            0 => Err(serde::de::Error::custom(
                "a secret reference needs env, file or secret",
            )),
            1 => Ok(any.remove(0)),
            _ => Ok(SecretRef::AnyOf(any)),
        }
    }
}

impl SecretRef {
    /// The Secrets Manager name or ARN, when it is (or includes) one.
    pub fn secrets_manager_id(&self) -> Option<&str> {
        match self {
            SecretRef::Secret(id) => Some(id),
            SecretRef::AnyOf(any) => any.iter().find_map(SecretRef::secrets_manager_id),
            _ => None,
        }
    }
}

impl fmt::Display for SecretRef {
    /// Where, never what: `env VT_API_KEY`, `secret alertresponder/vt`, `file vt.key`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env {name}"),
            SecretRef::Secret(id) => write!(f, "secret {id}"),
            SecretRef::File(path) => write!(f, "file {}", path.display()),
            SecretRef::AnyOf(any) => {
                for (i, r) in any.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", then ")?;
                    }
                    write!(f, "{r}")?;
                }
                Ok(())
            }
        }
    }
}

/// A value that may be written in the file (`"https://…"`) or referenced as a secret
/// (`{ secret = "…" }`): a webhook URL whose path is its key, a header's value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum MaybeSecret {
    /// Written in the file: not a secret.
    Plain(String),
    /// A reference to read at start-up.
    Secret(SecretRef),
}

impl MaybeSecret {
    /// The value: as written, or read where the reference points.
    pub async fn resolve(
        &self,
        secrets: &dyn SecretResolver,
        key: &str,
    ) -> Result<Secret, PluginConfigError> {
        match self {
            MaybeSecret::Plain(v) => Ok(Secret::new(v.clone())),
            MaybeSecret::Secret(r) => secrets.resolve(r, key).await,
        }
    }
}

/// A secret's value; it never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value read from where a [`SecretRef`] points.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it (a header marked sensitive).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Reads what a [`SecretRef`] points to. `key` is the configuration key that holds the
/// reference (`inspector[0].api_key`), for the error; an error never carries the value.
#[async_trait]
pub trait SecretResolver: Send + Sync {
    /// The secret's value, or an error naming `key` and where it looked.
    async fn resolve(&self, reference: &SecretRef, key: &str) -> Result<Secret, PluginConfigError>;
}

/// Reads secrets from AWS Secrets Manager (an adapter behind the `aws` feature, or a
/// test double).
#[async_trait]
pub trait SecretsManager: Send + Sync {
    /// The `SecretString` of `id` (a name or an ARN), or why not (never the value).
    async fn secret_string(&self, id: &str) -> Result<String, String>;
}

/// The resolver of both runtimes: the environment, files beside the config, and
/// Secrets Manager when the runtime has it.
pub struct Secrets {
    base_dir: PathBuf,
    manager: Option<Box<dyn SecretsManager>>,
    /// Whether `file` references are allowed (not on AWS: a file there is in the
    /// config bucket, in clear).
    files: bool,
    /// Whether `env` references are read (not on AWS: the function's environment is
    /// the stack's, never a secret's, and holds the function's own credentials).
    env: bool,
}

impl Secrets {
    /// Environment and files (relative to `base_dir`); `secret` references fail,
    /// saying that this runtime has no Secrets Manager.
    pub fn local(base_dir: impl Into<PathBuf>) -> Self {
        Self {
            base_dir: base_dir.into(),
            manager: None,
            files: true,
            env: true,
        }
    }

    /// Adds Secrets Manager for `secret` references.
    pub fn with_secrets_manager(mut self, manager: Box<dyn SecretsManager>) -> Self {
        self.manager = Some(manager);
        self
    }

    /// Rejects `file` references (the AWS functions: a secret must not travel as a file
    /// beside the configuration).
    pub fn without_files(mut self) -> Self {
        self.files = false;
        self
    }

    /// Rejects `env` references (the AWS functions: their environment is the stack's,
    /// and holds their own credentials).
    pub fn without_env(mut self) -> Self {
        self.env = false;
        self
    }

    fn missing(key: &str, reference: &SecretRef, message: impl Into<String>) -> PluginConfigError {
        PluginConfigError::Secret {
            key: key.to_string(),
            reference: reference.to_string(),
            message: message.into(),
        }
    }

    fn path(&self, p: &Path) -> PathBuf {
        self.base_dir.join(p)
    }
}

#[async_trait]
impl SecretResolver for Secrets {
    async fn resolve(&self, reference: &SecretRef, key: &str) -> Result<Secret, PluginConfigError> {
        if let SecretRef::AnyOf(any) = reference {
            let mut why = Vec::new();
            for r in any {
                match Box::pin(self.resolve(r, key)).await {
                    Ok(secret) => return Ok(secret),
                    Err(PluginConfigError::Secret { message, .. }) => {
                        why.push(format!("{r}: {message}"))
                    }
                    Err(e) => return Err(e),
                }
            }
            return Err(Self::missing(key, reference, why.join("; ")));
        }
        let value = match reference {
            SecretRef::Env(_) if !self.env => {
                return Err(Self::missing(
                    key,
                    reference,
                    "environment secrets are not read on AWS: use { secret = \"name-or-arn\" }",
                ))
            }
            SecretRef::Env(name) => std::env::var(name).map_err(|e| {
                Self::missing(
                    key,
                    reference,
                    match e {
                        std::env::VarError::NotPresent => "the variable is not set".to_string(),
                        std::env::VarError::NotUnicode(_) => {
                            "the variable is not UTF-8".to_string()
                        }
                    },
                )
            })?,
            SecretRef::File(p) => {
                if !self.files {
                    return Err(Self::missing(
                        key,
                        reference,
                        "file secrets are not read on AWS: use { secret = \"name-or-arn\" }",
                    ));
                }
                let path = self.path(p);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    Self::missing(
                        key,
                        reference,
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                text.trim_end_matches(['\n', '\r']).to_string()
            }
            // Resolved alternative by alternative above.
            SecretRef::AnyOf(_) => String::new(),
            SecretRef::Secret(id) => match &self.manager {
                Some(m) => m
                    .secret_string(id)
                    .await
                    .map_err(|why| Self::missing(key, reference, why))?,
                None => {
                    return Err(Self::missing(
                        key,
                        reference,
                        "this build has no AWS Secrets Manager support \
                         (build alertresponder with `--features aws`, or use { env = \"…\" })",
                    ))
                }
            },
        };
        if value.is_empty() {
            return Err(Self::missing(key, reference, "the secret is empty"));
        }
        Ok(Secret::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn references_parse_from_toml_and_reject_other_keys() {
        #[derive(Deserialize)]
        struct T {
            k: SecretRef,
        }
        let t: T = toml::from_str("k = { env = \"VT\" }").unwrap();
        assert_eq!(t.k, SecretRef::Env("VT".into()));
        let t: T = toml::from_str("k = { secret = \"ar/vt\" }").unwrap();
        assert_eq!(t.k.secrets_manager_id(), Some("ar/vt"));
        assert!(toml::from_str::<T>("k = \"plain-text-key\"").is_err());
        assert!(toml::from_str::<T>("k = {}").is_err());
        let t: T = toml::from_str("k = { secret = \"ar/vt\", env = \"VT\" }").unwrap();
        assert_eq!(
            t.k,
            SecretRef::AnyOf(vec![
                SecretRef::Env("VT".into()),
                SecretRef::Secret("ar/vt".into())
            ])
        );
        assert_eq!(t.k.secrets_manager_id(), Some("ar/vt"));
        assert_eq!(t.k.to_string(), "env VT, then secret ar/vt");
        assert!(toml::from_str::<T>("k = { vault = \"x\" }").is_err());
    }

    #[tokio::test]
    async fn a_missing_secret_names_the_key_and_where_never_a_value() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vt.key"), "s3cr3t\n").unwrap();
        let secrets = Secrets::local(dir.path());
        let got = secrets
            .resolve(&SecretRef::File("vt.key".into()), "inspector[0].api_key")
            .await
            .unwrap();
        assert_eq!(got.expose(), "s3cr3t");
        let e = secrets
            .resolve(
                &SecretRef::Env("AR_TEST_SURELY_UNSET_VARIABLE".into()),
                "inspector[2].api_key",
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("inspector[2].api_key") && e.contains("AR_TEST_SURELY_UNSET_VARIABLE"),
            "{e}"
        );
        let e = secrets
            .resolve(&SecretRef::Secret("ar/vt".into()), "emitter[0].token")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("emitter[0].token") && e.contains("--features aws"),
            "{e}"
        );
        let e = Secrets::local(dir.path())
            .without_files()
            .resolve(&SecretRef::File("vt.key".into()), "k")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            !e.contains("s3cr3t") && e.contains("not read on AWS"),
            "{e}"
        );
        let e = Secrets::local(dir.path())
            .without_env()
            .resolve(&SecretRef::Env("PATH".into()), "k")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("not read on AWS"), "{e}");
    }

    #[tokio::test]
    async fn alternatives_are_tried_in_order_and_all_named_when_none_reads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vt.key"), "from-file").unwrap();
        let any = SecretRef::AnyOf(vec![
            SecretRef::Env("AR_TEST_SURELY_UNSET_VARIABLE".into()),
            SecretRef::File("vt.key".into()),
            SecretRef::Secret("ar/vt".into()),
        ]);
        let got = Secrets::local(dir.path()).resolve(&any, "k").await.unwrap();
        assert_eq!(got.expose(), "from-file");
        let e = Secrets::local(dir.path())
            .without_files()
            .resolve(&any, "inspector[0].api_key")
            .await
            .unwrap_err()
            .to_string();
        for part in [
            "inspector[0].api_key",
            "AR_TEST_SURELY_UNSET_VARIABLE",
            "vt.key",
            "ar/vt",
        ] {
            assert!(e.contains(part), "{part} in {e}");
        }
        assert!(!e.contains("from-file"), "{e}");
    }
}
