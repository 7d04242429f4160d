//! How a presentation leaves the wallet as a QR code: the `VCH1:` envelope
//! in alphanumeric mode at error correction M, as a PNG, an SVG or terminal
//! text. A code above [`MAX_QR_VERSION`] is too dense to scan from a phone
//! screen: such a presentation goes to the registry's relay instead,
//! encrypted under a fresh key ([`relay`]), and the code holds the link,
//! whose fragment is the key.

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
    /// The text in the code: the `VCH1:` envelope, or a relay link.
    pub text: String,
    code: QrCode,
}

impl std::fmt::Debug for QrShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "QrShare(version {}, {} chars)",
            self.version(),
            self.text.len()
        )
    }
}

impl QrShare {
    /// The envelope of `presentation` in the smallest QR code at level M.
    ///
    /// # Errors
    /// [`ShareError::TooDense`] above [`MAX_QR_VERSION`]; envelope errors.
    pub fn new(presentation: &str) -> Result<QrShare, ShareError> {
        Self::code(envelope::encode(presentation)?)
    }

    fn code(text: String) -> Result<QrShare, ShareError> {
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
        Ok(QrShare { text, code })
    }

    /// A presentation with its anchor proof in the envelope, in the
    /// smallest QR code at level M.
    ///
    /// # Errors
    /// As [`QrShare::new`]; a proof adds about 500 characters, so this is
    /// often [`ShareError::TooDense`].
    pub fn with_anchor(
        presentation: &vouch_core::presentation::Presentation,
    ) -> Result<QrShare, ShareError> {
        let text = envelope::encode_presentation(presentation)?;
        Self::code(text)
    }

    /// A relay link as a QR code (byte mode, level M).
    ///
    /// # Errors
    /// [`ShareError::TooDense`] for a link too long for version 25 (a
    /// relay link is about 110 characters).
    pub fn link(link: &str) -> Result<QrShare, ShareError> {
        let too_dense = || ShareError::TooDense {
            version: 41,
            chars: link.len(),
        };
        let code = QrCode::with_error_correction_level(link.as_bytes(), EcLevel::M)
            .map_err(|_| too_dense())?;
        if qr::version(&code) > MAX_QR_VERSION {
            return Err(too_dense());
        }
        Ok(QrShare {
            text: link.to_owned(),
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

/// Relay items live this long, in seconds (the verifier fetches once).
pub const RELAY_TTL: u64 = 15 * 60;

/// Why a presentation could not go through the relay.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayShareError {
    /// Sealing the JWE.
    #[error(transparent)]
    Seal(#[from] vouch_registry::relay_link::RelayError),
    /// The upload.
    #[error("uploading to the relay: {0}")]
    Upload(#[from] vouch_registry::client::ClientError),
    /// The link's QR code.
    #[error(transparent)]
    Share(#[from] ShareError),
    /// The relay answered with an id that is not 32 hex digits (it goes
    /// into the link, before the key).
    #[error("the relay answered with an id that is not 32 hex digits: {0:?}")]
    RelayId(String),
}

/// Seals `presentation` (its file form, anchor proof included) under a
/// fresh key as a JWE (`dir` + `A256GCM`), uploads it to the relay of
/// `client`'s registry, served once and kept [`RELAY_TTL`] seconds, and
/// returns the link (the key in its fragment, which the relay never sees)
/// as a QR code.
///
/// # Errors
/// [`RelayShareError`]; nothing is uploaded when sealing fails.
pub async fn relay(
    client: &vouch_registry::client::NodeClient,
    presentation: &vouch_core::presentation::Presentation,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<QrShare, RelayShareError> {
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill_bytes(key.as_mut());
    let jwe = vouch_registry::relay_link::seal(&presentation.to_file_json(), &key)?;
    let stored = client.relay_put(jwe.as_bytes(), RELAY_TTL, true).await?;
    if stored.id.len() != 32 || !stored.id.bytes().all(|b| b.is_ascii_hexdigit()) {
        let shown: String = stored.id.chars().take(80).collect();
        return Err(RelayShareError::RelayId(shown));
    }
    let link = vouch_registry::relay_link::link(client.base(), &stored.id, &key);
    Ok(QrShare::link(&link)?)
}

/// Whether a verifier needs the anchor proof to accept a credential of
/// `issuer`, as `view` tells: the issuer's key was rotated out, or its
/// accreditation has ended. `iat` alone is the issuer's word then, so the
/// proof of when the batch was sealed must travel with the presentation.
pub fn needs_anchor(view: &vouch_core::view::ChainView, issuer: &str) -> bool {
    view.rotation(issuer).is_some()
        || view
            .issuer(issuer)
            .is_none_or(|i| i.periods.last().is_none_or(|p| p.until.is_some()))
}
