//! The hash chain: each record's link is `H(previous link ‖ record bytes)`.
//!
//! `H` is named in each segment's start record (`chain`), so a log can mix kinds and every
//! segment verifies with the function it was written with:
//! - `blake3` (what the writer uses now): BLAKE3's 256-bit hash, or, with the operator's key,
//!   `blake3-keyed`: BLAKE3's keyed hash under a key derived from it;
//! - `sha256` and `hmac-sha256`: what earlier versions wrote (still verified and read).
//!
//! BLAKE3 replaced SHA-256 for cost only: a record is hashed once as it is written, and on a
//! CPU without SHA extensions SHA-256 of a ~450-byte record took about half of the writer
//! thread's CPU (`docs/BENCHMARKS.md`, "Audit log on vs off"); BLAKE3 does the same work in
//! about a quarter of the time, with the same 256-bit collision and preimage resistance.
//!
//! Without a key the chain detects edits, removals, insertions and reordering by anyone
//! who does not also recompute every later link; with a key, nobody without the key can
//! recompute them.
//!
//! **Invariants:** the key is never written, logged or formatted (`Debug` prints nothing of
//! it); links are 32 bytes, written as 64 lowercase hex digits; a chain kind, once written,
//! keeps its meaning forever (old segments must keep verifying).

use ring::{digest, hmac};

/// A link of the chain.
pub type Link = [u8; 32];

/// The link before the first record of the first segment.
pub const GENESIS: Link = [0; 32];

/// The context string that turns the operator's 32-byte chain key into the `blake3-keyed`
/// key: the same file keys both kinds of chain, and a derived key keeps them independent.
const BLAKE3_KEY_CONTEXT: &str = "testudo audit log 2026-11-28 blake3-keyed chain key";

/// How links are computed.
#[derive(Clone)]
pub enum Chain {
    Sha256,
    Hmac(hmac::Key),
    Blake3,
    Blake3Keyed([u8; 32]),
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Chain {
    /// The chain the writer uses: BLAKE3, keyed when a key is configured.
    pub fn current(key: Option<&[u8; 32]>) -> Chain {
        match key {
            Some(key) => Chain::Blake3Keyed(blake3::derive_key(BLAKE3_KEY_CONTEXT, key)),
            None => Chain::Blake3,
        }
    }

    /// The chain a segment names in its start record; `Err(true)` when that kind needs a key
    /// and none was given, `Err(false)` for a name this version does not know.
    pub fn named(name: &str, key: Option<&[u8; 32]>) -> Result<Chain, bool> {
        match (name, key) {
            ("blake3", _) => Ok(Chain::Blake3),
            ("sha256", _) => Ok(Chain::Sha256),
            ("blake3-keyed", Some(key)) => Ok(Chain::current(Some(key))),
            ("hmac-sha256", Some(key)) => Ok(Chain::Hmac(hmac::Key::new(hmac::HMAC_SHA256, key))),
            ("blake3-keyed" | "hmac-sha256", None) => Err(true),
            _ => Err(false),
        }
    }

    /// The name written into each segment's start record.
    pub fn name(&self) -> &'static str {
        match self {
            Chain::Sha256 => "sha256",
            Chain::Hmac(_) => "hmac-sha256",
            Chain::Blake3 => "blake3",
            Chain::Blake3Keyed(_) => "blake3-keyed",
        }
    }

    /// Whether links need the operator's key.
    pub fn keyed(&self) -> bool {
        matches!(self, Chain::Hmac(_) | Chain::Blake3Keyed(_))
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
            Chain::Blake3 => {
                let mut hasher = blake3::Hasher::new();
                hasher.update(previous);
                hasher.update(record);
                out = *hasher.finalize().as_bytes();
            }
            Chain::Blake3Keyed(key) => {
                let mut hasher = blake3::Hasher::new_keyed(key);
                hasher.update(previous);
                hasher.update(record);
                out = *hasher.finalize().as_bytes();
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
        let link = Chain::Blake3.link(&GENESIS, b"record");
        assert_eq!(parse_link(&hex(&link)), Some(link));
        assert_eq!(hex_link(&link).as_slice(), hex(&link).as_bytes());
        assert_eq!(parse_link("ABC"), None);
        assert_eq!(parse_link(&"G".repeat(64)), None);
    }

    fn hmac(key: &[u8; 32]) -> Chain {
        Chain::named("hmac-sha256", Some(key)).unwrap()
    }

    #[test]
    fn a_keyed_chain_differs_from_the_plain_one_and_by_key() {
        for (plain, keyed) in [
            (Chain::Sha256, hmac as fn(&[u8; 32]) -> Chain),
            (Chain::Blake3, |key| Chain::current(Some(key))),
        ] {
            let plain = plain.link(&GENESIS, b"r");
            let one = keyed(&[1; 32]).link(&GENESIS, b"r");
            let two = keyed(&[2; 32]).link(&GENESIS, b"r");
            assert_ne!(plain, one);
            assert_ne!(one, two);
        }
        assert_eq!(format!("{:?}", hmac(&[1; 32])), "hmac-sha256");
        assert_eq!(
            format!("{:?}", Chain::current(Some(&[1; 32]))),
            "blake3-keyed"
        );
    }

    #[test]
    fn every_kind_is_found_by_its_name_and_keyed_kinds_need_the_key() {
        for chain in [
            Chain::Sha256,
            hmac(&[1; 32]),
            Chain::Blake3,
            Chain::current(Some(&[1; 32])),
        ] {
            let found = Chain::named(chain.name(), Some(&[1; 32])).unwrap();
            assert_eq!(found.link(&GENESIS, b"r"), chain.link(&GENESIS, b"r"));
            let without_key = Chain::named(chain.name(), None);
            assert_eq!(without_key.is_err(), chain.keyed());
        }
        assert!(matches!(Chain::named("md5", None), Err(false)));
    }

    #[test]
    fn links_are_the_published_functions_of_previous_link_and_record() {
        // Anyone can recompute a chain with a stock tool: the link is the plain hash of the
        // 32 bytes of the previous link followed by the record's bytes.
        let mut input = GENESIS.to_vec();
        input.extend_from_slice(b"{\"seq\":1}");
        assert_eq!(
            Chain::Blake3.link(&GENESIS, b"{\"seq\":1}"),
            *blake3::hash(&input).as_bytes()
        );
        assert_eq!(
            Chain::Sha256.link(&GENESIS, b"{\"seq\":1}").as_slice(),
            digest::digest(&digest::SHA256, &input).as_ref()
        );
    }
}
