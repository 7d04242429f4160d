//! Receive: a fresh holder DID (text and QR code) for an issuer, and the
//! import of what the issuer sends: a file (its path typed, or dropped on
//! the window), the image of the issuer's QR code, or pasted text.

use std::io::Read as _;
use std::path::Path;

use rand_core::CryptoRngCore;
use vouch_core::qr::{self, EcLevel};
use vouch_wallet::{Wallet, WalletError};

/// Largest credential file read (core refuses SD-JWTs above 1 MiB).
pub const MAX_FILE: u64 = 1 << 20;

/// Why an import was refused, in words the view shows.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// Nothing given.
    #[error("type the path of the credential file, or paste its text")]
    Empty,
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path as typed.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Larger than [`MAX_FILE`].
    #[error("{path} is {len} bytes; a credential file is at most {MAX_FILE} bytes")]
    TooLarge {
        /// The path as typed.
        path: String,
        /// Its size.
        len: u64,
    },
    /// Not text.
    #[error("{0} is neither a text file (a credential is an .sd-jwt text file) nor a PNG or JPEG image of a QR code")]
    NotText(String),
    /// JSON: an issuer's archive (`credentials.jsonl`) or manifest, which
    /// the command line imports.
    #[error("{0} is JSON (an issuer's credentials.jsonl archive or manifest, not one credential): import an archive with `vouch-wallet import --dir WALLET {0}`, a credential with its manifest with `--manifest`")]
    Json(String),
    /// An image without a readable QR code.
    #[error("no QR code could be read from the image {path}")]
    Scan {
        /// The path as typed.
        path: String,
        /// Why.
        #[source]
        source: vouch_core::scan::QrError,
    },
    /// `VCH1:` text that does not decode.
    #[error("the VCH1: text does not decode: {0}")]
    Envelope(#[from] vouch_core::envelope::EnvelopeError),
    /// The wallet refused it (not a credential, not ours, a duplicate).
    #[error("refused: {0}")]
    Wallet(#[from] WalletError),
}

/// A fresh holder DID of `wallet` and its QR code as PNG.
///
/// # Errors
/// Store errors; the QR code (a did:key always fits one).
pub fn new_did(
    wallet: &mut Wallet,
    now: i64,
    rng: &mut impl CryptoRngCore,
) -> Result<(String, Vec<u8>), DidError> {
    let did = wallet.receive(now, rng)?;
    // did:key text has lower-case letters: byte mode, which the wallet's
    // alphanumeric-only encoder for envelopes does not cover.
    let code = qrcode::QrCode::with_error_correction_level(did.as_str(), EcLevel::M)?;
    let png = qr::png(&code, 6, 4)?;
    Ok((did.as_str().to_owned(), png))
}

/// Why no DID could be handed out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DidError {
    /// The wallet.
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// Encoding the QR code.
    #[error("cannot draw the DID as a QR code: {0}")]
    Encode(#[from] qrcode::types::QrError),
    /// Drawing the PNG.
    #[error(transparent)]
    Png(#[from] vouch_core::qr::QrError),
}

/// The text of a credential file at `path` (as typed): an SD-JWT or
/// `VCH1:` text file of at most [`MAX_FILE`] bytes, or a PNG or JPEG image
/// of an issuer's QR code (at most the scanner's
/// [`vouch_core::scan::MAX_IMAGE_BYTES`]), decoded to the text it holds.
///
/// # Errors
/// [`ImportError::Empty`], [`ImportError::Read`], [`ImportError::TooLarge`],
/// [`ImportError::NotText`], [`ImportError::Json`], [`ImportError::Scan`].
pub fn read_file(path: &str) -> Result<String, ImportError> {
    let typed = path.trim();
    if typed.is_empty() {
        return Err(ImportError::Empty);
    }
    let read = |source| ImportError::Read {
        path: typed.to_owned(),
        source,
    };
    let max_image = vouch_core::scan::MAX_IMAGE_BYTES as u64;
    let mut bytes = Vec::new();
    std::fs::File::open(Path::new(typed))
        .map_err(read)?
        .take(max_image.max(MAX_FILE) + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if vouch_core::scan::image_format(&bytes).is_some() {
        return vouch_core::scan::decode(&bytes).map_err(|source| ImportError::Scan {
            path: typed.to_owned(),
            source,
        });
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Err(ImportError::Json(typed.to_owned()));
    }
    let len = bytes.len() as u64;
    if len > MAX_FILE {
        return Err(ImportError::TooLarge {
            path: typed.to_owned(),
            len,
        });
    }
    String::from_utf8(bytes).map_err(|_| ImportError::NotText(typed.to_owned()))
}

/// Imports pasted or read credential text: an SD-JWT as issued, or `VCH1:`
/// text (the wallet decodes it and keeps the anchor proof it carries).
/// Returns the new id.
///
/// # Errors
/// [`ImportError::Empty`], [`ImportError::Envelope`], [`ImportError::Wallet`]
/// (nothing is stored then).
pub fn import(
    wallet: &mut Wallet,
    text: &str,
    now: i64,
    rng: &mut impl CryptoRngCore,
) -> Result<String, ImportError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ImportError::Empty);
    }
    wallet.import(text, None, now, rng).map_err(|e| match e {
        WalletError::Envelope(e) => ImportError::Envelope(e),
        other => other.into(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::controller::tests_support::{credential_text, transcript, NOW};
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use vouch_core::seal::Cost;

    #[test]
    fn new_did_then_import_its_credential_from_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(6);
        let (mut wallet, _) =
            Wallet::create(&tmp.path().join("w"), "long enough", Cost::TEST, &mut rng).unwrap();
        let (did, png) = new_did(&mut wallet, NOW, &mut rng).unwrap();
        assert!(did.starts_with("did:key:z6Mk"));
        assert!(crate::image::rgba_from_png(&png).is_ok());
        let file = tmp.path().join("t.sd-jwt");
        let parsed = vouch_core::DidKey::parse(&did).unwrap();
        std::fs::write(&file, transcript(&parsed)).unwrap();
        let text = read_file(&format!("  {}\n", file.display())).unwrap();
        // The same credential as the image of its VCH1: QR code reads the same.
        let envelope = vouch_core::envelope::encode(&text).unwrap();
        let code = qr::qr_code(&envelope, EcLevel::M).unwrap();
        let image = tmp.path().join("t.png");
        std::fs::write(&image, qr::png(&code, 4, 4).unwrap()).unwrap();
        let scanned = read_file(&image.display().to_string()).unwrap();
        assert_eq!(vouch_core::envelope::decode(&scanned).unwrap(), text);
        let id = import(&mut wallet, &text, NOW, &mut rng).unwrap();
        assert_eq!(wallet.list(NOW).unwrap()[0].id, id);
        assert!(matches!(
            import(&mut wallet, &text, NOW, &mut rng),
            Err(ImportError::Wallet(WalletError::Duplicate(_)))
        ));
    }

    #[test]
    fn fail_import_of_broken_missing_foreign_and_binary_input() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let (mut wallet, _) =
            Wallet::create(&tmp.path().join("w"), "long enough", Cost::TEST, &mut rng).unwrap();
        assert!(matches!(read_file(" "), Err(ImportError::Empty)));
        assert!(matches!(
            read_file(&tmp.path().join("nope").display().to_string()),
            Err(ImportError::Read { .. })
        ));
        let binary = tmp.path().join("b");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        assert!(matches!(
            read_file(&binary.display().to_string()),
            Err(ImportError::NotText(_))
        ));
        let big = tmp.path().join("big");
        std::fs::write(&big, vec![b'a'; (MAX_FILE + 1) as usize]).unwrap();
        assert!(matches!(
            read_file(&big.display().to_string()),
            Err(ImportError::TooLarge { .. })
        ));
        let archive = tmp.path().join("credentials.jsonl");
        std::fs::write(&archive, "\n{\"row\":1}\n{\"row\":2}\n").unwrap();
        let e = read_file(&archive.display().to_string()).unwrap_err();
        assert!(matches!(e, ImportError::Json(_)));
        assert!(e.to_string().contains("vouch-wallet import"), "{e}");
        let image = tmp.path().join("no-code.png");
        let blank = vec![255u8; 40 * 40];
        let mut png_bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut png_bytes, 40, 40);
            encoder.set_color(png::ColorType::Grayscale);
            encoder
                .write_header()
                .unwrap()
                .write_image_data(&blank)
                .unwrap();
        }
        std::fs::write(&image, &png_bytes).unwrap();
        assert!(matches!(
            read_file(&image.display().to_string()),
            Err(ImportError::Scan { .. })
        ));
        assert!(matches!(
            import(&mut wallet, "not a credential", NOW, &mut rng),
            Err(ImportError::Wallet(_))
        ));
        assert!(matches!(
            import(&mut wallet, "VCH1:%%%", NOW, &mut rng),
            Err(ImportError::Envelope(_))
        ));
        // Bound to someone else's key.
        let e = import(&mut wallet, &credential_text(), NOW, &mut rng).unwrap_err();
        assert!(matches!(e, ImportError::Wallet(WalletError::NotOurKey(_))));
        assert!(e
            .to_string()
            .starts_with("refused: the credential is bound to"));
        assert!(wallet.list(NOW).unwrap().is_empty());
    }

    #[test]
    fn the_anchor_proof_a_vch1_code_carries_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(8);
        let (mut wallet, _) =
            Wallet::create(&tmp.path().join("w"), "long enough", Cost::TEST, &mut rng).unwrap();
        let (did, _) = new_did(&mut wallet, NOW, &mut rng).unwrap();
        let proof =
            vouch_core::AnchorProof::new(4, 1, 2, vec![vouch_core::log::Hash([9; 32])]).unwrap();
        let envelope =
            vouch_core::envelope::encode_presentation(&vouch_core::presentation::Presentation {
                sd_jwt: transcript(&vouch_core::DidKey::parse(&did).unwrap()),
                anchor_proof: Some(proof.clone()),
            })
            .unwrap();
        let id = import(&mut wallet, &envelope, NOW, &mut rng).unwrap();
        assert_eq!(wallet.credential(&id).unwrap().anchor, Some(proof));
    }
}
