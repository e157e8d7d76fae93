//! `nosuid`/`nodev`/`noexec` on writable binds: LXC remounts a bind only
//! when it is read-only or its source has flags the bind lacks, so the
//! init sets them (`InitSpec::bind_flags`).

use lxcri_init_spec::BindFlags;
use serde_json::json;

use super::{env, mount, with};

#[test]
fn writable_binds_get_their_flags_from_the_init() {
    let env = env();
    let dir = env.host.join("dir");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = with(|v| {
        let bind = |dest: &str, options: &[&str]| json!({"destination": dest, "type": "bind", "source": dir, "options": options});
        mount(v, bind("/a", &["rbind", "nodev", "noexec"]));
        // Read-only: LXC's remount sets them.
        mount(v, bind("/b", &["rbind", "ro", "nosuid"]));
        // The last of a pair wins.
        mount(v, bind("/c", &["bind", "noexec", "exec", "nosuid"]));
        mount(v, bind("/d", &["rbind", "suid"]));
        // Not a bind: LXC mounts it with its flags.
        mount(
            v,
            json!({"destination": "/e", "type": "tmpfs", "source": "tmpfs", "options": ["noexec"]}),
        );
    });
    let plan = env.plan(&spec).unwrap();
    assert_eq!(
        plan.init.bind_flags,
        [
            BindFlags {
                destination: "/a".into(),
                flags: libc::MS_NODEV | libc::MS_NOEXEC,
            },
            BindFlags {
                destination: "/c".into(),
                flags: libc::MS_NOSUID,
            },
        ]
    );
}
