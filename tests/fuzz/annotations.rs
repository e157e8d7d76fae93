//! Annotations (`io.kubernetes.cri.*`, `io.lxcri.netN`) are written by
//! whoever writes the pod: every value lxcri takes comes through unchanged
//! and without control characters, every refusal names the annotation,
//! and the shim's early grouping by sandbox agrees with the full check.

use std::collections::BTreeMap;

use proptest::collection::btree_map;
use proptest::prelude::*;
use serde_json::json;

use lxcri::network::nic::{NicIndex, NicSpec};
use lxcri::spec::annotations::{self, nic_annotations};
use lxcri::spec::{bundle_sandbox_id, CriAnnotations};

use crate::{fuzz, hostile, mostly_plain, Case};

fn annotation_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    let key = prop_oneof![
        Just(annotations::CONTAINER_TYPE.to_string()),
        Just(annotations::SANDBOX_ID.to_string()),
        Just(annotations::SANDBOX_NAME.to_string()),
        Just(annotations::SANDBOX_NAMESPACE.to_string()),
        Just(annotations::CONTAINER_NAME.to_string()),
        Just(annotations::IMAGE_NAME.to_string()),
        mostly_plain("io\\.lxcri\\.net[0-9]", 16),
        mostly_plain("io\\.lxcri\\.[a-z0-9]{1,5}", 12),
        mostly_plain("example\\.com/[a-z]{1,6}", 12),
    ];
    let value = prop_oneof![
        Just("sandbox".to_string()),
        Just("container".to_string()),
        mostly_plain("[a-f0-9]{8,16}", 16),
        mostly_plain(
            "name=eth[0-9],bridge=br[0-9](,tag=[0-9]{1,4})?(,ip=10\\.0\\.0\\.[0-9]/[0-9]{1,2})?",
            24
        ),
        hostile(20),
    ];
    btree_map(key, value, 0..6)
}

#[test]
fn annotations_come_through_unchanged_or_are_refused_by_name() {
    fuzz(
        "tests/fuzz/regressions/annotations.txt",
        annotation_map(),
        5,
        |ann| {
            let dir = tempfile::tempdir().unwrap();
            let spec = json!({
                "ociVersion": "1.0.2",
                "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "cwd": "/"},
                "root": {"path": "rootfs"},
                "annotations": ann,
            });
            let text = serde_json::to_vec(&spec).unwrap();
            std::fs::write(dir.path().join("config.json"), &text).unwrap();
            let spec = lxcri::spec::parse_spec(&dir.path().join("config.json"), &text)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let names_a_key = |msg: &str| ann.keys().any(|k| msg.contains(k.as_str()));

            let mut refused = false;
            match CriAnnotations::from_spec(&spec) {
                Ok(cri) => {
                    for (key, got) in [
                        (annotations::SANDBOX_ID, &cri.sandbox_id),
                        (annotations::SANDBOX_NAME, &cri.sandbox_name),
                        (annotations::SANDBOX_NAMESPACE, &cri.sandbox_namespace),
                        (annotations::CONTAINER_NAME, &cri.container_name),
                        (annotations::IMAGE_NAME, &cri.image_name),
                    ] {
                        let want = ann.get(key).filter(|v| !v.is_empty());
                        prop_assert_eq!(got.as_ref(), want, "{}", key);
                        if let Some(v) = got {
                            prop_assert!(!v.chars().any(char::is_control), "{key}: {v:?}");
                        }
                    }
                    prop_assert_eq!(bundle_sandbox_id(dir.path()), cri.sandbox_id);
                }
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(names_a_key(&msg), "names no annotation: {}", msg);
                    refused = true;
                }
            }
            match nic_annotations(&spec) {
                Ok(nics) => {
                    for (index, key, value) in nics {
                        prop_assert_eq!(ann.get(&key), Some(&value));
                        prop_assert_eq!(key.clone(), format!("io.lxcri.net{index}"));
                        let index = NicIndex::new(index).expect("0..=9");
                        if let Err(e) = NicSpec::parse(index, &value, &key) {
                            let msg = e.to_string();
                            prop_assert!(msg.contains(&key), "names no annotation: {}", msg);
                            refused = true;
                        }
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(names_a_key(&msg), "names no annotation: {}", msg);
                    refused = true;
                }
            }
            Ok(if refused {
                Case::Refused
            } else {
                Case::Checked
            })
        },
    );
}
