//! The hash chain: each record's link is `H(previous link ‖ record bytes)`, where `H` is
//! SHA-256, or HMAC-SHA256 under the operator's key when one is configured.
//!
//! Without a key the chain detects edits, removals, insertions and reordering by anyone
//! who does not also recompute every later link; with a key, nobody without the key can
//! recompute them.
//!
//! **Invariants:** the key is never written, logged or formatted (`Debug` prints nothing of
//! it); links are 32 bytes, written as 64 lowercase hex digits.

use ring::{digest, hmac};

/// A link of the chain.
pub type Link = [u8; 32];

/// The link before the first record of the first segment.
pub const GENESIS: Link = [0; 32];

/// How links are computed.
#[derive(Clone)]
pub enum Chain {
    Sha256,
    Hmac(hmac::Key),
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Chain {
    /// The keyed chain from 32 bytes of key material.
    pub fn keyed(key: &[u8; 32]) -> Chain {
        Chain::Hmac(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    /// The name written into each segment's start record.
    pub fn name(&self) -> &'static str {
        match self {
            Chain::Sha256 => "sha256",
            Chain::Hmac(_) => "hmac-sha256",
        }
    }

    pub fn link(&self, previous: &Link, record: &[u8]) -> Link {
        let mut out = [0u8; 32];
        match self {
            Chain::Sha256 => {
                let mut ctx = digest::Context::new(&digest::SHA256);
                ctx.update(previous);
                ctx.update(record);
                out.copy_from_slice(ctx.finish().as_ref());
            }
            Chain::Hmac(key) => {
                let mut ctx = hmac::Context::with_key(key);
                ctx.update(previous);
                ctx.update(record);
                out.copy_from_slice(ctx.sign().as_ref());
            }
        }
        out
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A link as 64 hex digits, without allocating.
pub fn hex_link(link: &Link) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (pair, &b) in out.chunks_exact_mut(2).zip(link) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 15)];
    }
    out
}

pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

/// Parses 64 lowercase hex digits.
pub fn parse_link(text: &str) -> Option<Link> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let (hi, lo) = (digit(pair[0])?, digit(pair[1])?);
        *out.get_mut(i)? = (hi << 4) | lo;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_round_trip_through_hex() {
        let link = Chain::Sha256.link(&GENESIS, b"record");
        assert_eq!(parse_link(&hex(&link)), Some(link));
        assert_eq!(hex_link(&link).as_slice(), hex(&link).as_bytes());
        assert_eq!(parse_link("ABC"), None);
        assert_eq!(parse_link(&"G".repeat(64)), None);
    }

    #[test]
    fn a_keyed_chain_differs_from_the_plain_one_and_by_key() {
        let plain = Chain::Sha256.link(&GENESIS, b"r");
        let one = Chain::keyed(&[1; 32]).link(&GENESIS, b"r");
        let two = Chain::keyed(&[2; 32]).link(&GENESIS, b"r");
        assert_ne!(plain, one);
        assert_ne!(one, two);
        assert_eq!(format!("{:?}", Chain::keyed(&[1; 32])), "hmac-sha256");
    }
}
