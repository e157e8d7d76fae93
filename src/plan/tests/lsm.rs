//! AppArmor profiles and SELinux labels: which LXC profile the container
//! gets, what the init applies at exec, and the labels on an SELinux host.

use std::fs;

use serde_json::json;

use super::*;
use crate::lxc::LxcAppArmor;
use crate::security::lsm::HostLsm;

fn plan_with(
    env: &Env,
    spec: &Value,
    apparmor: LxcAppArmor,
    lsm: HostLsm,
) -> Result<ContainerPlan> {
    let spec: Spec = serde_json::from_value(spec.clone()).unwrap();
    let mut ctx = env.ctx(CgroupVersion::V2);
    ctx.apparmor = apparmor;
    ctx.lsm = lsm;
    plan_container(&spec, &ctx)
}

/// An SELinux host without AppArmor.
fn selinux_host(env: &Env) -> HostLsm {
    let fs_dir = env.host.join("selinux-host/sys/fs/selinux");
    fs::create_dir_all(&fs_dir).unwrap();
    fs::write(fs_dir.join("enforce"), "1").unwrap();
    HostLsm::at(&env.host.join("selinux-host"))
}

#[test]
fn no_profile_runs_unconfined_unless_the_node_chose_generated() {
    let env = env();
    let unconfined = env.plan(&base()).unwrap();
    assert_eq!(unconfined.lxc.apparmor, LxcAppArmor::Unconfined);
    assert_eq!(unconfined.init.process.apparmor_profile, None);
    assert!(unconfined
        .lxc
        .render()
        .unwrap()
        .contains("\nlxc.apparmor.profile = unconfined\n"));

    let ctx = env.ctx(CgroupVersion::V2);
    let generated = plan_with(&env, &base(), LxcAppArmor::Generated, ctx.lsm).unwrap();
    assert!(generated
        .lxc
        .render_pve_fragment()
        .unwrap()
        .contains("\nlxc.apparmor.profile = generated\n"));
    // An empty profile is "none named", as on runc.
    let empty = with(|v| v["process"]["apparmorProfile"] = json!(""));
    let ctx = env.ctx(CgroupVersion::V2);
    let p = plan_with(&env, &empty, LxcAppArmor::Generated, ctx.lsm).unwrap();
    assert_eq!(p.lxc.apparmor, LxcAppArmor::Generated);
    assert_eq!(p.init.process.apparmor_profile, None);
}

#[test]
fn a_named_profile_is_applied_by_the_init_from_an_unconfined_container() {
    let env = env();
    let spec = with(|v| v["process"]["apparmorProfile"] = json!("cri-containerd.apparmor.d"));
    let ctx = env.ctx(CgroupVersion::V2);
    // Even where the node chose `generated`: runc's init is not confined
    // by anything but the runtime's own profile before it execs.
    let p = plan_with(&env, &spec, LxcAppArmor::Generated, ctx.lsm).unwrap();
    assert_eq!(p.lxc.apparmor, LxcAppArmor::Unconfined);
    assert_eq!(
        p.init.process.apparmor_profile.as_deref(),
        Some("cri-containerd.apparmor.d")
    );
}

#[test]
fn a_named_profile_needs_apparmor_on_the_host() {
    let env = env();
    let spec = with(|v| v["process"]["apparmorProfile"] = json!("lxcri-default"));
    let e = plan_with(&env, &spec, LxcAppArmor::Unconfined, selinux_host(&env))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("process.apparmorProfile:") && e.contains("AppArmor is not enabled"),
        "{e}"
    );
    // `unconfined` needs nothing.
    let spec = with(|v| v["process"]["apparmorProfile"] = json!("unconfined"));
    let p = plan_with(&env, &spec, LxcAppArmor::Unconfined, selinux_host(&env)).unwrap();
    assert_eq!(
        p.init.process.apparmor_profile.as_deref(),
        Some("unconfined")
    );
}

#[test]
fn selinux_labels_reach_the_init_and_the_tmpfs_mounts() {
    let env = env();
    let spec = with(|v| {
        v["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0:c1,c2");
        v["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0:c1,c2");
        mount(
            v,
            json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "size=1m"]}),
        );
    });
    let p = plan_with(&env, &spec, LxcAppArmor::Unconfined, selinux_host(&env)).unwrap();
    assert_eq!(
        p.init.process.selinux_label.as_deref(),
        Some("system_u:system_r:container_t:s0:c1,c2")
    );
    let text = p.lxc.render().unwrap();
    assert!(
        text.contains(
            "lxc.mount.entry = tmpfs scratch tmpfs nosuid,size=1m,create=dir,context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        ),
        "{text}"
    );
    // Only tmpfs gets the context, as runc does.
    assert_eq!(text.matches("context=").count(), 1, "{text}");
}

#[test]
fn selinux_labels_are_checked_for_shape() {
    let env = env();
    for (field, bad) in [
        ("process.selinuxLabel", "a b:c:d"),
        ("process.selinuxLabel", "u:r::s0"),
        ("linux.mountLabel", "u:r:t:s0\"x"),
    ] {
        let spec = with(|v| match field {
            "process.selinuxLabel" => v["process"]["selinuxLabel"] = json!(bad),
            _ => v["linux"]["mountLabel"] = json!(bad),
        });
        let e = plan_with(&env, &spec, LxcAppArmor::Unconfined, selinux_host(&env))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("{field}:")) && e.contains("SELinux context"),
            "{e}"
        );
    }
}
