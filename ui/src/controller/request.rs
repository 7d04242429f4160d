//! A verifier's presentation request on the share view: its `VCHR1:` text
//! pasted, or the path of an image of its QR code ([`read`] takes either). It says who asks (`aud`),
//! the nonce the presentation must repeat, until when, and the claims
//! wanted, which are ticked on the form; the presentation made then is
//! bound to it.

use std::io::Read as _;
use std::path::Path;

use vouch_core::presentation_request::{self, PresentationRequest};
use vouch_core::scan;

use super::share::ShareForm;
use crate::when;

/// Why a request could not be read, in words the view shows.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Nothing pasted.
    #[error("paste the verifier's request (text starting with VCHR1:), or open the image of its QR code")]
    Empty,
    /// No image path typed.
    #[error("type the path of the image of the verifier's QR code")]
    NoImage,
    /// Not a request.
    #[error("that is not a verifier's request: {0}")]
    Parse(#[from] presentation_request::RequestError),
    /// Neither request text nor the path of a file.
    #[error("that is neither a verifier's request (text starting with VCHR1:) nor the path of an image of its QR code")]
    Neither,
    /// The image file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path as typed.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No QR code read from the image.
    #[error("no QR code could be read from {path}")]
    Scan {
        /// The path as typed.
        path: String,
        /// Why.
        #[source]
        source: scan::QrError,
    },
    /// It has expired.
    #[error("the verifier's request expired at {0}; ask the verifier for a new one")]
    Expired(String),
}

/// Reads what was typed or pasted: request text (`VCHR1:…`), else the path
/// of an image of its QR code.
///
/// # Errors
/// [`RequestError::Neither`] for text that is neither; those of
/// [`read_text`] and [`read_image`].
pub fn read(input: &str, now: i64) -> Result<PresentationRequest, RequestError> {
    let input = input.trim();
    if input.is_empty() {
        return Err(RequestError::Empty);
    }
    if input.starts_with(presentation_request::PREFIX) {
        return read_text(input, now);
    }
    if Path::new(input).is_file() {
        return read_image(input, now);
    }
    Err(RequestError::Neither)
}

/// Reads pasted request text, refusing one that expired at `now`.
///
/// # Errors
/// [`RequestError::Empty`], [`RequestError::Parse`],
/// [`RequestError::Expired`].
pub fn read_text(text: &str, now: i64) -> Result<PresentationRequest, RequestError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(RequestError::Empty);
    }
    let request = PresentationRequest::parse(text)?;
    check_fresh(&request, now)?;
    Ok(request)
}

/// Reads the request in the QR code of the PNG or JPEG image at `path` (as
/// typed), at most [`scan::MAX_IMAGE_BYTES`] read.
///
/// # Errors
/// [`RequestError::NoImage`], [`RequestError::Read`], [`RequestError::Scan`],
/// and those of [`read_text`].
pub fn read_image(path: &str, now: i64) -> Result<PresentationRequest, RequestError> {
    let typed = path.trim();
    if typed.is_empty() {
        return Err(RequestError::NoImage);
    }
    let read = |source| RequestError::Read {
        path: typed.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(Path::new(typed))
        .map_err(read)?
        .take(scan::MAX_IMAGE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    let text = scan::decode(&bytes).map_err(|source| RequestError::Scan {
        path: typed.to_owned(),
        source,
    })?;
    read_text(&text, now)
}

/// Refuses a request that has expired at `now` (checked again when the
/// presentation is made).
///
/// # Errors
/// [`RequestError::Expired`].
pub fn check_fresh(request: &PresentationRequest, now: i64) -> Result<(), RequestError> {
    if request.is_expired(now) {
        return Err(RequestError::Expired(when::date_time(request.expires())));
    }
    Ok(())
}

/// What a request asks, as the share view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asked {
    /// Who asks.
    pub aud: String,
    /// Until when, as a date and time.
    pub expires: String,
    /// The claims asked for that the form ticked (their labels), and those
    /// the issuer made always visible.
    pub wanted: Vec<String>,
    /// Claims asked for that this credential does not hold (their paths).
    pub missing: Vec<String>,
}

impl Asked {
    /// `https://hr.example asks, until …, for: …`, in one paragraph.
    pub fn summary(&self) -> String {
        let mut out = format!("{} asks, until {}", self.aud, self.expires);
        if self.wanted.is_empty() && self.missing.is_empty() {
            out.push_str(", for no claim in particular: tick what to show.");
        } else {
            if !self.wanted.is_empty() {
                out.push_str(&format!(", for: {}.", self.wanted.join("; ")));
            } else {
                out.push('.');
            }
            if !self.missing.is_empty() {
                out.push_str(&format!(
                    " This credential does not hold: {}.",
                    self.missing.join(", ")
                ));
            }
        }
        out
    }
}

/// Ticks on `form` every claim `request` asks for (a list asked for as a
/// whole ticks each of its items) and says what it asks.
pub fn apply(form: &mut ShareForm, request: &PresentationRequest) -> Asked {
    let mut wanted = Vec::new();
    let mut missing = Vec::new();
    for path in request.claims() {
        let pointer = path.to_string();
        let inside = format!("{pointer}/");
        let mut found = false;
        for choice in &mut form.choices {
            if choice.pointer == pointer || choice.pointer.starts_with(&inside) {
                choice.checked = true;
                wanted.push(choice.label.clone());
                found = true;
            }
        }
        if let Some((_, label)) = form.shown.iter().find(|(p, _)| *p == pointer) {
            wanted.push(format!("{label} (always shown)"));
            found = true;
        }
        if !found {
            missing.push(pointer);
        }
    }
    Asked {
        aud: request.aud().to_owned(),
        expires: when::date_time(request.expires()),
        wanted,
        missing,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::controller::tests_support::{wallet_with_transcript, NOW};
    use vouch_core::qr::{self, EcLevel};
    use vouch_core::ClaimPath;

    fn request(claims: &[&str], expires: i64) -> PresentationRequest {
        let claims = claims
            .iter()
            .map(|c| ClaimPath::parse(c).unwrap())
            .collect();
        PresentationRequest::new(
            "https://hr.example",
            "nonce-of-the-verifier-1",
            expires,
            claims,
        )
        .unwrap()
    }

    #[test]
    fn a_request_ticks_what_it_asks_for_and_names_what_is_missing() {
        let (_tmp, wallet, id) = wallet_with_transcript();
        let (summary, lines, _) = wallet.show(&id, NOW).unwrap();
        let mut form = ShareForm::new(&summary, &lines);
        let r = request(&["/courses/1", "/degree", "/nickname"], NOW + 300);
        let text = r.to_text();
        let read = read(&format!("  {text}\n"), NOW).unwrap();
        assert_eq!(read, r);
        let asked = apply(&mut form, &read);
        let mut names = form.names();
        names.sort();
        assert_eq!(names, ["courses[CS101]", "degree"]);
        assert_eq!(asked.aud, "https://hr.example");
        assert_eq!(asked.missing, ["/nickname"]);
        assert_eq!(asked.wanted.len(), 2);
        let summary = asked.summary();
        assert!(
            summary.starts_with("https://hr.example asks, until "),
            "{summary}"
        );
        assert!(summary.contains("does not hold: /nickname"), "{summary}");

        // A list asked for as a whole ticks each of its items.
        let mut form = ShareForm::new(&summary_of(&wallet, &id), &lines);
        apply(&mut form, &request(&["/courses"], NOW + 300));
        assert_eq!(form.names().len(), 12);
    }

    fn summary_of(wallet: &vouch_wallet::Wallet, id: &str) -> vouch_wallet::wallet::Summary {
        wallet.show(id, NOW).unwrap().0
    }

    #[test]
    fn a_request_from_the_image_of_its_qr_code() {
        let tmp = tempfile::tempdir().unwrap();
        let r = request(&["/degree"], NOW + 300);
        let code = qr::qr_code(&r.to_text(), EcLevel::M).unwrap();
        let path = tmp.path().join("request.png");
        std::fs::write(&path, qr::png(&code, 6, 4).unwrap()).unwrap();
        assert_eq!(read_image(path.to_str().unwrap(), NOW).unwrap(), r);
        assert_eq!(read(&format!(" {}", path.display()), NOW).unwrap(), r);
    }

    #[test]
    fn fail_broken_expired_and_unreadable_requests() {
        assert!(matches!(read_text(" \n", NOW), Err(RequestError::Empty)));
        assert!(matches!(read(" \n", NOW), Err(RequestError::Empty)));
        assert!(matches!(read("hello", NOW), Err(RequestError::Neither)));
        let e = read_text("hello", NOW).unwrap_err();
        assert!(e.to_string().contains("must start with VCHR1:"), "{e}");
        assert!(matches!(
            read_text("VCHR1:%%%not base45", NOW),
            Err(RequestError::Parse(_))
        ));
        let text = request(&[], NOW + 300).to_text();
        assert!(read_text(&text[..text.len() - 3], NOW).is_err());
        let e = read_text(&request(&[], NOW - 1).to_text(), NOW).unwrap_err();
        assert!(matches!(e, RequestError::Expired(_)), "{e}");
        assert!(e.to_string().contains("ask the verifier for a new one"));

        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(read_image("  ", NOW), Err(RequestError::NoImage)));
        assert!(matches!(
            read_image("/no/such/image.png", NOW),
            Err(RequestError::Read { .. })
        ));
        let not_image = tmp.path().join("notes.txt");
        std::fs::write(&not_image, "not an image").unwrap();
        assert!(matches!(
            read_image(not_image.to_str().unwrap(), NOW),
            Err(RequestError::Scan { .. })
        ));
        // A QR code that is not a request.
        let code = qr::qr_code("VCH1:ABC", EcLevel::M).unwrap();
        let other = tmp.path().join("other.png");
        std::fs::write(&other, qr::png(&code, 6, 4).unwrap()).unwrap();
        assert!(matches!(
            read_image(other.to_str().unwrap(), NOW),
            Err(RequestError::Parse(_))
        ));
    }
}
