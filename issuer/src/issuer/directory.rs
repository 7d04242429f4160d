//! The issuer directory: `issuer.json`, the encrypted keystore, the state
//! store, and the registry it anchors on.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use vouch_core::chain::{Action, Entry};
use vouch_core::vc::IssuerKey;
use vouch_core::DidKey;
use vouch_registry::node::{Node, NodeConfig};
use vouch_registry::now;

use super::{io, IssuerError};
use crate::keystore::{self, Cost};
use crate::registry::{Registry, RegistryError};

/// `issuer.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuerConfig {
    /// Display name.
    pub name: String,
    /// The issuer's did:key.
    pub did: String,
    /// Remote registry URL; none: the embedded one in `D/registry`.
    pub registry: Option<String>,
    /// Base URL status list URIs are built on
    /// (`{base}/v1/status/{issuer did}~{name}`, see [`vouch_core::chain::ListUri`]).
    pub status_base: String,
}

/// What `init` made.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// The issuer DID.
    pub did: String,
    /// The registry it will use (URL, or the embedded directory).
    pub registry: String,
    /// For the embedded registry: the genesis authority's DID.
    pub authority: Option<String>,
}

/// Creates an issuer in `dir`.
///
/// # Errors
/// [`IssuerError`] when `dir` already holds an issuer, or on I/O.
pub fn init(
    dir: &Path,
    name: &str,
    registry: Option<&str>,
    passphrase: &str,
    cost: Cost,
) -> Result<InitReport, IssuerError> {
    let config_path = dir.join("issuer.json");
    if config_path.exists() {
        return Err(IssuerError::AlreadyExists {
            dir: dir.to_owned(),
        });
    }
    if name.trim().is_empty() {
        return Err(IssuerError::EmptyName);
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut rng = rand::rngs::OsRng;
    let key = SigningKey::generate(&mut rng);
    keystore::create(
        &dir.join("issuer.keystore"),
        &key,
        passphrase,
        cost,
        &mut rng,
    )?;
    let did = DidKey::from_public_key(&key.verifying_key());
    let (status_base, authority, shown) = match registry {
        Some(url) => (url.trim_end_matches('/').to_owned(), None, url.to_owned()),
        None => {
            let slug: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect();
            let config = NodeConfig {
                origin: format!("{}.vouch.local/registry", slug.trim_matches('-')),
                witnesses: Vec::new(),
                need: 0,
            };
            let registry_dir = dir.join("registry");
            let report = Node::init(&registry_dir, config, now(), &mut rng).map_err(|source| {
                IssuerError::EmbeddedRegistry {
                    dir: registry_dir.clone(),
                    source,
                }
            })?;
            (
                "http://127.0.0.1:7400".to_owned(),
                Some(report.authority),
                dir.join("registry").display().to_string(),
            )
        }
    };
    let config = IssuerConfig {
        name: name.to_owned(),
        did: did.as_str().to_owned(),
        registry: registry.map(str::to_owned),
        status_base,
    };
    let json = serde_json::to_vec_pretty(&config).map_err(|source| IssuerError::Config {
        path: config_path.clone(),
        source,
    })?;
    std::fs::write(&config_path, json).map_err(io(&config_path))?;
    Ok(InitReport {
        did: did.as_str().to_owned(),
        registry: shown,
        authority,
    })
}

/// An opened issuer.
pub struct Issuer {
    pub(super) dir: PathBuf,
    pub(super) config: IssuerConfig,
    pub(super) key: IssuerKey,
    pub(super) db: sled::Db,
    pub(super) registry: Registry,
}

impl Issuer {
    /// Opens the issuer in `dir` with its passphrase.
    ///
    /// # Errors
    /// [`IssuerError`], [`keystore::KeystoreError::WrongPassphrase`] among
    /// them.
    pub fn open(dir: &Path, passphrase: &str) -> Result<Self, IssuerError> {
        let config_path = dir.join("issuer.json");
        let text = std::fs::read(&config_path).map_err(io(&config_path))?;
        let config: IssuerConfig =
            serde_json::from_slice(&text).map_err(|source| IssuerError::Config {
                path: config_path.clone(),
                source,
            })?;
        let key = keystore::open(&dir.join("issuer.keystore"), passphrase)?;
        let holds = DidKey::from_public_key(&key.verifying_key());
        if holds.as_str() != config.did {
            return Err(IssuerError::KeyMismatch {
                config: config.did,
                keystore: holds.as_str().to_owned(),
            });
        }
        let db = sled::open(dir.join("state"))?;
        let registry = match &config.registry {
            Some(url) => Registry::Remote(
                vouch_registry::client::NodeClient::new(url).map_err(RegistryError::from)?,
            ),
            None => Registry::embedded(&dir.join("registry"))?,
        };
        Ok(Self {
            dir: dir.to_owned(),
            config,
            key: IssuerKey::new(key),
            db,
            registry,
        })
    }

    /// The issuer's DID.
    pub fn did(&self) -> &str {
        &self.config.did
    }

    /// The configuration.
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// The registry handle.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The issuer directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state record `key`, if there is one.
    pub(super) fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, IssuerError> {
        self.db
            .get(key)?
            .map(|v| serde_json::from_slice(&v).map_err(record(key)))
            .transpose()
    }

    /// Saves state record `key` (durable after [`Issuer::flush`]).
    pub(super) fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<(), IssuerError> {
        let bytes = serde_json::to_vec(value).map_err(record(key))?;
        self.db.insert(key, bytes)?;
        Ok(())
    }

    /// Makes every saved record durable.
    pub(super) fn flush(&self) -> Result<(), IssuerError> {
        self.db.flush()?;
        Ok(())
    }

    /// Signs a chain entry as this issuer, with its next sequence number.
    pub(super) async fn sign_entry(&self, action: Action) -> Result<Entry, IssuerError> {
        Ok(self
            .registry
            .sign_next(self.key.signing_key(), action)
            .await?)
    }
}

/// The error of state record `key` that does not (de)serialise.
fn record(key: &str) -> impl FnOnce(serde_json::Error) -> IssuerError + '_ {
    move |source| IssuerError::StateRecord {
        key: key.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn init_and_open_refuse_with_reasons() {
        let dir = std::env::temp_dir().join(format!("vouch-issuer-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let e = init(&dir, "  ", None, "pw", Cost::TEST).unwrap_err();
        assert_eq!(e.to_string(), "the issuer name (--name) is empty");
        let report = init(&dir, "Uni", None, "pw", Cost::TEST).unwrap();
        let e = init(&dir, "Uni", None, "pw", Cost::TEST).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{} already holds an issuer", dir.display())
        );
        let path = dir.join("issuer.json");
        let good = std::fs::read_to_string(&path).unwrap();

        // An edited issuer.json: not a configuration, or another issuer's.
        std::fs::write(&path, r#"{"name": 1}"#).unwrap();
        let e = Issuer::open(&dir, "pw").err().unwrap();
        assert!(matches!(e, IssuerError::Config { .. }));
        assert!(
            e.to_string().starts_with(&format!(
                "{}: not an issuer configuration: invalid type",
                path.display()
            )),
            "{e}"
        );
        assert!(e.to_string().contains("line 1 column"), "{e}");
        let other = DidKey::from_public_key(&SigningKey::from_bytes(&[4; 32]).verifying_key());
        let mut edited: serde_json::Value = serde_json::from_str(&good).unwrap();
        edited["did"] = other.as_str().into();
        std::fs::write(&path, edited.to_string()).unwrap();
        let e = Issuer::open(&dir, "pw").err().unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "issuer.json names {other}, but the keystore holds the key of {}",
                report.did
            )
        );

        std::fs::write(&path, good).unwrap();
        let iss = Issuer::open(&dir, "pw").unwrap();
        assert_eq!(iss.did(), report.did);
        drop(iss);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
