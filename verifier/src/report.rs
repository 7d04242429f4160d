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
    let _ = writeln!(
        out,
        "Checked against chain block {}, {} old{}.",
        v.as_of.height,
        age_text(v.as_of.age),
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

/// An age in seconds in its largest sensible unit: "42 s", "3 min",
/// "2 h 5 min", "4 days" (rounded down; a negative age, a clock behind the
/// block's, reads as 0 s).
pub fn age_text(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => match (s % 3600) / 60 {
            0 => format!("{} h", s / 3600),
            m => format!("{} h {m} min", s / 3600),
        },
        _ => match s / 86_400 {
            1 => "1 day".to_owned(),
            d => format!("{d} days"),
        },
    }
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
        let value = match &claim.value {
            // A list whose every item the holder withheld.
            Value::Array(items) if items.is_empty() => "none disclosed".to_owned(),
            other => scalar(other),
        };
        let _ = writeln!(out, "  {}: {value}", claim.label);
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

#[cfg(test)]
mod tests {
    use super::age_text;

    #[test]
    fn ages_read_in_their_largest_unit() {
        for (seconds, text) in [
            (-5, "0 s"),
            (0, "0 s"),
            (42, "42 s"),
            (59, "59 s"),
            (60, "1 min"),
            (199, "3 min"),
            (3599, "59 min"),
            (3600, "1 h"),
            (7500, "2 h 5 min"),
            (86_399, "23 h 59 min"),
            (86_400, "1 day"),
            (4 * 86_400 + 7000, "4 days"),
            (i64::MAX, "106751991167300 days"),
        ] {
            assert_eq!(age_text(seconds), text, "{seconds} s");
        }
    }
}
