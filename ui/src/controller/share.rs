//! Share: tick the claims to disclose (each course on its own), say for
//! whom (`aud`, `nonce`), then a presentation as a QR code, text, a file or
//! a PNG, with a preview of what the verifier sees and what stays hidden.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rand_core::CryptoRngCore;
use vouch_wallet::credential::ClaimLine;
use vouch_wallet::share::{QrShare, ShareError as QrError};
use vouch_wallet::wallet::{Presentation, Summary};
use vouch_wallet::{Binding, Wallet, WalletError};

use super::detail::{self, text};

/// Why a presentation could not be made or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShareError {
    /// Nothing ticked.
    #[error("tick at least one claim to share")]
    NothingTicked,
    /// No verifier audience.
    #[error("say who the presentation is for: the verifier's audience (aud), for example https://verifier.example")]
    NoAudience,
    /// No save path.
    #[error("type a path to save to")]
    NoPath,
    /// The wallet refused (a claim name, the store).
    #[error(transparent)]
    Wallet(#[from] WalletError),
    /// Writing the file.
    #[error("cannot write {path} (it must not exist yet, and its folder must): {source}")]
    Save {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The PNG could not be drawn.
    #[error(transparent)]
    Qr(#[from] QrError),
}

/// A claim the holder may tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The name the wallet takes (`degree`, `courses[CS101]`).
    pub name: String,
    /// What the holder reads: `Degree: BSc`, `Courses: CS101 Topic 1 (A)`.
    pub label: String,
    /// Ticked.
    pub checked: bool,
}

/// The share form of one credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareForm {
    /// The credential's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// The claims the holder chooses, nothing ticked at first.
    pub choices: Vec<Choice>,
    /// The claims the issuer made always visible (`Label: value`).
    pub always_shown: Vec<String>,
}

impl ShareForm {
    /// The form for credential `id` from what `Wallet::show` returns: every
    /// selectively disclosable claim (each element of a list on its own),
    /// nothing ticked.
    pub fn new(summary: &Summary, lines: &[ClaimLine]) -> ShareForm {
        let mut choices = Vec::new();
        let mut always_shown = Vec::new();
        for line in lines {
            let is_item = line.pointer.matches('/').count() > 1;
            let is_list = line.value.is_array();
            if !line.selective {
                if !is_item && !is_list {
                    always_shown.push(format!("{}: {}", line.label, text(&line.value)));
                }
                continue;
            }
            // A selective list is chosen item by item.
            if is_list && !is_item {
                continue;
            }
            let value = match line.value.as_object() {
                Some(record) => record_text(record),
                None => text(&line.value),
            };
            choices.push(Choice {
                name: line.name.clone(),
                label: format!("{}: {value}", line.label),
                checked: false,
            });
        }
        ShareForm {
            id: summary.id.clone(),
            title: summary.title.clone(),
            choices,
            always_shown,
        }
    }

    /// Ticks or unticks choice `index` (out of range: nothing).
    pub fn toggle(&mut self, index: usize, checked: bool) {
        if let Some(c) = self.choices.get_mut(index) {
            c.checked = checked;
        }
    }

    /// Ticks the choice named `name`; whether there is one.
    pub fn tick(&mut self, name: &str) -> bool {
        match self.choices.iter_mut().find(|c| c.name == name) {
            Some(c) => {
                c.checked = true;
                true
            }
            None => false,
        }
    }

    /// The names ticked.
    pub fn names(&self) -> Vec<String> {
        self.choices
            .iter()
            .filter(|c| c.checked)
            .map(|c| c.name.clone())
            .collect()
    }

    /// The holder-facing label of a claim name (the name itself when it
    /// is not a choice).
    pub fn label_of(&self, name: &str) -> String {
        self.choices
            .iter()
            .find(|c| c.name == name)
            .map_or_else(|| name.to_owned(), |c| c.label.clone())
    }
}

/// A record (a course) in one line: the fields of
/// [`detail::FIRST_COLUMNS`] first, `CS101 Introduction to Programming 6 A
/// 2024-S1`.
fn record_text(record: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut keys: Vec<&String> = record.keys().collect();
    keys.sort_by_key(|k| detail::column_rank(k));
    keys.iter()
        .map(|k| text(&record[k.as_str()]))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whom the presentation is for: `aud` as typed (required), the verifier's
/// `nonce`, or a fresh random one when left empty.
///
/// # Errors
/// [`ShareError::NoAudience`].
pub fn binding(
    aud: &str,
    nonce: &str,
    channel: &str,
    rng: &mut impl CryptoRngCore,
) -> Result<Binding, ShareError> {
    let aud = aud.trim();
    if aud.is_empty() {
        return Err(ShareError::NoAudience);
    }
    let nonce = match nonce.trim() {
        "" => {
            let mut raw = [0u8; 16];
            rng.fill_bytes(&mut raw);
            raw.iter().map(|b| format!("{b:02x}")).collect()
        }
        given => given.to_owned(),
    };
    Ok(Binding {
        aud: aud.to_owned(),
        nonce,
        channel: channel.to_owned(),
    })
}

/// A presentation made on the share view.
#[derive(Debug)]
pub struct Shared {
    /// The presentation (text, anchor, disclosed, withheld).
    pub presentation: Presentation,
    /// Its QR code and PNG, when it fits one a phone can scan.
    pub qr: Option<(QrShare, Vec<u8>)>,
    /// Why there is no QR code (too dense): say it, offer the file.
    pub qr_refused: Option<String>,
    /// Whether the activity log has it.
    pub recorded: bool,
    /// What the verifier will see (labels).
    pub will_see: Vec<String>,
    /// What stays hidden (labels).
    pub hidden: Vec<String>,
}

impl Shared {
    /// `QR version 17 (85 × 85 modules), 1,021 characters`.
    pub fn qr_info(&self) -> String {
        match &self.qr {
            Some((share, _)) => format!(
                "QR version {} ({} × {} modules), {} characters, for {}",
                share.version(),
                share.width(),
                share.width(),
                share.text.len(),
                self.presentation.activity.audience
            ),
            None => self.qr_refused.clone().unwrap_or_default(),
        }
    }
}

/// Makes the presentation of the ticked claims for `binding` and its QR
/// code; a presentation shown as a QR code is recorded in the activity log
/// as shared.
///
/// # Errors
/// [`ShareError::NothingTicked`]; wallet errors. A presentation too dense
/// for a QR code is no error: [`Shared::qr_refused`] says why, and it can
/// still be saved as a file.
pub fn make(
    wallet: &mut Wallet,
    form: &ShareForm,
    binding: &Binding,
    now: i64,
    rng: &mut impl CryptoRngCore,
) -> Result<Shared, ShareError> {
    let names = form.names();
    if names.is_empty() {
        return Err(ShareError::NothingTicked);
    }
    let presentation = wallet.prepare(&form.id, &names, binding, now)?;
    let (qr, qr_refused) = match QrShare::new(&presentation.text) {
        Ok(share) => {
            let png = share.png()?;
            (Some((share, png)), None)
        }
        Err(e @ QrError::TooDense { .. }) => (None, Some(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    let recorded = qr.is_some();
    if recorded {
        wallet.record(&presentation, rng)?;
    }
    let will_see = presentation
        .disclosed
        .iter()
        .map(|n| form.label_of(n))
        .collect();
    let hidden = presentation
        .withheld
        .iter()
        .map(|n| form.label_of(n))
        .collect();
    Ok(Shared {
        presentation,
        qr,
        qr_refused,
        recorded,
        will_see,
        hidden,
    })
}

/// Saves the presentation at `path` (a new file): the compact text, or the
/// file form with the anchor proof when the wallet holds one. Recorded as
/// shared by file unless already recorded.
///
/// # Errors
/// [`ShareError::NoPath`], [`ShareError::Save`]; store errors.
pub fn save_text(
    wallet: &mut Wallet,
    shared: &mut Shared,
    path: &str,
    rng: &mut impl CryptoRngCore,
) -> Result<PathBuf, ShareError> {
    let path = path_of(path)?;
    let p = &shared.presentation;
    let body = match &p.anchor {
        Some(anchor) => vouch_core::presentation::Presentation {
            sd_jwt: p.text.clone(),
            anchor_proof: Some(anchor.clone()),
        }
        .to_file_json(),
        None => p.text.clone(),
    };
    write_new(&path, body.as_bytes())?;
    if !shared.recorded {
        shared.presentation.activity.channel = "file".to_owned();
        wallet.record(&shared.presentation, rng)?;
        shared.recorded = true;
    }
    Ok(path)
}

/// Saves the QR code's PNG at `path` (a new file).
///
/// # Errors
/// [`ShareError::NoPath`], [`ShareError::Save`]; the QR refusal when the
/// presentation has no QR code.
pub fn save_png(shared: &Shared, path: &str) -> Result<PathBuf, ShareError> {
    let path = path_of(path)?;
    let Some((_, png)) = &shared.qr else {
        return Err(ShareError::Qr(
            QrShare::new(&shared.presentation.text).err().map_or(
                QrError::TooDense {
                    version: 41,
                    chars: shared.presentation.text.len(),
                },
                |e| e,
            ),
        ));
    };
    write_new(&path, png)?;
    Ok(path)
}

fn path_of(text: &str) -> Result<PathBuf, ShareError> {
    match text.trim() {
        "" => Err(ShareError::NoPath),
        p => Ok(PathBuf::from(p)),
    }
}

/// Writes a new file; refuses to overwrite.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), ShareError> {
    let save = |source| ShareError::Save {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(save)?;
    f.write_all(bytes).map_err(save)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::controller::tests_support::{wallet_with_transcript, NOW};
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use vouch_core::vc::{self, PresentationRequest};

    #[test]
    fn three_courses_make_a_qr_that_verifies_and_is_logged() {
        let (tmp, mut wallet, id) = wallet_with_transcript();
        let mut rng = StdRng::seed_from_u64(3);
        let (summary, lines, _) = wallet.show(&id, NOW).unwrap();
        let mut form = ShareForm::new(&summary, &lines);
        assert!(form.choices.iter().all(|c| !c.checked));
        let cs101 = form
            .choices
            .iter()
            .find(|c| c.name == "courses[CS101]")
            .unwrap();
        assert_eq!(cs101.label, "Courses: CS101 Topic 1 6 B 2025-S1");
        let degree = form.choices.iter().find(|c| c.name == "degree").unwrap();
        assert_eq!(degree.label, "Degree: BSc");
        for name in ["courses[CS101]", "courses[CS104]", "courses[CS107]"] {
            assert!(form.tick(name), "{name}");
        }
        assert!(matches!(
            binding(" ", "n", "qr", &mut rng),
            Err(ShareError::NoAudience)
        ));
        let b = binding("https://verifier.example", "n-1", "qr", &mut rng).unwrap();
        let mut shared = make(&mut wallet, &form, &b, NOW, &mut rng).unwrap();
        assert_eq!(shared.will_see.len(), 3);
        assert!(shared.hidden.len() >= 9);
        let (qr, png) = shared.qr.as_ref().unwrap();
        assert!(qr.version() <= vouch_wallet::share::MAX_QR_VERSION);
        assert!(png.starts_with(b"\x89PNG"));
        assert!(shared.qr_info().starts_with("QR version "));
        let request = PresentationRequest {
            aud: "https://verifier.example".into(),
            nonce: "n-1".into(),
            max_age: 300,
        };
        let text = vouch_core::envelope::decode(&qr.text).unwrap();
        let verdict = vc::verify_presentation(&text, &request, NOW + 1).unwrap();
        assert!(verdict.is_valid(), "{:?}", verdict.first_failure());
        assert_eq!(wallet.activity().unwrap().len(), 1);

        // Saving: a new file only; not logged twice.
        let path = tmp.path().join("p.txt");
        let path = path.to_str().unwrap();
        save_text(&mut wallet, &mut shared, path, &mut rng).unwrap();
        assert_eq!(
            std::fs::read_to_string(path).unwrap(),
            shared.presentation.text
        );
        assert!(matches!(
            save_text(&mut wallet, &mut shared, path, &mut rng),
            Err(ShareError::Save { .. })
        ));
        assert!(matches!(save_png(&shared, "  "), Err(ShareError::NoPath)));
        let png_path = tmp.path().join("p.png");
        save_png(&shared, png_path.to_str().unwrap()).unwrap();
        assert_eq!(wallet.activity().unwrap().len(), 1);
    }

    #[test]
    fn fail_nothing_ticked_and_empty_nonce_gets_a_fresh_one() {
        let (_tmp, mut wallet, id) = wallet_with_transcript();
        let mut rng = StdRng::seed_from_u64(4);
        let (summary, lines, _) = wallet.show(&id, NOW).unwrap();
        let form = ShareForm::new(&summary, &lines);
        let b = binding("aud", "", "qr", &mut rng).unwrap();
        assert_eq!(b.nonce.len(), 32);
        assert!(matches!(
            make(&mut wallet, &form, &b, NOW, &mut rng),
            Err(ShareError::NothingTicked)
        ));
        assert!(wallet.activity().unwrap().is_empty());
    }
}
