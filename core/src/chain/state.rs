//! The state derived from the entries ([`ChainState`]) and the rules
//! [`ChainState::apply`] enforces.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::did::DidKey;
use crate::jws::PublicKey;
use crate::status_list::{StatusList, StatusListClaims};

use super::entry::{rotation_message, Action, Entry, ListUri};

/// Why an entry breaks the chain's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The first entry must be genesis.
    #[error("the first entry must be genesis")]
    NoGenesis,
    /// Genesis after entry 0.
    #[error("genesis is only allowed as the first entry")]
    LateGenesis,
    /// Genesis signed by a key it does not name as authority.
    #[error("genesis must be signed by one of its authorities")]
    GenesisSigner,
    /// A DID in the entry is not an Ed25519 did:key.
    #[error("{what}: {why}")]
    BadDid {
        /// Which field.
        what: &'static str,
        /// Why.
        why: String,
    },
    /// Replay, or an entry out of order for its author.
    #[error("sequence number {got} from {author}; expected {expected}")]
    Sequence {
        /// The author.
        author: String,
        /// What it should have been.
        expected: u64,
        /// What it was.
        got: u64,
    },
    /// An author's time went backwards.
    #[error("time {got} is before this author's previous entry ({last})")]
    TimeBackwards {
        /// Previous time.
        last: i64,
        /// This entry's time.
        got: i64,
    },
    /// Only an authority named in genesis may accredit or withdraw.
    #[error("{0} is not an accreditation authority")]
    NotAuthority(String),
    /// The author is not (or no longer) an accredited issuer.
    #[error("{0} is not an accredited issuer")]
    NotAccredited(String),
    /// The author's accreditation was withdrawn.
    #[error("{0}'s accreditation was withdrawn; it can no longer write")]
    Withdrawn(String),
    /// The author's key was rotated away.
    #[error("{author} rotated to {new}; it can no longer write")]
    Rotated {
        /// Old key.
        author: String,
        /// New key.
        new: String,
    },
    /// A status list belongs to another issuer.
    #[error("status list {list} belongs to {owner}")]
    NotListOwner {
        /// The list URI.
        list: String,
        /// Its owner.
        owner: String,
    },
    /// A status list's sequence number did not grow.
    #[error("status list {list}: sequence {got} does not follow {last}")]
    StaleSequence {
        /// The list URI.
        list: String,
        /// Current sequence.
        last: u64,
        /// Offered.
        got: u64,
    },
    /// The Status List Token is bad, unsigned by the author, or for another list.
    #[error("status list token: {0}")]
    Token(String),
    /// A status list URI that is not `<base>/v1/status/<issuer did>~<name>`.
    #[error("status list URI {uri:?}: {why}")]
    ListUri {
        /// The URI.
        uri: String,
        /// What is wrong with it.
        why: String,
    },
    /// A status list URI outside the author's namespace (it names another
    /// issuer's DID), or a list name the author already uses under another URI.
    #[error("status list {list} is outside {author}'s namespace: {why}")]
    ListNamespace {
        /// The list URI.
        list: String,
        /// The entry's author.
        author: String,
        /// Why.
        why: String,
    },
    /// A status token moves an index out of a state it may not leave:
    /// revoked is final, and a withdrawn issuer may only revoke or suspend.
    #[error("status list {list}: index {idx} cannot go from status {from} to {to:?}: {why}")]
    StatusTransition {
        /// The list URI.
        list: String,
        /// The index.
        idx: u64,
        /// Its status in the previous token.
        from: u8,
        /// Its status in the new token (`None`: the new list is shorter).
        to: Option<u8>,
        /// The rule broken.
        why: &'static str,
    },
    /// A status read for a credential whose issuer does not own the list.
    #[error("status list {list} belongs to {owner}, not to the credential's issuer {iss}")]
    ListIssuer {
        /// The list URI.
        list: String,
        /// Its owner.
        owner: String,
        /// The credential's `iss`.
        iss: String,
    },
    /// The list's current token has expired: its status is unknown.
    #[error("status list {list}: its token expired at {exp} (now {now}); status unknown")]
    TokenExpired {
        /// The list URI.
        list: String,
        /// The token's `exp`.
        exp: i64,
        /// The time of the read.
        now: i64,
    },
    /// An accreditation period would end before it starts (an entry dated
    /// before the period it ends).
    #[error("{issuer}'s accreditation period began at {from}; an entry at {at} cannot end or replace it")]
    PeriodBackwards {
        /// The issuer.
        issuer: String,
        /// When the current period began.
        from: i64,
        /// The entry's time.
        at: i64,
    },
    /// A rotate-key entry without a valid proof that its author holds the
    /// new key.
    #[error("rotate-key to {new_key}: {why}")]
    RotationProof {
        /// The new did:key.
        new_key: String,
        /// What is wrong with the proof.
        why: String,
    },
    /// Any other malformed field.
    #[error("{0}")]
    Field(String),
}

/// One period in which an issuer was accredited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// Kinds accredited for.
    pub kinds: Vec<String>,
    /// From (Unix seconds, inclusive).
    pub from: i64,
    /// Until (exclusive), if it ended.
    pub until: Option<i64>,
}

/// An issuer as the chain knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issuer {
    /// Display name.
    pub name: String,
    /// Accreditation periods, oldest first.
    pub periods: Vec<Period>,
    /// Set when this key was rotated away.
    pub rotated_to: Option<String>,
    /// Set when this key replaced another.
    pub rotated_from: Option<String>,
    /// Batches anchored.
    pub anchors: u64,
    /// Credentials anchored.
    pub credentials: u64,
}

impl Issuer {
    fn current(&self) -> Option<&Period> {
        self.periods.last().filter(|p| p.until.is_none())
    }
}

/// A status list as the chain knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRecord {
    /// The issuer that owns it.
    pub owner: String,
    /// Last published sequence (0: none yet).
    pub sequence: u64,
    /// The current Status List Token, if one was published.
    pub token: Option<String>,
    /// Log index of the entry that published it.
    pub index: Option<u64>,
    /// Time of that entry.
    pub time: Option<i64>,
}

/// State derived from the entries: who may do what, the current lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainState {
    /// The log's origin, from genesis.
    pub origin: Option<String>,
    /// Accreditation authorities.
    pub authorities: BTreeSet<String>,
    /// Issuers by did:key.
    pub issuers: BTreeMap<String, Issuer>,
    /// Per author: last sequence number and time.
    pub authors: BTreeMap<String, (u64, i64)>,
    /// Status lists by URI.
    pub lists: BTreeMap<String, ListRecord>,
    /// Status list URIs by list id (`<issuer did>~<name>`, see
    /// [`ListUri::id`]): one URI per id on a chain.
    #[serde(default)]
    pub list_ids: BTreeMap<String, String>,
    /// Entries applied.
    pub size: u64,
}

fn did(what: &'static str, s: &str) -> Result<DidKey, RuleError> {
    DidKey::parse(s).map_err(|e| RuleError::BadDid {
        what,
        why: e.to_string(),
    })
}

/// How an issuer may write a status token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StatusRight {
    /// Accredited now: any change but un-revoking.
    Full,
    /// Withdrawn: only revoking or suspending.
    RevokeOnly,
}

/// The first key of `did`'s rotation history in `issuers` (itself if it
/// never rotated from another).
fn first_key<'a>(issuers: &'a BTreeMap<String, Issuer>, did: &'a str) -> &'a str {
    let mut at = did;
    // Rotation only ever moves to an unused key, so the history has no
    // cycle; the bound is a second guard.
    for _ in 0..=issuers.len() {
        match issuers.get(at).and_then(|i| i.rotated_from.as_deref()) {
            Some(prev) => at = prev,
            None => break,
        }
    }
    at
}

/// Whether `a` and `b` are the same issuer in `issuers`: equal, or keys of
/// one rotation history. Shared by [`ChainState`] and
/// [`crate::view::ChainView`].
pub(crate) fn same_issuer(issuers: &BTreeMap<String, Issuer>, a: &str, b: &str) -> bool {
    a == b || first_key(issuers, a) == first_key(issuers, b)
}

impl ChainState {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies an entry whose signature was already checked.
    ///
    /// # Errors
    /// [`RuleError`] when the entry breaks a rule; the state is unchanged.
    pub fn apply(&mut self, entry: &Entry) -> Result<(), RuleError> {
        let author = entry.author.as_str();
        let (expected, last_time) = match self.authors.get(author) {
            Some(&(seq, time)) => (
                seq.checked_add(1).ok_or_else(|| {
                    RuleError::Field(format!("{author} has used every sequence number"))
                })?,
                time,
            ),
            None => (0, i64::MIN),
        };
        if entry.seq != expected {
            return Err(RuleError::Sequence {
                author: author.to_owned(),
                expected,
                got: entry.seq,
            });
        }
        if entry.time < last_time {
            return Err(RuleError::TimeBackwards {
                last: last_time,
                got: entry.time,
            });
        }
        if self.size == 0 && !matches!(entry.action, Action::Genesis { .. }) {
            return Err(RuleError::NoGenesis);
        }
        match &entry.action {
            Action::Genesis {
                origin,
                authorities,
            } => self.genesis(author, origin, authorities)?,
            Action::Accredit {
                issuer,
                name,
                kinds,
            } => self.accredit(author, entry.time, issuer, name, kinds)?,
            Action::Withdraw { issuer, .. } => self.withdraw(author, entry.time, issuer)?,
            Action::Anchor {
                list,
                root,
                count,
                first,
                last,
            } => self.anchor(&entry.author, list, root, *count, *first, *last)?,
            Action::Status {
                list,
                sequence,
                token,
            } => self.status(entry, list, *sequence, token)?,
            Action::RotateKey { new_key, proof } => self.rotate(entry, new_key, proof)?,
        }
        match self.authors.get_mut(author) {
            Some(last) => *last = (entry.seq, entry.time),
            None => {
                self.authors
                    .insert(author.to_owned(), (entry.seq, entry.time));
            }
        }
        self.size = self.size.saturating_add(1);
        Ok(())
    }

    fn genesis(
        &mut self,
        author: &str,
        origin: &str,
        authorities: &[String],
    ) -> Result<(), RuleError> {
        if self.size != 0 {
            return Err(RuleError::LateGenesis);
        }
        if origin.is_empty() || origin.contains(char::is_whitespace) || origin.contains('+') {
            return Err(RuleError::Field(format!(
                "origin {origin:?} must be non-empty, without spaces or '+'"
            )));
        }
        for a in authorities {
            did("genesis authority", a)?;
        }
        if !authorities.iter().any(|a| a == author) {
            return Err(RuleError::GenesisSigner);
        }
        self.origin = Some(origin.to_owned());
        self.authorities = authorities.iter().cloned().collect();
        Ok(())
    }

    fn authority(&self, author: &str) -> Result<(), RuleError> {
        if self.authorities.contains(author) {
            Ok(())
        } else {
            Err(RuleError::NotAuthority(author.to_owned()))
        }
    }

    /// Checks that `author` is an issuer key not rotated away.
    fn issuer_key(&self, author: &str) -> Result<&Issuer, RuleError> {
        let issuer = self
            .issuers
            .get(author)
            .ok_or_else(|| RuleError::NotAccredited(author.to_owned()))?;
        if let Some(new) = &issuer.rotated_to {
            return Err(RuleError::Rotated {
                author: author.to_owned(),
                new: new.clone(),
            });
        }
        Ok(issuer)
    }

    /// Checks that `author` may write as an issuer now.
    fn writer(&self, author: &str) -> Result<&Issuer, RuleError> {
        let issuer = self.issuer_key(author)?;
        if issuer.current().is_none() {
            return Err(RuleError::Withdrawn(author.to_owned()));
        }
        Ok(issuer)
    }

    /// How `author` may publish status tokens: in full while accredited,
    /// revoke-or-suspend only once withdrawn (its lists must not freeze).
    fn status_writer(&self, author: &str) -> Result<StatusRight, RuleError> {
        let issuer = self.issuer_key(author)?;
        Ok(if issuer.current().is_some() {
            StatusRight::Full
        } else {
            StatusRight::RevokeOnly
        })
    }

    /// Whether `a` and `b` are the same issuer: equal, or keys of one
    /// rotation history.
    pub fn same_issuer(&self, a: &str, b: &str) -> bool {
        same_issuer(&self.issuers, a, b)
    }

    /// Checks a period-ending entry at `time` against the current period.
    fn period_ends(&self, issuer: &str, time: i64) -> Result<(), RuleError> {
        match self.issuers.get(issuer).and_then(Issuer::current) {
            Some(p) if time < p.from => Err(RuleError::PeriodBackwards {
                issuer: issuer.to_owned(),
                from: p.from,
                at: time,
            }),
            _ => Ok(()),
        }
    }

    fn accredit(
        &mut self,
        author: &str,
        time: i64,
        issuer: &str,
        name: &str,
        kinds: &[String],
    ) -> Result<(), RuleError> {
        self.authority(author)?;
        did("accredited issuer", issuer)?;
        if name.trim().is_empty() {
            return Err(RuleError::Field("issuer name is empty".into()));
        }
        if kinds.is_empty()
            || kinds.iter().any(|k| {
                k.is_empty()
                    || !k
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
        {
            return Err(RuleError::Field(
                "kinds must be a non-empty list of names of letters, digits, '-' and '_'".into(),
            ));
        }
        if let Some(record) = self.issuers.get(issuer) {
            if let Some(new) = &record.rotated_to {
                return Err(RuleError::Rotated {
                    author: issuer.to_owned(),
                    new: new.clone(),
                });
            }
        }
        self.period_ends(issuer, time)?;
        let record = self.issuers.entry(issuer.to_owned()).or_insert(Issuer {
            name: name.to_owned(),
            periods: Vec::new(),
            rotated_to: None,
            rotated_from: None,
            anchors: 0,
            credentials: 0,
        });
        record.name = name.to_owned();
        if let Some(p) = record.periods.last_mut().filter(|p| p.until.is_none()) {
            p.until = Some(time);
        }
        record.periods.push(Period {
            kinds: kinds.to_vec(),
            from: time,
            until: None,
        });
        Ok(())
    }

    fn withdraw(&mut self, author: &str, time: i64, issuer: &str) -> Result<(), RuleError> {
        self.authority(author)?;
        self.period_ends(issuer, time)?;
        let record = self
            .issuers
            .get_mut(issuer)
            .ok_or_else(|| RuleError::NotAccredited(issuer.to_owned()))?;
        let period = record
            .periods
            .last_mut()
            .filter(|p| p.until.is_none())
            .ok_or_else(|| RuleError::NotAccredited(issuer.to_owned()))?;
        period.until = Some(time);
        Ok(())
    }

    /// Checks that `author` may write to list `list`: the URI is well
    /// formed and names the author (or a key of its rotation history), its
    /// id is not taken under another URI, and no other issuer owns it.
    fn list_for<'l>(&self, author_key: &DidKey, list: &'l str) -> Result<&'l str, RuleError> {
        let author = author_key.as_str();
        let uri = ListUri::parse_known(list, Some(author_key))?;
        let namespace = |why: String| RuleError::ListNamespace {
            list: list.to_owned(),
            author: author.to_owned(),
            why,
        };
        if !self.same_issuer(uri.issuer, author) {
            return Err(namespace(format!(
                "it belongs to {}, not to this issuer or a key it rotated from",
                uri.issuer
            )));
        }
        let id = uri.id_in(list).ok_or_else(|| RuleError::ListUri {
            uri: list.chars().take(super::MAX_LIST_URI).collect(),
            why: "its id is not its last path segment".into(),
        })?;
        if let Some(other) = self.list_ids.get(id).filter(|u| *u != list) {
            return Err(namespace(format!("list {id} is already at {other}")));
        }
        match self.lists.get(list) {
            Some(record) if record.owner != author => Err(RuleError::NotListOwner {
                list: list.to_owned(),
                owner: record.owner.clone(),
            }),
            _ => Ok(id),
        }
    }

    fn claim_list(&mut self, author: &str, list: &str, id: &str) -> &mut ListRecord {
        if !self.list_ids.contains_key(id) {
            self.list_ids.insert(id.to_owned(), list.to_owned());
        }
        self.lists.entry(list.to_owned()).or_insert(ListRecord {
            owner: author.to_owned(),
            sequence: 0,
            token: None,
            index: None,
            time: None,
        })
    }

    fn anchor(
        &mut self,
        author_key: &DidKey,
        list: &str,
        root: &str,
        count: u64,
        first: u64,
        last: u64,
    ) -> Result<(), RuleError> {
        let author = author_key.as_str();
        self.writer(author)?;
        let id = self.list_for(author_key, list)?;
        if root.len() != 64 || !root.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(RuleError::Field(
                "anchor root must be 64 lowercase hex digits".into(),
            ));
        }
        if count == 0 || first > last || count - 1 > last - first {
            return Err(RuleError::Field(format!(
                "anchor of {count} credentials cannot use status indexes {first}..={last}"
            )));
        }
        // Most anchors go to a list already claimed: looking that up
        // allocates nothing.
        if !self.lists.contains_key(list) || !self.list_ids.contains_key(id) {
            self.claim_list(author, list, id);
        }
        if let Some(issuer) = self.issuers.get_mut(author) {
            issuer.anchors = issuer.anchors.saturating_add(1);
            issuer.credentials = issuer.credentials.saturating_add(count);
        }
        Ok(())
    }

    fn status(
        &mut self,
        entry: &Entry,
        list: &str,
        sequence: u64,
        token: &str,
    ) -> Result<(), RuleError> {
        let author = entry.author.as_str();
        let right = self.status_writer(author)?;
        let id = self.list_for(&entry.author, list)?;
        let previous = self.lists.get(list);
        if right == StatusRight::RevokeOnly && previous.is_none() {
            return Err(RuleError::Withdrawn(author.to_owned()));
        }
        let last = previous.map_or(0, |r| r.sequence);
        if sequence <= last {
            return Err(RuleError::StaleSequence {
                list: list.to_owned(),
                last,
                got: sequence,
            });
        }
        let key = PublicKey::Ed25519(*entry.author.verifying_key());
        let claims = StatusListClaims::verify(token, &key)
            .map_err(|e| RuleError::Token(format!("{e} (it must be signed by the author)")))?;
        if claims.sub != list {
            return Err(RuleError::Token(format!(
                "sub {:?} is not the list {list:?}",
                claims.sub
            )));
        }
        if claims.iss.as_deref() != Some(author) {
            return Err(RuleError::Token(format!(
                "iss {:?} is not the entry's author {author}",
                claims.iss
            )));
        }
        if let Some(exp) = claims.exp.filter(|&exp| exp <= entry.time) {
            return Err(RuleError::Token(format!(
                "exp {exp} is not after the entry's time {}",
                entry.time
            )));
        }
        let before = match previous.and_then(|r| r.token.as_deref()) {
            Some(text) => Some(parse_token(text)?.list),
            None => None,
        };
        check_transitions(list, before.as_ref(), &claims.list, right)?;
        let index = self.size;
        let record = self.claim_list(author, list, id);
        record.sequence = sequence;
        record.token = Some(token.to_owned());
        record.index = Some(index);
        record.time = Some(entry.time);
        Ok(())
    }

    /// Rotation moves every role of the key: the authority role and the
    /// issuer role (with its lists) alike. Refusing keys with both roles
    /// would leave a compromised mixed key with no way out; rotating one role
    /// only would leave the old key able to write in the other.
    ///
    /// The entry must carry the new key's signature over
    /// [`rotation_message`] for this log, author, new key and sequence
    /// number.
    fn rotate(&mut self, entry: &Entry, new_key: &str, proof: &str) -> Result<(), RuleError> {
        let (author, time) = (entry.author.as_str(), entry.time);
        let new = did("new key", new_key)?;
        let bad_proof = |why: &str| RuleError::RotationProof {
            new_key: new_key.to_owned(),
            why: why.to_owned(),
        };
        let signature = crate::b64::decode_array::<64>(proof)
            .map(|b| Signature::from_bytes(&b))
            .map_err(|_| bad_proof("the proof is not 64 bytes of base64url"))?;
        let origin = self.origin.as_deref().unwrap_or_default();
        let message = rotation_message(origin, author, new_key, entry.seq);
        crate::ed25519::verify(new.verifying_key(), &[&message], &signature.to_bytes()).map_err(
            |_| {
                bad_proof(
                    "the proof does not verify under the new key (it must sign this log, \
                     the old key, the new key and this entry's sequence number)",
                )
            },
        )?;
        if self.issuers.contains_key(new_key)
            || self.authorities.contains(new_key)
            || self.authors.contains_key(new_key)
        {
            return Err(RuleError::Field(format!("{new_key} is already in use")));
        }
        let is_authority = self.authorities.contains(author);
        let issuer = if is_authority {
            // An authority's issuer role (if any, and not moved already)
            // moves with it, accredited now or withdrawn.
            self.issuers
                .get(author)
                .filter(|i| i.rotated_to.is_none())
                .cloned()
        } else {
            Some(self.writer(author)?.clone())
        };
        if issuer.is_some() {
            self.period_ends(author, time)?;
        }
        if is_authority {
            self.authorities.remove(author);
            self.authorities.insert(new_key.to_owned());
        }
        let Some(old) = issuer else {
            return Ok(());
        };
        let periods = match old.current() {
            Some(p) => vec![Period {
                kinds: p.kinds.clone(),
                from: time,
                until: None,
            }],
            None => Vec::new(),
        };
        if let Some(record) = self.issuers.get_mut(author) {
            record.rotated_to = Some(new_key.to_owned());
            if let Some(p) = record.periods.last_mut().filter(|p| p.until.is_none()) {
                p.until = Some(time);
            }
        }
        self.issuers.insert(
            new_key.to_owned(),
            Issuer {
                name: old.name,
                periods,
                rotated_to: None,
                rotated_from: Some(author.to_owned()),
                anchors: 0,
                credentials: 0,
            },
        );
        for record in self.lists.values_mut() {
            if record.owner == author {
                record.owner = new_key.to_owned();
            }
        }
        Ok(())
    }

    /// Whether `issuer` was accredited for `kind` at Unix time `at`.
    pub fn accredited(&self, issuer: &str, kind: &str, at: i64) -> bool {
        self.issuers.get(issuer).is_some_and(|i| {
            i.periods.iter().any(|p| {
                p.from <= at && p.until.is_none_or(|u| at < u) && p.kinds.iter().any(|k| k == kind)
            })
        })
    }

    /// The list with id `<issuer did>~<name>` (the last segment of its URI),
    /// looked up exactly: its URI and record.
    pub fn list_by_id(&self, id: &str) -> Option<(&str, &ListRecord)> {
        let uri = self.list_ids.get(id)?;
        self.lists.get(uri).map(|r| (uri.as_str(), r))
    }

    /// The status of index `idx` of the list `uri` (matched exactly) for a
    /// credential issued by `iss`, read at Unix time `now`: `None` when no
    /// token was published for it, else the status value (0 valid, 1
    /// invalid, 2 suspended).
    ///
    /// # Errors
    /// [`RuleError::ListIssuer`] when the list does not belong to `iss` (or
    /// a key of its rotation history), [`RuleError::TokenExpired`] when the
    /// token's `exp` has passed, [`RuleError::Token`] when `idx` is beyond
    /// the list.
    pub fn status_of(
        &self,
        iss: &str,
        uri: &str,
        idx: u64,
        now: i64,
    ) -> Result<Option<u8>, RuleError> {
        let Some(record) = self.lists.get(uri) else {
            return Ok(None);
        };
        if !self.same_issuer(&record.owner, iss) {
            return Err(RuleError::ListIssuer {
                list: uri.to_owned(),
                owner: record.owner.clone(),
                iss: iss.to_owned(),
            });
        }
        let Some(token) = record.token.as_deref() else {
            return Ok(None);
        };
        let claims = parse_token(token)?;
        if let Some(exp) = claims.exp.filter(|&exp| now >= exp) {
            return Err(RuleError::TokenExpired {
                list: uri.to_owned(),
                exp,
                now,
            });
        }
        claims
            .list
            .get(idx)
            .map(Some)
            .map_err(|e| RuleError::Token(e.to_string()))
    }
}

/// Parses a token already checked when its entry was applied.
fn parse_token(token: &str) -> Result<StatusListClaims, RuleError> {
    let jws = crate::jws::Jws::parse(token).map_err(|e| RuleError::Token(e.to_string()))?;
    StatusListClaims::parse_unverified(&jws).map_err(|e| RuleError::Token(e.to_string()))
}

/// Checks every index that changes from `before` (all valid when `None`)
/// to `after`: revoked (1) is final; with [`StatusRight::RevokeOnly`] an
/// index may only stay, become revoked, or go from valid to suspended (2).
/// Work is linear in the lists' byte lengths; zero bytes are skipped whole.
fn check_transitions(
    list: &str,
    before: Option<&StatusList>,
    after: &StatusList,
    right: StatusRight,
) -> Result<(), RuleError> {
    use crate::status_list::status::{INVALID, SUSPENDED, VALID};
    let refuse = |idx: u64, from: u8, to: Option<u8>, why: &'static str| {
        Err(RuleError::StatusTransition {
            list: list.to_owned(),
            idx,
            from,
            to,
            why,
        })
    };
    let allowed = |from: u8, to: Option<u8>| -> Option<&'static str> {
        match (from, to, right) {
            (INVALID, Some(INVALID), _) => None,
            (INVALID, _, _) => Some("revocation is final"),
            (f, Some(t), _) if f == t => None,
            (_, _, StatusRight::Full) => None,
            (_, Some(INVALID), StatusRight::RevokeOnly) => None,
            (VALID, Some(SUSPENDED), StatusRight::RevokeOnly) => None,
            (_, _, StatusRight::RevokeOnly) => {
                Some("a withdrawn issuer may only revoke or suspend")
            }
        }
    };
    // Every index set in `before`.
    if let Some(before) = before {
        for idx in set_indexes(before) {
            let from = before.get(idx).unwrap_or(VALID);
            let to = after.get(idx).ok();
            if let Some(why) = allowed(from, to) {
                return refuse(idx, from, to, why);
            }
        }
    }
    // Every index set in `after` that was valid before, for a withdrawn
    // issuer (anything may be set by an accredited one).
    if right == StatusRight::RevokeOnly {
        for idx in set_indexes(after) {
            let from = before.and_then(|b| b.get(idx).ok()).unwrap_or(VALID);
            let to = after.get(idx).ok();
            if let Some(why) = allowed(from, to) {
                return refuse(idx, from, to, why);
            }
        }
    }
    Ok(())
}

/// Indexes of a list whose status is not 0, in order.
fn set_indexes(list: &StatusList) -> impl Iterator<Item = u64> + '_ {
    let per_byte = 8 / u64::from(list.bits());
    list.as_bytes()
        .iter()
        .enumerate()
        .filter(|(_, b)| **b != 0)
        .flat_map(move |(i, _)| {
            let start = (i as u64).saturating_mul(per_byte);
            (start..start.saturating_add(per_byte))
                .filter(|&idx| list.get(idx).is_ok_and(|v| v != 0))
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::chain::test_keys::{id, key};
    use ed25519_dalek::SigningKey;

    #[test]
    fn rules() {
        let authority = key(1);
        let uni = key(2);
        let other = key(3);
        let mut s = ChainState::new();
        let t = 1_000;
        let accredit = Action::Accredit {
            issuer: id(&uni),
            name: "Uni".into(),
            kinds: vec!["transcript".into()],
        };
        assert_eq!(
            s.apply(&Entry::sign(&authority, 0, t, accredit.clone())),
            Err(RuleError::NoGenesis)
        );
        s.apply(&Entry::sign(
            &authority,
            0,
            t,
            Action::Genesis {
                origin: "reg".into(),
                authorities: vec![id(&authority)],
            },
        ))
        .unwrap();
        // Replay of seq 0 is refused.
        assert!(matches!(
            s.apply(&Entry::sign(&authority, 0, t, accredit.clone())),
            Err(RuleError::Sequence {
                expected: 1,
                got: 0,
                ..
            })
        ));
        // Only an authority accredits.
        assert_eq!(
            s.apply(&Entry::sign(&uni, 0, t, accredit.clone())),
            Err(RuleError::NotAuthority(id(&uni)))
        );
        s.apply(&Entry::sign(&authority, 1, t + 10, accredit))
            .unwrap();
        assert!(s.accredited(&id(&uni), "transcript", t + 10));
        assert!(!s.accredited(&id(&uni), "transcript", t + 9));
        assert!(!s.accredited(&id(&uni), "employment", t + 10));

        let list = ListUri::format("https://registry.example/", &id(&uni), "1");
        assert_eq!(
            list,
            format!("https://registry.example/v1/status/{}~1", id(&uni))
        );
        let list = list.as_str();
        let anchor = |first, last| Action::Anchor {
            list: list.into(),
            root: "ab".repeat(32),
            count: 2,
            first,
            last,
        };
        assert!(matches!(
            s.apply(&Entry::sign(&uni, 0, t + 20, anchor(5, 5))),
            Err(RuleError::Field(_))
        ));
        s.apply(&Entry::sign(&uni, 0, t + 20, anchor(5, 9)))
            .unwrap();
        assert_eq!(
            s.apply(&Entry::sign(&other, 0, t + 20, anchor(5, 9))),
            Err(RuleError::NotAccredited(id(&other)))
        );

        let token = |signer: &SigningKey, sub: &str, revoked: u64| {
            let mut l = StatusList::new(1, 16).unwrap();
            // Revocation is final: every token keeps 7 revoked once it was.
            for i in [7, revoked] {
                l.set(i, 1).unwrap();
            }
            StatusListClaims {
                sub: sub.into(),
                iss: Some(id(signer)),
                iat: t,
                exp: None,
                ttl: None,
                list: l,
            }
            .sign(&id(signer), signer)
            .as_str()
            .to_owned()
        };
        let status = |sequence, tok: String| Action::Status {
            list: list.into(),
            sequence,
            token: tok,
        };
        assert!(matches!(
            s.apply(&Entry::sign(
                &uni,
                1,
                t + 30,
                status(1, token(&other, list, 7))
            )),
            Err(RuleError::Token(_))
        ));
        assert!(matches!(
            s.apply(&Entry::sign(
                &uni,
                1,
                t + 30,
                status(1, token(&uni, "x", 7))
            )),
            Err(RuleError::Token(_))
        ));
        s.apply(&Entry::sign(
            &uni,
            1,
            t + 30,
            status(1, token(&uni, list, 7)),
        ))
        .unwrap();
        assert_eq!(s.status_of(&id(&uni), list, 7, t), Ok(Some(1)));
        assert_eq!(s.status_of(&id(&uni), list, 6, t), Ok(Some(0)));
        assert_eq!(s.status_of(&id(&uni), "nope", 6, t), Ok(None));
        assert!(matches!(
            s.apply(&Entry::sign(
                &uni,
                2,
                t + 31,
                status(1, token(&uni, list, 8))
            )),
            Err(RuleError::StaleSequence {
                last: 1,
                got: 1,
                ..
            })
        ));
        // Time may not go backwards for an author.
        assert!(matches!(
            s.apply(&Entry::sign(&uni, 2, t, status(2, token(&uni, list, 8)))),
            Err(RuleError::TimeBackwards { .. })
        ));

        // Another accredited issuer cannot touch uni's list.
        s.apply(&Entry::sign(
            &authority,
            2,
            t + 40,
            Action::Accredit {
                issuer: id(&other),
                name: "Other".into(),
                kinds: vec!["employment".into()],
            },
        ))
        .unwrap();
        assert_eq!(
            s.apply(&Entry::sign(
                &other,
                0,
                t + 41,
                status(5, token(&other, list, 1))
            )),
            Err(RuleError::ListNamespace {
                list: list.into(),
                author: id(&other),
                why: format!(
                    "it belongs to {}, not to this issuer or a key it rotated from",
                    id(&uni)
                ),
            })
        );

        // Rotation moves accreditation and lists to the new key.
        let uni2 = key(4);
        s.apply(&Entry::sign(
            &uni,
            2,
            t + 50,
            Action::rotate_key("reg", &id(&uni), &uni2, 2),
        ))
        .unwrap();
        assert!(matches!(
            s.apply(&Entry::sign(&uni, 3, t + 51, anchor(1, 2))),
            Err(RuleError::Rotated { .. })
        ));
        assert!(s.accredited(&id(&uni), "transcript", t + 49));
        assert!(!s.accredited(&id(&uni), "transcript", t + 50));
        s.apply(&Entry::sign(
            &uni2,
            0,
            t + 52,
            status(2, token(&uni2, list, 9)),
        ))
        .unwrap();

        // Withdrawal stops writes.
        s.apply(&Entry::sign(
            &authority,
            3,
            t + 60,
            Action::Withdraw {
                issuer: id(&uni2),
                reason: "audit".into(),
            },
        ))
        .unwrap();
        assert_eq!(
            s.apply(&Entry::sign(&uni2, 1, t + 61, anchor(1, 2))),
            Err(RuleError::Withdrawn(id(&uni2)))
        );
        assert!(s.accredited(&id(&uni2), "transcript", t + 59));
        assert!(!s.accredited(&id(&uni2), "transcript", t + 60));
        assert_eq!(s.size, 8);
    }
}
