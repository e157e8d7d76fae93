use super::*;

fn keys(params: &[(String, String)]) -> Vec<&str> {
    params.iter().map(|(k, _)| k.as_str()).collect()
}

#[test]
fn a_member_has_only_what_a_create_fixes_and_the_update_the_rest() {
    let c = full_config();
    let claim = c.pool_claim().unwrap();
    let member = claim.member.with_vmid(MIN_VMID).unwrap();
    let member_keys = keys(&member);
    for fixed in ["ostemplate", "unprivileged", "rootfs", "ostype", "arch"] {
        assert!(member_keys.contains(&fixed), "{fixed}: {member_keys:?}");
    }
    for own in [
        "memory",
        "cores",
        "net0",
        "entrypoint",
        "env",
        "mp1",
        "features",
    ] {
        assert!(!member_keys.contains(&own), "{own}: {member_keys:?}");
    }
    let get = |k: &str| {
        member
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("hostname").as_deref(), Some("lxcri-pool"));
    assert_eq!(get("tags").as_deref(), Some("lxcri"));
    let notes = get("description").unwrap();
    assert_eq!(
        Description::pool_fingerprint(&notes),
        Some(claim.fingerprint.clone())
    );
    assert_eq!(
        Description::owner(&notes),
        None,
        "a member is no container's"
    );

    let update_keys = keys(&claim.update);
    for own in [
        "hostname",
        "description",
        "tags",
        "memory",
        "cores",
        "net0",
        "entrypoint",
    ] {
        assert!(update_keys.contains(&own), "{own}: {update_keys:?}");
    }
    for fixed in [
        "ostemplate",
        "pool",
        "unprivileged",
        "rootfs",
        "ostype",
        "arch",
    ] {
        assert!(!update_keys.contains(&fixed), "{fixed}: {update_keys:?}");
    }
    assert_eq!(claim.description, c.description.clone().unwrap());
}

#[test]
fn the_fingerprint_follows_what_a_create_fixes_only() {
    let base = full_config().pool_claim().unwrap().fingerprint;
    let mut other_container = full_config();
    other_container.hostname = Hostname::sanitize("web");
    other_container.resources.memory_mib = Some(1024);
    other_container.nets.clear();
    other_container.description = Some(Description::parse("Managed by lxcri").unwrap());
    assert_eq!(other_container.pool_claim().unwrap().fingerprint, base);

    let mut privileged = full_config();
    privileged.unprivileged = false;
    let mut template = full_config();
    template.ostemplate = Some("local:vztmpl/other.tar.zst".into());
    let mut sized = full_config();
    sized.rootfs = Some(RootFs {
        volume: Volume::Allocate {
            storage: "local-zfs".into(),
            size: Some("8G".parse().unwrap()),
        },
        options: Default::default(),
    });
    let mut pooled = full_config();
    pooled.pool = Some(PoolId::parse("lxcri").unwrap());
    for changed in [privileged, template, sized, pooled] {
        assert_ne!(changed.pool_claim().unwrap().fingerprint, base);
    }
}

#[test]
fn member_descriptions_are_recognised_strictly() {
    let fp = full_config().pool_claim().unwrap().fingerprint;
    let text = Description::pool_member(&fp).as_str().to_string();
    assert_eq!(Description::pool_fingerprint(&text), Some(fp.clone()));
    let drained = Description::pool_member(&MemberFingerprint::drained());
    assert_eq!(
        Description::pool_fingerprint(drained.as_str()),
        Some(MemberFingerprint::drained())
    );
    let twice = format!("{text}- pool member: {fp}\n");
    for bad in [
        twice.as_str(),
        "Managed by lxcri: a warm pool member, no container's yet.\n\n- pool member: XYZ\n",
        "someone's notes\n- pool member: 0123456789abcdef\n",
    ] {
        assert_eq!(Description::pool_fingerprint(bad), None, "{bad}");
    }
}
