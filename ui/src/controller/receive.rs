//! Receive: a fresh holder DID (text and QR code) for an issuer, and the
//! import of what the issuer sends, from a file or pasted text.

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
    #[error("{0} is not a text file (a credential is an .sd-jwt text file)")]
    NotText(String),
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

/// The text of a credential file at `path` (as typed), read with a size
/// cap.
///
/// # Errors
/// [`ImportError::Empty`], [`ImportError::Read`], [`ImportError::TooLarge`],
/// [`ImportError::NotText`].
pub fn read_file(path: &str) -> Result<String, ImportError> {
    let typed = path.trim();
    if typed.is_empty() {
        return Err(ImportError::Empty);
    }
    let read = |source| ImportError::Read {
        path: typed.to_owned(),
        source,
    };
    let p = Path::new(typed);
    let len = std::fs::metadata(p).map_err(read)?.len();
    if len > MAX_FILE {
        return Err(ImportError::TooLarge {
            path: typed.to_owned(),
            len,
        });
    }
    let bytes = std::fs::read(p).map_err(read)?;
    String::from_utf8(bytes).map_err(|_| ImportError::NotText(typed.to_owned()))
}

/// Imports pasted or read credential text: an SD-JWT as issued, or `VCH1:`
/// text (decoded first). Returns the new id.
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
    let credential = if text.starts_with("VCH1:") {
        vouch_core::envelope::decode(text)?
    } else {
        text.to_owned()
    };
    Ok(wallet.import(&credential, None, now, rng)?)
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
}
