//! The optional anchor part of an envelope: an [`AnchorProof`] in binary.
//!
//! A body that carries one starts with [`ANCHOR_TAG`] (a body without one
//! starts with the deflated structure's length, never 0), then
//! varint(part length), then the part: the anchor entry index, the leaf
//! index and the batch size as LEB128 varints (canonical, at most 10 bytes
//! each), then the audit path, 32 bytes per hash. The part length is checked
//! against [`MAX_ANCHOR_PART`] before anything else of the envelope is
//! decoded.

use crate::anchor::{AnchorProof, MAX_PATH_HASHES};
use crate::log::Hash;

use super::unpack::Reader;
use super::{push_varint, EnvelopeError};

/// First byte of an envelope body that carries an anchor part.
pub(super) const ANCHOR_TAG: u8 = 0;

/// Longest LEB128 encoding of a `u64`.
const MAX_U64_VARINT: usize = 10;

/// Largest anchor part, in bytes: three varints and a full audit path.
pub const MAX_ANCHOR_PART: usize = 3 * MAX_U64_VARINT + MAX_PATH_HASHES * 32;

/// Appends [`ANCHOR_TAG`], the part length and the part for `proof`.
pub(super) fn write(proof: &AnchorProof, out: &mut Vec<u8>) {
    let mut part = Vec::with_capacity(3 * MAX_U64_VARINT + proof.path().len() * 32);
    for v in [proof.entry_index(), proof.leaf_index(), proof.batch_size()] {
        crate::did::push_varint(&mut part, v);
    }
    for hash in proof.path() {
        part.extend_from_slice(&hash.0);
    }
    out.push(ANCHOR_TAG);
    push_varint(out, part.len());
    out.extend_from_slice(&part);
}

/// Reads the anchor part at `r`, whose [`ANCHOR_TAG`] was already read.
///
/// # Errors
/// [`EnvelopeError::AnchorTooLarge`] when the declared length is over
/// [`MAX_ANCHOR_PART`] (before reading the part),
/// [`EnvelopeError::AnchorPart`] when the part is truncated or its varints
/// or path are malformed, [`EnvelopeError::Anchor`] when its fields do not
/// make a proof.
pub(super) fn read(r: &mut Reader<'_>) -> Result<AnchorProof, EnvelopeError> {
    let len = r
        .varint()
        .map_err(|_| EnvelopeError::AnchorPart("its length is not a varint"))?;
    if len > MAX_ANCHOR_PART {
        return Err(EnvelopeError::AnchorTooLarge {
            len,
            max: MAX_ANCHOR_PART,
        });
    }
    let part = r
        .take(len)
        .map_err(|_| EnvelopeError::AnchorPart("truncated"))?;
    let mut at = 0;
    let mut fields = [0u64; 3];
    for field in &mut fields {
        *field = u64_varint(part, &mut at)?;
    }
    let [entry, leaf, size] = fields;
    let rest = part.get(at..).unwrap_or_default();
    let chunks = rest.chunks_exact(32);
    if !chunks.remainder().is_empty() {
        return Err(EnvelopeError::AnchorPart(
            "its audit path is not a whole number of 32-byte hashes",
        ));
    }
    let path = chunks
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            Hash(h)
        })
        .collect();
    AnchorProof::new(entry, leaf, size, path).map_err(EnvelopeError::Anchor)
}

/// A canonical LEB128 `u64` at `bytes[*at..]`.
fn u64_varint(bytes: &[u8], at: &mut usize) -> Result<u64, EnvelopeError> {
    let mut v = 0u64;
    for i in 0..MAX_U64_VARINT {
        let b = *bytes
            .get(*at)
            .ok_or(EnvelopeError::AnchorPart("truncated"))?;
        *at += 1;
        let low = u64::from(b & 0x7f);
        // The tenth byte holds bit 63 only.
        if i == MAX_U64_VARINT - 1 && low > 1 {
            return Err(EnvelopeError::AnchorPart("a varint is larger than 64 bits"));
        }
        v |= low << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(EnvelopeError::AnchorPart("a varint is overlong"));
            }
            return Ok(v);
        }
    }
    Err(EnvelopeError::AnchorPart("a varint is larger than 64 bits"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn proof(entry: u64, leaf: u64, size: u64) -> AnchorProof {
        let n = crate::log::Hash([0; 32]);
        let mut path = Vec::new();
        while AnchorProof::new(entry, leaf, size, path.clone()).is_err() {
            path.push(n);
            assert!(path.len() <= MAX_PATH_HASHES);
        }
        AnchorProof::new(entry, leaf, size, path).unwrap()
    }

    fn read_all(bytes: &[u8]) -> Result<AnchorProof, EnvelopeError> {
        let mut r = Reader { bytes, pos: 0 };
        assert_eq!(r.take(1).unwrap(), [ANCHOR_TAG]);
        let p = read(&mut r)?;
        assert_eq!(r.pos, bytes.len(), "the whole part is read");
        Ok(p)
    }

    #[test]
    fn anchor_parts_round_trip() {
        for (entry, leaf, size) in [(0, 0, 1), (12, 3, 5), (u64::MAX, u64::MAX - 1, u64::MAX)] {
            let p = proof(entry, leaf, size);
            let mut out = Vec::new();
            write(&p, &mut out);
            assert!(out.len() <= 1 + 2 + MAX_ANCHOR_PART);
            assert_eq!(read_all(&out).unwrap(), p);
        }
    }

    #[test]
    fn broken_anchor_parts_are_refused() {
        let mut good = Vec::new();
        write(&proof(12, 3, 5), &mut good);
        // Every truncation of the part (with its length fixed up).
        let part = &good[2..];
        for end in 0..part.len() {
            let mut cut = vec![ANCHOR_TAG];
            push_varint(&mut cut, end);
            cut.extend_from_slice(&part[..end]);
            assert!(read_all(&cut).is_err(), "part cut at {end}");
        }
        // A length beyond the bytes there.
        let mut long = good.clone();
        long[1] += 1;
        assert_eq!(read_all(&long), Err(EnvelopeError::AnchorPart("truncated")));
        // An overlong varint, a varint over 64 bits, a path of 31 bytes.
        for (part, why) in [
            (vec![0x80, 0x00, 3, 5], "a varint is overlong"),
            (vec![0xff; 11], "a varint is larger than 64 bits"),
            (
                [&[0xffu8; 9][..], &[0x02], &[0, 1]].concat(),
                "a varint is larger than 64 bits",
            ),
            (
                [&[0u8, 0, 2][..], &[7; 31]].concat(),
                "its audit path is not a whole number of 32-byte hashes",
            ),
        ] {
            let mut bytes = vec![ANCHOR_TAG];
            push_varint(&mut bytes, part.len());
            bytes.extend_from_slice(&part);
            assert_eq!(read_all(&bytes), Err(EnvelopeError::AnchorPart(why)));
        }
        // Fields that make no proof: leaf outside the batch.
        let bytes = [ANCHOR_TAG, 3, 0, 5, 5];
        assert!(matches!(
            read_all(&bytes),
            Err(EnvelopeError::Anchor(
                crate::anchor::AnchorError::LeafIndex { leaf: 5, size: 5 }
            ))
        ));
    }

    #[test]
    fn an_oversize_anchor_part_is_refused_by_its_length() {
        let mut bytes = vec![ANCHOR_TAG];
        push_varint(&mut bytes, MAX_ANCHOR_PART + 1);
        // No part follows: the length alone refuses it.
        assert_eq!(
            read_all(&bytes),
            Err(EnvelopeError::AnchorTooLarge {
                len: MAX_ANCHOR_PART + 1,
                max: MAX_ANCHOR_PART
            })
        );
    }
}
