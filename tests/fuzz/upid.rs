//! UPIDs come from the PVE API and go back into request paths: any text
//! parses or is refused, a parsed one keeps its exact text, and a UPID
//! formatted the way PVE formats one parses to the same parts.

use proptest::prelude::*;

use lxcri::pve::client::Upid;

use crate::{fuzz, hostile, mostly_plain, Case};

fn upid_text() -> impl Strategy<Value = String> {
    let field = |plain: &'static str| mostly_plain(plain, 10);
    prop_oneof![
        3 => (
            field("[a-z][a-z0-9-]{0,8}"),
            field("[0-9A-F]{8}"),
            field("[0-9A-F]{8,9}"),
            field("[0-9A-F]{8}"),
            field("vz(create|start|destroy)"),
            field("[0-9]{0,4}"),
            field("[a-z]{1,5}@(pam|pve)(![a-z]{1,5})?"),
            any::<bool>(),
        )
            .prop_map(|(n, p, ps, st, t, id, u, colon)| {
                format!("UPID:{n}:{p}:{ps}:{st}:{t}:{id}:{u}{}", if colon { ":" } else { "" })
            }),
        1 => hostile(60),
        1 => any::<String>(),
    ]
}

#[test]
fn upids_parse_to_their_parts_and_keep_their_text() {
    fuzz("tests/fuzz/regressions/upid.txt", upid_text(), 10, |text| {
        let Ok(upid) = Upid::parse(&text) else {
            return Ok(Case::Refused);
        };
        prop_assert_eq!(upid.as_str(), text.as_str());
        for part in [&upid.node, &upid.task_type, &upid.id, &upid.user] {
            prop_assert!(!part.contains(':'), "{part:?} of {text:?}");
        }
        prop_assert!(!upid.node.is_empty() && !upid.node.contains(char::is_whitespace));
        let formatted = Upid::new(
            &upid.node,
            upid.pid,
            upid.pstart,
            upid.starttime,
            &upid.task_type,
            &upid.id,
            &upid.user,
        );
        let again =
            Upid::parse(formatted.as_str()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(
            (
                again.node,
                again.pid,
                again.pstart,
                again.starttime,
                again.task_type,
                again.id,
                again.user
            ),
            (
                upid.node,
                upid.pid,
                upid.pstart,
                upid.starttime,
                upid.task_type,
                upid.id,
                upid.user
            )
        );
        Ok(Case::Checked)
    });
}
