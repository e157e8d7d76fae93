use super::*;
use std::collections::HashMap;

/// An in-memory file system: files and directories (entries in "readdir" order).
struct Fs {
    files: HashMap<String, String>,
    dirs: HashMap<String, Vec<String>>,
}

impl Fs {
    fn check(&self, config: &str) -> Option<Vec<String>> {
        let read = |p: &Path| self.files.get(&p.to_str()?.replace("//", "/")).cloned();
        let list = |p: &Path| self.dirs.get(p.to_str()?.trim_end_matches('/')).cloned();
        let files = Files {
            read: &read,
            list: &list,
            skip_dir: Path::new("/usr/share/lxc/config"),
        };
        check(Path::new("/var/lib/lxc/100/config"), config, 100, &files)
    }
}

fn fs() -> Fs {
    Fs {
        files: [
            // LXC 5's own common.conf has v1 device lines; LXC 7 ships its own.
            (
                "/usr/share/lxc/config/common.conf",
                "lxc.cgroup.devices.deny = a\n",
            ),
            (
                "/run/lxcri/c1/pve-lxc.conf",
                "lxc.mount.entry =\nlxc.cgroup.memory.limit_in_bytes = 1\n",
            ),
            ("/run/lxcri/c1/reset.conf", "lxc.cgroup2 =\nlxc.cgroup =\n"),
            (
                "/run/lxcri/c1/ok.conf",
                "# lxc.cgroup = x\nlxc.cgroup2.memory.max = 1\nlxc.cgroup.dir.container = y\n",
            ),
            ("/etc/x.d/a.conf", "lxc.cgroup.cpuset.cpus = 0\n"),
            ("/etc/x.d/b.txt", "lxc.cgroup.cpuset.cpus = 0\n"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        dirs: [(
            "/etc/x.d".to_string(),
            vec!["b.txt".to_string(), "a.conf".to_string()],
        )]
        .into_iter()
        .collect(),
    }
}

const HEAD: &str = "lxc.cgroup.relative = 0\nlxc.cgroup.dir.monitor = lxc.monitor/100\n\
                    lxc.cgroup.dir.container = lxc/100\nlxc.cgroup.dir.container.inner = ns\n\
                    lxc.include = /usr/share/lxc/config/common.conf\n";

/// Upstream v7.0.0 has no `lxc.cgroup` entry: set_config_unsupported_key fails the line,
/// and each file up the include chain reports the line that included it.
#[test]
fn upstream_refuses_v1_keys_raw_and_included() {
    let raw = format!("{HEAD}lxc.cgroup.memory.limit_in_bytes = 67108864\n");
    assert_eq!(
        fs().check(&raw).unwrap(),
        [
            "lxc-start: 100: ../src/lxc/confile.c: set_config_unsupported_key: 165 Invalid argument - Unsupported config key \"lxc.cgroup.memory.limit_in_bytes\"",
            "lxc-start: 100: ../src/lxc/parse.c: lxc_file_for_each_line_mmap: 135 Failed to parse config file \"/var/lib/lxc/100/config\" at line \"lxc.cgroup.memory.limit_in_bytes = 67108864\"",
            "Failed to load config for 100",
            "lxc-start: 100: ../src/lxc/tools/lxc_start.c: lxc_start_main: 241 Failed to create lxc_container",
        ]
    );
    let inc = format!("{HEAD}lxc.include = /run/lxcri/c1/pve-lxc.conf\n");
    let lines = fs().check(&inc).unwrap();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(lines[1].ends_with("Failed to parse config file \"/run/lxcri/c1/pve-lxc.conf\" at line \"lxc.cgroup.memory.limit_in_bytes = 1\""));
    assert!(lines[2].ends_with("Failed to parse config file \"/var/lib/lxc/100/config\" at line \"lxc.include = /run/lxcri/c1/pve-lxc.conf\""));
    // An empty reset is a key like any other there.
    let reset = format!("{HEAD}lxc.include = /run/lxcri/c1/reset.conf\n");
    assert!(fs().check(&reset).unwrap()[0].ends_with("Unsupported config key \"lxc.cgroup\""));
}

/// What stays: cgroup2 keys and resets, `lxc.cgroup.dir.*`, `lxc.cgroup.relative`,
/// comments, LXC 5's own template files.
#[test]
fn cgroup2_and_dir_keys_load() {
    let ok = format!("{HEAD}lxc.include = /run/lxcri/c1/ok.conf\nlxc.cgroup2.cpuset.cpus = 0-1\nlxc.cgroup.dir.monitor.pivot = p\n");
    assert_eq!(fs().check(&ok), None);
}

/// confile.c set_config_includefiles/do_includedir: a directory means its `*.conf`
/// files ("DIR/NAME", readdir order); other names are skipped.
#[test]
fn included_directory_reads_its_conf_files() {
    let inc = format!("{HEAD}lxc.include = /etc/x.d/\n");
    let lines = fs().check(&inc).unwrap();
    assert!(lines[1].contains("\"/etc/x.d//a.conf\""), "{lines:?}");
    assert!(
        lines[2].contains("at line \"lxc.include = /etc/x.d/\""),
        "{lines:?}"
    );
    let inc = format!("{HEAD}lxc.include = /etc/x.d\n");
    assert!(fs().check(&inc).unwrap()[1].contains("\"/etc/x.d/a.conf\""));
}

#[test]
fn lxc_info_fails_like_lxc_on_an_unloadable_config() {
    assert_eq!(
        lxc_info_failure(Path::new("/var/lib/lxc"), 100),
        [
            "Failed to load config for 100",
            "Failure to retrieve information on /var/lib/lxc:100"
        ]
    );
}
