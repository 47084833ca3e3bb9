//! Random ids and tokens.

/// The operating system's random number generator failed: no id or token is made (a guessable
/// one would be worse than none).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the operating system's random number generator is unavailable: {0}")]
pub struct RandomError(String);

/// `bytes` random bytes from the operating system, hex-encoded (`2 * bytes` lowercase
/// characters). Used for job ids and tokens, which must not be guessable: when the operating
/// system has no randomness to give, this fails instead of falling back to anything weaker.
///
/// ```
/// let id = sse_examples_support::random_hex(8)?;
/// assert!(sse_examples_support::is_hex_id(&id, 8));
/// # Ok::<(), sse_examples_support::RandomError>(())
/// ```
pub fn random_hex(bytes: usize) -> Result<String, RandomError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| RandomError(e.to_string()))?;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes * 2);
    for b in buf {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    Ok(s)
}

/// Whether `s` has the shape of an id made by [`random_hex`] with `bytes` bytes.
pub fn is_hex_id(s: &str, bytes: usize) -> bool {
    s.len() == bytes * 2
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_have_the_requested_length_and_differ() {
        let a = random_hex(16).expect("OS randomness");
        let b = random_hex(16).expect("OS randomness");
        assert_eq!(a.len(), 32);
        assert!(is_hex_id(&a, 16), "{a}");
        assert_ne!(a, b);
        assert_eq!(random_hex(0).expect("OS randomness"), "");
    }

    #[test]
    fn random_ids_use_every_hex_digit_over_many_draws() {
        let all: String = (0..64)
            .map(|_| random_hex(8).expect("OS randomness"))
            .collect();
        for digit in "0123456789abcdef".chars() {
            assert!(all.contains(digit), "{digit} never drawn in {all}");
        }
    }

    #[test]
    fn id_shape_is_checked() {
        assert!(is_hex_id("00ff", 2));
        assert!(!is_hex_id("00FF", 2), "uppercase is not ours");
        assert!(!is_hex_id("00f", 2));
        assert!(!is_hex_id("zz", 1));
        assert!(!is_hex_id("../x", 2));
    }
}
