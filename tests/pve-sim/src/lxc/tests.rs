use super::start::stderr_log_lines;
use super::*;

#[test]
fn command_socket_is_lxcs_abstract_name() {
    assert_eq!(
        command_socket(Path::new("/var/lib/lxc"), "100"),
        "/var/lib/lxc/100/command"
    );
    // Too long for sun_path: LXC hashes LXCPATH/NAME with FNV-1a 64.
    let long = format!("/{}", "x".repeat(120));
    assert_eq!(
        command_socket(Path::new(&long), "100"),
        format!(
            "lxc/{:016x}/command",
            fnv1a64(format!("{long}/100").as_bytes())
        )
    );
    // Published FNV-1a 64 test vectors.
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
}

#[test]
fn lxc_version_is_major_dot_minor() {
    assert_eq!(parse_version("7"), Ok((7, 0)));
    assert_eq!(parse_version("5.0.2"), Ok((5, 0)));
    assert_eq!(parse_version("6.1"), Ok((6, 1)));
    assert!(parse_version("x").is_err());
    assert!(parse_version("7.y").is_err());
}

/// pve-container LXC.pm print_ct_stderr_log: LXC's prefix goes, other lines stay.
#[test]
fn stderr_lines_lose_lxcs_prefix_like_pve_prints_them() {
    let text = "lxc-start: 104: ../src/lxc/conf.c: run_buffer: 571 Script exited with status 255\n\
                lxc-start: 104: ../src/lxc/start.c: lxc_init: 845 Failed to run lxc.hook.pre-start for container \"104\"  \n\
                Failed to load config for 104\n";
    assert_eq!(
        stderr_log_lines(text, 104),
        [
            "run_buffer: 571 Script exited with status 255",
            "lxc_init: 845 Failed to run lxc.hook.pre-start for container \"104\"",
            "Failed to load config for 104",
        ]
    );
}
