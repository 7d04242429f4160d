//! The `vouch-app` command line.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// The Vouch desktop wallet.
#[derive(Debug, Parser)]
#[command(name = "vouch-app", version, about)]
pub struct Cli {
    /// The wallet directory [default: $XDG_DATA_HOME/vouch/wallet, else
    /// ~/.local/share/vouch/wallet].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// For screenshots and demos: unlock the wallet in --dir with the
    /// passphrase in VOUCH_PASSPHRASE and open this view (for `share`, the
    /// first credential with the three courses of shortest label ticked,
    /// for https://verifier.example, nonce `demo-nonce`: a real
    /// presentation, logged in the wallet's activity).
    #[arg(long, value_enum, hide = true)]
    pub demo_view: Option<DemoView>,
    /// With `--demo-view share`: answer this verifier's request (`VCHR1:`
    /// text from `vouch-verifier request`) instead of the fixed audience
    /// and nonce, read through the share view's "Read request".
    #[arg(long, hide = true, requires = "demo_view")]
    pub demo_request: Option<String>,
}

/// The views `--demo-view` opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoView {
    /// The credentials list.
    List,
    /// The first credential's detail.
    Detail,
    /// The share view with a QR code.
    Share,
    /// Receive, with a fresh DID.
    Receive,
    /// Activity.
    Activity,
    /// Settings.
    Settings,
    /// About.
    About,
}

impl Cli {
    /// The wallet directory: `--dir`, else the platform data directory.
    ///
    /// # Errors
    /// When neither `--dir`, `XDG_DATA_HOME` nor `HOME` is set.
    pub fn wallet_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.dir {
            return Ok(dir.clone());
        }
        let data = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
                Some(home) => PathBuf::from(home).join(".local").join("share"),
                None => anyhow::bail!("no wallet directory: give --dir, or set HOME"),
            },
        };
        Ok(data.join("vouch").join("wallet"))
    }
}
