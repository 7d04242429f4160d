//! Share: tick the claims to disclose (each course on its own), say for
//! whom (`aud`, `nonce`), then a presentation as a QR code, text, a file or
//! a PNG, with a preview of what the verifier sees and what stays hidden.
//!
//! The QR code follows `vouch-wallet present --qr`: the `VCH1:` envelope
//! (with the anchor proof when the wallet's replica says a verifier needs
//! it: [`vouch_wallet::share::needs_anchor`]); when that is denser than
//! QR version 25, the presentation goes encrypted through the relay of the
//! registry the wallet syncs from ([`vouch_wallet::share::relay`], run off
//! the UI thread by [`upload`]) and the code holds the link; with no
//! registry, the holder is told why there is no code and offered the file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rand_core::CryptoRngCore;
use vouch_wallet::credential::ClaimLine;
use vouch_wallet::share::{self as qr_share, QrShare, RelayShareError, ShareError as QrError};
use vouch_wallet::wallet::{Presentation, Summary};
use vouch_wallet::{Binding, Wallet, WalletError};

use super::detail::{self, text};
use crate::when;

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
    /// The upload through the relay failed.
    #[error("could not send it through the encrypted relay at {host}; save it as a file instead")]
    Relay {
        /// The registry's host.
        host: String,
        /// Why.
        #[source]
        source: RelayShareError,
    },
    /// The wallet locked while the presentation was on its way.
    #[error("the wallet locked meanwhile; unlock it and make the presentation again")]
    Locked,
    /// The runtime the upload runs on could not start.
    #[error("cannot start the network runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// A claim the holder may tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The name the wallet takes (`degree`, `courses[CS101]`).
    pub name: String,
    /// The claim's JSON Pointer as issued (`/courses/1`), what a verifier's
    /// request names.
    pub pointer: String,
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
    /// The JSON Pointers and labels of the claims always visible (lists
    /// included).
    pub shown: Vec<(String, String)>,
}

impl ShareForm {
    /// The form for credential `id` from what `Wallet::show` returns: every
    /// selectively disclosable claim (each element of a list on its own),
    /// nothing ticked.
    pub fn new(summary: &Summary, lines: &[ClaimLine]) -> ShareForm {
        let mut choices = Vec::new();
        let mut always_shown = Vec::new();
        let mut shown = Vec::new();
        for line in lines {
            let is_item = line.pointer.matches('/').count() > 1;
            let is_list = line.value.is_array();
            if !line.selective {
                shown.push((line.pointer.clone(), line.label.clone()));
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
                pointer: line.pointer.clone(),
                label: format!("{}: {value}", line.label),
                checked: false,
            });
        }
        ShareForm {
            id: summary.id.clone(),
            title: summary.title.clone(),
            choices,
            always_shown,
            shown,
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

/// A presentation that goes through the relay: what [`upload`] sends.
#[derive(Debug, Clone)]
pub struct RelayJob {
    /// The registry whose relay carries it (the one the wallet syncs from).
    pub url: String,
    /// The presentation in its file form (anchor proof included).
    pub file: vouch_core::presentation::Presentation,
    /// The QR version the envelope would have needed.
    pub version: i16,
}

/// A presentation uploaded to the relay.
#[derive(Debug)]
pub struct Relayed {
    /// The link's QR code.
    pub qr: QrShare,
    /// Its PNG.
    pub png: Vec<u8>,
    /// The relay's host, as the holder reads it.
    pub host: String,
    /// Until when the verifier can fetch it (once), Unix seconds.
    pub expires: i64,
}

/// A presentation made on the share view.
#[derive(Debug)]
pub struct Shared {
    /// The presentation (text, anchor, disclosed, withheld).
    pub presentation: Presentation,
    /// Its QR code and PNG, when it fits one a phone can scan (or, once
    /// uploaded, the relay link's).
    pub qr: Option<(QrShare, Vec<u8>)>,
    /// Why there is no QR code (too dense, no registry): say it, offer the
    /// file.
    pub qr_refused: Option<String>,
    /// Too dense for a QR code, to go through the relay ([`upload`]).
    pub relay: Option<RelayJob>,
    /// Where it went through the relay, and until when it can be fetched.
    pub relayed: Option<(String, i64)>,
    /// Whether the activity log has it.
    pub recorded: bool,
    /// What the verifier will see (labels).
    pub will_see: Vec<String>,
    /// What stays hidden (labels).
    pub hidden: Vec<String>,
}

impl Shared {
    /// `QR version 17 (85 × 85 modules), 1,021 characters, for …`; for a
    /// relay link, where it went and until when the verifier can fetch it.
    pub fn qr_info(&self) -> String {
        if let (Some((share, _)), Some((host, expires))) = (&self.qr, &self.relayed) {
            return format!(
                "Sent through the encrypted relay at {host}; the verifier can fetch it once before {}. The QR code (version {}) holds the link and the key; the relay never sees the key. For {}.",
                when::date_time(*expires),
                share.version(),
                self.presentation.activity.audience
            );
        }
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
/// for a QR code is no error: with a registry set, [`Shared::relay`] says
/// what [`upload`] sends; without one, [`Shared::qr_refused`] says why, and
/// it can still be saved as a file.
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
    let file = vouch_core::presentation::Presentation {
        sd_jwt: presentation.text.clone(),
        anchor_proof: presentation.anchor.clone(),
    };
    // A rotated-out key or an ended accreditation: the anchor proof must
    // travel with it (a replica that cannot be read is as none).
    let needs_anchor = presentation.anchor.is_some() && {
        let issuer = wallet.show(&form.id, now)?.2.issuer;
        let view = wallet.chain_view().ok().flatten();
        view.is_some_and(|v| qr_share::needs_anchor(&v, &issuer))
    };
    let attempt = if needs_anchor {
        QrShare::with_anchor(&file)
    } else {
        QrShare::new(&presentation.text)
    };
    let (mut qr, mut qr_refused, mut relay) = (None, None, None);
    match attempt {
        Ok(share) => {
            let png = share.png()?;
            qr = Some((share, png));
        }
        Err(QrError::TooDense { version, .. }) => match wallet.registry()? {
            Some(url) => relay = Some(RelayJob { url, file, version }),
            None => {
                qr_refused = Some(format!(
                    "This selection needs QR version {version}, too dense for a phone to scan, and no registry is set to send it through the encrypted relay (Settings, Registry). Untick some claims, or save it as a file."
                ));
            }
        },
        Err(e) => return Err(e.into()),
    }
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
        relay,
        relayed: None,
        recorded,
        will_see,
        hidden,
    })
}

/// The host of a registry URL, as the holder reads it:
/// `https://registry.example:8443/x` → `registry.example:8443`.
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or(rest)
        .to_owned()
}

/// Seals the presentation under a fresh key, uploads it to the relay
/// (served once, for [`vouch_wallet::share::RELAY_TTL`] seconds) and draws
/// the link's QR code. Blocking (network): run it off the UI thread.
///
/// # Errors
/// [`ShareError::Relay`]: the relay could not be reached or refused it.
pub fn upload(
    job: &RelayJob,
    now: i64,
    rng: &mut impl CryptoRngCore,
) -> Result<Relayed, ShareError> {
    let host = host_of(&job.url);
    let relay_error = |source| ShareError::Relay {
        host: host.clone(),
        source,
    };
    let client = vouch_registry::client::NodeClient::new(&job.url)
        .map_err(|e| relay_error(RelayShareError::Upload(e)))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ShareError::Runtime)?;
    let qr = runtime
        .block_on(qr_share::relay(&client, &job.file, rng))
        .map_err(relay_error)?;
    let png = qr.png()?;
    let ttl = i64::try_from(qr_share::RELAY_TTL).unwrap_or(i64::MAX);
    Ok(Relayed {
        qr,
        png,
        host,
        expires: now.saturating_add(ttl),
    })
}

/// Takes the relay link's code as the presentation's QR code and records it
/// as shared through the relay.
///
/// # Errors
/// Store errors.
pub fn finish_relay(
    wallet: &mut Wallet,
    shared: &mut Shared,
    relayed: Relayed,
    rng: &mut impl CryptoRngCore,
) -> Result<(), ShareError> {
    shared.relay = None;
    shared.qr = Some((relayed.qr, relayed.png));
    shared.relayed = Some((relayed.host, relayed.expires));
    if !shared.recorded {
        shared.presentation.activity.channel = "relay".to_owned();
        wallet.record(&shared.presentation, rng)?;
        shared.recorded = true;
    }
    Ok(())
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

    #[test]
    fn fail_too_dense_without_a_registry_says_why_and_offers_the_file() {
        use crate::controller::tests_support::{
            incompressible_title, transcript_titled, wallet_holding,
        };
        let (tmp, mut wallet, id) =
            wallet_holding(|did| transcript_titled(did, incompressible_title));
        let mut rng = StdRng::seed_from_u64(5);
        let (summary, lines, _) = wallet.show(&id, NOW).unwrap();
        let mut form = ShareForm::new(&summary, &lines);
        for i in 0..form.choices.len() {
            form.toggle(i, true);
        }
        let b = binding("https://verifier.example", "n-2", "qr", &mut rng).unwrap();
        let mut shared = make(&mut wallet, &form, &b, NOW, &mut rng).unwrap();
        assert!(shared.qr.is_none() && shared.relay.is_none());
        let why = shared.qr_info();
        assert!(why.starts_with("This selection needs QR version "), "{why}");
        assert!(why.contains("no registry is set"), "{why}");
        assert!(why.contains("save it as a file"), "{why}");
        assert!(wallet.activity().unwrap().is_empty(), "not shared yet");
        let path = tmp.path().join("p.json");
        save_text(&mut wallet, &mut shared, path.to_str().unwrap(), &mut rng).unwrap();
        assert_eq!(wallet.activity().unwrap()[0].channel, "file");

        // With a registry set, it is a job for the relay instead.
        wallet
            .set_registry("https://registry.example", &mut rng)
            .unwrap();
        let shared = make(&mut wallet, &form, &b, NOW, &mut rng).unwrap();
        let job = shared.relay.as_ref().unwrap();
        assert_eq!(job.url, "https://registry.example");
        assert!(job.version > vouch_wallet::share::MAX_QR_VERSION);
        assert!(shared.qr.is_none() && shared.qr_refused.is_none());
    }

    #[test]
    fn hosts_of_registry_urls() {
        assert_eq!(host_of("https://registry.example"), "registry.example");
        assert_eq!(host_of("http://127.0.0.1:7400/base/"), "127.0.0.1:7400");
        assert_eq!(host_of("registry.example"), "registry.example");
    }
}
