//! A checked presentation as text for a terminal: the headline, the reason
//! in one sentence, the issuer, the disclosed claims with their labels
//! (list items as rows), where on the chain it was checked, and each check
//! on a line.

use std::fmt::Write as _;

use serde_json::Value;
use vouch_core::verify::DisclosedClaim;
use vouch_core::Outcome;

use crate::verifier::{check_label, Checked};

/// The report of `checked`.
pub fn render(checked: &Checked) -> String {
    let v = &checked.verification;
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "{}", checked.headline);
    if let Some(reason) = &checked.reason {
        let _ = writeln!(out, "Reason: {reason}");
    }
    match &v.issuer {
        Some(i) => match &i.name {
            Some(name) => {
                let _ = writeln!(out, "Issuer: {name} (accredited; {})", i.did);
            }
            None => {
                let _ = writeln!(
                    out,
                    "Issuer: {} (NOT accredited for this credential)",
                    i.did
                );
            }
        },
        None => {
            let _ = writeln!(out, "Issuer: unknown");
        }
    }
    if let Some(t) = &v.template {
        let _ = writeln!(out, "Credential: {} ({})", t.title, t.kind);
    }
    for claim in &v.claims {
        write_claim(&mut out, claim);
    }
    if !v.unlisted_claims.is_empty() {
        let _ = writeln!(out, "Other claims (not part of this kind of credential):");
        for claim in &v.unlisted_claims {
            write_claim(&mut out, claim);
        }
    }
    let minutes = v.as_of.age.max(0) / 60;
    let _ = writeln!(
        out,
        "Checked against chain block {}, {minutes} minute{} old{}.",
        v.as_of.height,
        if minutes == 1 { "" } else { "s" },
        if v.as_of.cosigned_by.is_empty() {
            String::new()
        } else {
            format!(", cosigned by {} witness(es)", v.as_of.cosigned_by.len())
        }
    );
    let _ = writeln!(out, "Checks:");
    for check in &v.verdict.checks {
        let (mark, detail) = match &check.outcome {
            Outcome::Pass => ("pass", String::new()),
            Outcome::Fail(why) => ("FAIL", format!(": {why}")),
            Outcome::NotChecked(why) => ("n/a ", format!(": {why}")),
        };
        let _ = writeln!(out, "  {mark}  {}{detail}", check_label(check.name));
    }
    out
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_owned(),
        other => other.to_string(),
    }
}

fn write_claim(out: &mut String, claim: &DisclosedClaim) {
    if claim.items.is_empty() {
        let _ = writeln!(out, "  {}: {}", claim.label, scalar(&claim.value));
        return;
    }
    let _ = writeln!(out, "  {}:", claim.label);
    // A table: the labels of the first item as the header.
    if let Some(first) = claim.items.first() {
        let header: Vec<&str> = first.iter().map(|c| c.label.as_str()).collect();
        let _ = writeln!(out, "    {}", header.join(" | "));
    }
    for item in &claim.items {
        let cells: Vec<String> = item.iter().map(|c| scalar(&c.value)).collect();
        let _ = writeln!(out, "    {}", cells.join(" | "));
    }
}
