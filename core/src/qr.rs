//! QR codes: a text (a `VCH1:` envelope, a relay link) as a QR code in
//! alphanumeric mode at the smallest version that fits, and a QR code as a
//! PNG image. Kept apart from [`crate::envelope`], which only turns a
//! presentation into text and back.

use flate2::Compression;
use qrcode::bits::Bits;
pub use qrcode::{EcLevel, QrCode, Version};

/// The most alphanumeric characters any QR code holds (version 40, EC
/// level L).
pub const MAX_ALPHANUMERIC_CHARS: usize = 4296;

/// Widest (and tallest) PNG [`png`] draws, in pixels: a version-40 code
/// (177 modules) with a 4-module quiet zone at 22 pixels per module fits.
/// The image is built in memory at one byte per pixel, so this bounds what a
/// caller's `scale` and `quiet` can make it allocate (about 16 MiB).
pub const MAX_PNG_SIDE: u32 = 4096;

/// Why a QR code or its image could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QrError {
    /// Too long for any QR code at this error correction level, or holding
    /// characters outside the alphanumeric set.
    #[error(
        "text of {len} characters does not fit an alphanumeric QR code at error correction level {ec:?}"
    )]
    TooLong {
        /// Characters in the text.
        len: usize,
        /// The error correction level asked for.
        ec: EcLevel,
    },
    /// A PNG of this scale and quiet zone would be wider than
    /// [`MAX_PNG_SIDE`] pixels.
    #[error(
        "a QR code of {modules} modules with a quiet zone of {quiet} at scale {scale} \
         is wider than {MAX_PNG_SIDE} pixels"
    )]
    ImageTooLarge {
        /// Modules across the code.
        modules: usize,
        /// Quiet-zone modules on each side.
        quiet: u32,
        /// Pixels per module.
        scale: u32,
    },
}

/// A QR code holding `text` (an envelope) in alphanumeric mode, at the
/// smallest version that fits.
///
/// # Errors
/// [`QrError::TooLong`] beyond version 40, or for characters outside the
/// alphanumeric set.
pub fn qr_code(text: &str, ec: EcLevel) -> Result<QrCode, QrError> {
    let too_long = || QrError::TooLong {
        len: text.len(),
        ec,
    };
    if text.len() > MAX_ALPHANUMERIC_CHARS {
        return Err(too_long());
    }
    // qrcode's alphanumeric encoder maps every other byte to '0' without a
    // word: a lower-case link would come out as a different text.
    if !text.bytes().all(is_alphanumeric) {
        return Err(too_long());
    }
    for v in 1..=40 {
        let mut bits = Bits::new(Version::Normal(v));
        if bits.push_alphanumeric_data(text.as_bytes()).is_err()
            || bits.push_terminator(ec).is_err()
        {
            continue;
        }
        if let Ok(code) = QrCode::with_bits(bits, ec) {
            return Ok(code);
        }
    }
    Err(too_long())
}

/// Whether `b` is in the QR alphanumeric set: `0-9 A-Z`, space and
/// `$%*+-./:`.
fn is_alphanumeric(b: u8) -> bool {
    b.is_ascii_digit() || b.is_ascii_uppercase() || b" $%*+-./:".contains(&b)
}

/// The version (1 to 40; 1 to 4 for a Micro QR code) of `code`: how many
/// modules it has across, as the QR specification counts them.
pub fn version(code: &QrCode) -> i16 {
    match code.version() {
        Version::Normal(v) | Version::Micro(v) => v,
    }
}

/// A QR code as a PNG image: 8-bit greyscale, `scale` pixels per module (0
/// counts as 1), a quiet zone of `quiet` modules on each side.
///
/// # Errors
/// [`QrError::ImageTooLarge`] when the image would be wider than
/// [`MAX_PNG_SIDE`] pixels; checked before anything is allocated.
pub fn png(code: &QrCode, scale: u32, quiet: u32) -> Result<Vec<u8>, QrError> {
    use std::io::Write as _;
    let too_large = || QrError::ImageTooLarge {
        modules: code.width(),
        quiet,
        scale,
    };
    let modules = u32::try_from(code.width()).map_err(|_| too_large())?;
    let side = quiet
        .checked_mul(2)
        .and_then(|q| q.checked_add(modules))
        .and_then(|m| m.checked_mul(scale.max(1)))
        .filter(|&side| side <= MAX_PNG_SIDE)
        .ok_or_else(too_large)?;
    let colors = code.to_colors();
    let dark = |x: u32, y: u32| -> bool {
        let (mx, my) = (x / scale.max(1), y / scale.max(1));
        if mx < quiet || my < quiet || mx >= quiet + modules || my >= quiet + modules {
            return false;
        }
        // Both below `modules` (≤ 177) here: no overflow.
        let i = ((my - quiet) * modules + (mx - quiet)) as usize;
        colors.get(i) == Some(&qrcode::Color::Dark)
    };
    let mut raw = Vec::with_capacity(((side + 1) * side) as usize);
    for y in 0..side {
        raw.push(0); // filter: none
        raw.extend((0..side).map(|x| if dark(x, y) { 0u8 } else { 255 }));
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Compression::best());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(&raw);
    let idat = z.finish().unwrap_or_default();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit, greyscale, deflate, no filter, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(&b"IHDR"[..], &ihdr[..]), (b"IDAT", &idat), (b"IEND", &[])] {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fail_text_outside_the_alphanumeric_set_is_refused() {
        // A relay link (lower case, `#`, `_`) once came out of the code as
        // "0000://…": refused now, as the documentation says.
        for text in [
            "http://127.0.0.1:7400/p/abcdef0123456789abcdef0123456789#WlpaWlo",
            "VCH1:ok",
            "VCH1:A_B",
            "VCH1:A#B",
        ] {
            assert!(
                matches!(qr_code(text, EcLevel::M), Err(QrError::TooLong { .. })),
                "{text}"
            );
        }
        // The whole alphanumeric set is accepted.
        assert!(qr_code("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", EcLevel::M).is_ok());
    }

    #[test]
    fn png_of_a_qr_code() {
        let code = qr_code("VCH1:HELLO", EcLevel::M).unwrap();
        let image = png(&code, 4, 4).unwrap();
        assert_eq!(&image[..8], b"\x89PNG\r\n\x1a\n");
        // Walk the chunks, checking each CRC.
        let mut at = 8;
        let mut idat = Vec::new();
        let mut side = 0;
        while at < image.len() {
            let len = u32::from_be_bytes(image[at..at + 4].try_into().unwrap()) as usize;
            let kind = &image[at + 4..at + 8];
            let data = &image[at + 8..at + 8 + len];
            let mut crc = flate2::Crc::new();
            crc.update(kind);
            crc.update(data);
            assert_eq!(crc.sum().to_be_bytes(), image[at + 8 + len..at + 12 + len]);
            match kind {
                b"IHDR" => side = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize,
                b"IDAT" => idat.extend_from_slice(data),
                _ => {}
            }
            at += 12 + len;
        }
        assert_eq!(side, (code.width() + 8) * 4);
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&idat[..]), &mut raw)
            .unwrap();
        assert_eq!(raw.len(), (side + 1) * side);
        let pixel = |x: usize, y: usize| raw[y * (side + 1) + 1 + x];
        assert_eq!(pixel(0, 0), 255, "quiet zone");
        assert_eq!(pixel(16, 16), 0, "finder pattern corner");
    }
}
