//! PNG bytes as a [`slint::Image`]: the wallet draws QR codes as PNG
//! (`QrShare::png`), the views show pixels.

use slint::{Image, Rgba8Pixel, SharedPixelBuffer};

/// Largest image accepted, in pixels per side (a version-40 QR code at 8
/// pixels per module with its quiet zone is 1,512).
pub const MAX_SIDE: u32 = 4096;

/// Why PNG bytes could not be shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// Not a PNG the decoder reads.
    #[error("not a readable PNG image: {0}")]
    Decode(#[from] png::DecodingError),
    /// Wider or taller than [`MAX_SIDE`].
    #[error("the image is {width}×{height} pixels, above the {MAX_SIDE} per side shown")]
    TooLarge {
        /// Pixels across.
        width: u32,
        /// Pixels down.
        height: u32,
    },
    /// A pixel format the wallet never writes (16-bit samples are reduced,
    /// palettes expanded; this is what is left).
    #[error("unsupported PNG pixel format {0:?}")]
    Format(png::ColorType),
}

/// Decodes PNG `bytes` to RGBA pixels.
///
/// # Errors
/// [`ImageError`] for anything but a PNG of at most [`MAX_SIDE`] pixels a
/// side.
pub fn rgba_from_png(bytes: &[u8]) -> Result<SharedPixelBuffer<Rgba8Pixel>, ImageError> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info()?;
    let info = reader.info();
    if info.width > MAX_SIDE || info.height > MAX_SIDE {
        return Err(ImageError::TooLarge {
            width: info.width,
            height: info.height,
        });
    }
    let size = reader.output_buffer_size().ok_or(ImageError::TooLarge {
        width: info.width,
        height: info.height,
    })?;
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf)?;
    let data = &buf[..frame.buffer_size()];
    let rgba: Vec<u8> = match frame.color_type {
        png::ColorType::Rgba => data.to_vec(),
        png::ColorType::Rgb => data
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::Grayscale => data.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::GrayscaleAlpha => data
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        other => return Err(ImageError::Format(other)),
    };
    Ok(SharedPixelBuffer::clone_from_slice(
        &rgba,
        frame.width,
        frame.height,
    ))
}

/// PNG `bytes` as an image for the views.
///
/// # Errors
/// As [`rgba_from_png`].
pub fn from_png(bytes: &[u8]) -> Result<Image, ImageError> {
    Ok(Image::from_rgba8(rgba_from_png(bytes)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vouch_wallet::share::QrShare;

    #[test]
    fn qr_png_decodes_to_black_and_white_pixels_of_its_size() {
        let share = QrShare::new(&vouch_core_sample()).unwrap();
        let pixels = rgba_from_png(&share.png().unwrap()).unwrap();
        let side = (share.width() as u32 + 8) * 8;
        assert_eq!((pixels.width(), pixels.height()), (side, side));
        let corner = pixels.as_slice()[0];
        assert_eq!((corner.r, corner.a), (255, 255), "quiet zone is white");
        let module = pixels.as_slice()[(4 * 8 * side + 4 * 8) as usize];
        assert_eq!(module.r, 0, "the finder pattern's corner is dark");
    }

    #[test]
    fn fail_broken_and_truncated_png() {
        assert!(matches!(
            rgba_from_png(b"not a png"),
            Err(ImageError::Decode(_))
        ));
        let share = QrShare::new(&vouch_core_sample()).unwrap();
        let png = share.png().unwrap();
        assert!(rgba_from_png(&png[..png.len() / 2]).is_err());
        assert!(rgba_from_png(&[]).is_err());
    }

    /// Any SD-JWT text the envelope takes: a real credential is made in
    /// the controller tests; the envelope only needs the shape.
    fn vouch_core_sample() -> String {
        crate::controller::tests_support::credential_text()
    }
}
