//! LXC 7's config loader, for the one difference that matters here: the cgroup v1 keys
//! `lxc.cgroup` / `lxc.cgroup.<controller>` (lxc commit f29c3a3, v7.0.0). This machine
//! runs LXC 5, so with `--lxc-version 7` the stand-in reads the generated config and what
//! it includes the way LXC 7 would, and when LXC 7 would refuse it, it writes the error
//! lines `lxc-start` would print instead of running `lxc-start`.
//!
//! Modelled on lxc v7.0.0 as released (src/lxc/confile.c): the `lxc.cgroup` entry is gone
//! from `config_jump_table`, so `lxc_get_config` returns `unsupported_config_key` and
//! `set_config_unsupported_key` fails every such line, set or reset. PVE 9.1 ships lxc-pve
//! 6.0.5 (proxmox/lxc 8242e22), whose patches touch none of this; how a future lxc-pve 7
//! treats v1 keys is not known, so the stand-in assumes upstream's.

use std::path::Path;

/// The `lxc.cgroup.*` keys LXC 7 still has (v7.0.0 confile.c `config_jump_table`, strict).
const KEPT: &[&str] = &[
    "lxc.cgroup.dir.monitor.pivot",
    "lxc.cgroup.dir.monitor",
    "lxc.cgroup.dir.container.inner",
    "lxc.cgroup.dir.container",
    "lxc.cgroup.dir",
    "lxc.cgroup.relative",
];

/// The message `set_config_unsupported_key` logs for a line LXC 7 refuses, or `None` when
/// the key loads.
fn refuses(key: &str, vmid: u32) -> Option<String> {
    // lxc_get_config walks the table in order: `lxc.cgroup2` (prefix) comes first, then
    // the strict `lxc.cgroup.dir*`/`relative` keys.
    if !key.starts_with("lxc.cgroup") || key.starts_with("lxc.cgroup2") || KEPT.contains(&key) {
        return None;
    }
    // v7.0.0 confile.c:165 set_config_unsupported_key, SYSERROR's "%m - " prefix.
    Some(format!(
        "lxc-start: {vmid}: ../src/lxc/confile.c: set_config_unsupported_key: 165 \
         Invalid argument - Unsupported config key \"{key}\""
    ))
}

/// How LXC reads the files: `read` gives a file's text (None: unreadable), `list` a
/// directory's entries in readdir order (None: not a directory).
pub struct Files<'a> {
    pub read: &'a dyn Fn(&Path) -> Option<String>,
    pub list: &'a dyn Fn(&Path) -> Option<Vec<String>>,
    /// Files of the installed LXC's own template config (/usr/share/lxc/config): LXC 7
    /// ships its own, without v1 keys, so the installed LXC 5 copies are not read.
    pub skip_dir: &'a Path,
}

/// Checks `file` (text `text`) and its includes depth-first, in LXC's order. Returns the
/// failure lines from the innermost file out, or None when it loads.
fn walk(file: &str, text: &str, vmid: u32, files: &Files<'_>, depth: usize) -> Option<Vec<String>> {
    // src/lxc/parse.c lxc_file_for_each_line_mmap: lxc_iterate_parts on "\r\n\0".
    for raw in text.split(['\r', '\n', '\0']).filter(|l| !l.is_empty()) {
        let fail = |mut lines: Vec<String>| {
            lines.push(format!(
                "lxc-start: {vmid}: ../src/lxc/parse.c: lxc_file_for_each_line_mmap: 135 \
                 Failed to parse config file \"{file}\" at line \"{raw}\""
            ));
            Some(lines)
        };
        // confile.c parse_line: left-trim, skip comments and non-`lxc.` lines, split at
        // the first '=', trim both sides, strip one pair of quotes.
        let line = raw.trim_start_matches([' ', '\t']);
        if line.starts_with('#') || !line.starts_with("lxc.") {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue; // LXC 5 refuses that itself
        };
        let key = key.trim_end_matches([' ', '\t']);
        let mut value = value.trim_matches([' ', '\t']);
        if let Some(q) = value.chars().next().filter(|q| *q == '\'' || *q == '"') {
            if value.len() > 1 && value.ends_with(q) {
                value = &value[1..value.len() - 1];
            }
        }
        if let Some(msg) = refuses(key, vmid) {
            return fail(vec![msg]);
        }
        if key != "lxc.include" || value.is_empty() || depth > 64 {
            continue;
        }
        // confile.c set_config_includefiles: a trailing '/' or a directory means its
        // `*.conf` files (do_includedir: names of 6+ chars ending in ".conf", readdir
        // order, path "DIR/NAME"); anything else is one file.
        let inner: Vec<String> = match (files.list)(Path::new(value)) {
            Some(names) => names
                .into_iter()
                .filter(|n| n.len() >= 6 && n.ends_with(".conf"))
                .map(|n| format!("{value}/{n}"))
                .collect(),
            None => vec![value.to_string()],
        };
        for path in inner {
            if Path::new(&path).starts_with(files.skip_dir) {
                continue;
            }
            let Some(text) = (files.read)(Path::new(&path)) else {
                continue; // a missing include fails on LXC 5 too
            };
            if let Some(lines) = walk(&path, &text, vmid, files, depth + 1) {
                return fail(lines);
            }
        }
    }
    None
}

/// The lines LXC 7's `lxc-start -F -n VMID` prints on stderr when it cannot load
/// `config` (at `path`), or None when it loads.
pub fn check(path: &Path, config: &str, vmid: u32, files: &Files<'_>) -> Option<Vec<String>> {
    let mut lines = walk(&path.display().to_string(), config, vmid, files, 0)?;
    // lxccontainer.c lxc_container_new (stderr, no prefix), then
    // tools/lxc_start.c:241 in lxc_start_main.
    lines.push(format!("Failed to load config for {vmid}"));
    lines.push(format!(
        "lxc-start: {vmid}: ../src/lxc/tools/lxc_start.c: lxc_start_main: 241 \
         Failed to create lxc_container"
    ));
    Some(lines)
}

/// What `lxc-info -n VMID -p` prints on stderr for a config LXC cannot load (it logs
/// nothing else without `-o`; tools/lxc_info.c `print_info`), exit code 1.
pub fn lxc_info_failure(lxcpath: &Path, vmid: u32) -> Vec<String> {
    vec![
        format!("Failed to load config for {vmid}"),
        format!(
            "Failure to retrieve information on {}:{vmid}",
            lxcpath.display()
        ),
    ]
}

/// `Files::read` on the real file system.
pub fn read_file(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// `Files::list` on the real file system.
pub fn list_dir(p: &Path) -> Option<Vec<String>> {
    if !p.is_dir() {
        return None;
    }
    Some(
        std::fs::read_dir(p)
            .ok()?
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
    )
}

#[cfg(test)]
mod tests;
