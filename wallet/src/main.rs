//! `vouch-wallet`: the wallet on the command line.

mod cli;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::Parser as _;
use rand::rngs::OsRng;
use serde_json::json;
use vouch_core::presentation_request::PresentationRequest;
use vouch_registry::cli_support::secret;
use vouch_registry::trust::{FirstSync, NodePin};
use vouch_wallet::keys::RecoveryPhrase;
use vouch_wallet::share::{self, QrShare, ShareError};
use vouch_wallet::{Binding, Wallet};

use cli::{Cli, Command, Open};

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli.command) {
        eprintln!("vouch-wallet: {}", Shown(&vouch_registry::report(&e)));
        std::process::exit(1);
    }
}

fn passphrase(open: &Open, confirm: bool) -> anyhow::Result<zeroize::Zeroizing<String>> {
    Ok(secret(
        open.passphrase_file.as_deref(),
        "VOUCH_PASSPHRASE",
        "wallet passphrase",
        confirm,
    )?)
}

fn open_wallet(open: &Open) -> anyhow::Result<Wallet> {
    let pass = passphrase(open, false)?;
    Ok(Wallet::open(&open.dir, &pass)?)
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn date(t: Option<i64>) -> String {
    t.map_or_else(|| "—".into(), vouch_wallet::when::date)
}

fn run(command: Command) -> anyhow::Result<()> {
    let now = vouch_registry::now();
    let mut rng = OsRng;
    match command {
        Command::Init { open, kdf, json } => {
            let pass = passphrase(&open, true)?;
            let (_, phrase) = Wallet::create(&open.dir, &pass, kdf.cost(), &mut rng)?;
            if json {
                print_json(&json!({ "dir": open.dir, "recovery_phrase": phrase.words() }))?;
            } else {
                println!("Wallet created in {}.", open.dir.display());
                println!();
                println!("Recovery phrase (write it down now; it is not shown again):");
                for (i, chunk) in phrase.words().chunks(6).enumerate() {
                    let numbered: Vec<String> = chunk
                        .iter()
                        .enumerate()
                        .map(|(j, w)| format!("{:>2}. {w:<9}", i * 6 + j + 1))
                        .collect();
                    println!("  {}", numbered.join(" "));
                }
            }
        }
        Command::Restore {
            open,
            from,
            phrase: _,
            phrase_file,
            kdf,
        } => {
            if let Some(file) = from {
                let bytes = read_bytes_bounded(&file, vouch_wallet::backup::MAX_BACKUP_BYTES)?;
                let pass = passphrase(&open, false)?;
                let wallet =
                    Wallet::restore_backup(&open.dir, &bytes, &pass, kdf.cost(), &mut rng)?;
                println!(
                    "Wallet restored in {} from {}: {} credentials.",
                    open.dir.display(),
                    file.display(),
                    wallet.list(now)?.len()
                );
            } else {
                let line = secret(
                    phrase_file.as_deref(),
                    "VOUCH_PHRASE",
                    "Recovery phrase",
                    false,
                )?;
                let phrase = RecoveryPhrase::parse(&line)?;
                let pass = passphrase(&open, true)?;
                Wallet::restore(&open.dir, &pass, kdf.cost(), &phrase, &mut rng)?;
                println!(
                    "Wallet restored in {}; import the issuers' credential files again to bring back each credential.",
                    open.dir.display()
                );
            }
        }
        Command::Backup { open, out } => {
            let pass = passphrase(&open, false)?;
            let wallet = Wallet::open(&open.dir, &pass)?;
            let bytes = wallet.backup(&pass)?;
            write_new(&out, &bytes)?;
            println!(
                "Backup of {} credentials written to {} (encrypted under the wallet passphrase).",
                wallet.list(now)?.len(),
                out.display()
            );
        }
        Command::Receive { open, qr, json } => {
            let mut wallet = open_wallet(&open)?;
            let did = wallet.receive(now, &mut rng)?;
            if let Some(path) = &qr {
                let code =
                    qrcode::QrCode::with_error_correction_level(did.as_str(), qrcode::EcLevel::M)
                        .context("encoding the DID as a QR code")?;
                let png = vouch_core::qr::png(&code, 8, 4)?;
                write_new(path, &png)?;
            }
            if json {
                print_json(&json!({ "did": did.as_str(), "qr": qr }))?;
            } else {
                println!("{}", did.as_str());
            }
        }
        Command::Import {
            open,
            files,
            manifest,
            json,
        } => {
            let mut wallet = open_wallet(&open)?;
            let mut results = Vec::new();
            let mut refused = 0;
            let mut manifests = Manifests::default();
            // This wallet's holder DIDs, derived once if an archive is given.
            let mut holders = None;
            for file in expand(&files)? {
                let beside = file
                    .parent()
                    .map(|d| d.join(vouch_core::manifest::FILE_NAME));
                let source = manifest.clone().or(beside.filter(|m| m.is_file()));
                if file.extension().is_some_and(|e| e == "jsonl") {
                    let mine = match &holders {
                        Some(mine) => mine,
                        None => holders.insert(wallet.holder_dids()?),
                    };
                    let found = std::fs::File::open(&file)
                        .map_err(vouch_wallet::archive::ArchiveError::Io)
                        .and_then(|f| {
                            vouch_wallet::archive::read(
                                std::io::BufReader::with_capacity(1 << 20, f),
                                |holder| mine.contains(holder),
                            )
                        });
                    let found = match found {
                        Ok(found) => found,
                        Err(e) => {
                            refused += 1;
                            let why = e.to_string();
                            if !json {
                                eprintln!("refused {}: {}", file.display(), Shown(&why));
                            }
                            results.push(json!({ "file": file, "error": why }));
                            continue;
                        }
                    };
                    for c in found.mine {
                        let outcome = match &source {
                            Some(m) => manifests.get(m).and_then(|manifest| {
                                Ok(wallet
                                    .import_with_manifest(&c.sd_jwt, manifest, now, &mut rng)?)
                            }),
                            // A line that does not import is refused and
                            // counted, as a file is, not the end of the run.
                            None => wallet
                                .import(&c.sd_jwt, Some(c.anchor_proof), now, &mut rng)
                                .map_err(Into::into),
                        };
                        match outcome {
                            Ok(id) => {
                                if !json {
                                    println!(
                                        "imported {} line {} as {id}, with its anchor proof",
                                        file.display(),
                                        c.line
                                    );
                                }
                                results.push(json!({ "file": file, "line": c.line, "id": id, "anchored": true }));
                            }
                            Err(e) => {
                                refused += 1;
                                let why = vouch_registry::report(&e);
                                if !json {
                                    eprintln!(
                                        "refused {} line {}: {}",
                                        file.display(),
                                        c.line,
                                        Shown(&why)
                                    );
                                }
                                results.push(json!({ "file": file, "line": c.line, "error": why }));
                            }
                        }
                    }
                    if !json {
                        println!(
                            "skipped {} line(s) of {} for other holders",
                            found.skipped,
                            file.display()
                        );
                    }
                    results.push(json!({ "file": file, "skipped": found.skipped }));
                    continue;
                }
                let outcome = read_credential(&file).and_then(|text| match source {
                    Some(m) => {
                        let manifest = manifests.get(&m)?;
                        Ok((
                            wallet.import_with_manifest(&text, manifest, now, &mut rng)?,
                            true,
                        ))
                    }
                    None => Ok((wallet.import(&text, None, now, &mut rng)?, false)),
                });
                match outcome {
                    Ok((id, anchored)) => {
                        if !json {
                            let proof = if anchored {
                                "with its anchor proof"
                            } else {
                                "without an anchor proof (no manifest)"
                            };
                            println!("imported {} as {id}, {proof}", file.display());
                        }
                        results.push(json!({ "file": file, "id": id, "anchored": anchored }));
                    }
                    Err(e) => {
                        refused += 1;
                        let why = vouch_registry::report(&e);
                        if !json {
                            eprintln!("refused {}: {}", file.display(), Shown(&why));
                        }
                        results.push(json!({ "file": file, "error": why }));
                    }
                }
            }
            if json {
                print_json(&json!(results))?;
            }
            if refused > 0 {
                // Each file, or each line of an archive meant for this
                // wallet, was one attempt (the skip counts are not).
                let attempts = results
                    .iter()
                    .filter(|r| r.get("skipped").is_none())
                    .count();
                if results.iter().any(|r| r.get("line").is_some()) {
                    bail!("{refused} of {attempts} refused (files, or lines of an archive)");
                }
                bail!("{refused} of {attempts} files refused");
            }
        }
        Command::List { open, json } => {
            let wallet = open_wallet(&open)?;
            let view = replica_view(&wallet);
            let list = wallet.list_as_of(view.as_ref(), now)?;
            if json {
                print_json(&serde_json::to_value(&list)?)?;
            } else if list.is_empty() {
                println!("No credentials yet: `vouch-wallet receive` gives a DID for an issuer, `vouch-wallet import` takes the file.");
            } else {
                for c in &list {
                    println!(
                        "{}  {}  [{}] issued {} by {}  ({})",
                        c.id,
                        Shown(&c.title),
                        Shown(c.kind.as_deref().unwrap_or(&c.vct)),
                        date(c.issued_at),
                        Shown(c.issuer_name.as_deref().unwrap_or(&c.issuer)),
                        standing(c)
                    );
                }
            }
        }
        Command::Show { open, id, json } => {
            let wallet = open_wallet(&open)?;
            let view = replica_view(&wallet);
            let (summary, lines, facts) = wallet.show_as_of(&id, view.as_ref(), now)?;
            if json {
                print_json(&json!({
                    "summary": summary,
                    "holder": facts.holder.as_str(),
                    "status": facts.status.as_ref().map(|s| json!({"idx": s.idx, "uri": s.uri})),
                    "claims": lines,
                }))?;
            } else {
                println!("{}", Shown(&summary.title));
                println!("  status  {}", standing(&summary));
                match &summary.issuer_name {
                    Some(name) => {
                        println!("  issuer  {} ({})", Shown(name), Shown(&summary.issuer));
                    }
                    None => println!("  issuer  {}", Shown(&summary.issuer)),
                }
                println!(
                    "  kind    {}",
                    Shown(summary.kind.as_deref().unwrap_or(&summary.vct))
                );
                println!(
                    "  issued  {}   expires {}",
                    date(summary.issued_at),
                    date(summary.expires_at)
                );
                println!("  holder  {}", facts.holder.as_str());
                println!();
                println!("  {:<22} {:<18} value", "--disclose name", "label");
                for l in &lines {
                    let mark = if l.selective { "" } else { "  (always shown)" };
                    println!(
                        "  {:<22} {:<18} {}{mark}",
                        Shown(&l.name),
                        Shown(&l.label),
                        Shown(&l.value.to_string())
                    );
                }
            }
        }
        Command::Present {
            open,
            id,
            disclose,
            request,
            aud,
            nonce,
            qr,
            out,
            terminal,
            registry,
        } => {
            let mut wallet = open_wallet(&open)?;
            if let Some(url) = &registry {
                wallet.set_registry(url, &mut rng)?;
            }
            let channel = match (&qr, &out) {
                (Some(_), _) => "qr",
                (None, Some(_)) => "file",
                (None, None) => "text",
            };
            let (aud, nonce, mut names) = match request {
                Some(text) => {
                    let text = match text.strip_prefix('@') {
                        Some(file) => read_bounded(Path::new(file), 8192)?,
                        None => text,
                    };
                    let request = PresentationRequest::parse(text.trim())?;
                    if request.is_expired(now) {
                        bail!("the verifier's request expired; ask for a new one");
                    }
                    let asked: Vec<String> =
                        request.claims().iter().map(ToString::to_string).collect();
                    (request.aud().to_owned(), request.nonce().to_owned(), asked)
                }
                None => (
                    aud.unwrap_or_default(),
                    nonce.unwrap_or_default(),
                    Vec::new(),
                ),
            };
            if !disclose.is_empty() {
                names = disclose;
            }
            if names.is_empty() {
                bail!("name the claims to disclose with --disclose (`vouch-wallet show {id}` lists them)");
            }
            let binding = Binding {
                aud,
                nonce,
                channel: channel.into(),
            };
            // Outputs are checked before anything is made or uploaded.
            for path in [&qr, &out].into_iter().flatten() {
                if path.exists() {
                    bail!("{} exists already; name a new file", path.display());
                }
            }
            // Made, then delivered, then recorded: a presentation that
            // cannot be delivered is not logged as shared.
            let mut p = wallet.prepare(&id, &names, &binding, now)?;
            let file = vouch_core::presentation::Presentation {
                sd_jwt: p.text.clone(),
                anchor_proof: p.anchor.clone(),
            };
            if qr.is_some() || terminal {
                // A rotated-out key or a withdrawn issuer: the anchor proof
                // must travel with it (in the envelope, or the relay item).
                let issuer = wallet.show(&id, now)?.2.issuer;
                let needs_anchor = p.anchor.is_some()
                    && replica_view(&wallet).is_some_and(|v| share::needs_anchor(&v, &issuer));
                let attempt = if needs_anchor {
                    eprintln!("the issuer's key was rotated or its accreditation ended: the anchor proof goes with the presentation");
                    QrShare::with_anchor(&file)
                } else {
                    QrShare::new(&p.text)
                };
                let share = match attempt {
                    Ok(share) => share,
                    Err(ShareError::TooDense { version, .. }) => {
                        let Some(url) = wallet.registry()? else {
                            bail!("the presentation needs QR version {version}, too dense to scan; give --registry URL to send it through the registry's encrypted relay, or write it to a file with --out");
                        };
                        let client = vouch_registry::client::NodeClient::new(&url)?;
                        let runtime = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()?;
                        let share = runtime.block_on(share::relay(&client, &file, &mut rng))?;
                        eprintln!(
                            "too large for one QR code (version {version}): sent encrypted through the relay of {url}; the code holds the link and the key (the relay never sees the key; it serves the item once, for {} minutes)",
                            share::RELAY_TTL / 60
                        );
                        p.activity.channel = "relay".into();
                        share
                    }
                    Err(e) => return Err(e.into()),
                };
                if let Some(path) = &qr {
                    let bytes = if path.extension().is_some_and(|e| e == "svg") {
                        share.svg().into_bytes()
                    } else {
                        share.png()?
                    };
                    write_new(path, &bytes)?;
                    eprintln!(
                        "QR code version {} ({} modules, {} characters) written to {}",
                        share.version(),
                        share.width(),
                        share.text.len(),
                        path.display()
                    );
                }
                if terminal {
                    println!("{}", share.terminal());
                }
            }
            if let Some(path) = &out {
                write_new(path, file.to_file_json().as_bytes())?;
                let proof = if p.anchor.is_some() {
                    ", with its anchor proof"
                } else {
                    ""
                };
                eprintln!("presentation written to {}{proof}", path.display());
            }
            if qr.is_none() && out.is_none() && !terminal {
                println!("{}", p.text);
            }
            wallet.record(&p, &mut rng)?;
            eprintln!("disclosed: {}", Shown(&p.disclosed.join(", ")));
            eprintln!("withheld:  {}", Shown(&p.withheld.join(", ")));
        }
        Command::Sync {
            open,
            registry,
            node_key,
            trust_on_first_use,
            witness,
            need,
            force_weak_quorum,
        } => {
            let wallet = open_wallet(&open)?;
            if let Some(url) = &registry {
                wallet.set_registry(url, &mut rng)?;
            }
            let Some(url) = wallet.registry()? else {
                bail!("no registry yet: give --registry URL");
            };
            let pin = match (node_key, trust_on_first_use) {
                (Some(k), _) => NodePin::Key(k),
                (None, true) => NodePin::FirstUse,
                (None, false) => NodePin::Pinned,
            };
            let first = FirstSync {
                pin,
                witnesses: witness,
                need,
                force_weak_quorum,
            };
            let client = vouch_registry::client::NodeClient::new(&url)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let dir = wallet.replica_dir();
            let check = runtime
                .block_on(vouch_registry::trust::sync_dir(&dir, &client, first))
                .map_err(|e| match e {
                    vouch_registry::trust::TrustError::NoNodeKey { .. } => anyhow::anyhow!(
                        "the first sync needs the node's key: give --node-key KEY, or --trust-on-first-use"
                    ),
                    other => other.into(),
                })?;
            if let Some(key) = &check.trusted_on_first_use {
                eprintln!(
                    "trusted the node key {} on first use",
                    Shown(&key.to_string())
                );
            }
            let view = replica_view(&wallet);
            match view {
                Some(v) => println!(
                    "Synced from {url}: block {} ({} s old), {} entries checked.",
                    v.height(),
                    v.age(now),
                    check.audit.entries
                ),
                None => println!("Synced from {url}."),
            }
        }
        Command::Activity { open, json } => {
            let wallet = open_wallet(&open)?;
            let log = wallet.activity()?;
            if json {
                print_json(&serde_json::to_value(&log)?)?;
            } else if log.is_empty() {
                println!("Nothing shared yet.");
            } else {
                for a in &log {
                    println!(
                        "{}  {} to {} by {}: {}",
                        vouch_wallet::when::date_time(a.at),
                        Shown(&a.title),
                        Shown(&a.audience),
                        a.channel,
                        Shown(&a.disclosed.join(", "))
                    );
                }
            }
        }
        Command::Passwd {
            open,
            new_passphrase_file,
        } => {
            let wallet = open_wallet(&open)?;
            let new = secret(
                new_passphrase_file.as_deref(),
                "VOUCH_NEW_PASSPHRASE",
                "new passphrase",
                true,
            )?;
            let cost = wallet.store().cost()?;
            wallet.change_passphrase(&new, cost, &mut rng)?;
            println!("Passphrase changed.");
        }
    }
    Ok(())
}

/// The view of the wallet's replica, when it has synced; a replica that
/// cannot be read is reported and left out (statuses show as unknown).
fn replica_view(wallet: &Wallet) -> Option<vouch_core::view::ChainView> {
    match wallet.chain_view() {
        Ok(view) => view,
        Err(e) => {
            eprintln!("warning: {}; statuses are unknown", Shown(&e.to_string()));
            None
        }
    }
}

/// A credential's standing in words, with the block it was read at.
fn standing(s: &vouch_wallet::wallet::Summary) -> String {
    use vouch_wallet::wallet::Standing;
    let word = match s.standing {
        Standing::Valid => "valid",
        Standing::Revoked => "REVOKED",
        Standing::Suspended => "suspended",
        Standing::Expired => "expired",
        Standing::Unknown => "status unknown",
    };
    match s.as_of {
        Some(a) => format!("{word} as of block {}, {} min old", a.height, a.age / 60),
        None if s.standing == Standing::Expired => word.into(),
        None => format!("{word}: run `vouch-wallet sync`"),
    }
}

/// Largest credential file read (core refuses SD-JWTs above 1 MiB).
const MAX_CREDENTIAL_FILE: u64 = 1 << 20;
/// Largest manifest read (about 1.2 kB per credential: 50,000 credentials).
const MAX_MANIFEST_FILE: u64 = 64 << 20;

/// A credential file's text: an SD-JWT or `VCH1:` text file (at most
/// 1 MiB), or a PNG/JPEG image of an issuer's QR code (at most the
/// scanner's limit), decoded to the text it holds.
fn read_credential(path: &Path) -> anyhow::Result<String> {
    let bytes = read_at_most(path, vouch_core::scan::MAX_IMAGE_BYTES as u64 + 1)?;
    if vouch_core::scan::image_format(&bytes).is_some() {
        return vouch_core::scan::decode(&bytes)
            .with_context(|| format!("reading the QR code in {}", path.display()));
    }
    if bytes.len() as u64 > MAX_CREDENTIAL_FILE {
        bail!(
            "{} is larger than {MAX_CREDENTIAL_FILE} bytes",
            path.display()
        );
    }
    String::from_utf8(bytes)
        .with_context(|| format!("{} is neither text nor a PNG/JPEG image", path.display()))
}

/// The first `limit` bytes of `path` (all of a shorter file).
fn read_at_most(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes)
}

/// The bytes of `path`, refused past `max` (read no further than that).
fn read_bytes_bounded(path: &Path, max: u64) -> anyhow::Result<Vec<u8>> {
    let bytes = read_at_most(path, max + 1)?;
    if bytes.len() as u64 > max {
        bail!("{} is larger than {max} bytes", path.display());
    }
    Ok(bytes)
}

/// A text file of at most `max` bytes.
fn read_bounded(path: &Path, max: u64) -> anyhow::Result<String> {
    String::from_utf8(read_bytes_bounded(path, max)?)
        .with_context(|| format!("reading {} (not UTF-8 text)", path.display()))
}

/// Text an issuer or a verifier chose, for the terminal: control
/// characters (escape sequences could rewrite the screen or the
/// clipboard) and bidirectional overrides (which reorder what follows)
/// are shown as `�`.
struct Shown<'a>(&'a str);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unsafe_char = |c: char| {
            c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        };
        if !self.0.chars().any(unsafe_char) {
            // Padding (`{:<22}`) applies as for a `str`.
            return f.pad(self.0);
        }
        let clean: String = self
            .0
            .chars()
            .map(|c| if unsafe_char(c) { '\u{fffd}' } else { c })
            .collect();
        f.pad(&clean)
    }
}

/// Manifests read so far, by path.
#[derive(Default)]
struct Manifests(std::collections::HashMap<PathBuf, vouch_core::manifest::Manifest>);

impl Manifests {
    fn get(&mut self, path: &Path) -> anyhow::Result<&vouch_core::manifest::Manifest> {
        if !self.0.contains_key(path) {
            let text = read_bounded(path, MAX_MANIFEST_FILE)?;
            let parsed = vouch_core::manifest::Manifest::from_json(&text)
                .with_context(|| format!("manifest {}", path.display()))?;
            self.0.insert(path.to_owned(), parsed);
        }
        self.0
            .get(path)
            .ok_or_else(|| anyhow::anyhow!("manifest {} vanished", path.display()))
    }
}

/// Files, with each directory replaced by its `.sd-jwt` files (sorted).
fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inner: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "sd-jwt"))
                .collect();
            inner.sort();
            out.extend(inner);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// Writes a new file and syncs it; refuses to overwrite. A file that could
/// not be written whole is removed.
fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    let written = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = written {
        drop(f);
        // Best effort: the error below is what the user needs to see.
        let _ = std::fs::remove_file(path);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}
