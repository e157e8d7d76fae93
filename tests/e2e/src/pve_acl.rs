//! The token's permissions in every pve-sim the suite starts: the
//! `pveum` commands of docs/operations.md ("The API token"), turned into
//! the `user.cfg` lines PVE would write for them, so the whole suite runs
//! with exactly the documented role and the docs cannot drift from what
//! passes.

use std::path::Path;

/// `docs/operations.md` of this workspace.
fn operations_md() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The `pveum` lines of the first shell block under "### The API token".
fn documented_pveum(md: &str) -> Vec<String> {
    let section = md
        .split_once("### The API token")
        .map(|(_, rest)| rest)
        .expect("docs/operations.md has a section \"The API token\"");
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .expect("a ```sh block in \"The API token\"");
    block
        .lines()
        .map(|l| l.split_once(" #").map_or(l, |(cmd, _)| cmd).trim())
        .filter(|l| l.starts_with("pveum "))
        .map(str::to_string)
        .collect()
}

/// Splits a command line at spaces, keeping "double quoted" words whole.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn option<'a>(w: &'a [String], name: &str) -> Option<&'a str> {
    w.iter()
        .position(|x| x == name)
        .and_then(|i| w.get(i + 1))
        .map(String::as_str)
}

/// The `user.cfg` PVE writes for `pveum` lines (user, role, acl, token),
/// in PVE's order (users and tokens, roles, ACLs), with `token_id`'s
/// token in place of the documented one.
pub fn user_cfg_for(pveum: &[String], token_id: &str) -> String {
    let (mut users, mut roles, mut acls) = (Vec::new(), Vec::new(), Vec::new());
    for line in pveum {
        let w = words(line);
        let args: Vec<&str> = w.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["pveum", "user", "add", user, ..] => users.push(format!("user:{user}:1:0::::::")),
            ["pveum", "role", "add", name, ..] => {
                let privs = option(&w, "--privs").expect("--privs");
                roles.push(format!("role:{name}:{}:", privs.replace(' ', ",")));
            }
            ["pveum", "acl", "modify", path, ..] => {
                let propagate = option(&w, "--propagate").unwrap_or("1");
                let users = option(&w, "--users").expect("--users");
                let role = option(&w, "--roles").expect("--roles");
                acls.push(format!("acl:{propagate}:{path}:{users}:{role}:"));
            }
            ["pveum", "user", "token", "add", _, _, ..] => {
                let privsep = option(&w, "--privsep").unwrap_or("1");
                users.push(format!("token:{token_id}:0:{privsep}::"));
            }
            _ => panic!("docs/operations.md: a pveum line the harness does not know: {line}"),
        }
    }
    let mut out = String::new();
    for l in users.iter().chain(&roles).chain(&acls) {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// The documented role as `user.cfg`, for the token `token_id`.
pub fn documented_user_cfg(token_id: &str) -> String {
    user_cfg_for(&documented_pveum(&operations_md()), token_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_pveum_lines_become_user_cfg() {
        let cfg = documented_user_cfg("lxcri@pve!e2e");
        for line in [
            "user:lxcri@pve:1:0::::::",
            "token:lxcri@pve!e2e:0:0::",
            "acl:1:/vms:lxcri@pve:LxcriCT:",
            "acl:0:/:lxcri@pve:LxcriPrivileged:",
            "role:LxcriPrivileged:Sys.Modify:",
        ] {
            assert!(cfg.lines().any(|l| l == line), "{line} missing in\n{cfg}");
        }
        let role = cfg
            .lines()
            .find(|l| l.starts_with("role:LxcriCT:"))
            .expect("LxcriCT");
        assert!(role.contains("VM.Allocate,VM.Audit,"), "{role}");
    }
}
