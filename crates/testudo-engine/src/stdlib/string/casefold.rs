//! `casefold([format])`: Unicode normalization, by default NFKC_Casefold (Fauna uses ICU's
//! `Normalizer2`; here `unicode-normalization` and `caseless` provide the data).
//!
//! NFKC_Casefold is computed the way Unicode derives it: compatibility-normalize, apply full
//! case folding, drop default-ignorable code points, and repeat until the text no longer
//! changes (at most a few rounds), ending in NFC. **Invariants:** the output is never longer
//! than the string limit (checked while it is produced), and an unknown format is an
//! `invalid_argument`, never a panic.

use unicode_normalization::UnicodeNormalization;

use super::super::params::{Ty, invalid, overload, str_param};
use super::{MAX_STRING_BYTES, recv, too_large};
use crate::eval::{Interp, R, Value};

#[derive(Clone, Copy)]
enum Form {
    NfkcCaseFold,
    Nfc,
    Nfd,
    Nfkc,
    Nfkd,
}

pub fn casefold(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    overload("casefold", &a, &[&[], &[Ty::Str]])?;
    let s = recv(r)?;
    let form = match a.first() {
        None => Form::NfkcCaseFold,
        Some(v) => match &*str_param(v, "format")? {
            "NFKCCaseFold" => Form::NfkcCaseFold,
            "NFC" => Form::Nfc,
            "NFD" => Form::Nfd,
            "NFKC" => Form::Nfkc,
            "NFKD" => Form::Nfkd,
            _ => {
                return Err(invalid(
                    "format",
                    "expected a casefold format (one of NFKCCaseFold, NFC, NFD, NFKC, or NFKD)",
                ));
            }
        },
    };
    let out = match form {
        Form::Nfc => bounded(s.nfc())?,
        Form::Nfd => bounded(s.nfd())?,
        Form::Nfkc => bounded(s.nfkc())?,
        Form::Nfkd => bounded(s.nfkd())?,
        Form::NfkcCaseFold => nfkc_casefold(&s)?,
    };
    Ok(Value::string(out))
}

/// Collects normalized text, failing as soon as it outgrows the string limit (NFKD can
/// expand one code point into eighteen).
fn bounded(chars: impl Iterator<Item = char>) -> R<String> {
    let mut out = String::new();
    for c in chars {
        out.push(c);
        if out.len() > MAX_STRING_BYTES {
            return Err(too_large(out.len()));
        }
    }
    Ok(out)
}

fn nfkc_casefold(s: &str) -> R<String> {
    let mut current = bounded(s.nfkc())?;
    for _ in 0..4 {
        let folded = caseless::default_case_fold_str(&current);
        let next = bounded(folded.nfkc().filter(|c| !is_default_ignorable(*c)))?;
        if next == current {
            break;
        }
        current = next;
    }
    bounded(current.nfc())
}

/// Unicode's `Default_Ignorable_Code_Point` (DerivedCoreProperties.txt, Unicode 15.1), which
/// NFKC_Casefold maps to nothing.
fn is_default_ignorable(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFF8
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfkc_casefold_folds_case_compatibility_forms_and_ignorables() {
        assert_eq!(nfkc_casefold("Straße").unwrap(), "strasse");
        assert_eq!(nfkc_casefold("ﬁ ＡＢＣ").unwrap(), "fi abc");
        assert_eq!(nfkc_casefold("a\u{00AD}b\u{200B}c").unwrap(), "abc");
        assert_eq!(nfkc_casefold("ΣΊΣΥΦΟΣ").unwrap(), "σίσυφοσ");
        assert_eq!(nfkc_casefold("e\u{0301}").unwrap(), "\u{00E9}");
    }
}
