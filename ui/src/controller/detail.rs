//! One credential: every claim with its template label, a list of records
//! (courses) as a table, and the facts: issuer, dates, anchor, holder.

use serde_json::Value;
use vouch_wallet::credential::{ClaimLine, Facts, StoredCredential};
use vouch_wallet::wallet::Summary;

use super::credentials::Card;
use crate::when;

/// A claim with its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRow {
    /// The template's label.
    pub label: String,
    /// The value as text.
    pub value: String,
    /// Whether the issuer made it always shown (not selectively
    /// disclosable).
    pub always_shown: bool,
}

/// A claim that is a list of records (courses): a table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    /// The claim's label (`Courses`).
    pub label: String,
    /// Column titles (the records' fields).
    pub columns: Vec<String>,
    /// One row per record, cells in column order.
    pub rows: Vec<Vec<String>>,
}

/// What the detail view shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    /// The card (title, kind, status).
    pub card: Card,
    /// The issuer DID in full.
    pub issuer: String,
    /// Issue date.
    pub issued: String,
    /// Expiry date, or "does not expire".
    pub expires: String,
    /// The holder DID the credential is bound to.
    pub holder: String,
    /// The anchor proof held, in words.
    pub anchor: String,
    /// Every claim but the tabled one.
    pub claims: Vec<ClaimRow>,
    /// The first list of records, as a table (empty when none).
    pub table: Table,
}

/// Fields shown first in a table, in this order; others follow sorted.
pub const FIRST_COLUMNS: &[&str] = &["code", "title", "name", "credits", "grade", "term"];

impl Detail {
    /// The detail of what `Wallet::show` and `Wallet::credential` return.
    pub fn new(
        summary: &Summary,
        lines: &[ClaimLine],
        facts: &Facts,
        stored: &StoredCredential,
    ) -> Detail {
        let table_claim = lines.iter().find(|l| is_record_list(&l.value));
        let table = table_claim.map(table_of).unwrap_or_default();
        let tabled = table_claim.map(|l| l.pointer.clone());
        let claims = lines
            .iter()
            .filter(|l| {
                // Top-level claims only (array items carry a pointer below
                // their list), and not the tabled list.
                l.pointer.matches('/').count() == 1 && Some(&l.pointer) != tabled.as_ref()
            })
            .map(|l| ClaimRow {
                label: l.label.clone(),
                value: text(&l.value),
                always_shown: !l.selective,
            })
            .collect();
        let anchor = match &stored.anchor {
            Some(a) => format!(
                "anchored: entry {} of the chain, credential {} of a batch of {} (block time shows after a registry sync)",
                a.entry_index(),
                a.leaf_index() + 1,
                a.batch_size()
            ),
            None => "no anchor proof held (the issuer's manifest was not imported)".to_owned(),
        };
        Detail {
            card: Card::from_summary(summary),
            issuer: summary.issuer.clone(),
            issued: summary
                .issued_at
                .map_or_else(|| "—".to_owned(), when::date_time),
            expires: summary
                .expires_at
                .map_or_else(|| "does not expire".to_owned(), when::date_time),
            holder: facts.holder.as_str().to_owned(),
            anchor,
            claims,
            table,
        }
    }
}

/// Where a record field goes: [`FIRST_COLUMNS`] in order, then the others
/// by name.
pub fn column_rank(field: &str) -> (usize, String) {
    let first = FIRST_COLUMNS
        .iter()
        .position(|f| *f == field)
        .unwrap_or(FIRST_COLUMNS.len());
    (first, field.to_owned())
}

/// Whether a value is a non-empty list of objects.
fn is_record_list(value: &Value) -> bool {
    value
        .as_array()
        .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_object))
}

fn table_of(line: &ClaimLine) -> Table {
    let items: Vec<&serde_json::Map<String, Value>> = line
        .value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default();
    let mut columns: Vec<String> = Vec::new();
    for item in &items {
        for key in item.keys() {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
    }
    columns.sort_by_key(|c| column_rank(c));
    let rows = items
        .iter()
        .map(|item| {
            columns
                .iter()
                .map(|c| item.get(c).map(text).unwrap_or_default())
                .collect()
        })
        .collect();
    Table {
        label: line.label.clone(),
        columns,
        rows,
    }
}

/// A claim value as text: strings bare, lists of scalars comma-joined,
/// anything else as compact JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_owned(),
        Value::Array(items) if items.iter().all(|v| !v.is_object() && !v.is_array()) => {
            items.iter().map(text).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::controller::tests_support::{wallet_with_transcript, NOW};

    #[test]
    fn transcript_detail_has_labels_and_a_course_table() {
        let (_tmp, wallet, id) = wallet_with_transcript();
        let (summary, lines, facts) = wallet.show(&id, NOW).unwrap();
        let detail = Detail::new(&summary, &lines, &facts, &wallet.credential(&id).unwrap());
        assert_eq!(detail.card.title, "BSc Computer Science — State University");
        let degree = detail.claims.iter().find(|c| c.label == "Degree").unwrap();
        assert_eq!(degree.value, "BSc");
        assert!(
            detail.claims.iter().all(|c| !c.value.contains("CS101")),
            "courses are in the table, not the claim rows"
        );
        assert_eq!(
            detail.table.columns[..5],
            ["code", "title", "credits", "grade", "term"]
        );
        assert_eq!(detail.table.rows.len(), 12);
        assert_eq!(detail.table.rows[1][0], "CS101");
        assert_eq!(detail.table.rows[1][2], "6");
        assert!(detail.anchor.starts_with("no anchor proof"));
        assert_eq!(detail.expires, "does not expire");
        assert_eq!(detail.holder, facts.holder.as_str());
    }

    #[test]
    fn values_as_text() {
        assert_eq!(text(&serde_json::json!("x")), "x");
        assert_eq!(text(&serde_json::json!(3.4)), "3.4");
        assert_eq!(text(&serde_json::json!(["a", 1])), "a, 1");
        assert_eq!(text(&serde_json::json!({"a": 1})), "{\"a\":1}");
        assert_eq!(text(&serde_json::Value::Null), "—");
    }
}
