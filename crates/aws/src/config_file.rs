//! The plugin configuration of the stack's functions: the same `alertresponder.toml`
//! as the embedded runtime's, read from S3 at cold start.
//!
//! `make deploy` uploads the file and every file it names (a Rego policy, GeoIP
//! databases) to `s3://<CodeS3Bucket>/<CodeS3Prefix>/config/<sha256 of the bundle>/`,
//! keeping their paths relative to the file, and sets `CONFIG_S3_URI` to
//! `…/<sha256>/alertresponder.toml`. A function downloads every object under that
//! prefix into a fresh directory under `/tmp` (at most [`MAX_BUNDLE_BYTES`] in all; a key
//! that would land outside the directory is refused), then reads the file's plugin
//! sections with `PluginsConfig::from_toml(.., Runtime::Aws)`: relative paths resolve
//! in that directory as they did beside the file on the user's machine.
//!
//! Why S3 and not SSM Parameter Store: a parameter holds 4 KB (advanced: 8 KB, and
//! costs per parameter), which neither a Rego policy of any size nor a GeoIP database
//! fits. The bucket exists before the stack; a new prefix per content changes the
//! stack's parameter, so every function's next cold start reads the new configuration.
//! Errors name the URI and the key, never a value read from a file.

use std::path::{Component, Path, PathBuf};

use alertresponder_plugins::config::{PluginsConfig, Runtime, Source};
use aws_config::SdkConfig;

use crate::config::CONFIG_S3_URI;
use crate::error::AwsError;

/// Most bytes a configuration bundle may hold (Lambda's default `/tmp` is 512 MB).
pub const MAX_BUNDLE_BYTES: u64 = 512 * 1024 * 1024;

/// A bucket and a key, parsed from `s3://bucket/key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The configuration file's key.
    pub key: String,
}

impl S3Location {
    /// Parses `s3://bucket/dir/file.toml`; the message says what is wrong.
    pub fn parse(uri: &str) -> Result<Self, String> {
        let rest = uri
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{uri:?} is not an s3:// URI"))?;
        let (bucket, key) = rest
            .split_once('/')
            .ok_or_else(|| format!("{uri:?} names no key"))?;
        if bucket.is_empty() || key.is_empty() || key.ends_with('/') {
            return Err(format!("{uri:?} names no bucket or no file"));
        }
        Ok(Self {
            bucket: bucket.into(),
            key: key.into(),
        })
    }

    /// The prefix of the bundle: the file's "directory", with its slash (empty at the
    /// bucket's root).
    pub fn prefix(&self) -> &str {
        match self.key.rfind('/') {
            Some(i) => &self.key[..=i],
            None => "",
        }
    }

    /// The file's name within the bundle.
    pub fn file_name(&self) -> &str {
        &self.key[self.prefix().len()..]
    }
}

/// The configuration read at cold start.
#[derive(Debug)]
pub struct LoadedConfig {
    /// Where the bundle was downloaded (relative paths resolve here).
    pub dir: PathBuf,
    /// The configuration file in it.
    pub path: PathBuf,
    /// Its plugin sections.
    pub plugins: PluginsConfig,
}

fn error(uri: &str, message: impl std::fmt::Display) -> AwsError {
    AwsError::Config {
        name: CONFIG_S3_URI.into(),
        message: format!("{uri}: {message}"),
    }
}

/// Where the object `key` of the bundle under `prefix` goes inside the download
/// directory; `None` for a key that would land outside it (`..`, an absolute path,
/// an empty segment).
pub fn relative_path(prefix: &str, key: &str) -> Option<PathBuf> {
    let rest = key.strip_prefix(prefix)?;
    if rest.is_empty() || rest.contains('\\') || rest.split('/').any(str::is_empty) {
        return None;
    }
    let path = PathBuf::from(rest);
    path.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then_some(path)
}

/// An S3 client for `sdk`: path-style addressing when an endpoint is set (moto, a
/// local S3), virtual-hosted on AWS.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A fresh directory under the system's temporary directory (`/tmp` on Lambda).
fn fresh_dir() -> Result<PathBuf, std::io::Error> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!(
        "alertresponder-config-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Downloads the bundle of `uri` into `into`: every object under the file's prefix, at
/// its path relative to the prefix. Returns the configuration file's path.
pub async fn download(
    s3: &aws_sdk_s3::Client,
    uri: &str,
    into: &Path,
) -> Result<PathBuf, AwsError> {
    let location = S3Location::parse(uri).map_err(|m| error(uri, m))?;
    let prefix = location.prefix().to_string();
    // List first: refuse a bundle too large, or with a key escaping the directory,
    // before anything is written.
    let mut objects: Vec<(String, PathBuf)> = Vec::new();
    let mut total: u64 = 0;
    let mut pages = s3
        .list_objects_v2()
        .bucket(&location.bucket)
        .prefix(&prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            error(
                uri,
                format!(
                    "cannot list {prefix:?}: {}",
                    aws_smithy_types::error::display::DisplayErrorContext(&e)
                ),
            )
        })?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            let relative = relative_path(&prefix, key).ok_or_else(|| {
                error(
                    uri,
                    format!("key {key:?} would land outside the configuration directory"),
                )
            })?;
            total = total.saturating_add(u64::try_from(object.size().unwrap_or(0)).unwrap_or(0));
            if total > MAX_BUNDLE_BYTES {
                return Err(error(
                    uri,
                    format!("the bundle is larger than {MAX_BUNDLE_BYTES} bytes (at key {key:?})"),
                ));
            }
            objects.push((key.to_string(), relative));
        }
    }
    if !objects.iter().any(|(k, _)| *k == location.key) {
        return Err(error(uri, format!("key {:?} does not exist", location.key)));
    }
    let mut written: u64 = 0;
    for (key, relative) in objects {
        let object = s3
            .get_object()
            .bucket(&location.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| {
                error(
                    uri,
                    format!(
                        "cannot read key {key:?}: {}",
                        aws_smithy_types::error::display::DisplayErrorContext(&e)
                    ),
                )
            })?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| error(uri, format!("cannot read key {key:?}: {e}")))?
            .into_bytes();
        // An object may have grown since it was listed.
        written = written.saturating_add(bytes.len() as u64);
        if written > MAX_BUNDLE_BYTES {
            return Err(error(
                uri,
                format!("the bundle is larger than {MAX_BUNDLE_BYTES} bytes (at key {key:?})"),
            ));
        }
        let path = into.join(&relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| error(uri, format!("cannot write key {key:?}: {e}")))?;
        }
        std::fs::write(&path, &bytes)
            .map_err(|e| error(uri, format!("cannot write key {key:?}: {e}")))?;
    }
    Ok(into.join(location.file_name()))
}

/// Downloads the bundle of `uri` into a fresh directory and reads the file's plugin
/// sections for AWS. A configuration error names the URI, the file's key and the key
/// at fault (`inspector[1].api_key`).
pub async fn load(sdk: &SdkConfig, uri: &str) -> Result<LoadedConfig, AwsError> {
    let dir = fresh_dir().map_err(|e| error(uri, format!("cannot create a directory: {e}")))?;
    let path = download(&s3_client(sdk), uri, &dir).await?;
    let plugins = read(uri, &path)?;
    Ok(LoadedConfig { dir, path, plugins })
}

/// Reads the downloaded file at `path` (`uri` names it in errors).
pub fn read(uri: &str, path: &Path) -> Result<PluginsConfig, AwsError> {
    let text = std::fs::read_to_string(path).map_err(|e| error(uri, e))?;
    PluginsConfig::from_toml(&text, &Source::new(path), Runtime::Aws).map_err(|e| error(uri, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_s3_uri_gives_its_bucket_prefix_and_file() {
        let l = S3Location::parse("s3://code/ar/config/abc/alertresponder.toml").unwrap();
        assert_eq!(l.bucket, "code");
        assert_eq!(l.prefix(), "ar/config/abc/");
        assert_eq!(l.file_name(), "alertresponder.toml");
        let root = S3Location::parse("s3://code/a.toml").unwrap();
        assert_eq!(root.prefix(), "");
        for bad in [
            "https://x/y",
            "s3://bucket",
            "s3:///key",
            "s3://bucket/dir/",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_that_would_escape_the_directory_are_refused() {
        let p = "c/abc/";
        assert_eq!(
            relative_path(p, "c/abc/geo/asn.mmdb"),
            Some(PathBuf::from("geo/asn.mmdb"))
        );
        for bad in [
            "c/abc/../x",
            "c/abc//etc/passwd",
            "c/abc/a/../../x",
            "c/abc/",
            "c/abc/./x",
            "c/abc/a\\..\\x",
            "other/x",
        ] {
            assert_eq!(relative_path(p, bad), None, "{bad}");
        }
    }
}
