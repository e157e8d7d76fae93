use super::*;

#[test]
fn hostname_sanitize_makes_one_dns_label() {
    for (raw, want) in [
        ("nginx-7d9c", "nginx-7d9c"),
        ("My_Pod.Name", "my-pod-name"),
        ("--web--", "web"),
        ("ünïcode", "n-code"),
        ("a\nrootfs: local:8", "a-rootfs--local-8"),
        ("0123", "0123"),
    ] {
        assert_eq!(Hostname::sanitize(raw).as_str(), want, "{raw:?}");
    }
}

#[test]
fn hostname_sanitize_is_never_empty_or_too_long() {
    assert_eq!(Hostname::sanitize("").as_str(), "ct");
    assert_eq!(Hostname::sanitize("---").as_str(), "ct");
    assert_eq!(
        Hostname::sanitize_or("...", "ct-12345").as_str(),
        "ct-12345"
    );
    assert_eq!(Hostname::sanitize_or("", "").as_str(), "ct");
    // 62 letters, then '-' at position 63: truncation must not end in '-'.
    let long = format!("{}-{}", "a".repeat(62), "b".repeat(40));
    let h = Hostname::sanitize(&long);
    assert_eq!(h.as_str(), "a".repeat(62));
    for raw in ["", "-", "a.b", &"x".repeat(300), "\0\r\n", "a:b=c,d;e"] {
        let h = Hostname::sanitize(raw);
        Hostname::parse(h.as_str()).unwrap_or_else(|e| panic!("{raw:?} -> {h}: {e}"));
    }
}

#[test]
fn hostname_parse_rejects_invalid_names_naming_the_field() {
    Hostname::parse("web01.example.com").unwrap();
    for bad in [
        "",
        "-a",
        "a-",
        "a..b",
        "a_b",
        "a b",
        "a\nb",
        &"a".repeat(64),
        &["a"; 130].join("."),
    ] {
        let err = Hostname::parse(bad).unwrap_err().to_string();
        assert!(err.contains("hostname"), "{bad:?}: {err}");
    }
}

#[test]
fn tags_always_have_lxcri_and_prefixed_k8s_names() {
    assert_eq!(Tags::for_container(None, None).render(), "lxcri");
    assert_eq!(
        Tags::for_container(Some("kube-system"), Some("coredns-5d78c9869d-x2x7k")).render(),
        "lxcri;ns-kube-system;pod-coredns-5d78c9869d-x2x7k"
    );
    // Separators of the tag list and of the config format become '-'.
    assert_eq!(
        Tags::for_container(Some("a;b"), Some("x,y=z\nrootfs: 1")).render(),
        "lxcri;ns-a-b;pod-x-y-z-rootfs--1"
    );
}

#[test]
fn tag_sanitize_and_parse() {
    assert_eq!(Tag::sanitize("Prod.Web+1").unwrap().as_str(), "prod.web+1");
    assert_eq!(Tag::sanitize("-.+x").unwrap().as_str(), "x");
    assert_eq!(Tag::sanitize("---"), None);
    assert_eq!(Tag::sanitize(""), None);
    Tag::parse("_x-1").unwrap();
    for bad in ["", "-x", "a;b", "a b", "A"] {
        assert!(Tag::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn description_lists_the_container_one_field_per_line() {
    let d = Description::for_container(&DescriptionInfo {
        container_id: "abc123".into(),
        containerd_namespace: Some("k8s.io".into()),
        namespace: Some("default".into()),
        pod: Some("web".into()),
        container_name: Some("nginx".into()),
        image: Some("nginx:1.27".into()),
    });
    assert_eq!(
        d.as_str(),
        "Managed by lxcri; changes here are overwritten.\n\
         \n\
         - container: abc123\n\
         - containerd namespace: k8s.io\n\
         - pod: default/web\n\
         - name: nginx\n\
         - image: nginx:1.27\n"
    );
    assert_eq!(
        Description::owner(d.as_str()),
        Some(("k8s.io".to_string(), "abc123".to_string()))
    );
}

#[test]
fn description_owner_needs_both_names_once_and_valid() {
    let ours = "Managed by lxcri; x\n\n- container: c1\n- containerd namespace: default\n";
    assert_eq!(
        Description::owner(ours),
        Some(("default".into(), "c1".into()))
    );
    for foreign in [
        // Not written by lxcri.
        "my notes\n- container: c1\n- containerd namespace: default\n",
        // A value that is no containerd name (would be a path).
        "Managed by lxcri\n- container: ../../etc\n- containerd namespace: default\n",
        // Two container lines: ambiguous, so not ours.
        "Managed by lxcri\n- container: c2\n- container: c1\n- containerd namespace: default\n",
        "Managed by lxcri\n- container: c1\n",
    ] {
        assert_eq!(Description::owner(foreign), None, "{foreign:?}");
    }
    // A pod name with a newline is escaped onto its own line, so it cannot
    // add a container line of its own.
    let d = Description::for_container(&DescriptionInfo {
        container_id: "c1".into(),
        containerd_namespace: Some("default".into()),
        pod: Some("x\n- container: evil".into()),
        ..Default::default()
    });
    assert_eq!(
        Description::owner(d.as_str()),
        Some(("default".into(), "c1".into()))
    );
}

#[test]
fn description_escapes_control_characters_in_values() {
    let d = Description::for_container(&DescriptionInfo {
        container_id: "id".into(),
        pod: Some("evil\nrootfs: local:1\r\0".into()),
        image: Some("img\\n".into()),
        ..Default::default()
    });
    let text = d.as_str();
    assert!(
        text.contains("- pod: evil\\nrootfs: local:1\\r\\u{0}\n"),
        "{text}"
    );
    // A literal backslash-n in a value stays distinguishable from an escape.
    assert!(text.contains("- image: img\\\\n\n"), "{text}");
    assert!(text.lines().all(|l| !l.starts_with("rootfs")));
    assert!(!text.contains('\r') && !text.contains('\0'));
}

#[test]
fn description_parse_allows_newlines_only() {
    Description::parse("line one\nline: two").unwrap();
    for bad in ["a\rb", "a\0b", "a\u{1b}[31m"] {
        let err = Description::parse(bad).unwrap_err().to_string();
        assert!(err.contains("description"), "{err}");
    }
    assert!(Description::parse(&"x".repeat(8193)).is_err());
    let long = Description::for_container(&DescriptionInfo {
        container_id: "é".repeat(5000),
        ..Default::default()
    });
    assert!(long.as_str().len() <= 8192);
}

#[test]
fn pool_ids_are_pves_pool_names() {
    for ok in ["lxcri", "k8s.pods", "a-b_c", "team/lxcri", "a/b/c"] {
        assert_eq!(PoolId::parse(ok).unwrap().as_str(), ok);
    }
    for bad in ["", "a b", "a/b/c/d", "a//b", "/a", "a/", "a;b", "pool\n"] {
        let err = PoolId::parse(bad).unwrap_err().to_string();
        assert!(err.starts_with("PVE config pool:"), "{bad:?}: {err}");
    }
}
