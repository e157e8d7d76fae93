//! Links `lxcri-init` statically, so the same file runs in any image
//! (busybox, alpine/musl, distroless) and on the host for `exec`.
//!
//! The clean way, `-C target-feature=+crt-static`, cannot be scoped to one
//! binary: cargo has no per-package rustflags, and a workspace-wide flag also
//! reaches proc-macro crates (serde_derive), which then fail to build on the
//! host gnu target. So for `*-linux-gnu` this script makes the ordinary
//! (dynamic-mode) link produce a static-pie instead:
//!
//! * `-static-pie` for the binaries only (`rustc-link-arg-bins`), which makes
//!   the C driver use `rcrt1.o` and no dynamic loader;
//! * rustc still asks for `-lc -lm -lgcc_s ...` in `-Bdynamic` mode, so a
//!   directory searched first holds `libX.so` files that are linker scripts
//!   naming the static archives (`libc.a`, `libgcc_eh.a`, ...). GNU ld and
//!   lld both accept a linker script wherever a library is expected.
//!
//! musl targets are static already, and an explicit `+crt-static` needs no help.

use std::{env, fs, path::PathBuf, process::Command};

/// Libraries std and the libc crate link dynamically on `*-linux-gnu`.
const GLIBC_LIBS: &[&str] = &["c", "m", "rt", "pthread", "dl", "util"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if target_os != "linux" || target_env != "gnu" || features.split(',').any(|f| f == "crt-static")
    {
        return;
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let gcc = archive(&cc, "libgcc.a");
    let gcc_eh = archive(&cc, "libgcc_eh.a");
    for lib in GLIBC_LIBS {
        let a = archive(&cc, &format!("lib{lib}.a"));
        // libgcc is listed with every library: static glibc needs a few of
        // its helpers, and GROUP lets the linker resolve them in any order.
        let script = format!("GROUP ( {a} {gcc} {gcc_eh} )\n");
        fs::write(out.join(format!("lib{lib}.so")), script).expect("write linker script");
    }
    // libgcc_s (the shared unwinder) has no static archive; libgcc_eh is its
    // static counterpart.
    fs::write(
        out.join("libgcc_s.so"),
        format!("GROUP ( {gcc_eh} {gcc} )\n"),
    )
    .expect("write linker script");
    println!("cargo:rustc-link-arg-bins=-static-pie");
    println!("cargo:rustc-link-arg-bins=-L{}", out.display());
}

/// The absolute path of a static archive, as the C driver would find it.
fn archive(cc: &str, name: &str) -> String {
    let output = Command::new(cc)
        .arg(format!("-print-file-name={name}"))
        .output()
        .unwrap_or_else(|e| panic!("run `{cc} -print-file-name={name}`: {e}"));
    let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
    // The driver echoes the bare name back when it cannot find the file.
    if !path.starts_with('/') {
        panic!("static archive {name} not found (install libc6-dev / libgcc-dev); lxcri-init must link statically");
    }
    path
}
