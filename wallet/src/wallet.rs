//! The wallet: create or restore, hand out holder keys, import credentials,
//! list and show them, make presentations, keep an activity log.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use ed25519_dalek::SigningKey;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use vouch_core::seal::Cost;
use vouch_core::template::Templates;
use vouch_core::view::{ChainView, Status};
use vouch_core::{AnchorProof, ClaimPath, DidKey};
use zeroize::Zeroizing;

use crate::credential::{self, CredentialError, DiscloseError, Facts, StoredCredential};
use crate::keys::{self, KeyError, RecoveryPhrase};
use crate::store::{Store, StoreError, Table, Write};

/// How many derivation indices past the highest known one an import
/// searches for its holder key (after a restore from the phrase, the keys
/// handed out before are not known yet).
pub const KEY_SEARCH_GAP: u32 = 1000;

/// The settings record holding the first key index [`Wallet::receive`]
/// may hand out. A restore sets it [`KEY_SEARCH_GAP`] past the highest
/// index it knows: the wallet restored from may have handed out DIDs it
/// held no credential for yet, and giving one of them to another issuer
/// would link the two credentials. (If that wallet had itself been
/// restored and handed out DIDs past its own floor, some may still come
/// round again: no restore can know them.)
const KEY_FLOOR: &[u8] = b"key-floor";

/// The settings record holding the registry URL (text).
const REGISTRY: &[u8] = b"registry";

/// The most holder keys [`Wallet::receive`] hands out (and the highest a
/// restore's floor goes), so that every search for a key
/// ([`Wallet::holder_dids`], an import after a restore) stays short.
pub const MAX_HANDED_OUT: u32 = 100_000;

/// The highest key index a wallet holds: one handed out, or one an
/// import found up to [`KEY_SEARCH_GAP`] past them.
const MAX_KEY_INDEX: u32 = MAX_HANDED_OUT + KEY_SEARCH_GAP;

/// Why a wallet operation failed. Nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The recovery phrase or a key path.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A credential refused on import.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// The credential is bound to a key this wallet does not hold.
    #[error("the credential is bound to {0}, which is not one of this wallet's keys (give the issuer a DID from `vouch-wallet receive`)")]
    NotOurKey(String),
    /// The credential is already in the wallet.
    #[error("this credential is already in the wallet as {0}")]
    Duplicate(String),
    /// No credential with that id.
    #[error("no credential {0} in this wallet (`vouch-wallet list` shows the ids)")]
    NoSuchCredential(String),
    /// A `--disclose` name.
    #[error(transparent)]
    Disclose(#[from] DiscloseError),
    /// Presenting failed in the SD-JWT layer.
    #[error("cannot present: {0}")]
    Present(#[from] vouch_core::sd_jwt::PresentError),
    /// The anchor proof given with a credential is not one.
    #[error("anchor proof: {0}")]
    Anchor(#[from] vouch_core::anchor::AnchorError),
    /// Restore needs an empty wallet directory.
    #[error("restore needs an empty wallet directory; {0} already holds one")]
    NotEmpty(String),
    /// The phrase record in the store is damaged.
    #[error("the stored recovery phrase does not parse")]
    PhraseRecord,
    /// A `VCH1:` envelope that does not decode.
    #[error("not a readable VCH1: envelope: {0}")]
    Envelope(#[from] vouch_core::envelope::EnvelopeError),
    /// The issuer's manifest does not list this credential.
    #[error("the manifest does not list this credential")]
    NotInManifest,
    /// The issuer's manifest lists it, but its proofs do not check.
    #[error("the manifest's anchor proof does not check: {0}")]
    Manifest(#[from] vouch_core::manifest::CheckError),
    /// A backup could not be written or read.
    #[error(transparent)]
    Backup(#[from] crate::backup::BackupError),
    /// A backup names a table this version does not know.
    #[error("the backup holds a record of unknown kind {0:?}")]
    BackupRecord(char),
    /// [`MAX_HANDED_OUT`] holder keys were handed out already.
    #[error("this wallet has handed out {MAX_HANDED_OUT} holder DIDs, the most it hands out")]
    KeysExhausted,
    /// A backup's record that no wallet writes (nothing was created).
    #[error("the backup's record {record} is refused: {why} (nothing was created)")]
    BackupRecordRefused {
        /// Its table letter and id.
        record: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The wallet's chain replica cannot be read.
    #[error("the wallet's chain replica: {0}")]
    Replica(#[from] vouch_registry::replica::ReplicaError),
    /// The wallet's replica directory's trust settings cannot be read.
    #[error("the wallet's chain replica: {0}")]
    Trust(#[from] vouch_registry::trust::TrustError),
    /// The built-in templates (compiled in) do not load.
    #[error(transparent)]
    Templates(#[from] vouch_core::template::TemplateError),
}

/// Whom a presentation is for: the verifier's `aud` and its `nonce`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The verifier's audience.
    pub aud: String,
    /// The verifier's single-use nonce.
    pub nonce: String,
    /// How it leaves the wallet: `text`, `file`, `qr`, `relay`.
    pub channel: String,
}

/// The wallet's chain replica, under its directory.
pub const REPLICA: &str = "replica";

/// A holder key handed out.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyRecord {
    did: String,
    created: i64,
}

/// One line of the activity log: what was shared, when, with whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    /// When, Unix seconds.
    pub at: i64,
    /// The credential's id.
    pub credential: String,
    /// Its title when shared.
    pub title: String,
    /// The verifier's audience (`aud`).
    pub audience: String,
    /// The claims disclosed (friendly names).
    pub disclosed: Vec<String>,
    /// How it left the wallet: `text`, `file`, `qr`.
    pub channel: String,
}

/// A credential's standing, as the wallet can tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Standing {
    /// Not revoked or suspended as of the replica's block, and not expired.
    Valid,
    /// Revoked on the chain (final).
    Revoked,
    /// Suspended on the chain.
    Suspended,
    /// Its `exp` has passed.
    Expired,
    /// No replica, no status list on it yet, or a status the chain does
    /// not settle.
    Unknown,
}

/// As of which block a standing was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AsOf {
    /// Block height.
    pub height: u64,
    /// Block time, Unix seconds.
    pub time: i64,
    /// Seconds between the block and the moment of reading.
    pub age: i64,
}

/// A credential as `list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The wallet's id for it.
    pub id: String,
    /// A holder-facing title.
    pub title: String,
    /// The issuer DID.
    pub issuer: String,
    /// The template name (`transcript`, …) when the `vct` is known.
    pub kind: Option<String>,
    /// `vct`.
    pub vct: String,
    /// `iat`.
    pub issued_at: Option<i64>,
    /// `exp`.
    pub expires_at: Option<i64>,
    /// Whether `exp` has passed.
    pub expired: bool,
    /// Whether an anchor proof is held.
    pub anchored: bool,
    /// The issuer's accredited name, from the replica.
    pub issuer_name: Option<String>,
    /// Valid, revoked, suspended, expired or unknown.
    pub standing: Standing,
    /// The replica block the standing was read at (none without one).
    pub as_of: Option<AsOf>,
}

/// A presentation made by [`Wallet::present`].
#[derive(Debug, Clone)]
pub struct Presentation {
    /// The compact SD-JWT+KB.
    pub text: String,
    /// The anchor proof, to send along when the form allows.
    pub anchor: Option<AnchorProof>,
    /// The friendly names of the claims disclosed.
    pub disclosed: Vec<String>,
    /// The claims withheld (friendly names), for the holder's preview.
    pub withheld: Vec<String>,
    /// The activity line [`Wallet::record`] writes.
    pub activity: Activity,
}

struct Held {
    stored: StoredCredential,
    facts: Facts,
}

/// An open wallet.
pub struct Wallet {
    store: Store,
    seed: Zeroizing<[u8; 64]>,
    templates: Templates,
    /// Holder DID → key index, for the keys handed out.
    keys: HashMap<String, u32>,
    next_key: u32,
    held_ids: Option<HashMap<String, String>>,
}

impl std::fmt::Debug for Wallet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallet")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Wallet {
    /// Creates a wallet in `dir` with a fresh recovery phrase, which the
    /// caller shows once.
    ///
    /// # Errors
    /// [`StoreError::Exists`] and the store's other errors.
    pub fn create(
        dir: &Path,
        passphrase: &str,
        cost: Cost,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Wallet, RecoveryPhrase), WalletError> {
        let phrase = RecoveryPhrase::generate(rng);
        let wallet = Self::create_with(dir, passphrase, cost, &phrase, None, Vec::new(), rng)?;
        Ok((wallet, phrase))
    }

    /// Restores a wallet from its recovery phrase into an empty `dir`: the
    /// keys come back; re-importing the issuers' files brings back the
    /// credentials.
    ///
    /// # Errors
    /// [`WalletError::NotEmpty`] when `dir` holds a wallet.
    pub fn restore(
        dir: &Path,
        passphrase: &str,
        cost: Cost,
        phrase: &RecoveryPhrase,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Wallet, WalletError> {
        if Store::exists(dir) {
            return Err(WalletError::NotEmpty(dir.display().to_string()));
        }
        Self::create_with(
            dir,
            passphrase,
            cost,
            phrase,
            Some(KEY_SEARCH_GAP),
            Vec::new(),
            rng,
        )
    }

    /// Creates the wallet's store holding its phrase, the key floor
    /// (restores) and `records`, all at once: a failure leaves no wallet.
    fn create_with(
        dir: &Path,
        passphrase: &str,
        cost: Cost,
        phrase: &RecoveryPhrase,
        key_floor: Option<u32>,
        mut records: Vec<Write<'_>>,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Wallet, WalletError> {
        if let Some(floor) = key_floor {
            records.push(Write::Put(
                Table::Settings,
                KEY_FLOOR,
                crate::store::to_json(&floor)?,
            ));
        }
        let line = phrase.to_line();
        records.push(Write::Put(
            Table::Secrets,
            b"phrase",
            crate::store::to_json(&*line)?,
        ));
        let created = Store::create_holding(dir, passphrase, cost, &records, rng);
        if let Some(Write::Put(_, _, json)) = records.last_mut() {
            zeroize::Zeroize::zeroize(json);
        }
        Self::from_store(created?)
    }

    /// Opens the wallet in `dir`.
    ///
    /// # Errors
    /// [`StoreError::WrongPassphrase`], [`StoreError::NoWallet`], …
    pub fn open(dir: &Path, passphrase: &str) -> Result<Wallet, WalletError> {
        Self::from_store(Store::open(dir, passphrase)?)
    }

    fn from_store(store: Store) -> Result<Wallet, WalletError> {
        let line: Zeroizing<String> = Zeroizing::new(
            store
                .get(Table::Secrets, b"phrase")?
                .ok_or(WalletError::PhraseRecord)?,
        );
        let phrase = RecoveryPhrase::parse(&line).map_err(|_| WalletError::PhraseRecord)?;
        let mut keys = HashMap::new();
        let mut next_key = 0;
        for (id, record) in store.all::<KeyRecord>(Table::Keys)? {
            let index = index_of(&id)?;
            keys.insert(record.did, index);
            next_key = next_key.max(index.saturating_add(1));
        }
        if let Some(floor) = store.get::<u32>(Table::Settings, KEY_FLOOR)? {
            if floor > MAX_KEY_INDEX {
                return Err(
                    StoreError::Damaged(format!("key floor {floor} is out of range")).into(),
                );
            }
            next_key = next_key.max(floor);
        }
        Ok(Wallet {
            store,
            seed: phrase.seed(),
            templates: Templates::builtin()?,
            keys,
            next_key,
            held_ids: None,
        })
    }

    /// The recovery phrase (for a settings view that shows it again after
    /// the passphrase).
    ///
    /// # Errors
    /// Store errors.
    pub fn recovery_phrase(&self) -> Result<RecoveryPhrase, WalletError> {
        let line: Zeroizing<String> = Zeroizing::new(
            self.store
                .get(Table::Secrets, b"phrase")?
                .ok_or(WalletError::PhraseRecord)?,
        );
        RecoveryPhrase::parse(&line).map_err(|_| WalletError::PhraseRecord)
    }

    /// The store (for settings).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A fresh holder DID to give an issuer: the next derived key, recorded
    /// so a credential bound to it is accepted on import.
    ///
    /// # Errors
    /// Store errors.
    pub fn receive(
        &mut self,
        now: i64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<DidKey, WalletError> {
        let index = self.next_key;
        if index >= MAX_HANDED_OUT {
            return Err(WalletError::KeysExhausted);
        }
        let key = keys::holder_key(self.seed.as_ref(), index)?;
        let did = DidKey::from_public_key(&key.verifying_key());
        self.remember_key(index, &did, now, rng)?;
        Ok(did)
    }

    fn remember_key(
        &mut self,
        index: u32,
        did: &DidKey,
        now: i64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), WalletError> {
        let record = KeyRecord {
            did: did.as_str().to_owned(),
            created: now,
        };
        self.store
            .put(Table::Keys, &index.to_be_bytes(), &record, rng)?;
        self.keys.insert(record.did, index);
        self.next_key = self.next_key.max(index.saturating_add(1));
        Ok(())
    }

    /// The key index holding `did`: a key handed out, else (after a
    /// restore) one found by deriving up to [`KEY_SEARCH_GAP`] past the
    /// highest known index.
    fn key_index(&self, did: &DidKey) -> Result<Option<u32>, WalletError> {
        if let Some(&i) = self.keys.get(did.as_str()) {
            return Ok(Some(i));
        }
        for index in 0..self.next_key.saturating_add(KEY_SEARCH_GAP) {
            let key = keys::holder_key(self.seed.as_ref(), index)?;
            if DidKey::from_public_key(&key.verifying_key()) == *did {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }

    /// The did:key text of every holder key this wallet would import a
    /// credential for: those given out, and [`KEY_SEARCH_GAP`] more (as
    /// [`Wallet::import`] looks for them after a restore). For picking a
    /// wallet's lines out of an issuer's archive.
    ///
    /// # Errors
    /// [`WalletError`] when a key cannot be derived.
    pub fn holder_dids(&self) -> Result<HashSet<String>, WalletError> {
        let mut dids = HashSet::new();
        for index in 0..self.next_key.saturating_add(KEY_SEARCH_GAP) {
            let key = keys::holder_key(self.seed.as_ref(), index)?;
            dids.insert(
                DidKey::from_public_key(&key.verifying_key())
                    .as_str()
                    .to_owned(),
            );
        }
        Ok(dids)
    }

    /// Imports a credential as issued, as its SD-JWT text or as the
    /// `VCH1:` text of an issuer's QR code (and its anchor proof, when the
    /// issuer's manifest gave one or the envelope carries it): it must verify under its issuer's key,
    /// be bound to one of this wallet's keys and not be held already.
    /// Returns the new id.
    ///
    /// # Errors
    /// [`WalletError::Credential`], [`WalletError::NotOurKey`],
    /// [`WalletError::Duplicate`]; nothing is stored then.
    pub fn import(
        &mut self,
        text: &str,
        anchor: Option<AnchorProof>,
        now: i64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<String, WalletError> {
        // A `VCH1:` envelope (the text of an issuer's QR code) carries the
        // credential, and maybe its anchor proof.
        let text = text.trim();
        let (text, anchor) = if text.starts_with(vouch_core::envelope::PREFIX) {
            let p = vouch_core::envelope::decode_presentation(text)?;
            (std::borrow::Cow::Owned(p.sd_jwt), anchor.or(p.anchor_proof))
        } else {
            (std::borrow::Cow::Borrowed(text), anchor)
        };
        let (sd_jwt, facts) = credential::read(&text, now)?;
        let jwt = sd_jwt.jwt().as_str().to_owned();
        let credential_id = vouch_core::manifest::credential_id(&jwt);
        if let Some(id) = self.held_ids()?.get(&credential_id) {
            return Err(WalletError::Duplicate(id.clone()));
        }
        let key_index = self
            .key_index(&facts.holder)?
            .ok_or_else(|| WalletError::NotOurKey(facts.holder.as_str().to_owned()))?;
        let mut raw = [0u8; 4];
        let id = loop {
            rng.fill_bytes(&mut raw);
            let id = hex::encode(raw);
            if self
                .store
                .get::<StoredCredential>(Table::Credentials, id.as_bytes())?
                .is_none()
            {
                break id;
            }
        };
        let listing =
            credential::Listing::of(&facts, credential::template_of(&self.templates, &facts));
        let stored = StoredCredential {
            sd_jwt: sd_jwt.serialize(),
            key_index,
            anchor,
            imported_at: now,
            listing: Some(listing),
        };
        let mut writes = vec![Write::Put(
            Table::Credentials,
            id.as_bytes(),
            crate::store::to_json(&stored)?,
        )];
        let index_bytes = key_index.to_be_bytes();
        if !self.keys.contains_key(facts.holder.as_str()) {
            let record = KeyRecord {
                did: facts.holder.as_str().to_owned(),
                created: now,
            };
            writes.push(Write::Put(
                Table::Keys,
                &index_bytes,
                crate::store::to_json(&record)?,
            ));
        }
        self.store.write(&writes, rng)?;
        if let Some(ids) = self.held_ids.as_mut() {
            ids.insert(credential_id, id.clone());
        }
        self.keys
            .insert(facts.holder.as_str().to_owned(), key_index);
        self.next_key = self.next_key.max(key_index.saturating_add(1));
        Ok(id)
    }

    /// As [`Wallet::import`] (SD-JWT or `VCH1:` text), taking the anchor
    /// proof from the issuer's batch manifest: the manifest must list the credential, its proof
    /// must lead from the credential to the batch root, and the anchor
    /// entry must be signed by the issuer and included in the tree the
    /// manifest names. (Whether that tree is the chain's, a replica says
    /// when the proof is verified.)
    ///
    /// # Errors
    /// [`WalletError::NotInManifest`], [`WalletError::Manifest`], and those
    /// of [`Wallet::import`]; nothing is stored then.
    pub fn import_with_manifest(
        &mut self,
        text: &str,
        manifest: &vouch_core::manifest::Manifest,
        now: i64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<String, WalletError> {
        // The manifest lists the credential's SD-JWT, which a `VCH1:`
        // envelope (the text of the issuer's QR code) carries.
        let text = text.trim();
        let decoded;
        let credential = if text.starts_with(vouch_core::envelope::PREFIX) {
            decoded = vouch_core::envelope::decode_presentation(text)?;
            decoded.sd_jwt.as_str()
        } else {
            text
        };
        let entry = manifest
            .entry_for_credential(credential)
            .ok_or(WalletError::NotInManifest)?;
        manifest.check_entry(entry, credential)?;
        manifest.check_anchor()?;
        self.import(credential, Some(entry.anchor_proof.clone()), now, rng)
    }

    /// Credential id ([`vouch_core::manifest::credential_id`]) → wallet id
    /// of every credential held, read once per open wallet and kept up to
    /// date by [`Wallet::import`].
    fn held_ids(&mut self) -> Result<&HashMap<String, String>, WalletError> {
        if self.held_ids.is_none() {
            let mut ids = HashMap::new();
            for (id, stored) in self.store.all::<StoredCredential>(Table::Credentials)? {
                ids.insert(
                    vouch_core::manifest::credential_id(&stored.sd_jwt),
                    String::from_utf8_lossy(&id).into_owned(),
                );
            }
            self.held_ids = Some(ids);
        }
        Ok(self.held_ids.get_or_insert_with(HashMap::new))
    }

    fn one(&self, id: &str) -> Result<Held, WalletError> {
        let stored: StoredCredential = self
            .store
            .get(Table::Credentials, id.as_bytes())?
            .ok_or_else(|| WalletError::NoSuchCredential(id.to_owned()))?;
        let facts = credential::read_stored(&stored.sd_jwt)?;
        Ok(Held { stored, facts })
    }

    /// Every credential held, oldest import first.
    ///
    /// # Errors
    /// Store errors.
    pub fn list(&self, now: i64) -> Result<Vec<Summary>, WalletError> {
        self.list_as_of(None, now)
    }

    /// As [`Wallet::list`], each credential's standing read from `view` (a
    /// replica's, see `vouch_registry::replica::Replica::view`).
    ///
    /// # Errors
    /// Store errors.
    pub fn list_as_of(
        &self,
        view: Option<&ChainView>,
        now: i64,
    ) -> Result<Vec<Summary>, WalletError> {
        let mut out: Vec<(i64, Summary)> = Vec::new();
        for (id, stored) in self.store.all::<StoredCredential>(Table::Credentials)? {
            let id = String::from_utf8_lossy(&id).into_owned();
            let listing = match &stored.listing {
                Some(listing) => listing.clone(),
                None => {
                    let facts = credential::read_stored(&stored.sd_jwt)?;
                    credential::Listing::of(
                        &facts,
                        credential::template_of(&self.templates, &facts),
                    )
                }
            };
            let summary = self.summary(id, &listing, stored.anchor.is_some(), view, now);
            out.push((stored.imported_at, summary));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        Ok(out.into_iter().map(|(_, s)| s).collect())
    }

    fn summary(
        &self,
        id: String,
        listing: &credential::Listing,
        anchored: bool,
        view: Option<&ChainView>,
        now: i64,
    ) -> Summary {
        let template = self.templates.by_vct(&listing.vct);
        let expired = listing.expires_at.is_some_and(|exp| exp < now);
        let on_chain = view.and_then(|v| {
            let s = listing.status.as_ref()?;
            v.status(&listing.issuer, &s.uri, s.idx, now).ok()
        });
        let standing = match on_chain {
            Some(Status::Revoked) => Standing::Revoked,
            Some(Status::Suspended) => Standing::Suspended,
            _ if expired => Standing::Expired,
            Some(Status::Valid) => Standing::Valid,
            _ => Standing::Unknown,
        };
        Summary {
            id,
            title: listing.title.clone(),
            issuer: listing.issuer.clone(),
            kind: template.map(|t| t.name.clone()),
            vct: listing.vct.clone(),
            issued_at: listing.issued_at,
            expires_at: listing.expires_at,
            expired,
            anchored,
            issuer_name: view
                .and_then(|v| v.issuer(&listing.issuer))
                .map(|i| i.name.clone()),
            standing,
            as_of: view.map(|v| AsOf {
                height: v.height(),
                time: v.time(),
                age: v.age(now),
            }),
        }
    }

    /// One credential: its summary, its claims with labels and the names
    /// `--disclose` takes, and its facts (status reference, holder DID).
    ///
    /// # Errors
    /// [`WalletError::NoSuchCredential`].
    pub fn show(
        &self,
        id: &str,
        now: i64,
    ) -> Result<(Summary, Vec<credential::ClaimLine>, Facts), WalletError> {
        self.show_as_of(id, None, now)
    }

    /// As [`Wallet::show`], the standing read from `view`.
    ///
    /// # Errors
    /// [`WalletError::NoSuchCredential`].
    pub fn show_as_of(
        &self,
        id: &str,
        view: Option<&ChainView>,
        now: i64,
    ) -> Result<(Summary, Vec<credential::ClaimLine>, Facts), WalletError> {
        let held = self.one(id)?;
        let template = credential::template_of(&self.templates, &held.facts);
        let lines = credential::claim_lines(&held.facts, template);
        let listing = credential::Listing::of(&held.facts, template);
        let anchored = held.stored.anchor.is_some();
        Ok((
            self.summary(id.to_owned(), &listing, anchored, view, now),
            lines,
            held.facts,
        ))
    }

    /// The stored record of a credential (the SD-JWT as issued and its
    /// anchor proof), for export.
    ///
    /// # Errors
    /// [`WalletError::NoSuchCredential`].
    pub fn credential(&self, id: &str) -> Result<StoredCredential, WalletError> {
        Ok(self.one(id)?.stored)
    }

    /// A presentation of credential `id` disclosing exactly `names`
    /// (friendly names or JSON Pointers; claims the issuer did not make
    /// selective are always shown), bound by the credential's holder key to
    /// the verifier's `aud` and `nonce` at time `now`, and recorded in the
    /// activity log. [`Wallet::prepare`] and [`Wallet::record`] do the two
    /// halves, for a caller that must deliver it before it counts as shared.
    ///
    /// # Errors
    /// As [`Wallet::prepare`]; nothing is recorded then.
    pub fn present(
        &mut self,
        id: &str,
        names: &[String],
        binding: &Binding,
        now: i64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Presentation, WalletError> {
        let p = self.prepare(id, names, binding, now)?;
        self.record(&p, rng)?;
        Ok(p)
    }

    /// Makes the presentation [`Wallet::present`] describes without
    /// recording it.
    ///
    /// # Errors
    /// [`WalletError::NoSuchCredential`], [`WalletError::Disclose`].
    pub fn prepare(
        &self,
        id: &str,
        names: &[String],
        binding: &Binding,
        now: i64,
    ) -> Result<Presentation, WalletError> {
        let held = self.one(id)?;
        let paths: Vec<ClaimPath> = credential::resolve(&held.facts, names)?;
        let sd_jwt =
            vouch_core::SdJwt::parse(&held.stored.sd_jwt).map_err(CredentialError::Parse)?;
        let key: SigningKey = keys::holder_key(self.seed.as_ref(), held.stored.key_index)?;
        let text = sd_jwt
            .present(&paths)?
            .bind(&key, &binding.aud, &binding.nonce, now)
            .serialize();
        let disclosed: Vec<String> = paths
            .iter()
            .map(|p| credential::friendly_name(&held.facts.claims, p))
            .collect();
        let withheld = held
            .facts
            .disclosable
            .iter()
            .filter(|d| !paths.iter().any(|p| p.is_prefix_of(d) || d.is_prefix_of(p)))
            .map(|d| credential::friendly_name(&held.facts.claims, d))
            .collect();
        let template = credential::template_of(&self.templates, &held.facts);
        Ok(Presentation {
            text,
            anchor: held.stored.anchor,
            disclosed: disclosed.clone(),
            withheld,
            activity: Activity {
                at: now,
                credential: id.to_owned(),
                title: credential::title(&held.facts, template),
                audience: binding.aud.clone(),
                disclosed,
                channel: binding.channel.clone(),
            },
        })
    }

    /// Records a presentation as shared, in the activity log.
    ///
    /// # Errors
    /// Store errors.
    pub fn record(
        &mut self,
        presentation: &Presentation,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), WalletError> {
        let number = self.store.next_number(Table::Activity)?;
        self.store.put(
            Table::Activity,
            &number.to_be_bytes(),
            &presentation.activity,
            rng,
        )?;
        Ok(())
    }

    /// The activity log, oldest first.
    ///
    /// # Errors
    /// Store errors.
    pub fn activity(&self) -> Result<Vec<Activity>, WalletError> {
        Ok(self
            .store
            .all::<Activity>(Table::Activity)?
            .into_iter()
            .map(|(_, a)| a)
            .collect())
    }

    /// The registry this wallet syncs from and uploads to the relay of,
    /// when one is set.
    ///
    /// # Errors
    /// Store errors.
    pub fn registry(&self) -> Result<Option<String>, WalletError> {
        Ok(self.store.get(Table::Settings, REGISTRY)?)
    }

    /// Sets the registry URL.
    ///
    /// # Errors
    /// Store errors.
    pub fn set_registry(&self, url: &str, rng: &mut impl CryptoRngCore) -> Result<(), WalletError> {
        self.store.put(Table::Settings, REGISTRY, &url, rng)?;
        Ok(())
    }

    /// The directory of the wallet's chain replica (`<dir>/replica`),
    /// which `vouch_registry::trust::sync_dir` syncs.
    pub fn replica_dir(&self) -> std::path::PathBuf {
        self.store.dir().join(REPLICA)
    }

    /// What the wallet's replica knows, as of its last synced block; `None`
    /// before the first sync.
    ///
    /// # Errors
    /// [`WalletError::Replica`] when the replica cannot be read.
    pub fn chain_view(&self) -> Result<Option<ChainView>, WalletError> {
        let dir = self.replica_dir();
        let Some(p) = vouch_registry::trust::policy_of(&dir)? else {
            return Ok(None);
        };
        let replica = vouch_registry::replica::Replica::open(&p.db, p.policy)?;
        if replica.head().is_none() {
            return Ok(None);
        }
        Ok(Some(replica.view()?))
    }

    /// The whole wallet as one age file encrypted under `passphrase`.
    ///
    /// # Errors
    /// Store errors.
    pub fn backup(&self, passphrase: &str) -> Result<Vec<u8>, WalletError> {
        let mut records = Vec::new();
        for table in Table::ALL {
            if table == Table::Secrets {
                continue;
            }
            for (id, value) in self.store.all::<serde_json::Value>(table)? {
                records.push(crate::backup::RecordCopy {
                    table: table.letter(),
                    id: hex::encode(id),
                    value,
                });
            }
        }
        let snapshot = crate::backup::Snapshot {
            format: crate::backup::FORMAT.into(),
            phrase: self.recovery_phrase()?.to_line().to_string(),
            records,
        };
        Ok(crate::backup::seal(&snapshot, passphrase)?)
    }

    /// Restores a backup made by [`Wallet::backup`] into an empty `dir`;
    /// the backup's passphrase becomes the wallet's.
    ///
    /// # Errors
    /// [`WalletError::NotEmpty`], [`WalletError::Backup`] (wrong passphrase,
    /// not a backup, damaged), [`WalletError::BackupRecord`] and
    /// [`WalletError::BackupRecordRefused`] (a record no wallet writes),
    /// store errors ([`StoreError::TooLarge`]); nothing is created then.
    pub fn restore_backup(
        dir: &Path,
        bytes: &[u8],
        passphrase: &str,
        cost: Cost,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Wallet, WalletError> {
        if Store::exists(dir) {
            return Err(WalletError::NotEmpty(dir.display().to_string()));
        }
        let snapshot = crate::backup::open(bytes, passphrase)?;
        let phrase = RecoveryPhrase::parse(&snapshot.phrase)?;
        let seed = phrase.seed();
        let mut parsed = Vec::with_capacity(snapshot.records.len());
        let mut floor = 0u32;
        // Every record is checked against its table's type and id form
        // before anything is written, so a damaged backup creates no wallet.
        for r in &snapshot.records {
            let table = Table::from_letter(r.table)
                .filter(|t| *t != Table::Secrets)
                .ok_or(WalletError::BackupRecord(r.table))?;
            let refused = |why| WalletError::BackupRecordRefused {
                record: format!("{}/{}", r.table, r.id),
                why,
            };
            let id = hex::decode(&r.id).map_err(|_| refused("its id is not hex"))?;
            let json = crate::store::to_json(&r.value)?;
            match table {
                Table::Credentials => {
                    let stored: StoredCredential = serde_json::from_slice(&json)
                        .map_err(|_| refused("not a stored credential"))?;
                    if id.len() != 8 || !id.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                        return Err(refused("a credential's id is eight hex digits"));
                    }
                    if stored.key_index > MAX_KEY_INDEX {
                        return Err(refused("its holder key index is out of range"));
                    }
                }
                Table::Keys => {
                    let record: KeyRecord =
                        serde_json::from_slice(&json).map_err(|_| refused("not a key record"))?;
                    let index = index_of(&id).map_err(|_| refused("a key's id is 4 bytes"))?;
                    if index > MAX_KEY_INDEX {
                        return Err(refused("its key index is out of range"));
                    }
                    let key = keys::holder_key(seed.as_ref(), index)?;
                    if DidKey::from_public_key(&key.verifying_key()).as_str() != record.did {
                        return Err(refused("its DID is not this phrase's key at that index"));
                    }
                    floor = floor.max(index.saturating_add(1));
                }
                Table::Activity => {
                    serde_json::from_slice::<Activity>(&json)
                        .map_err(|_| refused("not an activity line"))?;
                    if id.len() != 8 {
                        return Err(refused("an activity line's id is 8 bytes"));
                    }
                }
                Table::Settings if id == KEY_FLOOR => {
                    let at = serde_json::from_slice::<u32>(&json)
                        .ok()
                        .filter(|f| *f <= MAX_HANDED_OUT)
                        .ok_or_else(|| refused("the key floor is not a key index"))?;
                    floor = floor.max(at);
                    continue;
                }
                Table::Settings if id == REGISTRY => {
                    serde_json::from_slice::<String>(&json)
                        .map_err(|_| refused("the registry setting is not text"))?;
                }
                Table::Settings | Table::Secrets => {}
            }
            parsed.push((table, id, json));
        }
        let writes: Vec<Write<'_>> = parsed
            .iter_mut()
            .map(|(t, id, json)| Write::Put(*t, id, std::mem::take(json)))
            .collect();
        let floor = floor.saturating_add(KEY_SEARCH_GAP).min(MAX_HANDED_OUT);
        Self::create_with(dir, passphrase, cost, &phrase, Some(floor), writes, rng)
    }

    /// Changes the passphrase (re-wraps the data key only).
    ///
    /// # Errors
    /// Store errors; the old passphrase still works then.
    pub fn change_passphrase(
        &self,
        passphrase: &str,
        cost: Cost,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), WalletError> {
        Ok(self.store.change_passphrase(passphrase, cost, rng)?)
    }
}

fn index_of(id: &[u8]) -> Result<u32, WalletError> {
    let bytes: [u8; 4] = id
        .try_into()
        .map_err(|_| StoreError::Damaged("a key record id is not 4 bytes".into()))?;
    Ok(u32::from_be_bytes(bytes))
}
