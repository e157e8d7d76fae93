//! The permission model of a PVE node, read from `DATA/etc/pve/user.cfg`.
//!
//! Like pmxcfs and pve-access-control's RPC environment (src/PVE/RPCEnvironment.pm,
//! `init_request`), the file is read again whenever it changed, so a test may change
//! users, tokens, roles, ACLs and pools while the stand-in runs. Without the file, the
//! `--token`'s user holds `Administrator` on `/` (propagated) and the token has no
//! privilege separation: everything is allowed, as before user.cfg was read.

pub mod names;
pub mod perms;
pub mod roles;
pub mod usercfg;
mod write;

#[cfg(test)]
mod tests;

pub use perms::Privs;
pub use usercfg::UserCfg;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// What tells a changed file from the one read last: mtime, size and inode.
type Stamp = (i64, i64, u64, u64);

pub struct Access {
    file: PathBuf,
    fallback: Arc<UserCfg>,
    cache: Mutex<Option<(Stamp, Arc<UserCfg>)>>,
    /// `lock_user_config`: one writer at a time.
    writing: Mutex<()>,
}

fn stamp(m: &std::fs::Metadata) -> Stamp {
    (m.mtime(), m.mtime_nsec(), m.size(), m.ino())
}

impl Access {
    /// `etc_pve` is `DATA/etc/pve`; `tokenid` the `--token`'s `USER@REALM!ID`.
    pub fn new(etc_pve: &Path, tokenid: &str) -> Access {
        let user = tokenid.split_once('!').map_or(tokenid, |(u, _)| u);
        let text = format!(
            "user:{user}:1:0::::::\ntoken:{tokenid}:0:0::\nacl:1:/:{user}:Administrator:\n"
        );
        let (fallback, warnings) = UserCfg::parse(&text);
        for w in warnings {
            eprintln!("pve-sim: built-in user config: {w}");
        }
        Access {
            file: etc_pve.join("user.cfg"),
            fallback: Arc::new(fallback),
            cache: Mutex::new(None),
            writing: Mutex::new(()),
        }
    }

    /// The config as it is now: the file, read again when it changed, or the built-in
    /// one when there is no file.
    pub fn config(&self) -> Arc<UserCfg> {
        let Ok(meta) = std::fs::metadata(&self.file) else {
            return Arc::clone(&self.fallback);
        };
        let now = stamp(&meta);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((s, cfg)) = cache.as_ref() {
            if *s == now {
                return Arc::clone(cfg);
            }
        }
        let raw = match std::fs::read_to_string(&self.file) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("pve-sim: reading {}: {e}", self.file.display());
                String::new()
            }
        };
        let (cfg, warnings) = UserCfg::parse(&raw);
        for w in warnings {
            eprintln!("pve-sim: {w}");
        }
        let cfg = Arc::new(cfg);
        *cache = Some((now, Arc::clone(&cfg)));
        cfg
    }

    /// The privileges `authid` holds on `path` now.
    pub fn permissions(&self, authid: &str, path: &str) -> Privs {
        perms::permissions(&self.config(), authid, path)
    }

    /// What pve-access-control src/PVE/AccessControl.pm `verify_token` checks in
    /// user.cfg before the secret: the user exists, is enabled and not expired, and
    /// has this token, which has not expired.
    pub fn verify_token(&self, tokenid: &str) -> Result<(), String> {
        let cfg = self.config();
        let Some((user, token)) = names::split_tokenid(tokenid) else {
            return Err(format!(
                "'{tokenid}' is not a valid token ID - not able to split into user and token parts"
            ));
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let u = cfg
            .users
            .get(user)
            .ok_or_else(|| format!("no such user ('{user}')"))?;
        if !u.enable {
            return Err(format!("user '{user}' is disabled"));
        }
        if u.expire != 0 && u.expire < now {
            return Err(format!("user '{user}' access expired"));
        }
        let t = u
            .tokens
            .get(token)
            .ok_or_else(|| format!("no such token '{token}' for user '{user}'"))?;
        if t.expire != 0 && t.expire < now {
            return Err(format!("token '{token}' access expired"));
        }
        Ok(())
    }

    /// Changes the file under the user config lock, as `lock_user_config` +
    /// `cfs_write_file` do: read, change, write (a temp file renamed over it) if `change`
    /// says it changed something. Without a file there is nothing to change.
    pub fn update(&self, change: impl FnOnce(&mut UserCfg) -> bool) -> Result<(), String> {
        let _guard = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        // pve-access-control `lock_user_config` takes pmxcfs's `file-user_cfg` lock, a
        // directory it cannot make without quorum (pve-cluster src/PVE/Cluster.pm
        // `cfs_lock`).
        let etc_pve = self.file.parent().unwrap_or(Path::new("/"));
        if !crate::quorum::quorate(etc_pve) {
            return Err("cfs-lock 'file-user_cfg' error: no quorum!".into());
        }
        let raw = match std::fs::read_to_string(&self.file) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("reading user.cfg: {e}")),
        };
        let (mut cfg, _) = UserCfg::parse(&raw);
        if !change(&mut cfg) {
            return Ok(());
        }
        let tmp = self
            .file
            .with_file_name(format!("user.cfg.tmp.{}", std::process::id()));
        std::fs::write(&tmp, cfg.write())
            .and_then(|()| std::fs::rename(&tmp, &self.file))
            .map_err(|e| format!("writing user.cfg: {e}"))
    }
}
