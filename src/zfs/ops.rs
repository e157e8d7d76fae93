//! The ZFS operations lxcri needs, over a [`ZfsCommand`].

use super::{DatasetName, Result, ZfsCommand, ZfsError};

/// One `-o key=value`: a native property (`refquota`, `acltype`...) or a
/// user property (`module:name`, such as lxcri's own marks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    key: String,
    value: String,
}

impl Property {
    pub fn new(key: &str, value: &str) -> Result<Self> {
        let bad = |reason| ZfsError::InvalidProperty {
            key: key.to_string(),
            value: value.to_string(),
            reason,
        };
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.:-".contains(&b))
            || !key.starts_with(|c: char| c.is_ascii_lowercase())
        {
            return Err(bad("a key is [a-z0-9_.:-], starting with a letter"));
        }
        if value.is_empty() || value.chars().any(char::is_control) || value.len() > 1024 {
            return Err(bad(
                "a value is 1 to 1024 characters, none a control character",
            ));
        }
        Ok(Self {
            key: key.to_string(),
            value: value.to_string(),
        })
    }

    fn arg(&self) -> String {
        format!("{}={}", self.key, self.value)
    }
}

/// How often, and how far apart, a busy dataset is tried again.
const BUSY_RETRIES: u32 = 20;
const BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// ZFS operations; every name and property is validated before it is an
/// argument.
#[derive(Debug)]
pub struct Zfs<C: ZfsCommand> {
    cmd: C,
}

fn with_props(verb: &str, props: &[Property]) -> Vec<String> {
    let mut args = vec![verb.to_string()];
    for p in props {
        args.push("-o".into());
        args.push(p.arg());
    }
    args
}

impl<C: ZfsCommand> Zfs<C> {
    pub fn new(cmd: C) -> Self {
        Self { cmd }
    }

    /// Whether `name` (dataset or snapshot) exists.
    pub fn exists(&self, name: &DatasetName) -> Result<bool> {
        let args = ["list", "-H", "-o", "name", "-t", "all", name.as_str()];
        match self.run(&args) {
            Ok(_) => Ok(true),
            Err(ZfsError::MissingDataset { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn create(&self, name: &DatasetName, props: &[Property]) -> Result<()> {
        let mut args = with_props("create", props);
        args.push(name.to_string());
        self.cmd.run(&args).map(drop)
    }

    /// Snapshots `snapshot` (`dataset@name`).
    pub fn snapshot(&self, snapshot: &DatasetName) -> Result<()> {
        self.run(&["snapshot", snapshot.as_str()]).map(drop)
    }

    /// `zfs clone`: `target` starts as `snapshot`'s content.
    pub fn clone_snapshot(
        &self,
        snapshot: &DatasetName,
        target: &DatasetName,
        props: &[Property],
    ) -> Result<()> {
        let mut args = with_props("clone", props);
        args.push(snapshot.to_string());
        args.push(target.to_string());
        self.cmd.run(&args).map(drop)
    }

    pub fn rename(&self, from: &DatasetName, to: &DatasetName) -> Result<()> {
        self.run(&["rename", from.as_str(), to.as_str()]).map(drop)
    }

    /// Destroys `name` (with `recursive`, its snapshots and children too);
    /// a missing one is already destroyed. A mount that is still being let
    /// go of (busy) is retried for a few seconds, as PVE's storage does.
    pub fn destroy(&self, name: &DatasetName, recursive: bool) -> Result<()> {
        let mut args = vec!["destroy"];
        if recursive {
            args.push("-r");
        }
        args.push(name.as_str());
        let mut attempts = 0;
        loop {
            match self.run(&args) {
                Ok(_) | Err(ZfsError::MissingDataset { .. }) => return Ok(()),
                Err(ZfsError::Busy { .. }) if attempts < BUSY_RETRIES => {
                    attempts += 1;
                    std::thread::sleep(BUSY_PAUSE);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Mounts `name` at its `mountpoint` unless it is mounted already.
    pub fn mount(&self, name: &DatasetName) -> Result<()> {
        if self.get(name, "mounted")?.as_deref() == Some("yes") {
            return Ok(());
        }
        self.run(&["mount", name.as_str()]).map(drop)
    }

    /// Unmounts `name`; not mounted is fine.
    pub fn unmount(&self, name: &DatasetName) -> Result<()> {
        if self.get(name, "mounted")?.as_deref() != Some("yes") {
            return Ok(());
        }
        let mut attempts = 0;
        loop {
            match self.run(&["umount", name.as_str()]) {
                Ok(_) => return Ok(()),
                Err(ZfsError::Busy { .. }) if attempts < BUSY_RETRIES => {
                    attempts += 1;
                    std::thread::sleep(BUSY_PAUSE);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A property's value; `None` when unset (`-`).
    pub fn get(&self, name: &DatasetName, key: &str) -> Result<Option<String>> {
        Property::new(key, "x")?;
        let out = self.run(&["get", "-H", "-o", "value", key, name.as_str()])?;
        let value = out.trim_end_matches('\n').to_string();
        Ok((value != "-").then_some(value))
    }

    pub fn set(&self, name: &DatasetName, prop: &Property) -> Result<()> {
        self.run(&["set", &prop.arg(), name.as_str()]).map(drop)
    }

    /// `zfs list -H -r -t filesystem,snapshot -o COLUMNS parent`: one row
    /// per dataset or snapshot below `parent` (and itself), tab-separated
    /// columns as ZFS prints them (`-` for unset).
    pub fn list(&self, parent: &DatasetName, columns: &[&str]) -> Result<Vec<Vec<String>>> {
        for c in columns {
            Property::new(c, "x")?;
        }
        let cols = columns.join(",");
        let out = self.run(&[
            "list",
            "-H",
            "-r",
            "-t",
            "filesystem,snapshot",
            "-o",
            &cols,
            parent.as_str(),
        ])?;
        Ok(out
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect())
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        self.cmd.run(&args)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records every command and answers from a script.
    #[derive(Debug, Default)]
    struct Fake {
        calls: Mutex<Vec<String>>,
        answers: Mutex<Vec<Result<String>>>,
    }

    impl Fake {
        fn answering(answers: Vec<Result<String>>) -> Self {
            Self {
                calls: Mutex::default(),
                answers: Mutex::new(answers.into_iter().rev().collect()),
            }
        }
    }

    impl ZfsCommand for Fake {
        fn run(&self, args: &[String]) -> Result<String> {
            self.calls.lock().unwrap().push(args.join(" "));
            self.answers
                .lock()
                .unwrap()
                .pop()
                .unwrap_or(Ok(String::new()))
        }
    }

    fn name(s: &str) -> DatasetName {
        DatasetName::parse(s).unwrap()
    }

    fn missing(n: &str) -> ZfsError {
        ZfsError::MissingDataset { name: n.into() }
    }

    #[test]
    fn commands_are_built_from_validated_parts() {
        let zfs = Zfs::new(Fake::default());
        let img = name("tank/lxcri/img-abc");
        let props = [
            Property::new("refquota", "8G").unwrap(),
            Property::new("lxcri:image", "abc").unwrap(),
        ];
        zfs.create(&img, &props).unwrap();
        zfs.snapshot(&img.snapshot("lxcri").unwrap()).unwrap();
        zfs.clone_snapshot(
            &img.snapshot("lxcri").unwrap(),
            &name("tank/subvol-100-disk-0"),
            &props[..1],
        )
        .unwrap();
        zfs.rename(&img, &name("tank/lxcri/img-def")).unwrap();
        zfs.destroy(&img, true).unwrap();
        zfs.set(&img, &props[1]).unwrap();
        assert_eq!(
            *zfs.cmd.calls.lock().unwrap(),
            [
                "create -o refquota=8G -o lxcri:image=abc tank/lxcri/img-abc",
                "snapshot tank/lxcri/img-abc@lxcri",
                "clone -o refquota=8G tank/lxcri/img-abc@lxcri tank/subvol-100-disk-0",
                "rename tank/lxcri/img-abc tank/lxcri/img-def",
                "destroy -r tank/lxcri/img-abc",
                "set lxcri:image=abc tank/lxcri/img-abc",
            ]
        );
    }

    #[test]
    fn missing_datasets_are_answers_not_failures() {
        let zfs = Zfs::new(Fake::answering(vec![
            Err(missing("tank/x")),
            Ok("tank/x\n".into()),
            Err(missing("tank/x")),
            Err(ZfsError::DependentClones {
                name: "tank/x@s".into(),
            }),
        ]));
        let x = name("tank/x");
        assert!(!zfs.exists(&x).unwrap());
        assert!(zfs.exists(&x).unwrap());
        zfs.destroy(&x, false).unwrap();
        assert!(matches!(
            zfs.destroy(&x.snapshot("s").unwrap(), false),
            Err(ZfsError::DependentClones { .. })
        ));
    }

    #[test]
    fn get_and_list_parse_the_output() {
        let zfs = Zfs::new(Fake::answering(vec![
            Ok("8G\n".into()),
            Ok("-\n".into()),
            Ok("tank/i\t-\tabc\ntank/i@lxcri\t-\tabc\ntank/c\ttank/i@lxcri\t-\n".into()),
        ]));
        let i = name("tank/i");
        assert_eq!(zfs.get(&i, "refquota").unwrap().as_deref(), Some("8G"));
        assert_eq!(zfs.get(&i, "lxcri:image").unwrap(), None);
        let rows = zfs
            .list(&name("tank"), &["name", "origin", "lxcri:image"])
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2], ["tank/c", "tank/i@lxcri", "-"]);
        assert!(zfs.get(&i, "bad key\n").is_err());
    }

    #[test]
    fn properties_are_validated() {
        for (k, v) in [
            ("", "x"),
            ("Refquota", "1G"),
            ("refquota", ""),
            ("lxcri:image", "a\nb"),
            ("a b", "x"),
            ("-o", "x"),
        ] {
            assert!(Property::new(k, v).is_err(), "{k:?}={v:?} accepted");
        }
        assert!(Property::new("lxcri:created-at", "1795320000").is_ok());
    }
}
