//! Where things live in an encrypted data file, and the preamble's byte format.
//!
//! ```text
//! [0, 4096)                     preamble (plaintext, authenticated): magic, format version,
//!                               block size, data key id, file id, nonce, tag
//! [4096, 4096 + 4132)           header copy 0: seq (u64 LE) ‖ nonce ‖ sealed block 0 ‖ tag
//! [8228, 8228 + 4132)           header copy 1
//! DATA_START + (i - 1) · 4124   logical block i ≥ 1: nonce (12) ‖ sealed block (4096) ‖ tag (16)
//! ```
//!
//! A logical file of `n` blocks (`n · 4096` bytes) is a physical file of
//! `DATA_START + (n − 1) · 4124` bytes (just the preamble when `n = 0`).
//!
//! **Invariants:** every offset computation is checked (an absurd length is an error, not an
//! overflow); a change to any byte position here is a new [`FORMAT_VERSION`].

use std::io;

/// The logical block: redb's page size, so that its page writes are whole blocks.
pub const BLOCK: usize = 4096;
pub(crate) const BLOCK_U64: u64 = BLOCK as u64;
pub(crate) const NONCE: usize = 12;
pub(crate) const TAG: usize = 16;
/// A sealed logical block on disk.
pub(crate) const SEALED: usize = NONCE + BLOCK + TAG;
pub(crate) const SEALED_U64: u64 = SEALED as u64;
/// A header copy: its sequence number, then a sealed block.
pub(crate) const HEADER_SLOT: usize = 8 + SEALED;
pub(crate) const HEADER_SLOT_U64: u64 = HEADER_SLOT as u64;
pub(crate) const PREAMBLE: usize = 4096;
pub(crate) const PREAMBLE_U64: u64 = PREAMBLE as u64;
/// Where logical block 1 starts.
pub(crate) const DATA_START: u64 = PREAMBLE_U64 + 2 * HEADER_SLOT_U64;

/// The first bytes of every encrypted data file.
pub(crate) const MAGIC: [u8; 16] = *b"TESTUDO:AES-GCM\n";
/// The layout version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The preamble's fields before its nonce: magic, version, block size, key id, file id.
pub(crate) const PREAMBLE_FIELDS: usize = 16 + 4 + 4 + 4 + 16;

/// Physical offset of header copy `slot` (0 or 1).
pub(crate) fn header_slot_offset(slot: u8) -> u64 {
    PREAMBLE_U64 + u64::from(slot) * HEADER_SLOT_U64
}

/// Physical offset of logical block `index` ≥ 1.
pub(crate) fn block_offset(index: u64) -> io::Result<u64> {
    index
        .checked_sub(1)
        .and_then(|i| i.checked_mul(SEALED_U64))
        .and_then(|o| o.checked_add(DATA_START))
        .ok_or_else(|| invalid("block index out of range"))
}

/// The physical length of a logical file of `len` bytes (a multiple of [`BLOCK`]).
pub(crate) fn physical_len(len: u64) -> io::Result<u64> {
    if !len.is_multiple_of(BLOCK_U64) {
        return Err(invalid(
            "the encrypted store holds whole 4096-byte blocks only",
        ));
    }
    match len / BLOCK_U64 {
        0 => Ok(PREAMBLE_U64),
        blocks => block_offset(blocks),
    }
}

/// The logical length of a physical file of `len` bytes. A trailing partial block (a crash
/// while the file grew) does not count.
pub(crate) fn logical_len(physical: u64) -> u64 {
    if physical < DATA_START {
        // The header copies are only ever there whole (the file grows by `set_len`).
        return 0;
    }
    (1 + (physical - DATA_START) / SEALED_U64) * BLOCK_U64
}

pub(crate) fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.to_owned())
}

/// The plaintext preamble.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Preamble {
    pub key_id: u32,
    pub file_id: [u8; 16],
}

/// Why a preamble was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PreambleError {
    /// Not an encrypted Testudo file at all.
    NotEncrypted,
    /// A version or block size this build does not know.
    Unsupported(String),
}

impl Preamble {
    /// The fields that the preamble's tag authenticates.
    pub(crate) fn fields(&self) -> [u8; PREAMBLE_FIELDS] {
        let mut out = [0u8; PREAMBLE_FIELDS];
        let parts: [&[u8]; 5] = [
            &MAGIC,
            &FORMAT_VERSION.to_le_bytes(),
            &u32::try_from(BLOCK).unwrap_or(u32::MAX).to_le_bytes(),
            &self.key_id.to_le_bytes(),
            &self.file_id,
        ];
        let mut at = 0;
        for part in parts {
            if let Some(dst) = out.get_mut(at..at + part.len()) {
                dst.copy_from_slice(part);
            }
            at += part.len();
        }
        out
    }

    /// Parses the fields (not the tag: that needs the key).
    pub(crate) fn parse(bytes: &[u8]) -> Result<Preamble, PreambleError> {
        let field = |at: usize, len: usize| bytes.get(at..at + len);
        if field(0, 16) != Some(&MAGIC[..]) {
            return Err(PreambleError::NotEncrypted);
        }
        let u32_at = |at| {
            field(at, 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        };
        let version = u32_at(16).ok_or(PreambleError::NotEncrypted)?;
        if version != FORMAT_VERSION {
            return Err(PreambleError::Unsupported(format!(
                "encrypted format version {version} (this build reads {FORMAT_VERSION})"
            )));
        }
        let block = u32_at(20).ok_or(PreambleError::NotEncrypted)?;
        if usize::try_from(block).ok() != Some(BLOCK) {
            return Err(PreambleError::Unsupported(format!(
                "block size {block} (this build uses {BLOCK})"
            )));
        }
        let key_id = u32_at(24).ok_or(PreambleError::NotEncrypted)?;
        let file_id = field(28, 16)
            .and_then(|b| b.try_into().ok())
            .ok_or(PreambleError::NotEncrypted)?;
        Ok(Preamble { key_id, file_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_and_physical_lengths_are_inverse() {
        for blocks in [0u64, 1, 2, 18, 1000] {
            let len = blocks * BLOCK_U64;
            assert_eq!(logical_len(physical_len(len).unwrap()), len);
        }
        assert!(physical_len(320).is_err());
    }

    #[test]
    fn a_torn_tail_is_not_a_block() {
        let two = physical_len(2 * BLOCK_U64).unwrap();
        assert_eq!(logical_len(two + 100), 2 * BLOCK_U64);
    }

    #[test]
    fn the_preamble_round_trips_and_rejects_strangers() {
        let preamble = Preamble {
            key_id: 7,
            file_id: [9; 16],
        };
        assert_eq!(Preamble::parse(&preamble.fields()), Ok(preamble));
        assert_eq!(
            Preamble::parse(b"redb\x1a\x0a\xa9\x0d\x0a"),
            Err(PreambleError::NotEncrypted)
        );
        let mut newer = preamble.fields();
        newer[16] = 2;
        assert!(matches!(
            Preamble::parse(&newer),
            Err(PreambleError::Unsupported(_))
        ));
    }
}
