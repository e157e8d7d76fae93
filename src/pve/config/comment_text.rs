//! The text of a CT's description as `#` lines of `VMID.conf`: PVE's
//! `encode_text` and `decode_text`, so a description reads back exactly as
//! PVE would read it.

/// PVE's `encode_text` (pve-common src/PVE/ParseUtils.pm): percent-encode
/// every byte outside printable ASCII, and `:` and `%`.
pub(super) fn encode_comment(line: &str) -> String {
    let mut out = String::from("#");
    for b in line.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b':' && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// PVE's `decode_text`: URI::Escape's `uri_unescape` decodes `%` and two
/// hex digits, and leaves anything else as it is.
pub(super) fn decode_comment(text: &str) -> String {
    crate::escaped_text::decode(text, b'%', 2, 16)
}
