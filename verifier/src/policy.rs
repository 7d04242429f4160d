//! The verifier's policy file (TOML): what it accepts.
//!
//! Every key is optional; a missing key takes the safe default
//! ([`PolicyFile::default`]); an unknown key is refused, so a typo never
//! silently falls back to a default. `verifier/policy.example.toml` lists
//! every key with its default and meaning.

use std::path::Path;

use serde::{Deserialize, Serialize};
use vouch_core::log::TrustPolicy;
use vouch_core::template::Templates;
use vouch_core::verify::Policy;
use vouch_registry::replica::Trust;

/// Largest policy file read, in bytes.
pub const MAX_POLICY_BYTES: usize = 64 << 10;

/// Why a policy could not be read or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("reading policy file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is over [`MAX_POLICY_BYTES`].
    #[error("policy file {path} is larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: String,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type.
    #[error("policy {path}: {source}")]
    Toml {
        /// The file, or "text".
        path: String,
        /// Why, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// A value out of range.
    #[error("policy key {key}: {why}")]
    Value {
        /// The key.
        key: &'static str,
        /// Why.
        why: String,
    },
    /// The built-in templates do not load (a build defect).
    #[error("the built-in templates: {0}")]
    Templates(#[source] vouch_core::template::TemplateError),
    /// The node key and witnesses do not make a trust policy.
    #[error("trust (node key, witnesses, need): {0}")]
    Trust(#[source] vouch_core::log::CheckpointError),
}

/// The policy file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyFile {
    /// Kinds of credential accepted (`transcript`, `employment`,
    /// `insurance-policy`); empty: every kind of a built-in template.
    pub accepted_kinds: Vec<String>,
    /// Accreditation authorities trusted (did:keys); empty: the chain's own.
    pub trusted_authorities: Vec<String>,
    /// Witness verifier keys whose cosignatures count.
    pub witnesses: Vec<String>,
    /// Cosignatures a block needs (k of the witnesses); more than half of
    /// them unless `force_weak_quorum`.
    pub need: usize,
    /// Allow `need` at most half the witnesses.
    pub force_weak_quorum: bool,
    /// How old the replica's block may be, seconds.
    pub max_replica_age: u64,
    /// How old a presentation (its KB-JWT) may be, seconds.
    pub max_presentation_age: u64,
    /// A presentation must answer a nonce this verifier issued.
    pub require_nonce: bool,
    /// A presentation must carry an anchor proof.
    pub require_anchor: bool,
    /// A credential must name a status list (else it can never be revoked).
    pub require_status: bool,
    /// Clock skew tolerated, seconds.
    pub leeway: u64,
    /// How long a presentation request stays open, seconds.
    pub request_ttl: u64,
    /// Most requests open at once.
    pub max_open_requests: usize,
    /// Hosts (`host[:port]`) whose relay links are followed; empty: only
    /// the registry this verifier syncs from.
    pub relay_hosts: Vec<String>,
}

impl Default for PolicyFile {
    fn default() -> Self {
        Self {
            accepted_kinds: Vec::new(),
            trusted_authorities: Vec::new(),
            witnesses: Vec::new(),
            need: 0,
            force_weak_quorum: false,
            max_replica_age: 3600,
            max_presentation_age: 300,
            require_nonce: true,
            require_anchor: false,
            require_status: true,
            leeway: 60,
            request_ttl: 600,
            max_open_requests: 10_000,
            relay_hosts: Vec::new(),
        }
    }
}

/// Longest a request may stay open, seconds (a day).
pub const MAX_REQUEST_TTL: u64 = 24 * 3600;
/// Most requests open at once, the ceiling of `max_open_requests`.
pub const MAX_OPEN_REQUESTS: usize = 1_000_000;

impl PolicyFile {
    /// Parses policy TOML; `path` names it in errors.
    ///
    /// # Errors
    /// [`PolicyError::Toml`] for broken TOML, unknown keys and wrong types;
    /// [`PolicyError::Value`] for values out of range or unknown kinds.
    pub fn parse(text: &str, path: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|source| PolicyError::Toml {
            path: path.to_owned(),
            source,
        })?;
        file.check()?;
        Ok(file)
    }

    /// Reads and parses the policy file at `path`.
    ///
    /// # Errors
    /// [`PolicyError::Io`], [`PolicyError::TooLarge`], and those of
    /// [`PolicyFile::parse`].
    pub fn read(path: &Path) -> Result<Self, PolicyError> {
        let shown = path.display().to_string();
        let len = std::fs::metadata(path)
            .map_err(|source| PolicyError::Io {
                path: shown.clone(),
                source,
            })?
            .len();
        if len > MAX_POLICY_BYTES as u64 {
            return Err(PolicyError::TooLarge { path: shown });
        }
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    fn check(&self) -> Result<(), PolicyError> {
        let value = |key, why: &str| {
            Err(PolicyError::Value {
                key,
                why: why.to_owned(),
            })
        };
        if self.max_replica_age == 0 {
            return value("max_replica_age", "must be at least 1 second");
        }
        if self.max_presentation_age == 0 {
            return value("max_presentation_age", "must be at least 1 second");
        }
        if self.request_ttl == 0 || self.request_ttl > MAX_REQUEST_TTL {
            return value("request_ttl", "must be 1..=86400 seconds");
        }
        if self.max_open_requests == 0 || self.max_open_requests > MAX_OPEN_REQUESTS {
            return value("max_open_requests", "must be 1..=1000000");
        }
        if self.leeway > 3600 {
            return value("leeway", "must be at most 3600 seconds");
        }
        let templates = templates()?;
        for kind in &self.accepted_kinds {
            if !templates.iter().any(|t| &t.kind == kind) {
                let known: Vec<&str> = templates.iter().map(|t| t.kind.as_str()).collect();
                return Err(PolicyError::Value {
                    key: "accepted_kinds",
                    why: format!("{kind:?} is not a known kind ({})", known.join(", ")),
                });
            }
        }
        for a in &self.trusted_authorities {
            if vouch_core::DidKey::parse(a).is_err() {
                return Err(PolicyError::Value {
                    key: "trusted_authorities",
                    why: format!("{a:?} is not a did:key"),
                });
            }
        }
        Ok(())
    }

    /// The trust policy for a replica of the node with verifier key
    /// `node_vkey`, with this file's witnesses and quorum.
    ///
    /// # Errors
    /// [`PolicyError::Trust`] when a key does not parse or the quorum is
    /// weak without `force_weak_quorum`.
    pub fn trust(&self, node_vkey: &str) -> Result<TrustPolicy, PolicyError> {
        Trust {
            node_vkey: node_vkey.to_owned(),
            witnesses: self.witnesses.clone(),
            need: self.need,
        }
        .policy_with(self.force_weak_quorum)
        .map_err(PolicyError::Trust)
    }

    /// The verification policy for the node with verifier key `node_vkey`.
    ///
    /// # Errors
    /// As [`PolicyFile::trust`].
    pub fn policy(&self, node_vkey: &str) -> Result<Policy, PolicyError> {
        let mut policy = Policy::new(self.trust(node_vkey)?, templates()?);
        policy.accepted_kinds = self.accepted_kinds.clone();
        policy.trusted_authorities = self.trusted_authorities.clone();
        policy.max_replica_age = self.max_replica_age;
        policy.max_presentation_age = self.max_presentation_age;
        policy.require_nonce = self.require_nonce;
        policy.require_anchor = self.require_anchor;
        policy.require_status = self.require_status;
        policy.leeway = self.leeway;
        Ok(policy)
    }
}

fn templates() -> Result<Templates, PolicyError> {
    Templates::builtin().map_err(PolicyError::Templates)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn empty_file_is_the_safe_default() {
        let p = PolicyFile::parse("", "t").unwrap();
        assert_eq!(p, PolicyFile::default());
        assert!(p.require_nonce && p.require_status);
    }

    #[test]
    fn the_example_file_parses_and_matches_the_defaults_it_documents() {
        let text = include_str!("../policy.example.toml");
        let p = PolicyFile::parse(text, "policy.example.toml").unwrap();
        assert_eq!(p, PolicyFile::default());
    }

    #[test]
    fn sets_every_key() {
        let p = PolicyFile::parse(
            r#"
            accepted_kinds = ["transcript"]
            max_replica_age = 60
            require_anchor = true
            require_nonce = false
            request_ttl = 120
            "#,
            "t",
        )
        .unwrap();
        assert_eq!(p.accepted_kinds, ["transcript"]);
        assert_eq!(p.max_replica_age, 60);
        assert!(p.require_anchor && !p.require_nonce);
        assert_eq!(p.request_ttl, 120);
    }

    #[test]
    fn fail_broken_toml() {
        for (bad, what) in [
            ("max_replica_age = ", "missing value"),
            ("max_replica_age = \"an hour\"", "wrong type"),
            ("max_replica_age = -5", "negative"),
            ("max_replica_agee = 5", "unknown key"),
            ("[section]\nx = 1", "unknown table"),
            ("require_nonce = yes", "bare word"),
            ("accepted_kinds = [\"transcript\"", "unclosed array"),
            ("\u{0}", "control character"),
        ] {
            assert!(
                matches!(PolicyFile::parse(bad, "t"), Err(PolicyError::Toml { .. })),
                "{what}"
            );
        }
        let e = PolicyFile::parse("max_replica_agee = 5", "policy.toml").unwrap_err();
        assert!(e.to_string().contains("max_replica_agee"), "{e}");
    }

    #[test]
    fn fail_values_out_of_range() {
        for bad in [
            "max_replica_age = 0",
            "max_presentation_age = 0",
            "request_ttl = 0",
            "request_ttl = 90000",
            "max_open_requests = 0",
            "leeway = 100000",
            "accepted_kinds = [\"transcripts\"]",
            "trusted_authorities = [\"did:web:x\"]",
        ] {
            assert!(
                matches!(PolicyFile::parse(bad, "t"), Err(PolicyError::Value { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn fail_weak_quorum_and_bad_keys() {
        let p = PolicyFile::parse(r#"witnesses = ["not a key"]"#, "t").unwrap();
        assert!(matches!(
            p.trust("also not a key"),
            Err(PolicyError::Trust(_))
        ));
    }
}
