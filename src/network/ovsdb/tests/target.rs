use super::super::{OvsdbError, OvsdbTarget};

fn reason(s: &str) -> &'static str {
    match s.parse::<OvsdbTarget>() {
        Err(OvsdbError::InvalidTarget { target, reason }) => {
            assert_eq!(target, s);
            reason
        }
        other => panic!("{s:?}: {other:?}"),
    }
}

#[test]
fn targets_round_trip() {
    for s in [
        "unix:/var/run/openvswitch/db.sock",
        "tcp:127.0.0.1:6640",
        "tcp:[::1]:16640",
    ] {
        assert_eq!(s.parse::<OvsdbTarget>().unwrap().to_string(), s);
    }
}

#[test]
fn tcp_without_a_port_is_6640() {
    for (s, want) in [
        ("tcp:10.0.0.1", "tcp:10.0.0.1:6640"),
        ("tcp:[fe80::1]", "tcp:[fe80::1]:6640"),
        ("tcp:::1", "tcp:[::1]:6640"),
    ] {
        assert_eq!(s.parse::<OvsdbTarget>().unwrap().to_string(), want);
    }
}

#[test]
fn bad_targets_say_why() {
    assert!(reason("/var/run/openvswitch/db.sock").contains("expected unix:PATH"));
    assert!(reason("unix:").contains("empty"));
    assert!(reason("unix:db.sock").contains("absolute"));
    assert!(reason("unix:/a\0b").contains("NUL"));
    assert!(reason(&format!("unix:/{}", "x".repeat(107))).contains("107 bytes"));
    assert!(reason("punix:/run/db.sock").contains("listens"));
    assert!(reason("ssl:1.2.3.4:6640").contains("not supported"));
    assert!(reason("tcp:ovs.example:6640").contains("IP address"));
    assert!(reason("tcp:127.0.0.1:0").contains("port 0"));
    assert!(reason("tcp:127.0.0.1:99999").contains("IP address"));
    // The longest path that fits.
    let longest = format!("unix:/{}", "x".repeat(106));
    assert!(longest.parse::<OvsdbTarget>().is_ok());
}

#[test]
fn the_error_names_the_target() {
    let e = "tcp:nowhere".parse::<OvsdbTarget>().unwrap_err();
    assert!(
        e.to_string().contains("invalid target \"tcp:nowhere\""),
        "{e}"
    );
}
