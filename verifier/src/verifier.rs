//! A verifier's directory and the one call that checks a presentation.
//!
//! `<dir>/verifier.json` names the registry, the node key this verifier
//! trusts and its own audience (`aud`); `<dir>/replica` is its replica of
//! the chain; `<dir>/nonces` its [`NonceBook`]; `<dir>/policy.toml`, when
//! present, its [`PolicyFile`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vouch_core::presentation_request::PresentationRequest;
use vouch_core::verify::{
    check_batch, prepare, prepare_sd_jwt, verify, verify_sd_jwt, Policy, Prepared, Request,
    Signatures, Verification,
};
use vouch_core::view::{ChainView, Status};
use vouch_core::{CheckName, ClaimPath, Outcome, VerifyError};
use vouch_registry::client::{ClientError, NodeClient};
use vouch_registry::replica::{Replica, ReplicaError, SyncReport};

use crate::batch::{BatchConfig, SignatureBatcher};
use crate::input::{Presented, Read, Source};
use crate::nonce::{NonceBook, NonceError, NonceState};
use crate::policy::{PolicyError, PolicyFile};
use crate::relay::RelayHosts;
use crate::service_lock::{ServiceLock, ServiceLockError};

/// The configuration file in a verifier's directory.
pub const CONFIG_FILE: &str = "verifier.json";
/// The policy file read from a verifier's directory when no other is given.
pub const POLICY_FILE: &str = "policy.toml";

/// Why a verifier could not be set up, or a presentation not checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifierError {
    /// `init` on a directory that already holds a verifier.
    #[error("{0} already holds a verifier (verifier.json); use another --dir")]
    Exists(String),
    /// No verifier in the directory.
    #[error("{0} holds no verifier (no verifier.json): run `vouch-verifier init` first")]
    Missing(String),
    /// A file in the directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `verifier.json` is not a verifier configuration.
    #[error("{path}: {source}")]
    Config {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// No registry to sync from.
    #[error("no registry to sync from: pass --registry URL")]
    NoRegistry,
    /// The registry could not be asked.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The replica failed (storage, or a sync that did not verify).
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// The replica has never been synced.
    #[error("the replica has not been synced yet: pass --registry URL to sync it")]
    NotSynced,
    /// The policy file.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The nonce book.
    #[error(transparent)]
    Nonces(#[from] NonceError),
    /// An audience given that is not the one of the request with the nonce.
    #[error(
        "--aud {given:?} is not the audience {issued:?} of the request that issued this nonce"
    )]
    Audience {
        /// Given.
        given: String,
        /// The request's.
        issued: String,
    },
    /// The presentation could not be checked at all.
    #[error("the presentation cannot be checked: {0}")]
    Verify(#[from] VerifyError),
    /// A `vouch-verifier serve` runs on the directory (or its lock file
    /// could not be used).
    #[error(transparent)]
    Service(#[from] ServiceLockError),
}

/// What `verifier.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifierConfig {
    /// This verifier's audience: the `aud` its requests name.
    pub aud: String,
    /// The registry node's verifier key, trusted for every block.
    pub node_vkey: String,
    /// The registry synced from when none is given.
    pub registry: Option<String>,
}

/// How `init` learns the node key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodePin {
    /// The key `vouch-registry init` printed, given out of band.
    Key(String),
    /// Whatever key the registry shows now (trust on first use).
    FirstUse,
}

/// What the verifier was asked to check the presentation against.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    /// The audience; default: the one of the request with `nonce`, else
    /// this verifier's.
    pub aud: Option<String>,
    /// The nonce expected (a request made elsewhere, or named
    /// explicitly); `None`: the one the presentation answers, looked up in
    /// this verifier's nonce book (see [`Checker::check`]).
    pub nonce: Option<String>,
}

/// The headline a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Headline {
    /// Every check passed.
    Valid,
    /// The credential is revoked (whatever else failed).
    Revoked,
    /// Some other check failed.
    NotValid,
}

impl std::fmt::Display for Headline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Headline::Valid => "VALID",
            Headline::Revoked => "REVOKED",
            Headline::NotValid => "NOT VALID",
        })
    }
}

/// A checked presentation.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    /// VALID, REVOKED or NOT VALID.
    pub headline: Headline,
    /// The first failure, in one sentence; `None` when valid.
    pub reason: Option<String>,
    /// Where the presentation came from.
    pub source: Source,
    /// Every check, the issuer, the claims, the chain position.
    pub verification: Verification,
}

impl Checked {
    fn new(verification: Verification, source: Source) -> Self {
        let headline = if verification.is_valid() {
            Headline::Valid
        } else if verification.status == Some(Status::Revoked) {
            Headline::Revoked
        } else {
            Headline::NotValid
        };
        // Under REVOKED the reason is the revocation, whatever else failed
        // first (a replayed nonce, say); otherwise the first failure.
        let failure = match headline {
            Headline::Revoked => verification
                .verdict
                .checks
                .iter()
                .find(|c| c.name == CheckName::Status && matches!(c.outcome, Outcome::Fail(_)))
                .or_else(|| verification.verdict.first_failure()),
            _ => verification.verdict.first_failure(),
        };
        let reason = failure.map(|c| match &c.outcome {
            Outcome::Fail(why) => format!("{}: {why}", check_label(c.name)),
            _ => check_label(c.name).to_owned(),
        });
        Self {
            headline,
            reason,
            source,
            verification,
        }
    }

    /// True when every check passed.
    pub fn is_valid(&self) -> bool {
        self.headline == Headline::Valid
    }
}

/// A check's name as a person reads it.
pub fn check_label(name: CheckName) -> &'static str {
    match name {
        CheckName::IssuerSignature => "issuer signature",
        CheckName::Disclosures => "disclosures",
        CheckName::Format => "credential format",
        CheckName::Validity => "validity period",
        CheckName::HolderBinding => "holder binding",
        CheckName::Audience => "audience",
        CheckName::Nonce => "nonce",
        CheckName::RequestedClaims => "requested claims",
        CheckName::Kind => "kind of credential",
        CheckName::Accreditation => "issuer accreditation",
        CheckName::IssuerKey => "issuer key",
        CheckName::Status => "revocation status",
        CheckName::Freshness => "replica freshness",
        CheckName::Cosignatures => "witness cosignatures",
        CheckName::Anchor => "anchor proof",
    }
}

/// A verifier: its [`Checker`] and its replica.
pub struct Verifier {
    dir: PathBuf,
    checker: Checker,
    replica: Replica,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("dir", &self.dir)
            .field("checker", &self.checker)
            .finish_non_exhaustive()
    }
}

/// What checks presentations, apart from the replica: configuration,
/// policy, nonce book. It checks against any [`ChainView`] it is given, so
/// a service can check against a snapshot while the replica syncs.
///
/// With [`Checker::set_batching`], threads that call [`Checker::check`]
/// at the same time have their presentations' signatures checked in
/// batches ([`SignatureBatcher`]); off until then (`vouch-verifier serve`
/// turns it on: see `docs/benchmarks.md`, "Verify many at once").
#[derive(Debug)]
pub struct Checker {
    config: VerifierConfig,
    policy_file: PolicyFile,
    policy: Policy,
    nonces: NonceBook,
    batcher: Option<SignatureBatcher>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> VerifierError + '_ {
    move |source| VerifierError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Verifier {
    /// Sets up a verifier in `dir` for the registry at `registry`, trusting
    /// the node key `pin` gives, with audience `aud` (default: a fresh
    /// `urn:vouch:verifier:<random>`). Nothing is synced yet.
    ///
    /// # Errors
    /// [`VerifierError::Exists`]; the registry (for [`NodePin::FirstUse`]);
    /// a node key or audience that does not parse; storage.
    pub async fn init(
        dir: &Path,
        registry: &str,
        pin: NodePin,
        aud: Option<String>,
    ) -> Result<VerifierConfig, VerifierError> {
        let path = dir.join(CONFIG_FILE);
        if path.exists() {
            return Err(VerifierError::Exists(dir.display().to_string()));
        }
        let client = NodeClient::new(registry)?;
        let node_vkey = match pin {
            NodePin::Key(k) => k,
            NodePin::FirstUse => client.info().await?.node_vkey,
        };
        // The key must make a trust policy (with no witnesses yet).
        PolicyFile::default().trust(&node_vkey)?;
        let aud = match aud {
            Some(aud) => aud,
            None => {
                let mut bytes = [0u8; 8];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
                format!(
                    "urn:vouch:verifier:{}",
                    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
                )
            }
        };
        // The audience must fit a request.
        PresentationRequest::new(aud.clone(), "A".repeat(16), 1, Vec::new())
            .map_err(NonceError::from)?;
        let config = VerifierConfig {
            aud,
            node_vkey,
            registry: Some(client.base().to_owned()),
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let json = serde_json::to_vec_pretty(&config).map_err(|source| VerifierError::Config {
            path: path.display().to_string(),
            source,
        })?;
        std::fs::write(&path, json).map_err(io(&path))?;
        Ok(config)
    }

    /// Opens the verifier in `dir` under `policy` (default: `<dir>/policy.toml`
    /// when present, else [`PolicyFile::default`]).
    ///
    /// # Errors
    /// [`VerifierError::Service`] at once when a `vouch-verifier serve`
    /// runs on `dir` (it holds the stores); [`VerifierError::Missing`], a
    /// bad `verifier.json` or policy, storage.
    pub fn open(dir: &Path, policy: Option<PolicyFile>) -> Result<Self, VerifierError> {
        ServiceLock::check_free(dir)?;
        Self::open_stores(dir, policy)
    }

    /// Opens the verifier in `dir` for a service: takes the directory's
    /// [`ServiceLock`] first (which the service keeps while it runs, and
    /// [`ServiceLock::publish`]es its URL in), then opens it as
    /// [`Verifier::open`] does.
    ///
    /// # Errors
    /// [`VerifierError::Service`] when another service runs on `dir`, and
    /// those of [`Verifier::open`].
    pub fn open_for_service(
        dir: &Path,
        policy: Option<PolicyFile>,
    ) -> Result<(Self, ServiceLock), VerifierError> {
        if !dir.join(CONFIG_FILE).exists() {
            return Err(VerifierError::Missing(dir.display().to_string()));
        }
        let lock = ServiceLock::acquire(dir)?;
        Ok((Self::open_stores(dir, policy)?, lock))
    }

    fn open_stores(dir: &Path, policy: Option<PolicyFile>) -> Result<Self, VerifierError> {
        let path = dir.join(CONFIG_FILE);
        if !path.exists() {
            return Err(VerifierError::Missing(dir.display().to_string()));
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let config: VerifierConfig =
            serde_json::from_slice(&bytes).map_err(|source| VerifierError::Config {
                path: path.display().to_string(),
                source,
            })?;
        let policy_file = match policy {
            Some(p) => p,
            None if dir.join(POLICY_FILE).exists() => PolicyFile::read(&dir.join(POLICY_FILE))?,
            None => PolicyFile::default(),
        };
        let policy = policy_file.policy(&config.node_vkey)?;
        let replica = Replica::open(&dir.join("replica"), policy.trust.clone())?;
        let nonces = NonceBook::open(&dir.join("nonces"), policy_file.max_open_requests)?;
        Ok(Self {
            dir: dir.to_owned(),
            checker: Checker {
                config,
                policy_file,
                policy,
                nonces,
                batcher: None,
            },
            replica,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checker: configuration, policy, nonce book.
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// The configuration.
    pub fn config(&self) -> &VerifierConfig {
        &self.checker.config
    }

    /// The policy file in force.
    pub fn policy_file(&self) -> &PolicyFile {
        &self.checker.policy_file
    }

    /// The replica.
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// The checker and the replica apart: a service checks with the one
    /// while it syncs the other.
    pub fn into_parts(self) -> (Checker, Replica) {
        (self.checker, self.replica)
    }

    /// The replica's view as of its head.
    ///
    /// # Errors
    /// [`VerifierError::NotSynced`] before the first sync; storage.
    pub fn view(&self) -> Result<ChainView, VerifierError> {
        view_of(&self.replica)
    }

    /// Syncs the replica from `registry` (default: the configured one).
    ///
    /// # Errors
    /// [`VerifierError::NoRegistry`], the client, the sync (which changes
    /// nothing when it fails).
    pub async fn sync(&mut self, registry: Option<&str>) -> Result<SyncReport, VerifierError> {
        let url = registry
            .or(self.checker.config.registry.as_deref())
            .ok_or(VerifierError::NoRegistry)?;
        let client = NodeClient::new(url)?;
        Ok(self.replica.sync(&client).await?)
    }

    /// Issues a presentation request for `claims`, open for the policy's
    /// `request_ttl` from `now`.
    ///
    /// # Errors
    /// [`VerifierError::Nonces`]: the quota of open requests, storage.
    pub fn request(
        &self,
        claims: Vec<ClaimPath>,
        now: i64,
    ) -> Result<PresentationRequest, VerifierError> {
        self.checker.request(claims, now)
    }

    /// Checks `presented` against the replica's view: see [`Checker::check`].
    ///
    /// # Errors
    /// [`VerifierError::NotSynced`], and those of [`Checker::check`].
    pub fn check(
        &self,
        presented: &Presented,
        ask: &Ask,
        now: i64,
    ) -> Result<Checked, VerifierError> {
        self.checker.check(&self.view()?, presented, ask, now)
    }
}

/// The view of `replica` as of its head.
///
/// # Errors
/// [`VerifierError::NotSynced`] before the first sync; storage.
pub fn view_of(replica: &Replica) -> Result<ChainView, VerifierError> {
    match replica.view() {
        Ok(view) => Ok(view),
        Err(ReplicaError::NotSynced) => Err(VerifierError::NotSynced),
        Err(e) => Err(e.into()),
    }
}

impl Checker {
    /// The configuration.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// The policy file in force.
    pub fn policy_file(&self) -> &PolicyFile {
        &self.policy_file
    }

    /// The nonce book.
    pub fn nonces(&self) -> &NonceBook {
        &self.nonces
    }

    /// Gathers the signatures of concurrent [`Checker::check`]s into
    /// batches as `config` says ([`BatchConfig::DEFAULT`] is a sensible
    /// one); `None` (the default) checks each presentation alone
    /// ([`vouch_core::verify::verify`]). Verdicts are the same either way.
    pub fn set_batching(&mut self, config: Option<BatchConfig>) {
        self.batcher = config.map(SignatureBatcher::new);
    }

    /// The batcher, when batching is on.
    pub fn batcher(&self) -> Option<&SignatureBatcher> {
        self.batcher.as_ref()
    }

    /// The relays whose links are followed: the policy's `relay_hosts`, or
    /// when it lists none, the registry this verifier syncs from.
    pub fn relay_hosts(&self) -> RelayHosts {
        if self.policy_file.relay_hosts.is_empty() {
            RelayHosts::only(self.config.registry.as_deref())
        } else {
            RelayHosts::only(self.policy_file.relay_hosts.iter().map(String::as_str))
        }
    }

    /// Issues a presentation request for `claims`, open for the policy's
    /// `request_ttl` from `now`.
    ///
    /// # Errors
    /// [`VerifierError::Nonces`]: the quota of open requests, storage.
    pub fn request(
        &self,
        claims: Vec<ClaimPath>,
        now: i64,
    ) -> Result<PresentationRequest, VerifierError> {
        Ok(self
            .nonces
            .issue(&self.config.aud, claims, self.policy_file.request_ttl, now)?)
    }

    /// Checks `presented` against `view` under the policy, for `ask`, at
    /// `now`; redeems the nonce it answers (once) when it passes.
    ///
    /// The nonce is `ask.nonce` when given (a request made elsewhere, or
    /// named explicitly); otherwise the one the presentation's KB-JWT
    /// carries, when this verifier's nonce book holds it: a verifier that
    /// issued the request knows its nonce. A nonce this verifier did not
    /// issue (when the policy requires one), one already answered (a
    /// replay) or one whose request expired fails the nonce check.
    ///
    /// # Errors
    /// [`VerifierError::Audience`], [`VerifierError::Verify`] when the
    /// presentation cannot be checked, storage.
    pub fn check(
        &self,
        view: &ChainView,
        presented: &Presented,
        ask: &Ask,
        now: i64,
    ) -> Result<Checked, VerifierError> {
        // Counted as preparing from here, so an open batch may wait for
        // these signatures.
        let entry = self.batcher.as_ref().map(SignatureBatcher::enter);
        let staged = self.stage(presented, ask, now)?;
        let policy = &self.policy;
        let verification = match (entry, &staged.read) {
            (Some(entry), _) => {
                let prepared = staged.prepare(view, policy, now)?;
                if let Some(signatures) = prepared.signatures() {
                    entry.submit(signatures);
                }
                prepared.finish()?
            }
            (None, Some(r)) => verify_sd_jwt(
                &r.sd_jwt,
                r.anchor.as_ref(),
                &staged.request,
                view,
                policy,
                now,
            )?,
            (None, None) => verify(presented.presentation(), &staged.request, view, policy, now)?,
        };
        let (checked, redeemed) = self.conclude(staged, verification, now)?;
        if redeemed != Redeemed::Nothing {
            if let Err(e) = self.nonces.save() {
                // A refusal stands; an acceptance that is not on disk is
                // not one.
                if redeemed == Redeemed::Accepted {
                    return Err(NonceError::Unsaved(std::sync::Arc::new(e)).into());
                }
            }
        }
        Ok(checked)
    }

    /// Checks each of `items` (a view, a presentation and what is asked of
    /// it) as [`Checker::check`] checks it, their
    /// signatures as one Ed25519 batch equation (on this thread, without
    /// the batcher): the results are in `items`' order, each exactly
    /// [`Checker::check`]'s for its item. A bad signature in one item
    /// costs the others time (the equation fails, and is narrowed down by
    /// halves, see [`vouch_core::verify::check_batch`]), never their
    /// verdict.
    ///
    /// The nonces are redeemed in `items`' order: of two items answering
    /// the same open request, the first that passes redeems it, and the
    /// other's nonce check fails as a replay. The redemptions are saved
    /// together, once, before this returns; when that fails, each item
    /// accepted is answered with the error ([`NonceError::Unsaved`], as
    /// [`Checker::check`] answers then), and the refusals stand.
    pub fn check_many(
        &self,
        items: &[(&ChainView, &Presented, &Ask)],
        now: i64,
    ) -> Vec<Result<Checked, VerifierError>> {
        let staged: Vec<Result<Staged<'_>, VerifierError>> = items
            .iter()
            .map(|(_, presented, ask)| self.stage(presented, ask, now))
            .collect();
        let prepared: Vec<Option<Result<Prepared<'_>, VerifierError>>> = staged
            .iter()
            .zip(items)
            .map(|(s, (view, _, _))| Some(s.as_ref().ok()?.prepare(view, &self.policy, now)))
            .collect();
        let sets: Vec<Signatures> = prepared
            .iter()
            .filter_map(|p| p.as_ref()?.as_ref().ok()?.signatures().cloned())
            .collect();
        // One alone is checked when finished: the same equation.
        if sets.len() >= 2 {
            check_batch(&sets);
        }
        let finished: Vec<Option<Result<Verification, VerifierError>>> = prepared
            .into_iter()
            .map(|p| p.map(|p| Ok(p?.finish()?)))
            .collect();
        let mut accepted = Vec::new();
        let mut wrote = false;
        let mut results: Vec<Result<Checked, VerifierError>> = staged
            .into_iter()
            .zip(finished)
            .enumerate()
            .map(|(i, (staged, finished))| match (staged, finished) {
                (Ok(staged), Some(Ok(verification))) => {
                    let (checked, redeemed) = self.conclude(staged, verification, now)?;
                    wrote |= redeemed != Redeemed::Nothing;
                    if redeemed == Redeemed::Accepted {
                        accepted.push(i);
                    }
                    Ok(checked)
                }
                (Err(e), _) | (_, Some(Err(e))) => Err(e),
                // Only a staging error leaves nothing prepared.
                (Ok(_), None) => unreachable!("a staged item is always prepared"),
            })
            .collect();
        if wrote {
            if let Err(e) = self.nonces.save() {
                let e = std::sync::Arc::new(e);
                for i in accepted {
                    results[i] = Err(NonceError::Unsaved(std::sync::Arc::clone(&e)).into());
                }
            }
        }
        results
    }

    /// The first part of a check: the presentation read, the nonce it
    /// answers and what the book says of it, and the request it is
    /// checked against.
    fn stage<'p>(
        &self,
        presented: &'p Presented,
        ask: &Ask,
        now: i64,
    ) -> Result<Staged<'p>, VerifierError> {
        // Read once: an envelope is decoded here, not once for its nonce
        // and again to verify it. One that does not read goes to
        // verification as it is, which says why.
        let read = presented.read();
        let (nonce, state) = match &ask.nonce {
            Some(nonce) => (Some(nonce.clone()), Some(self.nonces.state(nonce, now)?)),
            None => self.answered_nonce(read.as_ref().and_then(Read::kb_nonce), now)?,
        };
        let issued = match &state {
            Some(NonceState::Open(r) | NonceState::Used(r) | NonceState::Expired(r)) => Some(r),
            _ => None,
        };
        let request = match issued {
            Some(r) => {
                if let Some(given) = ask.aud.as_ref().filter(|a| *a != r.aud()) {
                    return Err(VerifierError::Audience {
                        given: given.clone(),
                        issued: r.aud().to_owned(),
                    });
                }
                r.to_request()
            }
            None => Request {
                aud: ask.aud.clone().unwrap_or_else(|| self.config.aud.clone()),
                nonce: nonce.clone(),
                claims: Vec::new(),
            },
        };
        Ok(Staged {
            presented,
            read,
            nonce,
            state,
            request,
        })
    }

    /// The last part of a check: the nonce redeemed when the presentation
    /// answers it, or the nonce check failed when it cannot be.
    /// Also what it redeemed, which the caller saves
    /// ([`NonceBook::save`]) before anyone sees the answer.
    fn conclude(
        &self,
        staged: Staged<'_>,
        mut verification: Verification,
        now: i64,
    ) -> Result<(Checked, Redeemed), VerifierError> {
        let Staged {
            presented,
            nonce,
            state,
            ..
        } = staged;
        let mut redeemed = Redeemed::Nothing;
        if let Some(nonce) = &nonce {
            let answered = verification.check(CheckName::Nonce) == Some(&Outcome::Pass)
                && verification.check(CheckName::HolderBinding) == Some(&Outcome::Pass);
            let failure = match state {
                Some(NonceState::Unknown) | None => Some(format!(
                    "nonce {nonce} was not issued by this verifier (or expired long ago)"
                )),
                Some(_) if answered => {
                    let (state, wrote) = self.nonces.redeem_unsaved(nonce, now)?;
                    if wrote {
                        redeemed = Redeemed::Rejected;
                    }
                    match state {
                        NonceState::Open(_) => {
                            redeemed = Redeemed::Accepted;
                            None
                        }
                        NonceState::Used(_) => Some(
                            "replayed: this request was already answered by a presentation, \
                             and each request is accepted once"
                                .to_owned(),
                        ),
                        NonceState::Expired(r) => Some(format!(
                            "the request expired {} s ago (at {})",
                            now - r.expires(),
                            r.expires()
                        )),
                        NonceState::Unknown => Some(format!(
                            "nonce {nonce} was not issued by this verifier (or expired long ago)"
                        )),
                    }
                }
                // The presentation does not answer this nonce: the nonce
                // check already says so, and the nonce stays open.
                Some(_) => None,
            };
            if let Some(why) = failure {
                set(&mut verification, CheckName::Nonce, Outcome::Fail(why));
            }
        }
        Ok((Checked::new(verification, presented.source), redeemed))
    }

    /// With no nonce asked for: the nonce the presentation carries
    /// (`carried`) and what the book says of it, when the book knows it,
    /// or when the policy requires a nonce (then an unknown one is refused
    /// as not issued here); else none, and the nonce is not checked
    /// against the book.
    fn answered_nonce(
        &self,
        carried: Option<String>,
        now: i64,
    ) -> Result<(Option<String>, Option<NonceState>), VerifierError> {
        let Some(nonce) = carried else {
            return Ok((None, None));
        };
        let state = self.nonces.state(&nonce, now)?;
        if state == NonceState::Unknown && !self.policy_file.require_nonce {
            return Ok((None, None));
        }
        Ok((Some(nonce), Some(state)))
    }
}

/// What a check did to the nonce book, to be saved before the answer is
/// given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Redeemed {
    /// Nothing.
    Nothing,
    /// Moved a nonce to used, and refused the presentation (expired).
    Rejected,
    /// Moved a nonce to used, and accepted the presentation's answer.
    Accepted,
}

/// A presentation read, with the nonce it answers and the request it is
/// checked against ([`Checker::stage`]).
struct Staged<'p> {
    presented: &'p Presented,
    read: Option<Read>,
    nonce: Option<String>,
    state: Option<NonceState>,
    request: Request,
}

impl Staged<'_> {
    /// Every check but the two signatures ([`vouch_core::verify::prepare`]).
    fn prepare<'a>(
        &'a self,
        view: &'a ChainView,
        policy: &'a Policy,
        now: i64,
    ) -> Result<Prepared<'a>, VerifierError> {
        Ok(match &self.read {
            Some(r) => prepare_sd_jwt(
                &r.sd_jwt,
                r.anchor.as_ref(),
                &self.request,
                view,
                policy,
                now,
            )?,
            None => prepare(
                self.presented.presentation(),
                &self.request,
                view,
                policy,
                now,
            )?,
        })
    }
}

fn set(verification: &mut Verification, name: CheckName, outcome: Outcome) {
    match verification
        .verdict
        .checks
        .iter_mut()
        .find(|c| c.name == name)
    {
        Some(check) => check.outcome = outcome,
        None => verification.verdict.push(name, outcome),
    }
}
