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

/// The bytes of base45 `text`.
///
/// # Errors
/// The position of the first character that is not base45, or of the
/// group that does not decode.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, usize> {
    let digits: Vec<usize> = text
        .bytes()
        .enumerate()
        .map(|(i, c)| BASE45.iter().position(|&a| a == c).ok_or(i))
        .collect::<Result<_, _>>()?;
    if digits.len() % 3 == 1 {
        // The dangling last character.
        return Err(digits.len() - 1);
    }
    let mut out = Vec::with_capacity(digits.len() * 2 / 3);
    for (i, chunk) in digits.chunks(3).enumerate() {
        match *chunk {
            [c, d, e] => {
                let n = c + d * 45 + e * 45 * 45;
                if n > 0xFFFF {
                    return Err(i * 3);
                }
                out.push((n >> 8) as u8);
                out.push(n as u8);
            }
            [c, d] => {
                let n = c + d * 45;
                if n > 0xFF {
                    return Err(i * 3);
                }
                out.push(n as u8);
            }
            _ => return Err(i * 3),
        }
    }
    Ok(out)
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
}
