//! Sealing and opening blocks with AES-256-GCM under the file's data key.
//!
//! Every seal authenticates, besides the bytes, *where* they belong: the additional data is
//! `"TSB1" ‖ file id ‖ kind ‖ logical block index ‖ header sequence ‖ header slot`. A block
//! copied to another position, to another file, or a header copy moved to the other slot,
//! fails to open.
//!
//! Nonces are 96 random bits from the operating system, fresh for every seal (see the
//! module docs of `encrypted` for why random and not a counter).
//!
//! **Invariants:** a nonce is never chosen twice on purpose and never derived from the data;
//! nothing that fails authentication is ever handed back (an opened buffer is only returned
//! on success); an all-zero sealed block is reported as never written, never as data.

use std::io;

use ring::aead::{Aad, LessSafeKey, Nonce, Tag};
use ring::rand::{SecureRandom, SystemRandom};

use super::layout::{BLOCK, HEADER_SLOT, NONCE, PREAMBLE, PREAMBLE_FIELDS, Preamble, SEALED, TAG};
use super::{IntegrityError, IntegrityFailure};
use crate::keys::DataKey;

const DOMAIN: [u8; 4] = *b"TSB1";
const AAD_LEN: usize = 4 + 16 + 1 + 8 + 8 + 1;

#[derive(Clone, Copy)]
enum Kind {
    Block = 0,
    Header = 1,
    Preamble = 2,
}

/// What a header copy holds.
pub(crate) enum HeaderCopy {
    /// All zeros: never written.
    Unwritten,
    /// Torn or damaged: fails authentication.
    Invalid,
    Valid {
        seq: u64,
        plain: Box<[u8; BLOCK]>,
    },
}

/// The data key of one file, with the file's identity.
pub(crate) struct BlockCipher {
    key: LessSafeKey,
    preamble: Preamble,
    rng: SystemRandom,
}

impl BlockCipher {
    pub(crate) fn new(key: &DataKey, preamble: Preamble) -> BlockCipher {
        BlockCipher {
            key: key.aead_key(),
            preamble,
            rng: SystemRandom::new(),
        }
    }

    /// The same key for the same file under another key id.
    #[cfg(test)]
    pub(crate) fn new_for_tests(other: &BlockCipher, key_id: u32) -> BlockCipher {
        BlockCipher {
            key: other.key.clone(),
            preamble: Preamble {
                key_id,
                file_id: other.preamble.file_id,
            },
            rng: SystemRandom::new(),
        }
    }

    pub(crate) fn preamble(&self) -> Preamble {
        self.preamble
    }

    fn aad(&self, kind: Kind, index: u64, seq: u64, slot: u8) -> [u8; AAD_LEN] {
        let mut aad = [0u8; AAD_LEN];
        let parts: [&[u8]; 6] = [
            &DOMAIN,
            &self.preamble.file_id,
            &[kind as u8],
            &index.to_le_bytes(),
            &seq.to_le_bytes(),
            &[slot],
        ];
        let mut at = 0;
        for part in parts {
            if let Some(dst) = aad.get_mut(at..at + part.len()) {
                dst.copy_from_slice(part);
            }
            at += part.len();
        }
        aad
    }

    fn nonces(&self, out: &mut [u8]) -> io::Result<()> {
        self.rng
            .fill(out)
            .map_err(|_| io::Error::other("the system random number generator failed"))
    }

    /// Seals `sealed[NONCE..NONCE + BLOCK]` (the plaintext, already in place) with a fresh
    /// nonce written to `sealed[..NONCE]` and the tag to the end.
    fn seal_in_place(&self, sealed: &mut [u8], nonce: [u8; NONCE], aad: &[u8]) -> io::Result<()> {
        let (head, rest) = sealed.split_at_mut(NONCE);
        let (body, tag_out) = rest.split_at_mut(BLOCK);
        head.copy_from_slice(&nonce);
        let tag = self
            .key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), body)
            .map_err(|_| io::Error::other("sealing a block failed"))?;
        tag_out
            .get_mut(..TAG)
            .ok_or_else(|| io::Error::other("short sealed block"))?
            .copy_from_slice(tag.as_ref());
        Ok(())
    }

    /// Opens a sealed block in place; the plaintext is then `sealed[..BLOCK]`.
    fn open_in_place<'a>(&self, sealed: &'a mut [u8], aad: &[u8]) -> Option<&'a [u8]> {
        let nonce: [u8; NONCE] = sealed.get(..NONCE)?.try_into().ok()?;
        let tag = Tag::try_from(sealed.get(NONCE + BLOCK..SEALED)?).ok()?;
        let body = sealed.get_mut(..NONCE + BLOCK)?;
        self.key
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                tag,
                body,
                NONCE..,
            )
            .ok()
            .map(|plain| &*plain)
    }

    /// Seals whole blocks `plain` (a multiple of [`BLOCK`] long) as logical blocks
    /// `first, first + 1, …` into `out` (as many [`SEALED`] blocks).
    pub(crate) fn seal_blocks(&self, first: u64, plain: &[u8], out: &mut [u8]) -> io::Result<()> {
        let count = plain.len() / BLOCK;
        let mut nonces = vec![0u8; count * NONCE];
        self.nonces(&mut nonces)?;
        let blocks = plain
            .chunks_exact(BLOCK)
            .zip(out.chunks_exact_mut(SEALED))
            .zip(nonces.chunks_exact(NONCE));
        for (i, ((plain, sealed), nonce)) in (first..).zip(blocks) {
            let nonce: [u8; NONCE] = nonce
                .try_into()
                .map_err(|_| io::Error::other("nonce length"))?;
            sealed
                .get_mut(NONCE..NONCE + BLOCK)
                .ok_or_else(|| io::Error::other("short sealed block"))?
                .copy_from_slice(plain);
            self.seal_in_place(sealed, nonce, &self.aad(Kind::Block, i, 0, 0))?;
        }
        Ok(())
    }

    /// Opens sealed logical block `index` in place (the plaintext is then
    /// `sealed[..BLOCK]`), or says why it cannot be trusted.
    pub(crate) fn open_block<'a>(
        &self,
        index: u64,
        sealed: &'a mut [u8],
    ) -> Result<&'a [u8], IntegrityError> {
        if sealed.iter().all(|&b| b == 0) {
            return Err(IntegrityError::new(index, IntegrityFailure::Unwritten));
        }
        let aad = self.aad(Kind::Block, index, 0, 0);
        // A second lookup after success keeps the borrow checker out of the error path.
        match self.open_in_place(sealed, &aad) {
            Some(plain) => Ok(plain),
            None => Err(IntegrityError::new(index, IntegrityFailure::Tampered)),
        }
    }

    /// Seals block 0 as header copy `slot` with sequence number `seq` into `out`
    /// ([`HEADER_SLOT`] bytes).
    pub(crate) fn seal_header(
        &self,
        slot: u8,
        seq: u64,
        plain: &[u8; BLOCK],
        out: &mut [u8],
    ) -> io::Result<()> {
        let mut nonce = [0u8; NONCE];
        self.nonces(&mut nonce)?;
        let (seq_out, sealed) = out.split_at_mut(8);
        seq_out.copy_from_slice(&seq.to_le_bytes());
        sealed
            .get_mut(NONCE..NONCE + BLOCK)
            .ok_or_else(|| io::Error::other("short header copy"))?
            .copy_from_slice(plain);
        self.seal_in_place(sealed, nonce, &self.aad(Kind::Header, 0, seq, slot))
    }

    /// Opens header copy `slot` (the [`HEADER_SLOT`] bytes read from disk).
    pub(crate) fn open_header(&self, slot: u8, copy: &mut [u8]) -> HeaderCopy {
        if copy.len() != HEADER_SLOT {
            return HeaderCopy::Invalid;
        }
        if copy.iter().all(|&b| b == 0) {
            return HeaderCopy::Unwritten;
        }
        let (seq, sealed) = copy.split_at_mut(8);
        let Some(seq) = seq.try_into().ok().map(u64::from_le_bytes) else {
            return HeaderCopy::Invalid;
        };
        let aad = self.aad(Kind::Header, 0, seq, slot);
        match self.open_in_place(sealed, &aad) {
            Some(opened) => {
                let mut plain = Box::new([0u8; BLOCK]);
                plain.copy_from_slice(opened);
                HeaderCopy::Valid { seq, plain }
            }
            None => HeaderCopy::Invalid,
        }
    }

    /// The sealed preamble of a new file.
    pub(crate) fn seal_preamble(&self) -> io::Result<Vec<u8>> {
        let mut out = vec![0u8; PREAMBLE];
        let fields = self.preamble.fields();
        let mut nonce = [0u8; NONCE];
        self.nonces(&mut nonce)?;
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.preamble_aad(&fields)),
                &mut [],
            )
            .map_err(|_| io::Error::other("sealing the preamble failed"))?;
        let parts: [&[u8]; 3] = [&fields, &nonce, tag.as_ref()];
        let mut at = 0;
        for part in parts {
            if let Some(dst) = out.get_mut(at..at + part.len()) {
                dst.copy_from_slice(part);
            }
            at += part.len();
        }
        Ok(out)
    }

    /// Whether `bytes` is a preamble this key sealed for this file.
    pub(crate) fn verify_preamble(&self, bytes: &[u8]) -> bool {
        let fields = self.preamble.fields();
        if bytes.get(..PREAMBLE_FIELDS) != Some(&fields[..]) {
            return false;
        }
        let nonce = bytes
            .get(PREAMBLE_FIELDS..PREAMBLE_FIELDS + NONCE)
            .and_then(|n| Nonce::try_assume_unique_for_key(n).ok());
        let tag = bytes
            .get(PREAMBLE_FIELDS + NONCE..PREAMBLE_FIELDS + NONCE + TAG)
            .and_then(|t| Tag::try_from(t).ok());
        let (Some(nonce), Some(tag)) = (nonce, tag) else {
            return false;
        };
        self.key
            .open_in_place_separate_tag(
                nonce,
                Aad::from(self.preamble_aad(&fields)),
                tag,
                &mut [],
                0..,
            )
            .is_ok()
    }

    fn preamble_aad(&self, fields: &[u8; PREAMBLE_FIELDS]) -> [u8; AAD_LEN + PREAMBLE_FIELDS] {
        let mut aad = [0u8; AAD_LEN + PREAMBLE_FIELDS];
        let (head, tail) = aad.split_at_mut(AAD_LEN);
        head.copy_from_slice(&self.aad(Kind::Preamble, 0, 0, 0));
        tail.copy_from_slice(fields);
        aad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(file: u8) -> BlockCipher {
        BlockCipher::new(
            &DataKey::generate().unwrap(),
            Preamble {
                key_id: 1,
                file_id: [file; 16],
            },
        )
    }

    fn sealed(cipher: &BlockCipher, index: u64, fill: u8) -> Vec<u8> {
        let mut out = vec![0u8; SEALED];
        cipher.seal_blocks(index, &[fill; BLOCK], &mut out).unwrap();
        out
    }

    #[test]
    fn a_block_opens_at_its_own_position_only() {
        let c = cipher(1);
        let mut block = sealed(&c, 5, 0xAA);
        assert_eq!(
            c.open_block(5, &mut block.clone()).unwrap(),
            &[0xAA; BLOCK][..]
        );
        assert!(matches!(
            c.open_block(6, &mut block),
            Err(IntegrityError {
                block: 6,
                failure: IntegrityFailure::Tampered
            })
        ));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let c = cipher(1);
        let block = sealed(&c, 3, 0x11);
        for i in (0..SEALED).step_by(97).chain([0, NONCE, SEALED - 1]) {
            let mut damaged = block.clone();
            damaged[i] ^= 0x80;
            assert!(c.open_block(3, &mut damaged).is_err(), "byte {i}");
        }
    }

    #[test]
    fn a_block_from_another_file_does_not_open() {
        let (a, b) = (cipher(1), cipher(2));
        let mut block = sealed(&a, 3, 0x11);
        assert!(b.open_block(3, &mut block).is_err());
    }

    #[test]
    fn zeros_are_unwritten_not_data() {
        let mut zeros = vec![0u8; SEALED];
        assert!(matches!(
            cipher(1).open_block(9, &mut zeros),
            Err(IntegrityError {
                failure: IntegrityFailure::Unwritten,
                ..
            })
        ));
    }

    #[test]
    fn sealing_the_same_block_twice_uses_fresh_nonces() {
        let c = cipher(1);
        assert_ne!(sealed(&c, 1, 0)[..NONCE], sealed(&c, 1, 0)[..NONCE]);
    }

    #[test]
    fn header_copies_are_bound_to_their_slot_and_sequence() {
        let c = cipher(1);
        let mut copy = vec![0u8; HEADER_SLOT];
        c.seal_header(0, 42, &[7; BLOCK], &mut copy).unwrap();
        assert!(matches!(
            c.open_header(0, &mut copy.clone()),
            HeaderCopy::Valid { seq: 42, .. }
        ));
        assert!(matches!(
            c.open_header(1, &mut copy.clone()),
            HeaderCopy::Invalid
        ));
        copy[0] = 43;
        assert!(matches!(c.open_header(0, &mut copy), HeaderCopy::Invalid));
    }

    #[test]
    fn the_preamble_verifies_with_its_key_only() {
        let c = cipher(1);
        let preamble = c.seal_preamble().unwrap();
        assert!(c.verify_preamble(&preamble));
        let other = BlockCipher::new(&DataKey::generate().unwrap(), c.preamble());
        assert!(!other.verify_preamble(&preamble));
        let mut damaged = preamble.clone();
        damaged[30] ^= 1;
        assert!(!c.verify_preamble(&damaged));
    }
}
