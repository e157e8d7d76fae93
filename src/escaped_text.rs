//! Text whose odd bytes are written as an escape character and a fixed
//! number of digits: the kernel's `\ooo` in `/proc/self/mountinfo`, PVE's
//! `%XX` in a CT's description.

/// Decodes every `escape` followed by `digits` digits of `radix` whose
/// value is a byte; anything else stays as it is. Bytes that are not UTF-8
/// become U+FFFD.
pub(crate) fn decode(text: &str, escape: u8, digits: usize, radix: u32) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let value = bytes
            .get(i + 1..i + 1 + digits)
            .filter(|_| bytes[i] == escape)
            .and_then(|d| {
                d.iter().try_fold(0u32, |n, &b| {
                    Some(n * radix + char::from(b).to_digit(radix)?)
                })
            })
            .and_then(|n| u8::try_from(n).ok());
        match value {
            Some(b) => {
                out.push(b);
                i += 1 + digits;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn escapes_of_a_byte_are_decoded_and_the_rest_kept() {
        assert_eq!(decode("/a\\040b\\134040", b'\\', 3, 8), "/a b\\040");
        assert_eq!(decode("\\777\\08\\04", b'\\', 3, 8), "\\777\\08\\04");
        assert_eq!(decode("a%3Ab%zz%4", b'%', 2, 16), "a:b%zz%4");
    }
}
