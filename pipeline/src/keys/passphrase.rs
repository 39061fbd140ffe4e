//! The recovery passphrase: 128 bits of entropy written as 12 BIP39 English words.
//!
//! The words are the standard BIP39 encoding of 16 entropy bytes: the 128 entropy bits, then
//! the first 4 bits of `SHA-256(entropy)` as a checksum, cut into twelve 11-bit indices into
//! the English word list. The checksum catches most typos and swapped words before the slow
//! Argon2id step runs. Only the entropy bytes are used afterwards (see [`super::backup`]),
//! never the BIP39 seed (PBKDF2), so case and spacing of the typed words do not matter.

use core::fmt;

use bip39::Language;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::{KeyError, random_fill};

/// A recovery passphrase (12 BIP39 English words, 128 bits of entropy).
///
/// `Display` writes the words, separated by single spaces: use it only to show the
/// passphrase to its owner, once. `Debug` is redacted.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Passphrase {
    entropy: [u8; ENTROPY_LEN],
}

impl Passphrase {
    /// Draws a fresh passphrase from the OS CSPRNG.
    pub fn generate() -> Result<Self, KeyError> {
        let mut p = Passphrase {
            entropy: [0; ENTROPY_LEN],
        };
        random_fill(&mut p.entropy)?;
        Ok(p)
    }

    /// The passphrase for known entropy (tests and vectors).
    pub fn from_entropy(entropy: [u8; 16]) -> Self {
        Passphrase { entropy }
    }

    /// Parses typed words. Case and whitespace (spaces, tabs, newlines, any amount) do not
    /// matter; the words themselves must be exact.
    ///
    /// Errors: [`KeyError::WordCount`], [`KeyError::UnknownWord`] (naming the first bad
    /// word's position), [`KeyError::BadChecksum`].
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let count = s.split_whitespace().count();
        if count != WORDS {
            return Err(KeyError::WordCount(count));
        }
        let mut indices = Zeroizing::new([0u16; WORDS]);
        for (i, word) in s.split_whitespace().enumerate() {
            let lower = Zeroizing::new(word.to_ascii_lowercase());
            indices[i] = Language::English
                .find_word(&lower)
                .ok_or(KeyError::UnknownWord { position: i + 1 })?;
        }
        // 12 * 11 = 132 bits: 128 bits of entropy, then 4 checksum bits.
        let mut bits = Zeroizing::new([false; WORDS * 11]);
        for (i, &index) in indices.iter().enumerate() {
            for j in 0..11 {
                bits[i * 11 + j] = (index >> (10 - j)) & 1 == 1;
            }
        }
        let mut p = Passphrase {
            entropy: [0; ENTROPY_LEN],
        };
        for (i, byte) in p.entropy.iter_mut().enumerate() {
            for j in 0..8 {
                *byte |= u8::from(bits[i * 8 + j]) << (7 - j);
            }
        }
        let mut typed_checksum = 0u8;
        for j in 0..CHECKSUM_BITS {
            typed_checksum |= u8::from(bits[ENTROPY_LEN * 8 + j]) << (CHECKSUM_BITS - 1 - j);
        }
        if typed_checksum != checksum(&p.entropy) {
            return Err(KeyError::BadChecksum);
        }
        Ok(p)
    }

    /// The 16 entropy bytes: Argon2id's password input.
    pub(crate) fn entropy(&self) -> &[u8; 16] {
        &self.entropy
    }

    /// The 12 words.
    pub fn words(&self) -> [&'static str; 12] {
        let list = Language::English.word_list();
        let mut bits = Zeroizing::new([false; WORDS * 11]);
        for (i, byte) in self.entropy.iter().enumerate() {
            for j in 0..8 {
                bits[i * 8 + j] = (byte >> (7 - j)) & 1 == 1;
            }
        }
        let sum = checksum(&self.entropy);
        for j in 0..CHECKSUM_BITS {
            bits[ENTROPY_LEN * 8 + j] = (sum >> (CHECKSUM_BITS - 1 - j)) & 1 == 1;
        }
        let mut words = [""; WORDS];
        for (i, word) in words.iter_mut().enumerate() {
            let mut index = 0usize;
            for j in 0..11 {
                index = (index << 1) | usize::from(bits[i * 11 + j]);
            }
            // Invariant: an 11-bit index is below 2048, the word list's length.
            *word = list[index];
        }
        words
    }
}

impl fmt::Display for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, word) in self.words().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(word)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// The BIP39 checksum of 16 bytes: the top 4 bits of their SHA-256, as a value in 0..16.
fn checksum(entropy: &[u8; ENTROPY_LEN]) -> u8 {
    Sha256::digest(entropy)[0] >> (8 - CHECKSUM_BITS)
}

const ENTROPY_LEN: usize = 16;
const WORDS: usize = 12;
const CHECKSUM_BITS: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    /// Published BIP39 English vectors (128-bit entropy) from the reference test set.
    const VECTORS: [(&str, &str); 4] = [
        (
            "00000000000000000000000000000000",
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
        ),
        (
            "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
            "legal winner thank year wave sausage worth useful legal winner thank yellow",
        ),
        (
            "80808080808080808080808080808080",
            "letter advice cage absurd amount doctor acoustic avoid letter advice cage above",
        ),
        (
            "ffffffffffffffffffffffffffffffff",
            "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong",
        ),
    ];

    fn entropy(hex_str: &str) -> [u8; 16] {
        let mut e = [0u8; 16];
        hex::decode_to_slice(hex_str, &mut e).unwrap();
        e
    }

    #[test]
    fn bip39_vectors() {
        for (e, words) in VECTORS {
            let p = Passphrase::from_entropy(entropy(e));
            assert_eq!(p.to_string(), words);
            assert_eq!(Passphrase::parse(words).unwrap().entropy(), &entropy(e));
        }
    }

    #[test]
    fn agrees_with_the_bip39_crate_on_random_entropy() {
        for _ in 0..64 {
            let p = Passphrase::generate().unwrap();
            let m = bip39::Mnemonic::from_entropy(p.entropy()).unwrap();
            assert_eq!(p.to_string(), m.to_string());
            assert_eq!(
                Passphrase::parse(&m.to_string()).unwrap().entropy(),
                p.entropy()
            );
        }
    }

    #[test]
    fn case_and_whitespace_are_normalised() {
        let (e, words) = VECTORS[1];
        let messy = format!("  {}\n", words.to_uppercase().replace(' ', " \t\n  "));
        assert_eq!(Passphrase::parse(&messy).unwrap().entropy(), &entropy(e));
    }

    #[test]
    fn errors_name_the_problem() {
        let words: Vec<&str> = VECTORS[1].1.split(' ').collect();
        assert_eq!(
            Passphrase::parse(&words[..11].join(" ")).unwrap_err(),
            KeyError::WordCount(11)
        );
        assert_eq!(
            Passphrase::parse(&[words.clone(), vec!["zoo"]].concat().join(" ")).unwrap_err(),
            KeyError::WordCount(13)
        );
        assert_eq!(Passphrase::parse("").unwrap_err(), KeyError::WordCount(0));

        let mut typo = words.clone();
        typo[4] = "wavy";
        let e = Passphrase::parse(&typo.join(" ")).unwrap_err();
        assert_eq!(e, KeyError::UnknownWord { position: 5 });
        assert!(!e.to_string().contains("wavy"));

        // A real word in the wrong place breaks the checksum (all 4 bits of it: try every
        // word until one does; 1 in 16 substitutions keeps a valid checksum by chance).
        let mut rejected = 0;
        for candidate in ["able", "about", "above", "absent", "absorb"] {
            let mut swapped = words.clone();
            swapped[0] = candidate;
            if matches!(
                Passphrase::parse(&swapped.join(" ")),
                Err(KeyError::BadChecksum)
            ) {
                rejected += 1;
            }
        }
        assert!(rejected >= 3, "{rejected}");

        let mut reordered = words.clone();
        reordered.swap(2, 3);
        assert_eq!(
            Passphrase::parse(&reordered.join(" ")).unwrap_err(),
            KeyError::BadChecksum
        );
    }

    #[test]
    fn debug_is_redacted() {
        let p = Passphrase::from_entropy(entropy(VECTORS[1].0));
        assert_eq!(format!("{p:?}"), "Passphrase(<redacted>)");
    }
}
