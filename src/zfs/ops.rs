//! The ZFS operations lxcri needs, over a [`ZfsCommand`].

use std::collections::BTreeMap;
use std::time::Duration;

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

/// How a busy dataset is tried again: right after a mount or unmount a
/// dataset is often busy for some milliseconds, now and then for seconds.
/// Pauses start short and double up to [`BUSY_PAUSE_MAX`], for about
/// [`BUSY_BUDGET`] in all.
const BUSY_PAUSE_MIN: Duration = Duration::from_millis(10);
const BUSY_PAUSE_MAX: Duration = Duration::from_millis(250);
const BUSY_BUDGET: Duration = Duration::from_secs(5);

/// The pauses between attempts on a busy dataset.
fn busy_pauses(budget: Duration) -> impl Iterator<Item = Duration> {
    let mut next = BUSY_PAUSE_MIN;
    let mut total = Duration::ZERO;
    std::iter::from_fn(move || {
        if total >= budget {
            return None;
        }
        let pause = next;
        total += pause;
        next = (next * 2).min(BUSY_PAUSE_MAX);
        Some(pause)
    })
}

/// ZFS operations; every name and property is validated before it is an
/// argument.
#[derive(Debug)]
pub struct Zfs<C: ZfsCommand> {
    cmd: C,
    busy_budget: Duration,
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
        Self {
            cmd,
            busy_budget: BUSY_BUDGET,
        }
    }

    /// How long a busy dataset is tried again before its error is returned.
    #[cfg(test)]
    fn with_busy_budget(mut self, budget: Duration) -> Self {
        self.busy_budget = budget;
        self
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
        let mut pauses = busy_pauses(self.busy_budget);
        loop {
            match self.run(&args) {
                Ok(_) | Err(ZfsError::MissingDataset { .. }) => return Ok(()),
                Err(e @ ZfsError::Busy { .. }) => match pauses.next() {
                    Some(pause) => std::thread::sleep(pause),
                    None => return Err(e),
                },
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
        let mut pauses = busy_pauses(self.busy_budget);
        loop {
            match self.run(&["umount", name.as_str()]) {
                Ok(_) => return Ok(()),
                Err(e @ ZfsError::Busy { .. }) => match pauses.next() {
                    Some(pause) => std::thread::sleep(pause),
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }

    /// Several properties of `name` in one call, in the order of `keys`;
    /// `None` for each unset (`-`).
    pub fn get_many(&self, name: &DatasetName, keys: &[&str]) -> Result<Vec<Option<String>>> {
        for key in keys {
            Property::new(key, "x")?;
        }
        let list = keys.join(",");
        let out = self.run(&["get", "-H", "-o", "property,value", &list, name.as_str()])?;
        let found: std::collections::HashMap<&str, &str> =
            out.lines().filter_map(|l| l.split_once('\t')).collect();
        Ok(keys
            .iter()
            .map(|k| found.get(k).filter(|v| **v != "-").map(|v| v.to_string()))
            .collect())
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

    /// `zfs get -Hp -r -o name,property,value PROPS parent`: every dataset
    /// (and snapshot) below `parent` with its values, sizes exact (bytes),
    /// `-` where unset. `get -p` rather than `list -p`: zfs-fuse's `list`
    /// has no `-p`.
    pub fn get_recursive(
        &self,
        parent: &DatasetName,
        props: &[&str],
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
        for p in props {
            Property::new(p, "x")?;
        }
        let joined = props.join(",");
        let out = self.run(&[
            "get",
            "-Hp",
            "-r",
            "-o",
            "name,property,value",
            &joined,
            parent.as_str(),
        ])?;
        let mut datasets: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for line in out.lines() {
            let mut f = line.splitn(3, '\t');
            if let (Some(name), Some(prop), Some(value)) = (f.next(), f.next(), f.next()) {
                datasets
                    .entry(name.to_string())
                    .or_default()
                    .insert(prop.to_string(), value.to_string());
            }
        }
        Ok(datasets)
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
    fn busy_pauses_start_short_and_stop_after_the_budget() {
        let pauses: Vec<Duration> = busy_pauses(BUSY_BUDGET).collect();
        assert_eq!(pauses[0], BUSY_PAUSE_MIN);
        assert!(pauses.windows(2).all(|w| w[1] >= w[0]));
        assert!(pauses.iter().all(|p| *p <= BUSY_PAUSE_MAX));
        let total: Duration = pauses.iter().sum();
        assert!(total >= BUSY_BUDGET && total < BUSY_BUDGET + BUSY_PAUSE_MAX);
    }

    #[test]
    fn a_busy_destroy_is_tried_again_and_its_last_error_kept() {
        let busy = || ZfsError::Busy {
            name: "tank/x".into(),
        };
        let x = name("tank/x");
        let zfs = Zfs::new(Fake::answering(vec![
            Err(busy()),
            Err(busy()),
            Ok(String::new()),
        ]));
        zfs.destroy(&x, false).unwrap();
        assert_eq!(zfs.cmd.calls.lock().unwrap().len(), 3);

        let budget = Duration::from_millis(50);
        let always = busy_pauses(budget).count() + 1;
        let zfs = Zfs::new(Fake::answering(
            (0..always + 5).map(|_| Err(busy())).collect(),
        ))
        .with_busy_budget(budget);
        assert!(matches!(zfs.destroy(&x, false), Err(ZfsError::Busy { .. })));
        assert_eq!(zfs.cmd.calls.lock().unwrap().len(), always);
    }

    #[test]
    fn get_and_list_parse_the_output() {
        let zfs = Zfs::new(Fake::answering(vec![
            Ok("8G\n".into()),
            Ok("-\n".into()),
            Ok("lxcri:owner\tns/a\norigin\t-\nmounted\tyes\n".into()),
            Ok("tank/i\t-\tabc\ntank/i@lxcri\t-\tabc\ntank/c\ttank/i@lxcri\t-\n".into()),
        ]));
        let i = name("tank/i");
        assert_eq!(zfs.get(&i, "refquota").unwrap().as_deref(), Some("8G"));
        assert_eq!(zfs.get(&i, "lxcri:image").unwrap(), None);
        assert_eq!(
            zfs.get_many(&i, &["mounted", "origin", "lxcri:owner"])
                .unwrap(),
            [Some("yes".into()), None, Some("ns/a".into())]
        );
        assert_eq!(
            zfs.cmd.calls.lock().unwrap()[2],
            "get -H -o property,value mounted,origin,lxcri:owner tank/i"
        );
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
