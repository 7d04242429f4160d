//! QR codes in photos and screenshots: PNG or JPEG bytes → the code's text.
//!
//! Everything is bounded before work is done: the file's bytes, then the
//! image's width, height and pixel count read from its header (so an image
//! bomb, a small file that claims a huge image, is refused before a pixel
//! is decoded), then the decoder's allocations, then the decoded text.

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};
use rxing::BarcodeFormat;

/// Largest image file read, in bytes.
pub const MAX_IMAGE_BYTES: usize = 16 << 20;
/// Widest or tallest image decoded, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 8192;
/// Most pixels decoded (16 megapixels: a phone photo).
pub const MAX_IMAGE_PIXELS: u64 = 16 << 20;
/// Most bytes the image decoder may allocate at once.
pub const MAX_DECODER_ALLOC: u64 = 160 << 20;
/// Longest text a QR code can hold (version 40-L, alphanumeric mode); a
/// longer decoded text is refused.
pub const MAX_QR_TEXT: usize = 4296;

/// Why no QR text came out of an image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QrError {
    /// The file is over [`MAX_IMAGE_BYTES`].
    #[error("image file of {len} bytes is larger than the limit of {MAX_IMAGE_BYTES}")]
    FileTooLarge {
        /// Bytes given.
        len: usize,
    },
    /// Neither PNG nor JPEG.
    #[error("not a PNG or JPEG image")]
    Format,
    /// The header claims an image over the bounds.
    #[error(
        "image of {width}×{height} pixels is larger than the limit \
         ({MAX_IMAGE_SIDE} pixels a side, {MAX_IMAGE_PIXELS} pixels)"
    )]
    TooLarge {
        /// Width, pixels.
        width: u32,
        /// Height, pixels.
        height: u32,
    },
    /// The image does not decode.
    #[error("image does not decode: {0}")]
    Decode(#[source] image::ImageError),
    /// No QR code was found in the image.
    #[error("no QR code found in the image")]
    NoCode,
    /// The code's text is longer than any QR code holds.
    #[error("QR text of {0} characters is longer than any QR code holds")]
    TextTooLong(usize),
}

/// The text of the QR code in `bytes`, a PNG or JPEG image.
///
/// # Errors
/// [`QrError`]: a file over [`MAX_IMAGE_BYTES`], a format other than PNG
/// or JPEG, dimensions over [`MAX_IMAGE_SIDE`] or [`MAX_IMAGE_PIXELS`]
/// (read from the header, before decoding), an image that does not decode,
/// no code found, or a text over [`MAX_QR_TEXT`].
pub fn decode(bytes: &[u8]) -> Result<String, QrError> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(QrError::FileTooLarge { len: bytes.len() });
    }
    let format = image_format(bytes).ok_or(QrError::Format)?;
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(QrError::Decode)?;
    if width > MAX_IMAGE_SIDE
        || height > MAX_IMAGE_SIDE
        || u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS
    {
        return Err(QrError::TooLarge { width, height });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODER_ALLOC);
    reader.limits(limits);
    let luma = reader.decode().map_err(QrError::Decode)?.into_luma8();
    let (width, height) = luma.dimensions();
    let found = rxing::helpers::detect_in_luma(
        luma.into_raw(),
        width,
        height,
        Some(BarcodeFormat::QR_CODE),
    )
    .map_err(|_| QrError::NoCode)?;
    let text = found.getText();
    if text.len() > MAX_QR_TEXT {
        return Err(QrError::TextTooLong(text.len()));
    }
    Ok(text.to_owned())
}

/// PNG or JPEG by their signatures; `None` for anything else.
pub fn image_format(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use vouch_core::envelope;

    #[test]
    fn decodes_a_png_drawn_by_core() {
        let text = "VCH1:HELLO WORLD 0123456789";
        let code = envelope::qr_code(text, qrcode::EcLevel::M).unwrap();
        let png = envelope::png(&code, 4, 4).unwrap();
        assert_eq!(decode(&png).unwrap(), text);
    }

    /// A PNG whose header says `width`×`height`, with a few bytes of
    /// (bogus) pixel data: a bomb's shape.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        for (kind, data) in [
            (&b"IHDR"[..], &ihdr[..]),
            (b"IDAT", &[0x78, 0x9c, 0, 0, 0, 0][..]),
            (b"IEND", &[][..]),
        ] {
            out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32_update(crc32(kind), data);
            out.extend_from_slice(&(!crc).to_be_bytes());
        }
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        crc32_update(0xFFFF_FFFF, data)
    }

    fn crc32_update(mut crc: u32, data: &[u8]) -> u32 {
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn fail_image_bomb_is_refused_from_its_header() {
        let bomb = png_header(60_000, 60_000);
        assert!(matches!(
            decode(&bomb),
            Err(QrError::TooLarge {
                width: 60_000,
                height: 60_000
            })
        ));
        // Within each side, over the pixel count.
        assert!(matches!(
            decode(&png_header(8000, 8000)),
            Err(QrError::TooLarge { .. })
        ));
    }

    #[test]
    fn fail_garbage() {
        assert!(matches!(decode(b""), Err(QrError::Format)));
        assert!(matches!(decode(b"GIF89a...."), Err(QrError::Format)));
        assert!(matches!(
            decode(b"\x89PNG\r\n\x1a\ngarbage garbage"),
            Err(QrError::Decode(_))
        ));
        assert!(matches!(
            decode(&[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]),
            Err(QrError::Decode(_))
        ));
        // A header with no image data after it.
        assert!(matches!(
            decode(&png_header(10, 10)),
            Err(QrError::Decode(_))
        ));
        let big = vec![0u8; MAX_IMAGE_BYTES + 1];
        assert!(matches!(decode(&big), Err(QrError::FileTooLarge { .. })));
    }

    #[test]
    fn fail_image_without_a_code() {
        let blank = image::GrayImage::from_pixel(64, 64, image::Luma([255]));
        let mut out = Vec::new();
        blank
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        assert!(matches!(decode(&out), Err(QrError::NoCode)));
    }
}
