//! `vouch-issuer`: batch issuance from CSV, anchoring, revocation.

mod cli;

use std::sync::Mutex;

use anyhow::{bail, Context as _};
use clap::Parser as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use vouch_issuer::input;
use vouch_issuer::issuer::{self, Issuer, Progress};
use vouch_issuer::keystore::Cost;
use vouch_issuer::template::{self, CsvField};

use cli::{Cli, Command, Passphrase};

fn main() {
    vouch_registry::cli_support::init_tracing("warn");
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vouch-issuer: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = runtime.block_on(run(cli.command)) {
        eprintln!("vouch-issuer: {}", vouch_registry::report(&e));
        std::process::exit(1);
    }
}

fn passphrase(p: &Passphrase, confirm: bool) -> anyhow::Result<zeroize::Zeroizing<String>> {
    Ok(vouch_registry::cli_support::secret(
        p.passphrase_file.as_deref(),
        "VOUCH_PASSPHRASE",
        "keystore passphrase",
        confirm,
    )?)
}

/// indicatif bars on stderr, hidden when stderr is not a terminal.
struct Bars(Mutex<Option<ProgressBar>>);

impl Progress for Bars {
    fn start(&self, phase: &str, total: u64) {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(phase.to_owned());
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(bar);
        }
    }
    fn step(&self) {
        if let Ok(slot) = self.0.lock() {
            if let Some(b) = slot.as_ref() {
                b.inc(1);
            }
        }
    }
    fn finish(&self) {
        if let Ok(mut slot) = self.0.lock() {
            if let Some(b) = slot.take() {
                b.finish_and_clear();
            }
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init {
            dir,
            name,
            registry,
            passphrase: p,
            json,
        } => {
            let pass = passphrase(&p, true)?;
            let r = issuer::init(&dir, &name, registry.as_deref(), &pass, Cost::DEFAULT)?;
            let kinds: Vec<String> = template::builtins()?.into_iter().map(|t| t.kind).collect();
            if json {
                println!(
                    "{}",
                    json!({ "did": r.did, "registry": r.registry, "authority": r.authority })
                );
            } else {
                println!("issuer DID: {}", r.did);
                println!(
                    "key: {} (encrypted under your passphrase)",
                    dir.join("issuer.keystore").display()
                );
                match (&registry, &r.authority) {
                    (None, Some(authority)) => {
                        println!(
                            "registry: embedded in {} (genesis authority {authority});",
                            r.registry
                        );
                        println!(
                            "  it accredits this issuer for each template's kind on first use."
                        );
                    }
                    _ => {
                        println!("registry: {}", r.registry);
                        println!("ask the accreditation authority to accredit you:");
                        println!(
                            "  vouch-registry accredit --registry {} --authority-key KEY --issuer {} --name {:?} --kind {}",
                            r.registry,
                            r.did,
                            name,
                            kinds.join(",")
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Issue(args) => issue(args).await,
        Command::Revoke {
            dir,
            credential,
            status_index,
            list,
            suspend,
            reinstate,
            reason,
            passphrase: p,
            json,
        } => {
            let pass = passphrase(&p, false)?;
            let iss = Issuer::open(&dir, &pass)?;
            let (uri, idx) = match (credential, status_index) {
                (Some(file), _) => {
                    let text = std::fs::read_to_string(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    issuer::status_of_credential(&text, iss.did())
                        .with_context(|| file.display().to_string())?
                }
                (None, Some(idx)) => {
                    let lists = iss.lists()?;
                    let uri = match (list, lists.as_slice()) {
                        (Some(l), _) => l,
                        (None, [only]) => only.clone(),
                        (None, []) => bail!("this issuer has issued nothing yet"),
                        (None, many) => bail!(
                            "this issuer has several status lists; pick one with --list: {}",
                            many.join(", ")
                        ),
                    };
                    (uri, idx)
                }
                (None, None) => bail!("give --credential FILE or --status-index N"),
            };
            let (value, verb) = if suspend {
                (2, "suspended")
            } else if reinstate {
                (0, "reinstated")
            } else {
                (1, "revoked")
            };
            let entry = iss.set_status(&uri, idx, value).await?;
            if json {
                println!(
                    "{}",
                    json!({ "list": uri, "idx": idx, "status": verb, "entry_index": entry, "reason": reason })
                );
            } else {
                println!("{verb} status index {idx} of {uri} (chain entry {entry})");
            }
            Ok(())
        }
        Command::Templates { json } => {
            let all = template::builtins()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
                return Ok(());
            }
            let mut text = String::new();
            for t in all {
                text.push_str(&format!(
                    "{} — {} (vct {}, accreditation kind {})\n",
                    t.name, t.title, t.vct, t.kind
                ));
                text.push_str(&format!(
                    "  {:<14} the holder's did:key (from `vouch-wallet receive`)\n",
                    "holder"
                ));
                for f in &t.fields {
                    text.push_str(&format!(
                        "  {:<14} {}: {}\n",
                        f.column(),
                        f.label,
                        f.describe()
                    ));
                }
                text.push('\n');
            }
            // A closed pipe (`| head`) is not an error.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
            Ok(())
        }
    }
}

async fn issue(args: cli::IssueArgs) -> anyhow::Result<()> {
    let cli::IssueArgs {
        dir,
        template,
        input: input_path,
        out,
        skip_invalid,
        qr,
        output_format,
        passphrase: p,
        json,
    } = args;
    let (dir, input_path) = (dir.as_path(), input_path.as_path());
    let template = template::find(&template)?;
    let bytes =
        std::fs::read(input_path).with_context(|| format!("reading {}", input_path.display()))?;
    let bars = Bars(Mutex::new(None));
    // Every row is checked before anything is issued; the rows are read
    // again, on the fly, while signing (their cells not checked twice:
    // the same reader scanned them).
    let csv =
        input::CsvRows::new(&bytes, &template).with_context(|| input_path.display().to_string())?;
    let input::Scan { valid, errors } = csv
        .scan(&bars)
        .with_context(|| input_path.display().to_string())?;
    let name = input_path.display();
    if !errors.is_empty() && !skip_invalid {
        for e in &errors {
            eprintln!("{name} {e}");
        }
        bail!(
            "{} of {} rows are invalid; nothing was issued (fix them, or pass --skip-invalid to issue the rest)",
            errors.len(),
            errors.len() + valid.len()
        );
    }
    for e in &errors {
        eprintln!("skipped: {name} {e}");
    }
    if valid.is_empty() {
        bail!("no valid rows; nothing was issued");
    }
    let pass = passphrase(&p, false)?;
    let iss = Issuer::open(dir, &pass)?;
    let id = issuer::batch_id(&template, &bytes, skip_invalid);
    let options = issuer::OutputOptions {
        out,
        qr,
        format: match output_format {
            cli::OutputFormat::Files => issuer::OutputFormat::Files,
            cli::OutputFormat::Jsonl => issuer::OutputFormat::Jsonl,
        },
    };
    let rows = issuer::BatchRows::Csv {
        csv: &csv,
        valid: &valid,
    };
    let report = iss
        .issue_batch(&template, &id, rows, &options, &bars)
        .await?;
    let checked = issuer::check_manifest(&report.out, false).context("self-check failed")?;
    if json {
        println!(
            "{}",
            json!({
                "batch": report.id,
                "issued": report.issued,
                "skipped": errors.iter().map(|e| e.number).collect::<Vec<_>>(),
                "out": report.out,
                "manifest": report.manifest,
                "archive": report.archive,
                "anchor_entry": report.anchor_index,
                "block_height": report.block_height,
                "already_done": report.already_done,
                "resumed": report.resumed,
                "checked": checked,
            })
        );
    } else {
        if report.already_done {
            println!(
                "batch {} was already issued; nothing new was done.",
                report.id
            );
        } else if report.resumed {
            println!("resumed interrupted batch {}.", report.id);
        }
        let into = report
            .archive
            .as_ref()
            .map_or_else(|| report.out.display(), |a| a.display());
        println!(
            "issued {} credentials into {} (manifest {}), anchored as chain entry {} in block {}",
            report.issued,
            into,
            report.manifest.display(),
            report.anchor_index,
            report.block_height
        );
        if !errors.is_empty() {
            println!("skipped {} invalid rows (listed above)", errors.len());
        }
        println!(
            "check: {} verifies with vouch-core, is in the batch root, and the batch is anchored in the chain",
            if checked == 1 { "the first credential" } else { "every credential" }
        );
    }
    Ok(())
}
