//! What each view does, over [`vouch_wallet::Wallet`], with no window.
//!
//! Each module takes plain values (what the user typed, the wallet) and
//! returns plain values (rows to show, an error in plain words); the
//! wiring in [`crate::connect`] moves them to and from the adapters.

pub mod activity;
pub mod credentials;
pub mod detail;
pub mod onboarding;
pub mod receive;
pub mod request;
pub mod session;
pub mod settings;
pub mod share;
pub mod sync;

#[cfg(test)]
pub(crate) mod tests_support;

/// The chain of causes of an error, each said once: `a: b: c`.
pub fn plain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}
