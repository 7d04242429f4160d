//! What a batch leaves in `OUT/`: one file per credential (and its QR code),
//! and `manifest.json`; and the check of a finished batch.

use std::path::Path;

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use vouch_core::chain::{Action, Entry};
use vouch_core::log::{self, Hash};
use vouch_core::{anchor, AnchorProof};
use vouch_registry::now;

use super::batch::Progress;
use super::{io, IssuerError};

/// A credential's id: the first 16 bytes of the SHA-256 of its issuer JWT.
pub fn credential_id(credential: &str) -> String {
    let jwt = credential.split('~').next().unwrap_or_default();
    hex::encode(&Sha256::digest(jwt.as_bytes())[..16])
}

/// Writes one file per credential, on several threads (creating files is
/// mostly waiting on the file system).
pub(super) fn write_files(
    out: &Path,
    names: &[String],
    creds: &[String],
    qr: bool,
    progress: &dyn Progress,
) -> Result<(), IssuerError> {
    const THREADS: usize = 2;
    let per = names.len().div_ceil(THREADS).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = names
            .chunks(per)
            .zip(creds.chunks(per))
            .map(|(names, creds)| {
                s.spawn(move || {
                    for (name, cred) in names.iter().zip(creds) {
                        let to = out.join(name);
                        std::fs::write(&to, cred).map_err(io(&to))?;
                        if qr {
                            let image = qr_png(cred).map_err(IssuerError::Other)?;
                            let to = out.join(qr_name(name));
                            std::fs::write(&to, image).map_err(io(&to))?;
                        }
                        progress.step();
                    }
                    Ok::<(), IssuerError>(())
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| IssuerError::Other("a writer thread failed".into()))??;
        }
        Ok(())
    })
}

/// The PNG file name beside a credential file.
pub(super) fn qr_name(name: &str) -> String {
    format!("{}.png", name.trim_end_matches(".sd-jwt"))
}

/// A credential as a `VCH1:` QR code PNG (error correction M), for handing
/// it over to a wallet's camera.
///
/// # Errors
/// A message when it does not fit one QR code.
pub fn qr_png(credential: &str) -> Result<Vec<u8>, String> {
    use vouch_core::envelope;
    let env = envelope::encode(credential).map_err(|e| e.to_string())?;
    let code = envelope::qr_code(&env, qrcode::EcLevel::M).map_err(|e| e.to_string())?;
    envelope::png(&code, 4, 4).map_err(|e| e.to_string())
}

/// Checks a finished batch: each credential (or, unless `all`, the first)
/// verifies as this issuer's, and its anchor proof names the batch's anchor
/// entry, its own place in the batch and the batch size, and leads from its
/// issuer-signed JWT to the batch root; and the anchor entry is in the
/// sealed tree. Used by tests, and by `issue` as its
/// one-line check. Returns how many credentials were checked.
///
/// # Errors
/// A message naming the first credential that does not check.
pub fn check_manifest(out: &Path, all: bool) -> Result<usize, String> {
    let m: Value = serde_json::from_slice(
        &std::fs::read(out.join("manifest.json")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let root = hex::decode(m["batch_root"].as_str().unwrap_or_default())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(Hash)
        .ok_or("bad batch_root")?;
    let count = m["count"].as_u64().ok_or("bad count")?;
    let b64s = |v: &Value| log::hashes_from_json(v).ok_or_else(|| "bad proof".to_owned());
    let entry_index = m["anchor"]["entry_index"]
        .as_u64()
        .ok_or("bad entry_index")?;
    let mut n = 0;
    let credentials = m["credentials"].as_array().ok_or("no credentials")?;
    let take = if all { credentials.len() } else { 1 };
    for (i, c) in credentials.iter().take(take).enumerate() {
        let file = out.join(c["file"].as_str().ok_or("no file")?);
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let sd = vouch_core::SdJwt::parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let options =
            vouch_core::sd_jwt::VerifyOptions::new(now(), vouch_core::sd_jwt::KeyBinding::Optional);
        let verdict = vouch_core::sd_jwt::verify_parsed(&sd, &options)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        if !verdict.is_valid() {
            return Err(format!("{}: does not verify", file.display()));
        }
        let proof: AnchorProof = serde_json::from_value(c["anchor_proof"].clone())
            .map_err(|e| format!("{}: anchor proof: {e}", file.display()))?;
        if (proof.entry_index(), proof.leaf_index(), proof.batch_size())
            != (entry_index, i as u64, count)
        {
            return Err(format!(
                "{}: the anchor proof is for entry {} leaf {} of {}, not entry {entry_index} \
                 leaf {i} of {count}",
                file.display(),
                proof.entry_index(),
                proof.leaf_index(),
                proof.batch_size()
            ));
        }
        proof
            .verify(anchor::leaf(&text).as_bytes(), root)
            .map_err(|e| format!("{}: not in the batch root: {e}", file.display()))?;
        n += 1;
    }
    let a = &m["anchor"];
    let entry = Entry::parse(a["entry"].as_str().unwrap_or_default().as_bytes())
        .map_err(|e| e.to_string())?;
    match entry.action() {
        Action::Anchor {
            root: r, count: k, ..
        } if *r == hex::encode(root.0) && *k == count => {}
        _ => return Err("the anchor entry does not commit to this batch".into()),
    }
    let tree_root = a["tree_root"]
        .as_str()
        .and_then(log::hash_from_base64)
        .ok_or("bad tree_root")?;
    log::verify_inclusion(
        &b64s(&a["inclusion_proof"])?,
        a["tree_size"].as_u64().ok_or("bad tree_size")?,
        tree_root,
        entry_index,
        entry.leaf_hash(),
    )
    .map_err(|e| format!("anchor not in the chain: {e}"))?;
    Ok(n)
}
