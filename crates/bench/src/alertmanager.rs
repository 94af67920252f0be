//! Prometheus Alertmanager, the peer of part 2: installed from the Debian package
//! when missing, started on loopback with clustering off, a temp storage path and a
//! config that groups by `alert_key` into a receiver with no integrations.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::process::{self, ServerGuard};

/// Where the Debian package puts the binary.
pub const BINARY: &str = "/usr/bin/prometheus-alertmanager";
/// The Debian package.
const PACKAGE: &str = "prometheus-alertmanager";

const CONFIG: &str = "\
route:
  receiver: discard
  group_by: ['alert_key']
receivers:
  - name: discard
";

/// The binary, installed with apt-get if missing; `Err` says why it cannot be had.
pub async fn ensure_installed() -> Result<PathBuf, String> {
    let binary = PathBuf::from(BINARY);
    if binary.exists() {
        return Ok(binary);
    }
    println!("  {BINARY} is missing: installing {PACKAGE} with apt-get (once)");
    let installed = tokio::task::spawn_blocking(|| -> Result<(), String> {
        apt_get(&["update"])?;
        apt_get(&["install", "-y", "--no-install-recommends", PACKAGE])
    })
    .await
    .map_err(|e| format!("the install task failed: {e}"))?;
    installed?;
    if binary.exists() {
        Ok(binary)
    } else {
        Err(format!(
            "apt-get installed {PACKAGE} but {BINARY} is not there"
        ))
    }
}

fn apt_get(args: &[&str]) -> Result<(), String> {
    let out = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no message");
    Err(format!(
        "`apt-get {}` failed ({}): {last}",
        args.join(" "),
        out.status
    ))
}

/// `alertmanager, version …` as the binary reports it.
pub fn version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = [o.stdout, o.stderr].concat();
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| "version unknown".into())
}

/// Starts Alertmanager with its config and storage under `dir`; returns it and its base URL
/// once `/-/ready` answers.
pub async fn start(
    binary: &Path,
    dir: &Path,
    client: &reqwest::Client,
) -> anyhow::Result<(ServerGuard, String)> {
    let config = dir.join("alertmanager.yml");
    std::fs::write(&config, CONFIG).context("cannot write the Alertmanager config")?;
    let storage = dir.join("alertmanager-data");
    std::fs::create_dir_all(&storage).context("cannot create the Alertmanager storage dir")?;
    let port = process::free_port()?;
    let mut command = Command::new(binary);
    command
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg(format!("--storage.path={}", storage.display()))
        .arg(format!("--config.file={}", config.display()));
    let mut server = ServerGuard::start("prometheus-alertmanager", command, |_| {})?;
    let base = format!("http://127.0.0.1:{port}");
    process::wait_ready(
        client,
        &format!("{base}/-/ready"),
        &mut server,
        Duration::from_secs(30),
    )
    .await?;
    Ok((server, base))
}
