//! `vouch-demo-holders N`: prints N fresh holder did:keys, one a line, for
//! the demo's batches: the other graduates, employees and policyholders,
//! whose wallets the demo does not run. Each key is drawn from the OS and
//! thrown away at once, so nobody can present what is issued to these DIDs.
//!
//! No program of the four hands out DIDs in bulk: `vouch-wallet receive`
//! gives one per run (tens of milliseconds each, for a key its own wallet
//! keeps), which would make 999 of them the slowest step of the demo.

use std::io::Write as _;
use std::process::ExitCode;

use ed25519_dalek::SigningKey;
use vouch_core::DidKey;

/// Most DIDs one run prints.
const MAX: u64 = 1_000_000;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let n = match (args.next().map(|a| a.parse::<u64>()), args.next()) {
        (Some(Ok(n)), None) if n <= MAX => n,
        _ => {
            eprintln!("usage: vouch-demo-holders N   (N ≤ {MAX}): prints N fresh holder did:keys, one a line");
            return ExitCode::from(2);
        }
    };
    let mut rng = rand::rngs::OsRng;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for _ in 0..n {
        let key = SigningKey::generate(&mut rng);
        let did = DidKey::from_public_key(&key.verifying_key());
        if writeln!(out, "{}", did.as_str()).is_err() {
            return ExitCode::from(1);
        }
    }
    if out.flush().is_err() {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
