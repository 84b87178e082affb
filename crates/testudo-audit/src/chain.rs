//! The hash chain: each record's link is `H(previous link ‖ record bytes)`.
//!
//! `H` is named in each segment's start record (`chain`), so a log can mix kinds and every
//! segment verifies with the function it was written with:
//! - `sha256`: SHA-256, or, with the operator's key, `hmac-sha256`: HMAC-SHA256 under it;
//! - `blake3`: BLAKE3's 256-bit hash, or, with the key, `blake3-keyed`: BLAKE3's keyed hash
//!   under a key derived from it.
//!
//! The writer picks whichever is cheaper on the CPU it runs on ([`Chain::current`]): a record
//! is hashed once, as it is written, and that hash is the larger part of the writer thread's
//! CPU (`docs/BENCHMARKS.md`, "Audit log on vs off"). A ~460-byte link costs, per record,
//! SHA-256 ~310 ns and BLAKE3 ~670 ns on a CPU with SHA extensions (ring then uses them;
//! BLAKE3's SIMD only helps inputs of several KiB), and on one without them BLAKE3 about a
//! quarter of SHA-256's time. Both give 256-bit collision and preimage resistance, and any
//! machine verifies either: the choice only moves cost.
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

/// Which hash the writer chains new segments with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChainChoice {
    /// The cheaper one on this CPU (the default): SHA-256 with SHA extensions, else BLAKE3.
    #[default]
    Auto,
    /// SHA-256 (HMAC-SHA256 with a key), e.g. where policy names the algorithm.
    Sha256,
    /// BLAKE3 (its keyed hash with a key).
    Blake3,
}

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
    /// The chain the writer uses: keyed when a key is configured; for `Auto`, SHA-256 when
    /// this CPU has SHA extensions and BLAKE3 otherwise.
    pub fn current(choice: ChainChoice, key: Option<&[u8; 32]>) -> Chain {
        let sha = match choice {
            ChainChoice::Auto => cpu_has_sha_extensions(),
            ChainChoice::Sha256 => true,
            ChainChoice::Blake3 => false,
        };
        Chain::cheapest(key, sha)
    }

    /// The cheaper chain for a CPU with or without SHA extensions.
    pub fn cheapest(key: Option<&[u8; 32]>, sha_extensions: bool) -> Chain {
        match (key, sha_extensions) {
            (Some(key), true) => Chain::Hmac(hmac::Key::new(hmac::HMAC_SHA256, key)),
            (Some(key), false) => Chain::blake3_keyed(key),
            (None, true) => Chain::Sha256,
            (None, false) => Chain::Blake3,
        }
    }

    fn blake3_keyed(key: &[u8; 32]) -> Chain {
        Chain::Blake3Keyed(blake3::derive_key(BLAKE3_KEY_CONTEXT, key))
    }

    /// The chain a segment names in its start record; `Err(true)` when that kind needs a key
    /// and none was given, `Err(false)` for a name this version does not know.
    pub fn named(name: &str, key: Option<&[u8; 32]>) -> Result<Chain, bool> {
        match (name, key) {
            ("blake3", _) => Ok(Chain::Blake3),
            ("sha256", _) => Ok(Chain::Sha256),
            ("blake3-keyed", Some(key)) => Ok(Chain::blake3_keyed(key)),
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

/// Whether ring's SHA-256 runs on SHA instructions here (it detects them the same way).
fn cpu_has_sha_extensions() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("ssse3")
            && std::arch::is_x86_feature_detected!("sse4.1")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("sha2")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
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
            (Chain::Blake3, Chain::blake3_keyed),
        ] {
            let plain = plain.link(&GENESIS, b"r");
            let one = keyed(&[1; 32]).link(&GENESIS, b"r");
            let two = keyed(&[2; 32]).link(&GENESIS, b"r");
            assert_ne!(plain, one);
            assert_ne!(one, two);
        }
        assert_eq!(format!("{:?}", hmac(&[1; 32])), "hmac-sha256");
        assert_eq!(
            format!("{:?}", Chain::blake3_keyed(&[1; 32])),
            "blake3-keyed"
        );
    }

    #[test]
    fn every_kind_is_found_by_its_name_and_keyed_kinds_need_the_key() {
        for chain in [
            Chain::Sha256,
            hmac(&[1; 32]),
            Chain::Blake3,
            Chain::blake3_keyed(&[1; 32]),
        ] {
            let found = Chain::named(chain.name(), Some(&[1; 32])).unwrap();
            assert_eq!(found.link(&GENESIS, b"r"), chain.link(&GENESIS, b"r"));
            let without_key = Chain::named(chain.name(), None);
            assert_eq!(without_key.is_err(), chain.keyed());
        }
        assert!(matches!(Chain::named("md5", None), Err(false)));
    }

    #[test]
    fn the_writer_picks_sha256_with_sha_extensions_and_blake3_without_keyed_as_configured() {
        let key = [1; 32];
        let names = [
            (None, true, "sha256"),
            (None, false, "blake3"),
            (Some(&key), true, "hmac-sha256"),
            (Some(&key), false, "blake3-keyed"),
        ];
        for (key, sha, name) in names {
            let chain = Chain::cheapest(key, sha);
            assert_eq!(chain.name(), name);
            assert_eq!(chain.keyed(), key.is_some());
        }
        // The keyed kinds are the ones `named` finds under the same key, so a log this
        // writer wrote verifies on any CPU.
        for sha in [true, false] {
            let written = Chain::cheapest(Some(&key), sha);
            let read = Chain::named(written.name(), Some(&key)).unwrap();
            assert_eq!(read.link(&GENESIS, b"r"), written.link(&GENESIS, b"r"));
        }
        let here = Chain::current(ChainChoice::Auto, None).name();
        assert_eq!(here == "sha256", cpu_has_sha_extensions(), "{here}");
        assert_eq!(Chain::current(ChainChoice::Sha256, None).name(), "sha256");
        assert_eq!(
            Chain::current(ChainChoice::Blake3, Some(&key)).name(),
            "blake3-keyed"
        );
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
