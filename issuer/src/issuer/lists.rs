//! The issuer's status lists: index allocation, Status List Tokens, and
//! revocation.

use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vouch_core::chain::{Action, ListUri};
use vouch_core::did::DidError;
use vouch_core::jws::{PublicKey, SignatureError};
use vouch_core::sd_jwt::SdJwtError;
use vouch_core::status_list::{StatusList, StatusListClaims, StatusListError};
use vouch_core::DidKey;
use vouch_registry::now;

use super::{Issuer, IssuerError};

/// Entries per status list (2 bits each: valid, revoked, suspended).
pub const LIST_SIZE: u64 = 1 << 20;
/// A list is closed for new credentials when this share of it is used, so
/// random positions stay cheap to find and the crowd stays large.
pub const LIST_FILL: u64 = LIST_SIZE / 2;

// Every batch fits one manifest.
const _: () = assert!(LIST_FILL as usize <= vouch_core::manifest::MAX_CREDENTIALS);

/// Why a credential file names no status this issuer can change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The issuer's own DID is not a did:key.
    #[error("this issuer's DID {did}: {source}")]
    IssuerDid {
        /// The DID.
        did: String,
        /// Cause.
        source: DidError,
    },
    /// Not an SD-JWT.
    #[error("not an SD-JWT credential: {source}")]
    NotSdJwt {
        /// Cause.
        source: SdJwtError,
    },
    /// The issuer-signed JWT does not verify under this issuer's key.
    #[error(
        "the credential's signature does not verify under this issuer's key ({issuer}): the \
         file was altered or another issuer signed it ({source}); nothing was changed"
    )]
    Signature {
        /// This issuer's DID.
        issuer: String,
        /// Cause.
        source: SignatureError,
    },
    /// Signed by this issuer's key, but naming another `iss`.
    #[error("the credential was issued by {found}, not by this issuer ({issuer})")]
    OtherIssuer {
        /// The credential's `iss` (`nobody` when it has none).
        found: String,
        /// This issuer's DID.
        issuer: String,
    },
    /// No `status.status_list` with a `uri` and an `idx`.
    #[error("the credential has no status list entry (status.status_list with uri and idx)")]
    NoStatus,
}

/// The error of status list `list` that cannot be read or changed.
fn list_err(list: &str) -> impl FnOnce(StatusListError) -> IssuerError + '_ {
    move |source| IssuerError::StatusList {
        list: list.to_owned(),
        source,
    }
}

/// A status list the issuer owns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ListMeta {
    pub(super) id: String,
    pub(super) uri: String,
    pub(super) used: u64,
}

impl Issuer {
    /// Status list `id`'s current values (all valid if never set).
    pub(super) fn statuses(&self, id: &str) -> Result<StatusList, IssuerError> {
        match self.db.get(format!("status/{id}"))? {
            Some(bytes) => StatusList::from_bytes(2, bytes.to_vec()).map_err(list_err(id)),
            None => StatusList::new(2, LIST_SIZE).map_err(list_err(id)),
        }
    }

    /// Chooses `n` unused random indexes in an open list; saves them.
    pub(super) fn allocate(&self, n: usize) -> Result<(ListMeta, Vec<u64>), IssuerError> {
        let n = n as u64;
        if n > LIST_FILL {
            return Err(IssuerError::BatchTooLarge { count: n });
        }
        let mut number = 1u32;
        let list = loop {
            // The list's name inside this issuer's namespace on the chain.
            let id = number.to_string();
            let meta = match self.get_json::<ListMeta>(&format!("list/{id}"))? {
                Some(meta) => meta,
                None => {
                    let uri = ListUri::format(&self.config.status_base, &self.config.did, &id);
                    ListUri::parse(&uri).map_err(|source| IssuerError::StatusBase {
                        base: self.config.status_base.clone(),
                        source,
                    })?;
                    ListMeta { uri, id, used: 0 }
                }
            };
            if meta.used + n <= LIST_FILL {
                break meta;
            }
            number += 1;
        };
        let used_key = format!("used/{}", list.id);
        let mut used = match self.db.get(&used_key)? {
            Some(v) => v.to_vec(),
            None => vec![0u8; (LIST_SIZE / 8) as usize],
        };
        let mut rng = rand::rngs::StdRng::from_entropy();
        let mut out = Vec::with_capacity(n as usize);
        while (out.len() as u64) < n {
            let idx = rng.gen_range(0..LIST_SIZE);
            let (byte, bit) = ((idx / 8) as usize, idx % 8);
            if used[byte] & (1 << bit) == 0 {
                used[byte] |= 1 << bit;
                out.push(idx);
            }
        }
        let meta = ListMeta {
            used: list.used + n,
            ..list
        };
        self.db.insert(&used_key, used)?;
        self.put_json(&format!("list/{}", meta.id), &meta)?;
        Ok((meta, out))
    }

    /// Publishes the first Status List Token of a list, if none is on the
    /// chain yet.
    pub(super) async fn publish_if_new(&self, list: &ListMeta) -> Result<(), IssuerError> {
        let state = self.registry.state().await?;
        let published = state
            .lists
            .get(&list.uri)
            .is_some_and(|r| r.token.is_some());
        if !published {
            let statuses = self.statuses(&list.id)?;
            self.publish(list, &statuses, 1).await?;
        }
        Ok(())
    }

    /// Signs `statuses` as list `list`'s Status List Token and submits it
    /// as the list's `sequence`th publication. Returns the entry index.
    async fn publish(
        &self,
        list: &ListMeta,
        statuses: &StatusList,
        sequence: u64,
    ) -> Result<u64, IssuerError> {
        let token = StatusListClaims {
            sub: list.uri.clone(),
            iss: Some(self.config.did.clone()),
            iat: now(),
            exp: None,
            ttl: Some(300),
            list: statuses.clone(),
        }
        .sign(
            &self.key.did().verification_method(),
            self.key.signing_key(),
        );
        let entry = self
            .sign_entry(Action::Status {
                list: list.uri.clone(),
                sequence,
                token: token.as_str().to_owned(),
            })
            .await?;
        Ok(self.registry.submit(entry.as_bytes()).await?.index)
    }

    /// Sets the status of `idx` in the list `uri` (1 revoked, 2 suspended,
    /// 0 valid again after a suspension), publishes the new token and waits
    /// for it to be sealed. Returns the entry index.
    ///
    /// # Errors
    /// [`IssuerError::ListUri`], [`IssuerError::UnknownList`] or
    /// [`IssuerError::UnusedIndex`] for a list or index this issuer did not
    /// give out, [`IssuerError::RevocationFinal`] for a revoked credential,
    /// [`IssuerError::SameStatus`] when nothing would change; the state
    /// store's and the registry's errors.
    pub async fn set_status(&self, uri: &str, idx: u64, value: u8) -> Result<u64, IssuerError> {
        let id = ListUri::parse(uri)
            .map_err(|source| IssuerError::ListUri {
                uri: uri.to_owned(),
                source,
            })?
            .name;
        let list: ListMeta = self
            .get_json(&format!("list/{id}"))?
            .filter(|l: &ListMeta| l.uri == uri)
            .ok_or_else(|| IssuerError::UnknownList {
                uri: uri.to_owned(),
            })?;
        let used = self.db.get(format!("used/{id}"))?.is_some_and(|u| {
            u.get((idx / 8) as usize)
                .is_some_and(|b| b & (1 << (idx % 8)) != 0)
        });
        if !used {
            return Err(IssuerError::UnusedIndex {
                idx,
                list: id.to_owned(),
            });
        }
        let mut statuses = self.statuses(id)?;
        let current = statuses.get(idx).map_err(list_err(id))?;
        if current == 1 && value != 1 {
            return Err(IssuerError::RevocationFinal { idx });
        }
        let state = self.registry.state().await?;
        let on_chain = state
            .status_of(&self.config.did, uri, idx, now())
            .ok()
            .flatten();
        if current == value && on_chain == Some(value) {
            return Err(IssuerError::SameStatus {
                idx,
                status: ["valid", "revoked", "suspended"]
                    .get(usize::from(value))
                    .unwrap_or(&"?"),
            });
        }
        // Saved before publishing: if publishing fails, the change is not
        // lost, and running the command again publishes it.
        statuses.set(idx, value).map_err(list_err(id))?;
        self.db
            .insert(format!("status/{id}"), statuses.as_bytes())?;
        self.flush()?;
        let sequence = state.lists.get(uri).map_or(0, |r| r.sequence) + 1;
        let index = self.publish(&list, &statuses, sequence).await?;
        self.registry.sealed(index).await?;
        Ok(index)
    }

    /// The status list URIs this issuer owns.
    ///
    /// # Errors
    /// [`IssuerError::State`] or [`IssuerError::StateRecord`].
    pub fn lists(&self) -> Result<Vec<String>, IssuerError> {
        let mut out = Vec::new();
        for item in self.db.scan_prefix("list/") {
            let (key, v) = item?;
            let meta: ListMeta =
                serde_json::from_slice(&v).map_err(|source| IssuerError::StateRecord {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    source,
                })?;
            out.push(meta.uri);
        }
        Ok(out)
    }
}

/// The status reference inside a credential file, read only after the
/// issuer-signed JWT verifies under `issuer`'s own key (the did:key), so an
/// edited file cannot point a revocation at someone else's credential.
///
/// # Errors
/// [`CredentialError`] when it is not an SD-JWT VC signed by this issuer
/// with a status.
pub fn status_of_credential(text: &str, issuer: &str) -> Result<(String, u64), CredentialError> {
    let key = DidKey::parse(issuer).map_err(|source| CredentialError::IssuerDid {
        did: issuer.to_owned(),
        source,
    })?;
    let sd = vouch_core::SdJwt::parse(text.trim())
        .map_err(|source| CredentialError::NotSdJwt { source })?;
    sd.jwt()
        .verify(&PublicKey::Ed25519(*key.verifying_key()))
        .map_err(|source| CredentialError::Signature {
            issuer: issuer.to_owned(),
            source,
        })?;
    let payload = sd.payload();
    if payload.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(CredentialError::OtherIssuer {
            found: payload
                .get("iss")
                .and_then(Value::as_str)
                .unwrap_or("nobody")
                .chars()
                .take(200)
                .collect(),
            issuer: issuer.to_owned(),
        });
    }
    let sl = &payload
        .get("status")
        .and_then(|s| s.get("status_list"))
        .cloned()
        .unwrap_or_default();
    match (sl["uri"].as_str(), sl["idx"].as_u64()) {
        (Some(uri), Some(idx)) => Ok((uri.to_owned(), idx)),
        _ => Err(CredentialError::NoStatus),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use ed25519_dalek::SigningKey;
    use serde_json::Map;
    use vouch_core::status_list::StatusRef;
    use vouch_core::vc::{self, CredentialRequest, IssuerKey};

    use super::*;
    use crate::keystore::Cost;

    fn credential(key: &IssuerKey, status: Option<StatusRef>) -> String {
        let holder = SigningKey::from_bytes(&[2; 32]);
        let mut claims = Map::new();
        claims.insert("name".into(), "Ada".into());
        let request = CredentialRequest {
            vct: "https://vouch.example/vct/test".into(),
            iat: 1_780_000_000,
            exp: None,
            holder: PublicKey::Ed25519(holder.verifying_key()),
            status,
            claims,
            concealment: Default::default(),
        };
        vc::issue(request, key, &mut rand::rngs::StdRng::seed_from_u64(1))
            .unwrap()
            .serialize()
    }

    #[test]
    fn a_credential_file_names_its_status_only_when_this_issuer_signed_it() {
        let key = IssuerKey::new(SigningKey::from_bytes(&[1; 32]));
        let did = key.did().as_str().to_owned();
        let status = StatusRef {
            idx: 7,
            uri: "https://reg.example/v1/status/x~1".into(),
        };
        let text = credential(&key, Some(status.clone()));
        assert_eq!(
            status_of_credential(&text, &did).unwrap(),
            (status.uri.clone(), 7)
        );
        let other = IssuerKey::new(SigningKey::from_bytes(&[3; 32]));
        let e = status_of_credential(&credential(&other, Some(status)), &did).unwrap_err();
        assert!(matches!(e, CredentialError::Signature { .. }));
        assert!(
            e.to_string().starts_with(&format!(
                "the credential's signature does not verify under this issuer's key ({did}): \
                 the file was altered or another issuer signed it ("
            )),
            "{e}"
        );
        assert!(e.to_string().ends_with("); nothing was changed"), "{e}");
        let e = status_of_credential(&credential(&key, None), &did).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the credential has no status list entry (status.status_list with uri and idx)"
        );
        let e = status_of_credential("hello", &did).unwrap_err();
        assert!(matches!(e, CredentialError::NotSdJwt { .. }));
        assert!(
            e.to_string().starts_with("not an SD-JWT credential: "),
            "{e}"
        );
        assert!(std::error::Error::source(&e).is_some());
        let e = status_of_credential(&text, "did:web:x").unwrap_err();
        assert!(
            e.to_string().starts_with("this issuer's DID did:web:x: "),
            "{e}"
        );
    }

    #[test]
    fn set_status_refuses_a_list_it_does_not_own() {
        let dir = std::env::temp_dir().join(format!("vouch-issuer-lists-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        super::super::init(&dir, "Uni", None, "pw", Cost::TEST).unwrap();
        let iss = Issuer::open(&dir, "pw").unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let e = runtime
            .block_on(iss.set_status("not a list", 1, 1))
            .unwrap_err();
        assert!(matches!(e, IssuerError::ListUri { .. }));
        assert!(e.to_string().starts_with("not a list: "), "{e}");
        let uri = ListUri::format(&iss.config().status_base, iss.did(), "9");
        let e = runtime.block_on(iss.set_status(&uri, 1, 1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{uri} is not one of this issuer's status lists")
        );
        assert!(iss.lists().unwrap().is_empty());
        drop(iss);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
