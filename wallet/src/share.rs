//! How a presentation leaves the wallet as a QR code: the `VCH1:` envelope
//! in alphanumeric mode at error correction M, as a PNG, an SVG or terminal
//! text. Codes above [`MAX_QR_VERSION`] are refused here: too dense to scan
//! from a phone screen; such presentations go by file or the relay.

use vouch_core::envelope::{self, EnvelopeError};
use vouch_core::qr::{self, EcLevel, QrCode, QrError};

/// The largest QR version the wallet shows (117 × 117 modules).
pub const MAX_QR_VERSION: i16 = 25;

/// Why a presentation could not be made into a QR code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShareError {
    /// The envelope could not be made.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The code could not be drawn.
    #[error(transparent)]
    Qr(#[from] QrError),
    /// The code would be denser than [`MAX_QR_VERSION`].
    #[error("the presentation needs QR version {version} ({chars} characters), above the {MAX_QR_VERSION} a phone scans reliably; disclose fewer claims, or share it as a file (--out)")]
    TooDense {
        /// The version it would need.
        version: i16,
        /// Envelope characters.
        chars: usize,
    },
}

/// A presentation as a QR code.
pub struct QrShare {
    /// The `VCH1:` text in the code.
    pub envelope: String,
    code: QrCode,
}

impl std::fmt::Debug for QrShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "QrShare(version {}, {} chars)",
            self.version(),
            self.envelope.len()
        )
    }
}

impl QrShare {
    /// The envelope of `presentation` in the smallest QR code at level M.
    ///
    /// # Errors
    /// [`ShareError::TooDense`] above [`MAX_QR_VERSION`]; envelope errors.
    pub fn new(presentation: &str) -> Result<QrShare, ShareError> {
        let text = envelope::encode(presentation)?;
        let too_dense = |version| ShareError::TooDense {
            version,
            chars: text.len(),
        };
        let code = match qr::qr_code(&text, EcLevel::M) {
            Ok(code) => code,
            Err(QrError::TooLong { .. }) => return Err(too_dense(41)),
            Err(e) => return Err(e.into()),
        };
        let version = qr::version(&code);
        if version > MAX_QR_VERSION {
            return Err(too_dense(version));
        }
        Ok(QrShare {
            envelope: text,
            code,
        })
    }

    /// The QR version (1–25).
    pub fn version(&self) -> i16 {
        qr::version(&self.code)
    }

    /// Modules across.
    pub fn width(&self) -> usize {
        self.code.width()
    }

    /// A PNG, 8 pixels per module, quiet zone of 4.
    ///
    /// # Errors
    /// Never for versions up to 25 (the image is 1,000 pixels wide).
    pub fn png(&self) -> Result<Vec<u8>, ShareError> {
        Ok(qr::png(&self.code, 8, 4)?)
    }

    /// An SVG.
    pub fn svg(&self) -> String {
        self.code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(400, 400)
            .build()
    }

    /// Terminal text, two modules per character (dark on light).
    pub fn terminal(&self) -> String {
        self.code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .build()
    }
}
