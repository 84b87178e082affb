//! W3C `traceparent`: propagated when the client sends a well-formed one, generated otherwise.
//!
//! Every response carries one (Fauna always returns it and the Python driver exposes it).
//!
//! **Invariants:** the returned value is always a well-formed version-00 traceparent (so it
//! is always a valid header value); a malformed incoming value is replaced, never echoed.
//! Generated ids come from a non-cryptographic source: they identify, they do not protect.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderMap;

/// The traceparent of this request: the client's when well-formed, else a fresh one.
pub fn traceparent(headers: &HeaderMap) -> String {
    headers
        .get("traceparent")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| is_valid(value))
        .map(str::to_owned)
        .unwrap_or_else(generate)
}

/// `00-<32 hex trace id, not all zero>-<16 hex parent id, not all zero>-<2 hex flags>`,
/// lowercase as the spec requires.
fn is_valid(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let [version, trace_id, parent_id, flags] = parts.as_slice() else {
        return false;
    };
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    *version == "00"
        && hex(trace_id, 32)
        && nonzero(trace_id)
        && hex(parent_id, 16)
        && nonzero(parent_id)
        && hex(flags, 2)
}

fn generate() -> String {
    let high = random_u64();
    let low = random_u64();
    let span = random_u64() | 1; // never all zero
    format!("00-{high:016x}{low:016x}-{span:016x}-00")
}

/// 64 random-looking bits: `RandomState` is seeded from the OS once per thread, and the
/// counter makes consecutive calls differ.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_propagated() {
        let mut headers = HeaderMap::new();
        headers.insert("Traceparent", HeaderValue::from_static(SAMPLE));
        assert_eq!(traceparent(&headers), SAMPLE);
    }

    #[test]
    fn a_missing_or_malformed_traceparent_is_replaced_by_a_valid_one() {
        let mut headers = HeaderMap::new();
        let fresh = traceparent(&headers);
        assert!(is_valid(&fresh), "{fresh}");
        headers.insert("traceparent", HeaderValue::from_static("00-zz-00-01"));
        let replaced = traceparent(&headers);
        assert!(is_valid(&replaced), "{replaced}");
        assert_ne!(fresh, replaced);
    }

    #[test]
    fn all_zero_ids_and_uppercase_are_invalid() {
        assert!(!is_valid(
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"
        ));
        assert!(!is_valid(
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
        ));
        assert!(!is_valid(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
    }
}
