//! Base45 (RFC 9285): bytes in the QR alphanumeric alphabet, for the
//! `VCH1:` envelope and the `VCHR1:` presentation request.

const BASE45: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

/// Appends the base45 of `bytes` to `out`: two bytes in three characters,
/// a last odd byte in two.
pub(crate) fn encode(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(2) {
        let (mut n, count) = match *chunk {
            [a, b] => (usize::from(a) * 256 + usize::from(b), 3),
            [a] => (usize::from(a), 2),
            _ => unreachable!("chunks(2) yields 1 or 2 bytes"),
        };
        for _ in 0..count {
            out.push(char::from(BASE45[n % 45]));
            n /= 45;
        }
    }
}

/// Marks a byte that is not a base45 character in [`DIGITS`].
const NOT_BASE45: u8 = 0xFF;

/// The value of each byte as a base45 digit, or [`NOT_BASE45`].
const DIGITS: [u8; 256] = {
    let mut table = [NOT_BASE45; 256];
    let mut i = 0;
    while i < BASE45.len() {
        table[BASE45[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// The bytes of base45 `text`.
///
/// # Errors
/// The position of the first character that is not base45, or of the
/// group that does not decode.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, usize> {
    let text = text.as_bytes();
    let mut out = Vec::with_capacity(text.len() / 3 * 2 + 1);
    let mut groups = text.chunks_exact(3);
    for group in &mut groups {
        let [c, d, e] = [group[0], group[1], group[2]].map(|c| DIGITS[usize::from(c)]);
        let n = usize::from(c) + usize::from(d) * 45 + usize::from(e) * 45 * 45;
        // A character outside the alphabet has the top bit set.
        if (c | d | e) & 0x80 != 0 || n > 0xFFFF {
            return Err(first_error(text));
        }
        out.extend_from_slice(&(n as u16).to_be_bytes());
    }
    match *groups.remainder() {
        [] => {}
        [c, d] => {
            let [c, d] = [c, d].map(|c| DIGITS[usize::from(c)]);
            let n = usize::from(c) + usize::from(d) * 45;
            if (c | d) & 0x80 != 0 || n > 0xFF {
                return Err(first_error(text));
            }
            out.push(n as u8);
        }
        _ => return Err(first_error(text)),
    }
    Ok(out)
}

/// Where `text`, which does not decode, first goes wrong: the first
/// character that is not base45, else a dangling last character, else the
/// first group out of range.
fn first_error(text: &[u8]) -> usize {
    let digit = |c: u8| DIGITS[usize::from(c)];
    if let Some(i) = text.iter().position(|&c| digit(c) == NOT_BASE45) {
        return i;
    }
    if text.len() % 3 == 1 {
        return text.len() - 1;
    }
    let group_max = |g: &[u8]| if g.len() == 3 { 0xFFFF } else { 0xFF };
    text.chunks(3)
        .position(|g| {
            let n = g
                .iter()
                .rev()
                .fold(0usize, |n, &c| n * 45 + usize::from(digit(c)));
            n > group_max(g)
        })
        .map_or(text.len(), |g| g * 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base45_rfc9285_examples() {
        let mut s = String::new();
        encode(b"AB", &mut s);
        assert_eq!(s, "BB8");
        s.clear();
        encode(b"Hello!!", &mut s);
        assert_eq!(s, "%69 VD92EX0");
        s.clear();
        encode(b"base-45", &mut s);
        assert_eq!(s, "UJCLQE7W581");
        assert_eq!(decode("QED8WEX0").unwrap(), b"ietf!");
        assert!(decode("GGW").is_err(), "65536 + is out of range");
        assert!(decode("ZZZZ").is_err(), "length 1 mod 3");
        assert!(decode("aa").is_err(), "lower case");
    }

    #[test]
    fn base45_errors_name_the_first_fault() {
        // A character outside the alphabet first, wherever it is.
        assert_eq!(decode("GGW00a"), Err(5));
        assert_eq!(decode("00a"), Err(2));
        assert_eq!(decode("0\u{e9}"), Err(1));
        // Then a dangling last character.
        assert_eq!(decode("GGW0"), Err(3));
        // Then the first group out of range, of three or two characters.
        assert_eq!(decode("000GGW"), Err(3));
        assert_eq!(decode("GGWGGW"), Err(0));
        assert_eq!(decode("000:Z"), Err(3));
        // Everything in range decodes, and round-trips.
        let bytes: Vec<u8> = (0..=255).collect();
        let mut s = String::new();
        encode(&bytes, &mut s);
        assert_eq!(decode(&s).unwrap(), bytes);
        assert_eq!(decode("FGW").unwrap(), [0xff, 0xff]);
        assert_eq!(decode("U5").unwrap(), [0xff]);
    }
}
