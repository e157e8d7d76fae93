//! The name rules of PVE's access control: user ids, token ids, group, role and pool
//! names, ACL paths, and Perl's list splitting and truthiness that user.cfg relies on.

use regex::Regex;
use std::sync::LazyLock;

/// pve-access-control src/PVE/Auth/Plugin.pm: `$user_regex` `@` `$realm_regex`.
static USERID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([^\s:/]+)@([A-Za-z][A-Za-z0-9.\-_]+)$").unwrap());
/// pve-access-control src/PVE/AccessControl.pm, `$token_full_regex` (the token part is
/// `$realm_regex` again).
static TOKENID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(([^\s:/]+)@([A-Za-z][A-Za-z0-9.\-_]+))!([A-Za-z][A-Za-z0-9.\-_]+)$").unwrap()
});
/// Group and role names: `$groupname_regex` (Auth/Plugin.pm) and `verify_rolename`.
static SIMPLE_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z0-9.\-_]+$").unwrap());
/// pve-access-control src/PVE/AccessControl.pm, `verify_poolname`.
static POOLNAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9.\-_]+(?:/[A-Za-z0-9.\-_]+){0,2}$").unwrap());
/// A pool's storage member (`parse_user_config`, the `pool` branch; case-insensitive).
static POOL_STORAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]$").unwrap());
/// The characters `normalize_path` allows (`[[:alnum:]\.\-\_\/]`).
static ACL_PATH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[[:alnum:].\-_/]+$").unwrap());

/// pve-access-control src/PVE/Auth/Plugin.pm, `verify_username`: 3 to 64 characters,
/// `USER@REALM`. A token id (`USER@REALM!TOKEN`) is not a user name.
pub fn is_userid(s: &str) -> bool {
    (3..=64).contains(&s.len()) && USERID.is_match(s)
}

/// pve-access-control src/PVE/AccessControl.pm, `split_tokenid`: `(USER@REALM, TOKEN)`.
pub fn split_tokenid(s: &str) -> Option<(&str, &str)> {
    let c = TOKENID.captures(s)?;
    Some((c.get(1)?.as_str(), c.get(4)?.as_str()))
}

pub fn is_group_or_role_name(s: &str) -> bool {
    SIMPLE_NAME.is_match(s)
}

/// `verify_poolname`: at most three levels, `[A-Za-z0-9.-_]` per level.
pub fn is_poolname(s: &str) -> bool {
    s.split('/').count() <= 3 && POOLNAME.is_match(s)
}

pub fn is_pool_storage(s: &str) -> bool {
    POOL_STORAGE.is_match(s)
}

/// pve-access-control src/PVE/AccessControl.pm, `normalize_path`: `//` collapsed, no
/// trailing `/`, a leading `/`; `None` for an empty path or another character.
pub fn normalize_path(path: &str) -> Option<String> {
    if path.is_empty() || path == "0" {
        return None; // Perl's `return undef if !$path`
    }
    let mut p = String::with_capacity(path.len() + 1);
    for c in path.chars() {
        if c == '/' && p.ends_with('/') {
            continue;
        }
        p.push(c);
    }
    if p.ends_with('/') {
        p.pop();
    }
    if p.is_empty() {
        p.push('/');
    }
    if !p.starts_with('/') {
        p.insert(0, '/');
    }
    ACL_PATH.is_match(&p).then_some(p)
}

/// pve-common src/PVE/ParseUtils.pm, `split_list`: NUL-separated if there is a NUL, else
/// split on `,`, `;` and whitespace.
pub fn split_list(s: &str) -> Vec<&str> {
    if s.contains('\0') {
        return s.split('\0').collect();
    }
    s.split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|x| !x.is_empty())
        .collect()
}

/// Perl truthiness of a field: false for the empty string and `0`, true otherwise.
pub fn perl_true(s: &str) -> bool {
    !(s.is_empty() || s == "0")
}

/// Perl's `split(/:/, $line)` (trailing empty fields dropped), each field trimmed, as
/// `parse_user_config` splits a line.
pub fn colon_fields(line: &str) -> Vec<String> {
    let mut parts: Vec<&str> = line.split(':').collect();
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts.into_iter().map(|p| p.trim().to_string()).collect()
}

/// Perl's `split("/", $path)` as `PVE::AccessControl::roles` walks a path: the leading
/// empty part kept (it stands for `/`), trailing empty parts dropped; `/` is `[""]`.
pub fn path_parts(path: &str) -> Vec<&str> {
    if path == "/" {
        return vec![""];
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}
