//! Named sign-in profiles, kept in one JSON file only its owner can read (mode 0600).
//!
//! The file is `$CUBBY_CONFIG`, else `$XDG_CONFIG_HOME/cubby/config.json`, else
//! `~/.config/cubby/config.json`. Each profile names a server (a Cubby URL, or `dropbox`),
//! the app it signed in as, an optional CA certificate to trust, and its tokens.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cubby_client::Tokens;
use serde::{Deserialize, Serialize};

/// The profile used when none is named.
pub const DEFAULT_PROFILE: &str = "default";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Config {
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Profile {
    /// A Cubby server's URL, or `dropbox`.
    pub server: String,
    pub app_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_secret: Option<String>,
    /// A CA to trust besides the system's (a Cubby server's local CA), in PEM: a copy of
    /// the file `login --ca-cert` named, so moving or deleting that file breaks nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// The path profiles saved before `ca_pem` (read when there is no copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Tokens>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Where the configuration lives.
pub fn config_path() -> PathBuf {
    cubby_sync::own::config_path()
}

/// A state file of the client under `$XDG_STATE_HOME/cubby/KIND/` (default
/// `~/.local/state`), named by a digest of `key` (what the state belongs to).
pub fn state_file(kind: &str, key: &str) -> PathBuf {
    let digest = cubby_core::hash::hex(&cubby_core::hash::block_hash(key.as_bytes()));
    cubby_sync::own::state_dir()
        .join(kind)
        .join(format!("{}.sqlite", &digest[..24]))
}

/// Where resumable uploads keep their state.
pub fn upload_state_dir() -> PathBuf {
    cubby_sync::own::cache_dir().join("uploads")
}

impl Profile {
    /// The PEM of the extra CA to trust, if the profile has one.
    pub fn ca(&self) -> Result<Option<Vec<u8>>> {
        match (&self.ca_pem, &self.ca_cert) {
            (Some(pem), _) => Ok(Some(pem.clone().into_bytes())),
            (None, Some(path)) => {
                Ok(Some(std::fs::read(path).with_context(|| {
                    format!("reading the CA certificate {}", path.display())
                })?))
            }
            (None, None) => Ok(None),
        }
    }
}

impl Config {
    /// Reads the configuration (empty if there is none yet).
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the configuration atomically, readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.write_all(&serde_json::to_vec_pretty(self).expect("config serializes"))?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

/// Saves new tokens of `name` after a refresh (re-reading the file, so concurrent changes to
/// other profiles are kept).
pub fn save_tokens(path: &Path, name: &str, tokens: &Tokens) {
    let result = Config::load(path).and_then(|mut c| {
        if let Some(p) = c.profiles.get_mut(name) {
            p.tokens = Some(tokens.clone());
        }
        c.save(path)
    });
    if let Err(e) = result {
        tracing::warn!(error = %e, "saving refreshed tokens failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_config_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.json");
        let mut c = Config::default();
        c.profiles.insert(
            "pi".into(),
            Profile {
                server: "https://cubby.example".into(),
                app_key: "k".into(),
                tokens: Some(Tokens {
                    access_token: "a".into(),
                    expires_at: Some(5),
                    refresh_token: Some("r".into()),
                }),
                ..Profile::default()
            },
        );
        c.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = Config::load(&path).unwrap();
        assert_eq!(back.profiles["pi"].tokens, c.profiles["pi"].tokens);
        save_tokens(
            &path,
            "pi",
            &Tokens {
                access_token: "b".into(),
                ..Tokens::default()
            },
        );
        assert_eq!(
            Config::load(&path).unwrap().profiles["pi"]
                .tokens
                .as_ref()
                .unwrap()
                .access_token,
            "b"
        );
    }
}
