use std::collections::BTreeSet;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use super::*;

/// A cluster: the set of taken VMIDs. `try_create` is atomic (PVE's create
/// is the arbiter), the hint is racy like `/cluster/nextid`.
#[derive(Default)]
struct FakeCluster {
    taken: Mutex<BTreeSet<u32>>,
    /// Fixed hint (like `nextid` without `vmid`: everyone gets the same).
    fixed_hint: Option<u32>,
    fail_create: bool,
    creates: Mutex<u32>,
}

impl VmidApi for FakeCluster {
    fn next_id_hint(&self, from: u32) -> std::result::Result<Option<u32>, ApiError> {
        if let Some(h) = self.fixed_hint {
            return Ok(Some(h));
        }
        let taken = self.taken.lock().unwrap().clone();
        // Widen the window between hint and create.
        thread::sleep(Duration::from_micros(200));
        Ok((from..).find(|id| !taken.contains(id)))
    }

    fn try_create(&self, vmid: u32) -> std::result::Result<CreateOutcome, ApiError> {
        *self.creates.lock().unwrap() += 1;
        if self.fail_create {
            return Err("storage 'local-zfs' does not exist".into());
        }
        if self.taken.lock().unwrap().insert(vmid) {
            Ok(CreateOutcome::Created)
        } else {
            Ok(CreateOutcome::Exists)
        }
    }
}

fn run_concurrently(cluster: Arc<FakeCluster>, range: VmidRange, n: usize) -> Vec<u32> {
    let alloc = Arc::new(VmidAllocator::new(range));
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (c, a, b) = (cluster.clone(), alloc.clone(), barrier.clone());
            thread::spawn(move || {
                b.wait();
                a.allocate(c.as_ref()).unwrap()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn twenty_concurrent_allocators_get_distinct_vmids() {
    let range = VmidRange::parse("10000-19999").unwrap();
    let cluster = Arc::new(FakeCluster::default());
    let ids = run_concurrently(cluster.clone(), range, 20);
    let distinct: BTreeSet<_> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), 20, "{ids:?}");
    assert!(ids.iter().all(|id| range.contains(*id)));
    assert_eq!(*cluster.taken.lock().unwrap(), distinct);
}

#[test]
fn everyone_getting_the_same_hint_still_ends_distinct() {
    // The worst case: a tiny range exactly as big as the crowd, and a
    // hint that sends everyone to the same id.
    let range = VmidRange::parse("100-119").unwrap();
    let cluster = Arc::new(FakeCluster {
        fixed_hint: Some(100),
        ..Default::default()
    });
    let ids = run_concurrently(cluster, range, 20);
    let distinct: BTreeSet<_> = ids.into_iter().collect();
    assert_eq!(distinct, (100..=119).collect());
}

#[test]
fn hints_outside_the_range_are_ignored() {
    let range = VmidRange::new(5000, 5009).unwrap();
    let cluster = FakeCluster {
        fixed_hint: Some(100),
        ..Default::default()
    };
    let id = VmidAllocator::with_seed(range, 7)
        .allocate(&cluster)
        .unwrap();
    assert!(range.contains(id));
}

#[test]
fn a_full_range_is_exhausted_and_named() {
    let range = VmidRange::parse("100-104").unwrap();
    let cluster = FakeCluster::default();
    cluster.taken.lock().unwrap().extend(100..=104);
    let err = VmidAllocator::with_seed(range, 1)
        .allocate(&cluster)
        .unwrap_err();
    assert!(matches!(err, VmidError::Exhausted { .. }));
    assert!(err.to_string().contains("100-104"), "{err}");
    assert_eq!(*cluster.creates.lock().unwrap(), 5, "each id tried once");
}

#[test]
fn attempts_are_bounded() {
    let range = VmidRange::parse("100-999").unwrap();
    let cluster = FakeCluster::default();
    cluster.taken.lock().unwrap().extend(100..=999);
    let err = VmidAllocator::with_seed(range, 1)
        .allocate(&cluster)
        .unwrap_err();
    let max = VmidAllocator::MAX_ATTEMPTS;
    assert!(
        matches!(err, VmidError::TooManyAttempts { attempts, .. } if attempts == max),
        "{err}"
    );
    assert!(err.to_string().contains("100-999"), "{err}");
    assert_eq!(*cluster.creates.lock().unwrap(), max);
}

#[test]
fn other_create_errors_end_the_allocation() {
    let range = VmidRange::parse("100-199").unwrap();
    let cluster = FakeCluster {
        fail_create: true,
        ..Default::default()
    };
    let err = VmidAllocator::with_seed(range, 3)
        .allocate(&cluster)
        .unwrap_err();
    assert!(matches!(err, VmidError::Create { .. }), "{err}");
    assert_eq!(*cluster.creates.lock().unwrap(), 1);
}

#[test]
fn the_start_point_is_spread_over_the_range() {
    let range = VmidRange::parse("10000-19999").unwrap();
    let alloc = VmidAllocator::with_seed(range, 42);
    let starts: BTreeSet<_> = (0..50)
        .map(|_| alloc.random_untried(&HashSet::new()).unwrap())
        .collect();
    assert!(starts.len() > 45, "{starts:?}");
}

#[test]
fn range_parsing() {
    let r = VmidRange::parse("10000-19999").unwrap();
    assert_eq!((r.start(), r.end(), r.len()), (10000, 19999, 10000));
    assert_eq!(r.to_string(), "10000-19999");
    assert_eq!(VmidRange::parse(" 100 - 200 ").unwrap().len(), 101);
    assert_eq!(VmidRange::parse("555").unwrap().len(), 1);
    for bad in [
        "",
        "abc",
        "99-200",
        "200-100",
        "100-1000000000",
        "-5",
        "1-2-3",
        "+100-200",
    ] {
        let err = VmidRange::parse(bad).unwrap_err().to_string();
        assert!(
            err.contains("vmid_range") && err.contains(bad),
            "{bad}: {err}"
        );
    }
}

#[test]
fn taken_messages() {
    assert!(is_vmid_taken_message(
        "CT 123 already exists on node 'pve1'",
        123
    ));
    assert!(is_vmid_taken_message("VM 123 already exists", 123));
    assert!(is_vmid_taken_message(
        "unable to create CT 123 - config file /etc/pve/nodes/pve1/lxc/123.conf: File exists",
        123
    ));
    assert!(!is_vmid_taken_message(
        "CT 1234 already exists on node 'pve1'",
        123
    ));
    assert!(!is_vmid_taken_message("CT 123 already running", 123));
    assert!(!is_vmid_taken_message("storage 'x' already exists", 123));
}
