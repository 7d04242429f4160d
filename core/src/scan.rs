//! QR codes in photos and screenshots: PNG or JPEG bytes → the code's text.
//!
//! Everything is bounded before work is done: the file's bytes, then the
//! image's width, height and pixel count read from its header (so an image
//! bomb, a small file that claims a huge image, is refused before a pixel
//! is decoded), then the decoder's allocations, then the decoded text.

use std::io::Cursor;

use rxing::BarcodeFormat;
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

/// Largest image file read, in bytes.
pub const MAX_IMAGE_BYTES: usize = 16 << 20;
/// Widest or tallest image decoded, in pixels.
pub const MAX_IMAGE_SIDE: u32 = 8192;
/// Most pixels decoded (16 megapixels: a phone photo).
pub const MAX_IMAGE_PIXELS: u64 = 16 << 20;
/// Most bytes the PNG decoder may allocate (16 Mpx of 8-bit RGBA, plus
/// its working buffers).
pub const MAX_DECODER_ALLOC: usize = 80 << 20;
/// Longest text a QR code can hold (version 40-L, alphanumeric mode); a
/// longer decoded text is refused.
pub const MAX_QR_TEXT: usize = 4296;

/// An image format this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
}

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
    /// The PNG does not decode.
    #[error("PNG image does not decode: {0}")]
    Png(#[source] png::DecodingError),
    /// The JPEG does not decode.
    #[error("JPEG image does not decode: {0}")]
    Jpeg(#[source] zune_jpeg::errors::DecodeErrors),
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
    let (luma, width, height) = match image_format(bytes).ok_or(QrError::Format)? {
        ImageFormat::Png => png_luma(bytes)?,
        ImageFormat::Jpeg => jpeg_luma(bytes)?,
    };
    let found = rxing::helpers::detect_in_luma(luma, width, height, Some(BarcodeFormat::QR_CODE))
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

fn check_size(width: u32, height: u32) -> Result<(), QrError> {
    if width == 0
        || height == 0
        || width > MAX_IMAGE_SIDE
        || height > MAX_IMAGE_SIDE
        || u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS
    {
        return Err(QrError::TooLarge { width, height });
    }
    Ok(())
}

/// Greyscale of a pixel (ITU-R BT.601 weights), composited over white by
/// its alpha.
fn grey(r: u8, g: u8, b: u8, a: u8) -> u8 {
    let l = (u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114) / 1000;
    let a = u32::from(a);
    // l ≤ 255, so l·a + 255·(255 − a) ≤ 255·255, and the quotient ≤ 255.
    u8::try_from((l * a + 255 * (255 - a)) / 255).unwrap_or(u8::MAX)
}

fn png_luma(bytes: &[u8]) -> Result<(Vec<u8>, u32, u32), QrError> {
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: MAX_DECODER_ALLOC,
        },
    );
    // Palettes expanded, 16 bits cut to 8: one byte per channel.
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let header = decoder.read_header_info().map_err(QrError::Png)?;
    let (width, height) = (header.width, header.height);
    check_size(width, height)?;
    let mut reader = decoder.read_info().map_err(QrError::Png)?;
    let size = reader
        .output_buffer_size()
        .ok_or(QrError::TooLarge { width, height })?;
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf).map_err(QrError::Png)?;
    let channels = frame.color_type.samples();
    let (w, h) = (frame.width as usize, frame.height as usize);
    let mut luma = Vec::with_capacity(w * h);
    for row in buf.chunks(frame.line_size).take(h) {
        for px in row.chunks_exact(channels).take(w) {
            luma.push(match *px {
                [l] => l,
                [l, a] => grey(l, l, l, a),
                [r, g, b] => grey(r, g, b, 255),
                [r, g, b, a] => grey(r, g, b, a),
                _ => u8::MAX,
            });
        }
    }
    if luma.len() != w * h {
        return Err(QrError::TooLarge { width, height });
    }
    Ok((luma, frame.width, frame.height))
}

fn jpeg_luma(bytes: &[u8]) -> Result<(Vec<u8>, u32, u32), QrError> {
    let side = MAX_IMAGE_SIDE as usize;
    let options = DecoderOptions::default()
        .set_max_width(side)
        .set_max_height(side)
        .jpeg_set_out_colorspace(ColorSpace::Luma);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(QrError::Jpeg)?;
    let info = decoder.info().ok_or(QrError::Format)?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    check_size(width, height)?;
    let luma = decoder.decode().map_err(QrError::Jpeg)?;
    if luma.len() != (width as usize) * (height as usize) {
        // Not one byte per pixel: not the greyscale asked for.
        return Err(QrError::Format);
    }
    Ok((luma, width, height))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn decodes_a_png_drawn_by_core() {
        let text = "VCH1:HELLO WORLD 0123456789";
        let code = crate::qr::qr_code(text, crate::qr::EcLevel::M).unwrap();
        let png = crate::qr::png(&code, 4, 4).unwrap();
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
            Err(QrError::Png(_))
        ));
        assert!(matches!(
            decode(&[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]),
            Err(QrError::Jpeg(_))
        ));
        // A header with no image data after it.
        assert!(matches!(decode(&png_header(10, 10)), Err(QrError::Png(_))));
        let big = vec![0u8; MAX_IMAGE_BYTES + 1];
        assert!(matches!(decode(&big), Err(QrError::FileTooLarge { .. })));
    }

    #[test]
    fn fail_image_without_a_code() {
        let blank = grey_png(64, 64, &[255; 64 * 64]);
        assert!(matches!(decode(&blank), Err(QrError::NoCode)));
    }

    fn grey_png(width: u32, height: u32, pixels: &[u8]) -> Vec<u8> {
        encode_png(width, height, png::ColorType::Grayscale, pixels)
    }

    fn encode_png(width: u32, height: u32, color: png::ColorType, pixels: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(pixels).unwrap();
        writer.finish().unwrap();
        out
    }

    /// The greyscale pixels of a QR code drawn by core.
    fn qr_pixels(text: &str) -> (Vec<u8>, u32, u32) {
        let code = crate::qr::qr_code(text, crate::qr::EcLevel::M).unwrap();
        png_luma(&crate::qr::png(&code, 4, 4).unwrap()).unwrap()
    }

    #[test]
    fn decodes_rgba_png_and_jpeg() {
        let text = "VCH1:RGBA AND JPEG 42";
        let (luma, w, h) = qr_pixels(text);
        // RGBA, half of the background transparent (composited over white).
        let rgba: Vec<u8> = luma
            .iter()
            .enumerate()
            .flat_map(|(i, &l)| [l, l, l, if l == 255 && i % 2 == 0 { 0 } else { 255 }])
            .collect();
        let png = encode_png(w, h, png::ColorType::Rgba, &rgba);
        assert_eq!(decode(&png).unwrap(), text);
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 85)
            .encode(
                &luma,
                u16::try_from(w).unwrap(),
                u16::try_from(h).unwrap(),
                jpeg_encoder::ColorType::Luma,
            )
            .unwrap();
        assert_eq!(image_format(&jpeg), Some(ImageFormat::Jpeg));
        assert_eq!(decode(&jpeg).unwrap(), text);
    }

    #[test]
    fn fail_jpeg_bomb_is_refused_from_its_header() {
        // A JPEG claiming 65000×65000 (within JPEG's u16 limit).
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 85)
            .encode(&[0; 64], 8, 8, jpeg_encoder::ColorType::Luma)
            .unwrap();
        // Patch the SOF0 frame header's height and width.
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpeg[sof + 5..sof + 9].copy_from_slice(&[0xFD, 0xE8, 0xFD, 0xE8]);
        assert!(matches!(
            decode(&jpeg),
            Err(QrError::TooLarge { .. } | QrError::Jpeg(_))
        ));
    }
}
