use std::path::Path;

use super::*;

const FIXTURES: &[&str] = &[
    "101-snapshots-pending.conf",
    "101-snapshots-pending.edited.conf",
    "12345-lxcri-created.conf",
    "200-legacy-equals.conf",
];

const OWNED: &str = "/var/lib/lxcri/pve";

#[test]
fn fixtures_round_trip_byte_for_byte() {
    for name in FIXTURES {
        let text = fixture(name);
        let f = PveConfigFile::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(f.render(), text, "{name}");
    }
    for text in ["", "\n", "memory: 512", "memory: 512\n\n\n"] {
        assert_eq!(PveConfigFile::parse(text).unwrap().render(), text);
    }
}

#[test]
fn sections_keys_and_description_are_read() {
    let f = PveConfigFile::parse(&fixture("101-snapshots-pending.conf")).unwrap();
    assert_eq!(f.get("hostname"), Some("web01"));
    assert_eq!(f.get("memory"), Some("2048"));
    assert_eq!(f.pending("memory"), Some("4096"));
    assert_eq!(f.get("snaptime"), None, "a snapshot's key is not the CT's");
    assert!(f.render().contains("\n[before-upgrade]\n"));
    assert_eq!(
        f.description(),
        "Web server for the shop\n\nOwner: ops team, ticket #123\n"
    );
    assert_eq!(
        f.raw_lines(),
        [
            ("lxc.cgroup2.devices.allow", "c 10:200 rwm"),
            (
                "lxc.mount.entry",
                "/dev/net/tun dev/net/tun none bind,create=file"
            ),
            ("lxc.include", "/etc/pve/extra/shared.conf"),
        ]
    );
    let kinds: Vec<_> = f.sections().iter().map(|s| s.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            SectionKind::Main,
            SectionKind::Pending,
            SectionKind::Snapshot("before-upgrade".into())
        ]
    );
    let legacy = PveConfigFile::parse(&fixture("200-legacy-equals.conf")).unwrap();
    assert_eq!(
        legacy.raw_lines()[0],
        ("lxc.init.cmd", "/sbin/tini -- /app"),
        "'=' lines are raw lines too"
    );
}

#[test]
fn golden_include_and_bind_mount_edit() {
    let mut f = PveConfigFile::parse(&fixture("101-snapshots-pending.conf")).unwrap();
    let fragment = Path::new("/var/lib/lxcri/pve/101.conf");
    assert!(f.set_include(fragment, Path::new(OWNED)).unwrap());
    let mp = bind_mount("/srv/shop/uploads", "/var/www/uploads");
    assert!(f.set_key("mp0", &mp.render("mp0").unwrap()).unwrap());
    assert_eq!(f.render(), fixture("101-snapshots-pending.edited.conf"));
    // Idempotent: nothing changes the second time.
    assert!(!f.set_include(fragment, Path::new(OWNED)).unwrap());
    assert!(!f.set_key("mp0", &mp.render("mp0").unwrap()).unwrap());
    assert_eq!(f.render(), fixture("101-snapshots-pending.edited.conf"));
}

#[test]
fn set_include_replaces_only_lxcris_include() {
    let text = fixture("12345-lxcri-created.conf");
    let mut f = PveConfigFile::parse(&text).unwrap();
    assert!(!f
        .set_include(Path::new("/var/lib/lxcri/pve/12345.conf"), Path::new(OWNED))
        .unwrap());
    assert!(f
        .set_include(
            Path::new("/var/lib/lxcri/pve/12345-v2.conf"),
            Path::new(OWNED)
        )
        .unwrap());
    let includes: Vec<_> = f
        .raw_lines()
        .into_iter()
        .filter(|(k, _)| *k == "lxc.include")
        .collect();
    assert_eq!(
        includes,
        [("lxc.include", "/var/lib/lxcri/pve/12345-v2.conf")]
    );
    assert_eq!(
        f.render(),
        text.replace("pve/12345.conf", "pve/12345-v2.conf"),
        "everything else is kept"
    );
    // A foreign include stays when ours is added or removed.
    let mut f = PveConfigFile::parse(&fixture("101-snapshots-pending.edited.conf")).unwrap();
    assert!(f.remove_include(Path::new(OWNED)));
    assert_eq!(f.render(), {
        let t = fixture("101-snapshots-pending.edited.conf");
        t.replace("lxc.include: /var/lib/lxcri/pve/101.conf\n", "")
    });
    for bad in [
        "relative/x.conf",
        "/etc/pve/other.conf",
        "/var/lib/lxcri/pve/a\nb",
        "/var/lib/lxcri/pve/../../../etc/shadow",
    ] {
        assert!(
            f.set_include(Path::new(bad), Path::new(OWNED)).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn set_key_checks_key_value_and_pending() {
    let mut f = PveConfigFile::parse(&fixture("101-snapshots-pending.conf")).unwrap();
    let err = f.set_key("memory", "1024").unwrap_err().to_string();
    assert!(err.contains("pending"), "{err}");
    assert!(f.set_key("lxc.rootfs.path", "/x").is_err());
    assert!(f.set_key("foo", "1").is_err());
    assert!(f.set_key("digest", "1").is_err());
    assert!(f.set_key("mp3", "/a,mp=/b\nrootfs: /").is_err());
    assert!(f.set_key("mp3", " /a,mp=/b").is_err());
    // Replacing keeps the position.
    assert!(f.set_key("hostname", "web02").unwrap());
    assert!(f
        .render()
        .contains("features: nesting=1\nhostname: web02\nmemory: 2048\n"));
    // A description added to a file without one goes first.
    let mut f = PveConfigFile::parse("memory: 512\n").unwrap();
    f.set_description("pod: a\nb %");
    assert_eq!(f.render(), "#pod%3A a\n#b %25\nmemory: 512\n");
    assert_eq!(f.description(), "pod: a\nb %\n");
    // `%` is encoded as PVE's encode_text does, so a `%41` stays a `%41`;
    // a `\r` stays too, as in PVE's `split(/\n/)`.
    f.set_description("100%41\r\nnext\n\n");
    assert_eq!(f.render(), "#100%2541%0D\n#next\nmemory: 512\n");
    assert_eq!(f.description(), "100%41\r\nnext\n");
    // uri_unescape leaves a `%` without two hex digits as it is.
    let f = PveConfigFile::parse("#%+5 %4 %zz\nmemory: 1\n").unwrap();
    assert_eq!(f.description(), "%+5 %4 %zz\n");
}

#[test]
fn description_written_the_pve_way_cannot_inject_keys() {
    for evil in [
        "pod\nrootfs: local:1",
        "pod\r\nmemory: 1",
        "a: b",
        "x\0lxc.no_new_privs: 1",
        "[pve:pending]\nmemory: 1",
    ] {
        let mut f = PveConfigFile::parse("memory: 512\n").unwrap();
        f.set_description(evil);
        let text = f.render();
        let back = PveConfigFile::parse(&text).unwrap();
        assert_eq!(back.get("rootfs"), None, "{text}");
        assert_eq!(back.get("memory"), Some("512"), "{text}");
        assert!(back.raw_lines().is_empty(), "{text}");
        assert_eq!(back.sections().len(), 1, "{text}");
    }
}

#[test]
fn parse_rejects_what_pve_rejects() {
    for (line, what) in [
        (
            "lxc.namespace.share.net: /proc/1/ns/net",
            "lxc.namespace.share.net",
        ),
        ("lxc.no_new_privs: 1", "lxc.no_new_privs"),
        ("lxc.rootfs.path: dir:/x", "generates it"),
        ("lxc.include /x", "without"),
        ("hello world", "unable to parse"),
        ("Memory: 1", "unable to parse"),
        ("memory:", "unable to parse"),
    ] {
        let text = format!("arch: amd64\n{line}\n");
        let err = PveConfigFile::parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains(what),
            "{line}: {err}"
        );
    }
}

#[test]
fn raw_keys_pve_accepts() {
    for ok in [
        "lxc.include",
        "lxc.init.cmd",
        "lxc.environment.runtime",
        "lxc.cgroup2.memory.max",
        "lxc.prlimit.nofile",
        "lxc.net.0.type",
        "lxc.hook.pre-start",
        "lxc.signal.stop",
        "lxc.sysctl.kernel.shmmax",
        "lxc.idmap",
        "lxc.mount.entry",
        // Deprecated, yet PVE 9 still loads them.
        "lxc.cgroup.cpuset.cpus",
    ] {
        check_raw_key(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "lxc.namespace.clone",
        "lxc.namespace.keep",
        "lxc.no_new_privs",
        "lxc.rootfs.path",
        "lxc.rootfs.options",
        "lxc.sysctl.net.ipv4.ip_forward",
        "lxc.proc.oom_score_adj",
        "lxc.Include",
        "lxc.include\n",
        "memory",
    ] {
        assert!(check_raw_key(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn raw_cpuset_goes_into_the_main_section_once() {
    use crate::cgroup::{CgroupVersion, CpuSet};
    let text = fixture("101-snapshots-pending.conf");
    let mut f = PveConfigFile::parse(&text).unwrap();
    let set = |s: &str| CpuSet::parse(s).unwrap().unwrap();
    assert!(f.set_raw_cpuset(CgroupVersion::V2, &set("0-1")).unwrap());
    assert!(!f.set_raw_cpuset(CgroupVersion::V2, &set("0-1")).unwrap());
    assert!(f.set_raw_cpuset(CgroupVersion::V2, &set("1")).unwrap());
    let cpusets = |f: &PveConfigFile| -> Vec<(String, String)> {
        f.raw_lines()
            .into_iter()
            .filter(|(k, _)| k.contains("cpuset"))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        cpusets(&f),
        [("lxc.cgroup2.cpuset.cpus".to_string(), "1".to_string())]
    );
    // In the main section, not in a snapshot or [pve:pending].
    let again = PveConfigFile::parse(&f.render()).unwrap();
    assert_eq!(cpusets(&again), cpusets(&f));
    assert!(f.sections()[1..]
        .iter()
        .all(|s| s.lines.iter().all(|l| !l.raw().contains("cpuset"))));
    let mut v1 = PveConfigFile::parse(&text).unwrap();
    v1.set_raw_cpuset(CgroupVersion::V1, &set("0")).unwrap();
    assert_eq!(
        cpusets(&v1),
        [("lxc.cgroup.cpuset.cpus".to_string(), "0".to_string())]
    );
}

#[test]
fn a_custom_idmap_becomes_raw_lines_and_pves_own_none() {
    use crate::lxc::{IdKind, IdMap};
    let map = |kind, c, h, n| IdMap {
        kind,
        container_id: c,
        host_id: h,
        size: n,
    };
    let text = fixture("101-snapshots-pending.conf");
    let mut f = PveConfigFile::parse(&text).unwrap();
    let idmaps = |f: &PveConfigFile| -> Vec<String> {
        f.raw_lines()
            .into_iter()
            .filter(|(k, _)| *k == "lxc.idmap")
            .map(|(_, v)| v.to_string())
            .collect()
    };
    let pve_own = [
        map(IdKind::User, 0, 100_000, 65_536),
        map(IdKind::Group, 0, 100_000, 65_536),
    ];
    assert!(
        !f.set_raw_idmaps(&pve_own).unwrap(),
        "unprivileged: 1 gives that one"
    );
    assert!(idmaps(&f).is_empty());
    let custom = [
        map(IdKind::User, 0, 200_000, 65_536),
        map(IdKind::Group, 0, 200_000, 65_536),
    ];
    assert!(f.set_raw_idmaps(&custom).unwrap());
    assert!(!f.set_raw_idmaps(&custom).unwrap());
    assert_eq!(idmaps(&f), ["u 0 200000 65536", "g 0 200000 65536"]);
    let reparsed = PveConfigFile::parse(&f.render()).unwrap();
    assert_eq!(idmaps(&reparsed), ["u 0 200000 65536", "g 0 200000 65536"]);
    assert!(f.set_raw_idmaps(&pve_own).unwrap());
    assert!(idmaps(&f).is_empty());
}
