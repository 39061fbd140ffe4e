//! The line-based text encoding of key files (`account.pub`, `account.key`, `camera.pub`, ...).
//!
//! A file is a header line naming its kind and version, then one `name hex` line per field,
//! in a fixed order. Lines end in `\n`; the last one may omit it. Hex is written lowercase and
//! read in either case. Nothing else is accepted: no blank lines, comments or extra spaces, so
//! that each key has exactly one encoding and a damaged file is noticed.

use zeroize::Zeroizing;

use super::KeyError;

/// Encodes public fields.
pub(crate) fn encode_public(header: &str, fields: &[(&str, &[u8; 32])]) -> String {
    let mut out = String::with_capacity(header.len() + 1 + fields.len() * 76);
    out.push_str(header);
    out.push('\n');
    for (name, value) in fields {
        out.push_str(name);
        out.push(' ');
        out.push_str(&hex::encode(value));
        out.push('\n');
    }
    out
}

/// Decodes exactly the named 32-byte fields, in order, after `header`.
pub(crate) fn decode_public<const N: usize>(
    s: &str,
    header: &str,
    names: [&str; N],
) -> Result<[[u8; 32]; N], KeyError> {
    let mut values = [[0u8; 32]; N];
    let mut lines = lines(s, header)?;
    for (name, value) in names.iter().zip(values.iter_mut()) {
        let line = lines
            .next()
            .ok_or_else(|| KeyError::BadFormat(format!("missing the `{name}` line")))?;
        decode_field(line, name, value)?;
    }
    if lines.next().is_some() {
        return Err(KeyError::BadFormat("unexpected extra lines".into()));
    }
    Ok(values)
}

/// Encodes a 32-byte seed as `header\nseed <hex>\n` without leaving copies of it behind.
pub(crate) fn encode_secret(header: &str, seed: &[u8; 32]) -> Zeroizing<String> {
    let mut hex_buf = Zeroizing::new([0u8; 64]);
    // Invariant: 32 bytes encode to exactly 64 hex digits, which is the buffer's size.
    hex::encode_to_slice(seed, hex_buf.as_mut()).expect("64-byte buffer for 32 bytes");
    // The capacity is exact, so the string never reallocates and leaves no stray copy.
    let mut out = Zeroizing::new(String::with_capacity(header.len() + 1 + 5 + 64 + 1));
    out.push_str(header);
    out.push_str("\nseed ");
    for &b in hex_buf.iter() {
        out.push(char::from(b));
    }
    out.push('\n');
    out
}

/// Decodes `header\nseed <hex>\n`.
pub(crate) fn decode_secret(s: &str, header: &str) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    let mut lines = lines(s, header)?;
    let line = lines
        .next()
        .ok_or_else(|| KeyError::BadFormat("missing the `seed` line".into()))?;
    decode_field(line, "seed", &mut seed)?;
    if lines.next().is_some() {
        return Err(KeyError::BadFormat("unexpected extra lines".into()));
    }
    Ok(seed)
}

/// Encodes `header\nname <hex of value>\n`: one public field of any length.
pub(crate) fn encode_public_named(header: &str, name: &str, value: &[u8]) -> String {
    format!("{header}\n{name} {}\n", hex::encode(value))
}

/// Decodes a file of one public field after `header`: its name must be one of `options`
/// (name, length in bytes). Returns which option matched and the value.
pub(crate) fn decode_public_named<const N: usize>(
    s: &str,
    header: &str,
    options: [(&str, usize); N],
) -> Result<(usize, Vec<u8>), KeyError> {
    let mut lines = lines(s, header)?;
    let line = lines
        .next()
        .ok_or_else(|| KeyError::BadFormat("missing the key line".into()))?;
    if lines.next().is_some() {
        return Err(KeyError::BadFormat("unexpected extra lines".into()));
    }
    let (index, value) = split_named(line, options.map(|(name, _)| name))?;
    let (name, len) = options[index];
    let mut out = vec![0u8; len];
    decode_hex(value, name, &mut out)?;
    Ok((index, out))
}

/// Encodes a 32-byte secret as `header\nname <hex>\n` without leaving copies of it behind.
pub(crate) fn encode_secret_named(header: &str, name: &str, seed: &[u8; 32]) -> Zeroizing<String> {
    let mut hex_buf = Zeroizing::new([0u8; 64]);
    // Invariant: 32 bytes encode to exactly 64 hex digits, which is the buffer's size.
    hex::encode_to_slice(seed, hex_buf.as_mut()).expect("64-byte buffer for 32 bytes");
    // The capacity is exact, so the string never reallocates and leaves no stray copy.
    let mut out = Zeroizing::new(String::with_capacity(
        header.len() + name.len() + 2 + 64 + 1,
    ));
    out.push_str(header);
    out.push('\n');
    out.push_str(name);
    out.push(' ');
    for &b in hex_buf.iter() {
        out.push(char::from(b));
    }
    out.push('\n');
    out
}

/// Decodes `header\nname <hex>\n` where `name` is one of `names`: which one, and the 32 bytes.
pub(crate) fn decode_secret_named<const N: usize>(
    s: &str,
    header: &str,
    names: [&str; N],
) -> Result<(usize, Zeroizing<[u8; 32]>), KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    let mut lines = lines(s, header)?;
    let line = lines
        .next()
        .ok_or_else(|| KeyError::BadFormat("missing the key line".into()))?;
    if lines.next().is_some() {
        return Err(KeyError::BadFormat("unexpected extra lines".into()));
    }
    let (index, value) = split_named(line, names)?;
    decode_hex(value, names[index], seed.as_mut())?;
    Ok((index, seed))
}

/// Splits `name value` where `name` is one of `names`; never echoes the value.
fn split_named<'a, const N: usize>(
    line: &'a str,
    names: [&str; N],
) -> Result<(usize, &'a str), KeyError> {
    names
        .iter()
        .enumerate()
        .find_map(|(i, name)| {
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(|value| (i, value))
        })
        .ok_or_else(|| {
            KeyError::BadFormat(format!(
                "expected a `{} <hex>` line",
                names.join(" <hex>` or a `")
            ))
        })
}

/// Decodes exactly `out.len()` bytes of hex; the error never echoes the value.
fn decode_hex(value: &str, name: &str, out: &mut [u8]) -> Result<(), KeyError> {
    if value.len() != out.len() * 2 {
        return Err(KeyError::BadFormat(format!(
            "`{name}` must be {} hex digits, found {} characters",
            out.len() * 2,
            value.chars().count()
        )));
    }
    hex::decode_to_slice(value, out)
        .map_err(|_| KeyError::BadFormat(format!("`{name}` is not valid hex")))
}

/// Splits `s` into lines and checks the header line. The error names what the file claims
/// to be, which tells the user when they passed, say, a `camera.pub` instead of an
/// `account.pub`.
fn lines<'a>(s: &'a str, header: &str) -> Result<impl Iterator<Item = &'a str>, KeyError> {
    let body = s.strip_suffix('\n').unwrap_or(s);
    let mut lines = body.split('\n');
    let first = lines.next().unwrap_or("");
    if first != header {
        // Only echo the header of another camseal file: an arbitrary first line could be
        // a secret (a passphrase file passed by mistake, say).
        let is_camseal_header = first.starts_with("camseal-")
            && first.len() <= 64
            && first
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        return Err(KeyError::BadFormat(if is_camseal_header {
            format!("expected a `{header}` file, found a `{first}` file")
        } else {
            format!("expected a `{header}` file, found something else")
        }));
    }
    Ok(lines)
}

/// Parses `name <64 hex digits>` into `out`. The error never echoes the value: for a seed
/// line it is the secret.
fn decode_field(line: &str, name: &str, out: &mut [u8; 32]) -> Result<(), KeyError> {
    let value = line
        .strip_prefix(name)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or_else(|| KeyError::BadFormat(format!("expected a `{name} <hex>` line")))?;
    if value.len() != 64 {
        return Err(KeyError::BadFormat(format!(
            "`{name}` must be 64 hex digits, found {} characters",
            value.chars().count()
        )));
    }
    hex::decode_to_slice(value, out)
        .map_err(|_| KeyError::BadFormat(format!("`{name}` is not valid hex")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_round_trip_and_strictness() {
        let a = [0xabu8; 32];
        let b = [0x01u8; 32];
        let s = encode_public("hdr-v1", &[("one", &a), ("two", &b)]);
        assert_eq!(
            s,
            format!("hdr-v1\none {}\ntwo {}\n", "ab".repeat(32), "01".repeat(32))
        );
        assert_eq!(decode_public(&s, "hdr-v1", ["one", "two"]), Ok([a, b]));
        // Last newline optional, upper-case hex accepted.
        let t = s.trim_end().to_uppercase().replace("HDR-V1", "hdr-v1");
        let t = t.replace("ONE", "one").replace("TWO", "two");
        assert_eq!(decode_public(&t, "hdr-v1", ["one", "two"]), Ok([a, b]));

        for bad in [
            String::new(),
            "hdr-v2\n".to_string(),
            s.replace("one ", "one  "),
            s.replace("\ntwo", "\n\ntwo"),
            format!("{s}\n"),
            format!("{s}extra\n"),
            s.replace("one", "two"),
            s.replace("ab", "zz"),
            s.replacen("ab", "", 1),
            s.replace('\n', "\r\n"),
        ] {
            assert!(
                decode_public(&bad, "hdr-v1", ["one", "two"]).is_err(),
                "accepted {bad:?}"
            );
        }
        assert!(decode_public(&s, "hdr-v1", ["one"]).is_err());
    }

    #[test]
    fn named_fields_round_trip_and_strictness() {
        let long = [0x3cu8; 100];
        let s = encode_public_named("d-v1", "long", &long);
        let opts = [("short", 32), ("long", 100)];
        assert_eq!(
            decode_public_named(&s, "d-v1", opts),
            Ok((1, long.to_vec()))
        );
        let short = encode_public_named("d-v1", "short", &[7; 32]);
        assert_eq!(
            decode_public_named(&short, "d-v1", opts),
            Ok((0, vec![7; 32]))
        );
        for bad in [
            s.replace("long", "short"),
            s.replace("long", "other"),
            format!("{s}extra\n"),
            s.replacen("3c", "", 1),
            s.replace("3c", "zz"),
        ] {
            assert!(decode_public_named(&bad, "d-v1", opts).is_err(), "{bad:?}");
        }

        let seed = [0x5au8; 32];
        let t = encode_secret_named("k-v1", "two", &seed);
        assert_eq!(t.as_str(), format!("k-v1\ntwo {}\n", "5a".repeat(32)));
        let (i, got) = decode_secret_named(&t, "k-v1", ["one", "two"]).unwrap();
        assert_eq!((i, *got), (1, seed));
        let e = decode_secret_named(&t.replace("5a5a", "5g5a"), "k-v1", ["one", "two"])
            .unwrap_err()
            .to_string();
        assert!(!e.contains("5a5a"), "{e}");
        assert!(decode_secret_named(&t, "k-v1", ["one"]).is_err());
    }

    #[test]
    fn secret_round_trip_and_errors_do_not_echo() {
        let seed = [0x5au8; 32];
        let s = encode_secret("k-v1", &seed);
        assert_eq!(s.as_str(), format!("k-v1\nseed {}\n", "5a".repeat(32)));
        assert_eq!(*decode_secret(&s, "k-v1").unwrap(), seed);
        let bad = s.replace("5a5a", "5g5a");
        let e = decode_secret(&bad, "k-v1").unwrap_err().to_string();
        assert!(!e.contains("5a5a"), "{e}");
        let short = s.replacen("5a", "", 1);
        let e = decode_secret(&short, "k-v1").unwrap_err().to_string();
        assert!(!e.contains("5a5a"), "{e}");
        assert!(decode_secret(&s, "other-v1").is_err());
    }
}
