//! The built-in inspectors, chosen with `kind` in an `[[inspector]]` table, one
//! module each: its config (the keys beside the common ones), its client, its mapping
//! to DeepAlert sections, and its tests against a local server of the vendor's shapes.
//!
//! | kind | looks up | module |
//! |------|----------|--------|
//! | `virustotal` | IP, domain, file hash, URL reputation (VirusTotal API v3) | [`virustotal`] |
//! | `abuseipdb` | IP abuse reports (AbuseIPDB API v2) | [`abuseipdb`] |
//! | `dns` | A/AAAA/CNAME and PTR records | [`dns`] |
//! | `geoip` | country and AS owner from MaxMind-format files | [`geoip`] |
//! | `aws` | the EC2 instance, the IAM user and their CloudTrail activity | `aws` (feature `aws`) |
//!
//! The keys every `[[inspector]]` shares (`name`, `kind`, `types`, `timeout`,
//! `rate_limit`, `cache_ttl`) are read by the configuration; [`throttle`] puts the
//! answer cache and the rate limit in front of any inspector. [`http`] is what the
//! HTTP inspectors share: the API base (`url`), the client (timeout, no redirect),
//! percent-encoding and how a status becomes an outcome.

use std::path::Path;
use std::time::Duration;

use crate::secret::SecretResolver;

pub mod abuseipdb;
#[cfg(feature = "aws")]
pub mod aws;
pub mod content;
pub mod dns;
pub mod geoip;
pub mod http;
pub mod throttle;
pub mod virustotal;

/// What a built-in needs to build itself besides its own keys.
pub struct BuildContext<'a> {
    /// The inspector's name (the author of its sections).
    pub name: &'a str,
    /// Its table's key for errors, e.g. `inspector[2]`: a built-in names a bad value
    /// `{key}.{field}`.
    pub key: &'a str,
    /// How long one attempt may take (the table's `timeout`).
    pub timeout: Duration,
    /// Resolves its secret references.
    pub secrets: &'a dyn SecretResolver,
    /// The directory relative paths are relative to (the config file's).
    pub base_dir: &'a Path,
}

impl BuildContext<'_> {
    /// The full key of one of this inspector's fields.
    pub fn field(&self, field: &str) -> String {
        format!("{}.{field}", self.key)
    }

    /// An invalid value of `field`.
    pub fn invalid(&self, field: &str, message: impl Into<String>) -> crate::PluginConfigError {
        crate::PluginConfigError::Invalid {
            key: self.field(field),
            message: message.into(),
        }
    }
}
