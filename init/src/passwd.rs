//! `HOME` for processes whose spec has none, from the container's
//! `/etc/passwd`, as runc does (`/` when the user has no entry).

/// The home directory of `uid` in passwd-format `text`.
pub fn home_of(uid: u32, text: &str) -> Option<&str> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 7 && f[2].parse::<u32>().ok() == Some(uid) && !f[5].is_empty()).then(|| f[5])
    })
}

/// `env` with `HOME=...` appended if it has none. Reads `/etc/passwd` as
/// the process will see it (the caller is inside the container's mounts).
pub fn with_home(env: &[String], uid: u32) -> Vec<String> {
    let mut out = env.to_vec();
    if !env.iter().any(|kv| kv.starts_with("HOME=")) {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        out.push(format!("HOME={}", home_of(uid, &passwd).unwrap_or("/")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nbad line\nu:x:1000:1000::/home/u:/bin/sh\n";

    #[test]
    fn home_comes_from_passwd() {
        assert_eq!(home_of(0, PASSWD), Some("/root"));
        assert_eq!(home_of(1000, PASSWD), Some("/home/u"));
        assert_eq!(home_of(42, PASSWD), None);
    }

    #[test]
    fn existing_home_is_kept() {
        let env = vec!["HOME=/x".to_string()];
        assert_eq!(with_home(&env, 0), env);
        let added = with_home(&["A=1".to_string()], 4242);
        assert_eq!(added, ["A=1", "HOME=/"]);
    }
}
