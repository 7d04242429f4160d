//! Credential templates for CSV issuance. The templates themselves are core
//! data ([`vouch_core::template`]: the `vct`, kind, fields, labels and which
//! claims the holder may withhold); this module finds them (built in, or a
//! `.json` file) and reads CSV cells with them.
//!
//! CSV form: one column per field (named by `column`, default the claim
//! name), plus `holder` (the holder's did:key, from `vouch-wallet receive`).
//! A `list` field is one column: items separated by `;`, an item's fields
//! separated by `|` in the order the template lists them, e.g.
//! `CS101|Programming|6|A|2024-S1; MA101|Calculus|5|B|2024-S1`.

use std::collections::HashSet;
use std::path::Path;

use serde_json::{Map, Value};
use vouch_core::path::Segment;
use vouch_core::sd_jwt::Concealment;
pub use vouch_core::template::{
    Field, FieldType, Template, Templates, Withholding, BUILTIN, DEFAULT_MAX_LEN,
};
use vouch_core::vc::Claim;
use vouch_core::ClaimPath;

/// The CSV column naming the holder's did:key.
pub const HOLDER_COLUMN: &str = "holder";

/// Why a template is unusable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// No such built-in template and no such file.
    #[error("no template {0:?} (built in: transcript, employment, insurance-policy; or give a .json file)")]
    Unknown(String),
    /// File unreadable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Not a valid template, or not one CSV can fill.
    #[error(transparent)]
    Invalid(#[from] vouch_core::template::TemplateError),
}

/// All built-in templates.
///
/// # Errors
/// Only if a shipped template is broken (a test guards against it).
pub fn builtins() -> Result<Vec<Template>, TemplateError> {
    let all = BUILTIN
        .iter()
        .map(|t| parse(t, "built-in"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(all)
}

/// A built-in template by name, or a template file by path.
///
/// # Errors
/// [`TemplateError`].
pub fn find(name_or_path: &str) -> Result<Template, TemplateError> {
    for t in builtins()? {
        if t.name == name_or_path {
            return Ok(t);
        }
    }
    let path = Path::new(name_or_path);
    if path.extension().is_some_and(|e| e == "json") || path.exists() {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
            path: name_or_path.into(),
            source,
        })?;
        return parse(&text, name_or_path);
    }
    Err(TemplateError::Unknown(name_or_path.into()))
}

/// Parses and checks a template ([`Template::from_json`]), and that CSV can
/// fill it: every column named once, none named `holder`.
///
/// # Errors
/// [`TemplateError::Invalid`] naming the problem.
pub fn parse(text: &str, origin: &str) -> Result<Template, TemplateError> {
    let t = Template::from_json(text, origin)?;
    let mut columns = HashSet::from([HOLDER_COLUMN]);
    for f in &t.fields {
        if !columns.insert(f.column()) {
            return Err(vouch_core::template::TemplateError {
                name: t.name.clone(),
                why: format!("column {:?} appears twice (or is 'holder')", f.column()),
            }
            .into());
        }
    }
    Ok(t)
}

/// Why a CSV cell does not fit its field. The message completes
/// "row 17, column grade: …".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CellError {
    /// A required cell is empty.
    #[error("is empty but required")]
    Empty,
    /// Text longer than the field allows.
    #[error("is longer than {max} characters")]
    TooLong {
        /// The field's bound.
        max: usize,
    },
    /// Text with control characters.
    #[error("contains control characters")]
    Control,
    /// Not a `YYYY-MM-DD` date.
    #[error("{cell:?} is not a date (expected YYYY-MM-DD)")]
    NotDate {
        /// The cell (its first 60 characters).
        cell: String,
    },
    /// Not a whole number.
    #[error("{cell:?} is not a whole number")]
    NotInteger {
        /// The cell (its first 60 characters).
        cell: String,
    },
    /// Not a decimal number.
    #[error("{cell:?} is not a decimal number")]
    NotDecimal {
        /// The cell (its first 60 characters).
        cell: String,
    },
    /// A number outside the field's bounds.
    #[error("{cell} is out of range ({}–{})", bound(*min), bound(*max))]
    OutOfRange {
        /// The cell.
        cell: String,
        /// The lowest value allowed.
        min: Option<f64>,
        /// The highest value allowed.
        max: Option<f64>,
    },
    /// Not one of an enum field's values.
    #[error("{cell:?} is not one of {}", values.join(", "))]
    NotOneOf {
        /// The cell (its first 60 characters).
        cell: String,
        /// The values allowed.
        values: Vec<String>,
    },
    /// A list item with another number of `|`-separated fields.
    #[error("item {item} has {got} fields; expected {} ({})", want.len(), want.join("|"))]
    ItemFields {
        /// The item (1-based).
        item: usize,
        /// Fields found.
        got: usize,
        /// The item's fields.
        want: Vec<String>,
    },
    /// A list item's field that does not fit.
    #[error("item {item} field {field}: {source}")]
    ItemField {
        /// The item (1-based).
        item: usize,
        /// The field's claim name.
        field: String,
        /// Why.
        source: Box<CellError>,
    },
}

/// A bound of [`CellError::OutOfRange`], empty when there is none.
fn bound(b: Option<f64>) -> String {
    b.map_or_else(String::new, |b| b.to_string())
}

/// A cell that does not fit its column.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("column {column}: {source}")]
pub struct ColumnError {
    /// The column.
    pub column: String,
    /// Why.
    pub source: CellError,
}

/// A template as CSV fills it.
pub trait CsvTemplate {
    /// The CSV columns, `holder` first.
    fn columns(&self) -> Vec<String>;

    /// The claims of one row; cells are looked up by column name.
    ///
    /// # Errors
    /// [`ColumnError`] of the first bad cell.
    fn claims(
        &self,
        cell: impl Fn(&str) -> Option<String>,
    ) -> Result<Map<String, Value>, ColumnError>;

    /// As [`CsvTemplate::claims`], with cells looked up by the field's
    /// position in the template's `fields` (no lookup by name, no copy of
    /// the cell).
    ///
    /// # Errors
    /// [`ColumnError`] of the first bad cell.
    fn claims_at<'c>(
        &self,
        cell: impl Fn(usize) -> Option<&'c str>,
    ) -> Result<Map<String, Value>, ColumnError>;

    /// Checks the cells as [`CsvTemplate::claims_at`] does, with the same
    /// errors, without building the claims.
    ///
    /// # Errors
    /// [`ColumnError`] of the first bad cell.
    fn check_at<'c>(&self, cell: impl Fn(usize) -> Option<&'c str>) -> Result<(), ColumnError>;

    /// Checks the cells as [`CsvTemplate::claims_at`] does (the same
    /// errors), then hands `f` the row's claims borrowed from the cells
    /// ([`RowClaims`]): the claims whose value is what `claims_at` builds,
    /// without building it. Only decimals (and lists nested in list items)
    /// are made into `serde_json` values, to print as `claims_at`'s do.
    ///
    /// # Errors
    /// [`ColumnError`] of the first bad cell.
    fn with_claims<'c, R>(
        &self,
        cell: impl Fn(usize) -> Option<&'c str>,
        f: impl FnOnce(RowClaims<'_>) -> R,
    ) -> Result<R, ColumnError>;

    /// As [`CsvTemplate::with_claims`], for cells that
    /// [`CsvTemplate::check_at`] accepted already: they are not checked
    /// again (only the values `with_claims` makes are made, with their own
    /// parsing). For cells it did not accept, the claims are not
    /// specified (nothing panics).
    ///
    /// # Errors
    /// [`ColumnError`] of a bad cell whose value is made.
    fn with_scanned_claims<'c, R>(
        &self,
        cell: impl Fn(usize) -> Option<&'c str>,
        f: impl FnOnce(RowClaims<'_>) -> R,
    ) -> Result<R, ColumnError>;

    /// Which claims a row of `shape` ([`RowClaims::shape`]) conceals:
    /// what [`Template::concealment`] gives for the row's claims.
    fn concealment_of(&self, shape: &[u32]) -> Concealment;
}

/// A row's claims borrowed from its cells: [`CsvTemplate::with_claims`].
#[derive(Debug, Clone, Copy)]
pub struct RowClaims<'r> {
    /// The claim set's members, in the template's order (as `claims_at`
    /// inserts them).
    pub claims: &'r [(&'r str, Claim<'r>)],
    /// The row's shape, by field position: 0 for an empty optional cell,
    /// 1 + its number of items for a list, 1 for any other. Rows of one
    /// shape conceal the same paths ([`CsvTemplate::concealment_of`]).
    pub shape: &'r [u32],
}

/// A checked, non-empty cell of a field that is not a list, borrowed
/// where it can be: text as itself, whole numbers parsed; anything else
/// (decimals, lists within items) the next of `owned`, the values made
/// for them in the same order.
fn borrowed_cell<'v>(
    field: &Field,
    cell: &'v str,
    owned: &mut std::slice::Iter<'v, Value>,
) -> Claim<'v> {
    if borrows(field) {
        borrowed_text(field, cell)
    } else {
        // Made in the same order, one for each such cell: never short.
        owned.next().map_or(Claim::Int(0), Claim::Json)
    }
}

/// A member of a list item, noted while its cell is split: borrowed
/// from the cell, or the position of the value made for it.
#[derive(Clone, Copy)]
enum Part<'c> {
    Borrowed(Claim<'c>),
    Made(usize),
}

/// A checked, non-empty cell of a field that [`borrows`]: text as itself,
/// whole numbers parsed.
fn borrowed_text<'v>(field: &Field, cell: &'v str) -> Claim<'v> {
    // Every type named, so a new one is placed here before it compiles.
    match field.kind {
        // Checked by `cell_value`: it parses.
        FieldType::Integer => Claim::Int(cell.parse().unwrap_or_default()),
        FieldType::String | FieldType::Date | FieldType::Enum => Claim::Str(cell),
        // Not borrowed (`borrows`): made from the cell instead.
        FieldType::Decimal | FieldType::List => Claim::Str(cell),
    }
}

/// [`CsvTemplate::with_claims`] (`check`: every cell checked first) and
/// [`CsvTemplate::with_scanned_claims`].
fn row_claims<'c, R>(
    template: &Template,
    cell: impl Fn(usize) -> Option<&'c str>,
    check: bool,
    f: impl FnOnce(RowClaims<'_>) -> R,
) -> Result<R, ColumnError> {
    // Check every cell (unless checked already); make the values that
    // are not borrowed: those of the top-level fields, then those within
    // list items, each in the order the claims are built below. A list
    // cell is split once: its items' members are noted as they are met
    // (borrowed, or the position of their value made).
    let mut shape = Vec::with_capacity(template.fields.len());
    let (mut top_values, mut item_values) = (Vec::new(), Vec::new());
    let mut parts: Vec<(&str, Part<'c>)> = Vec::new();
    let mut ends = Vec::new();
    for (i, field) in template.fields.iter().enumerate() {
        let column = |source| ColumnError {
            column: field.column().to_owned(),
            source,
        };
        let raw = cell(i).unwrap_or_default();
        if check {
            cell_value(field, raw, false).map_err(column)?;
        }
        let raw = raw.trim();
        if raw.is_empty() {
            shape.push(0);
            continue;
        }
        if field.kind != FieldType::List {
            shape.push(1);
            if !borrows(field) {
                top_values.extend(cell_value(field, raw, true).map_err(column)?);
            }
            continue;
        }
        let mut items = 0u32;
        for item in raw.split(';') {
            items += 1;
            for (part_field, part) in field.items.iter().zip(item.split('|')) {
                let noted = if borrows(part_field) {
                    let part = part.trim();
                    if part.is_empty() {
                        continue;
                    }
                    Part::Borrowed(borrowed_text(part_field, part))
                } else {
                    // Made (or refused) as the cell is, empty or not.
                    match cell_value(part_field, part, true).map_err(column)? {
                        Some(value) => {
                            item_values.push(value);
                            Part::Made(item_values.len() - 1)
                        }
                        None => continue,
                    }
                };
                parts.push((part_field.claim.as_str(), noted));
            }
            ends.push(parts.len());
        }
        shape.push(1 + items);
    }
    // The items' members in one list, the items in another, then the
    // claim set: each borrows from the one before.
    let members: Vec<(&str, Claim<'_>)> = parts
        .iter()
        .map(|&(name, part)| {
            let claim = match part {
                Part::Borrowed(claim) => claim,
                // Pushed just before its position was noted: there.
                Part::Made(at) => item_values.get(at).map_or(Claim::Int(0), Claim::Json),
            };
            (name, claim)
        })
        .collect();
    let items = Claim::objects(&members, &ends);
    let mut owned = top_values.iter();
    let mut claims = Vec::with_capacity(template.fields.len());
    let mut item = 0;
    for (i, field) in template.fields.iter().enumerate() {
        let claim = match (field.kind, shape[i]) {
            (_, 0) => continue,
            (FieldType::List, n) => {
                let n = (n - 1) as usize;
                item += n;
                Claim::Array(&items[item - n..item])
            }
            _ => borrowed_cell(field, cell(i).unwrap_or_default().trim(), &mut owned),
        };
        claims.push((field.claim.as_str(), claim));
    }
    Ok(f(RowClaims {
        claims: &claims,
        shape: &shape,
    }))
}

/// Whether a field's non-empty cell is borrowed as it is (else it needs a
/// value made: [`borrowed_cell`]).
fn borrows(field: &Field) -> bool {
    // Every type named, so a new one is decided here before it compiles.
    match field.kind {
        FieldType::String | FieldType::Date | FieldType::Enum | FieldType::Integer => true,
        FieldType::Decimal | FieldType::List => false,
    }
}

impl CsvTemplate for Template {
    fn columns(&self) -> Vec<String> {
        std::iter::once(HOLDER_COLUMN.to_owned())
            .chain(self.fields.iter().map(|f| f.column().to_owned()))
            .collect()
    }

    fn claims(
        &self,
        cell: impl Fn(&str) -> Option<String>,
    ) -> Result<Map<String, Value>, ColumnError> {
        let cells: Vec<Option<String>> = self.fields.iter().map(|f| cell(f.column())).collect();
        self.claims_at(|i| cells.get(i).and_then(Option::as_deref))
    }

    fn claims_at<'c>(
        &self,
        cell: impl Fn(usize) -> Option<&'c str>,
    ) -> Result<Map<String, Value>, ColumnError> {
        let mut claims = Map::new();
        for (i, f) in self.fields.iter().enumerate() {
            let raw = cell(i).unwrap_or_default();
            let value = cell_value(f, raw, true).map_err(|source| ColumnError {
                column: f.column().to_owned(),
                source,
            })?;
            if let Some(v) = value {
                claims.insert(f.claim.clone(), v);
            }
        }
        Ok(claims)
    }

    fn check_at<'c>(&self, cell: impl Fn(usize) -> Option<&'c str>) -> Result<(), ColumnError> {
        for (i, f) in self.fields.iter().enumerate() {
            let raw = cell(i).unwrap_or_default();
            cell_value(f, raw, false).map_err(|source| ColumnError {
                column: f.column().to_owned(),
                source,
            })?;
        }
        Ok(())
    }

    fn with_claims<'c, R>(
        &self,
        cell: impl Fn(usize) -> Option<&'c str>,
        f: impl FnOnce(RowClaims<'_>) -> R,
    ) -> Result<R, ColumnError> {
        row_claims(self, cell, true, f)
    }

    fn with_scanned_claims<'c, R>(
        &self,
        cell: impl Fn(usize) -> Option<&'c str>,
        f: impl FnOnce(RowClaims<'_>) -> R,
    ) -> Result<R, ColumnError> {
        row_claims(self, cell, false, f)
    }

    fn concealment_of(&self, shape: &[u32]) -> Concealment {
        let mut paths = Vec::new();
        for (field, &present) in self.fields.iter().zip(shape) {
            if present == 0 {
                continue;
            }
            let top = ClaimPath::from_segments(vec![Segment::Key(field.claim.clone())]);
            if field.kind == FieldType::List && field.item_withholding == Withholding::Selective {
                if field.withholding == Withholding::Selective {
                    paths.push(top.clone());
                }
                paths.extend((0..present - 1).map(|i| top.child(Segment::Index(i as usize))));
            } else if field.withholding == Withholding::Selective {
                paths.push(top);
            }
        }
        Concealment {
            paths,
            max_decoys: self.max_decoys,
        }
    }
}

/// A field as a CSV column.
pub trait CsvField {
    /// The CSV column: `column`, or the claim name.
    fn column(&self) -> &str;

    /// A short description of what the column holds, for `templates`.
    fn describe(&self) -> String;
}

impl CsvField for Field {
    fn column(&self) -> &str {
        self.column.as_deref().unwrap_or(&self.claim)
    }

    fn describe(&self) -> String {
        let base = match self.kind {
            FieldType::String => format!("text ≤ {}", self.max_len.unwrap_or(DEFAULT_MAX_LEN)),
            FieldType::Date => "date YYYY-MM-DD".into(),
            FieldType::Integer | FieldType::Decimal => {
                let t = if self.kind == FieldType::Integer {
                    "integer"
                } else {
                    "decimal"
                };
                match (self.min, self.max) {
                    (Some(a), Some(b)) => format!("{t} {a}–{b}"),
                    _ => t.into(),
                }
            }
            FieldType::Enum => format!("one of {}", self.values.join(", ")),
            FieldType::List => format!(
                "list: items separated by ';', fields by '|': {}",
                self.items
                    .iter()
                    .map(|i| i.claim.as_str())
                    .collect::<Vec<_>>()
                    .join("|")
            ),
        };
        let opt = if self.required { "" } else { ", optional" };
        let sd = match (self.withholding, self.item_withholding, self.kind) {
            (_, Withholding::Selective, FieldType::List) => ", each item selectively disclosable",
            (Withholding::Selective, _, _) => ", selectively disclosable",
            _ => ", always disclosed",
        };
        format!("{base}{opt}{sd}")
    }
}

/// Parses and checks one cell. `Ok(None)` for an empty optional cell.
/// Without `build`, only checks: the value is `null` (nothing allocated),
/// the errors are the same.
fn cell_value(field: &Field, cell: &str, build: bool) -> Result<Option<Value>, CellError> {
    let cell = cell.trim();
    if cell.is_empty() {
        return if field.required {
            Err(CellError::Empty)
        } else {
            Ok(None)
        };
    }
    let show = |c: &str| c.chars().take(60).collect::<String>();
    let value = match field.kind {
        FieldType::String => {
            let max = field.max_len.unwrap_or(DEFAULT_MAX_LEN);
            // ASCII (most cells): a byte is a character, and the control
            // characters are the bytes below 0x20 and 0x7f.
            let ascii = cell.is_ascii();
            let chars = if ascii {
                cell.len()
            } else {
                cell.chars().count()
            };
            if chars > max {
                return Err(CellError::TooLong { max });
            }
            let control = if ascii {
                cell.bytes().any(|b| b < 0x20 || b == 0x7f)
            } else {
                cell.chars().any(char::is_control)
            };
            if control {
                return Err(CellError::Control);
            }
            text(cell, build)
        }
        FieldType::Date => {
            if !is_date(cell) {
                return Err(CellError::NotDate { cell: show(cell) });
            }
            text(cell, build)
        }
        FieldType::Integer => {
            let n: i64 = cell
                .parse()
                .map_err(|_| CellError::NotInteger { cell: show(cell) })?;
            range(field, n as f64, cell)?;
            if build {
                Value::from(n)
            } else {
                Value::Null
            }
        }
        FieldType::Decimal => {
            let ok = cell
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
                && cell.bytes().filter(|&b| b == b'.').count() <= 1;
            let n: f64 = cell
                .parse()
                .ok()
                .filter(|n: &f64| ok && n.is_finite())
                .ok_or_else(|| CellError::NotDecimal { cell: show(cell) })?;
            range(field, n, cell)?;
            if build {
                serde_json::from_str::<Value>(cell.trim_start_matches('+'))
                    .ok()
                    .filter(Value::is_number)
                    .unwrap_or_else(|| Value::from(n))
            } else {
                Value::Null
            }
        }
        FieldType::Enum => {
            if !field.values.iter().any(|v| v == cell) {
                return Err(CellError::NotOneOf {
                    cell: show(cell),
                    values: field.values.clone(),
                });
            }
            text(cell, build)
        }
        FieldType::List => {
            let mut items = Vec::new();
            for (i, raw) in cell.split(';').enumerate() {
                let got = raw.split('|').count();
                if got != field.items.len() {
                    return Err(CellError::ItemFields {
                        item: i + 1,
                        got,
                        want: field.items.iter().map(|f| f.claim.clone()).collect(),
                    });
                }
                let mut item = Map::new();
                for (f, part) in field.items.iter().zip(raw.split('|')) {
                    let value =
                        cell_value(f, part, build).map_err(|source| CellError::ItemField {
                            item: i + 1,
                            field: f.claim.clone(),
                            source: Box::new(source),
                        })?;
                    if let (true, Some(v)) = (build, value) {
                        item.insert(f.claim.clone(), v);
                    }
                }
                if build {
                    items.push(Value::Object(item));
                }
            }
            if build {
                Value::Array(items)
            } else {
                Value::Null
            }
        }
    };
    Ok(Some(value))
}

/// A text cell's value: the text when building, else `null`.
fn text(cell: &str, build: bool) -> Value {
    if build {
        Value::from(cell)
    } else {
        Value::Null
    }
}

/// Checks `n` (the cell `cell`) against the field's bounds.
fn range(field: &Field, n: f64, cell: &str) -> Result<(), CellError> {
    if field.min.is_some_and(|m| n < m) || field.max.is_some_and(|m| n > m) {
        return Err(CellError::OutOfRange {
            cell: cell.chars().take(60).collect(),
            min: field.min,
            max: field.max,
        });
    }
    Ok(())
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        s.get(r)
            .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|t| t.parse().ok())
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d) && y >= 1900
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn builtins_load_and_describe() {
        let all = builtins().unwrap();
        assert_eq!(
            all.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["transcript", "employment", "insurance-policy"]
        );
        let t = find("transcript").unwrap();
        assert_eq!(t.columns()[0], "holder");
        assert!(t
            .fields
            .iter()
            .any(|f| f.describe().contains("code|title|credits|grade|term")));
        assert!(matches!(find("nope"), Err(TemplateError::Unknown(_))));
    }

    #[test]
    fn cells_are_checked_with_reasons() {
        let t = find("transcript").unwrap();
        let row = |over: &[(&str, &str)]| {
            let mut cells: Vec<(String, String)> = [
                ("institution", "Uni"),
                ("student_name", "Ada"),
                ("student_id", "S1"),
                ("programme", "CS"),
                ("degree", "BSc"),
                ("award_date", "2025-07-15"),
                ("gpa", "3.60"),
                (
                    "courses",
                    "CS101|Programming|6|A|2024-S1; MA101|Calculus|5|B|2024-S1",
                ),
            ]
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
            for (k, v) in over {
                cells.retain(|(a, _)| a != k);
                cells.push(((*k).to_owned(), (*v).to_owned()));
            }
            t.claims(|c| cells.iter().find(|(a, _)| a == c).map(|(_, b)| b.clone()))
        };
        let ok = row(&[]).unwrap();
        assert_eq!(ok["courses"][1]["credits"], 5);
        assert_eq!(ok["gpa"].to_string(), "3.60");
        assert_eq!(t.concealment(&ok).paths.len(), 6 + 2);
        let err = |over| {
            let e: ColumnError = row(over).unwrap_err();
            (e.column, e.source.to_string())
        };
        assert_eq!(err(&[("award_date", "2025-02-30")]).0, "award_date");
        assert!(err(&[("gpa", "4.5")]).1.contains("out of range"));
        assert!(err(&[("gpa", "abc")]).1.contains("not a decimal"));
        assert!(err(&[("student_name", "")]).1.contains("empty"));
        let (col, msg) = err(&[("courses", "CS101|Programming|6|A++|2024-S1")]);
        assert_eq!(col, "courses");
        assert!(
            msg.contains("item 1 field grade") && msg.contains("A++"),
            "{msg}"
        );
        assert!(err(&[("courses", "CS101|6|A")]).1.contains("3 fields"));
        // Optional: an empty GPA is left out.
        assert!(!row(&[("gpa", "")]).unwrap().contains_key("gpa"));
    }

    /// A transcript row with the cells in `over` replaced.
    fn transcript_row(over: &[(&str, &str)]) -> Result<Map<String, Value>, ColumnError> {
        let t = find("transcript").unwrap();
        let mut cells: Vec<(String, String)> = [
            ("institution", "Uni"),
            ("student_name", "Ada"),
            ("student_id", "S1"),
            ("programme", "CS"),
            ("degree", "BSc"),
            ("award_date", "2025-07-15"),
            ("gpa", "3.60"),
            ("courses", "CS101|Programming|6|A|2024-S1"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        for (k, v) in over {
            cells.retain(|(a, _)| a != k);
            cells.push(((*k).to_owned(), (*v).to_owned()));
        }
        t.claims(|c| cells.iter().find(|(a, _)| a == c).map(|(_, b)| b.clone()))
    }

    #[test]
    fn every_cell_error_names_the_column_the_value_and_the_rule() {
        let long = "x".repeat(100);
        let shown = format!("{:?}", "x".repeat(60));
        for (column, cell, want) in [
            (
                "gpa",
                "4.5",
                "column gpa: 4.5 is out of range (0–4)".to_owned(),
            ),
            (
                "gpa",
                "abc",
                "column gpa: \"abc\" is not a decimal number".into(),
            ),
            (
                "award_date",
                "2025-02-30",
                "column award_date: \"2025-02-30\" is not a date (expected YYYY-MM-DD)".into(),
            ),
            (
                "award_date",
                &long,
                format!("column award_date: {shown} is not a date (expected YYYY-MM-DD)"),
            ),
            (
                "student_id",
                "S012345678901234567890123456789012",
                "column student_id: is longer than 32 characters".into(),
            ),
            (
                "student_name",
                "A\u{7}da",
                "column student_name: contains control characters".into(),
            ),
            (
                "student_name",
                "A\u{7f}da",
                "column student_name: contains control characters".into(),
            ),
            (
                "student_name",
                "Ä\u{85}da",
                "column student_name: contains control characters".into(),
            ),
            (
                "student_id",
                &"ü".repeat(33),
                "column student_id: is longer than 32 characters".into(),
            ),
            (
                "student_name",
                "",
                "column student_name: is empty but required".into(),
            ),
            (
                "courses",
                "CS101|Programming|x|A|2024-S1",
                "column courses: item 1 field credits: \"x\" is not a whole number".into(),
            ),
            (
                "courses",
                "CS101|Programming|6|A|2024-S1; CS102|Logic|61|B|2024-S1",
                "column courses: item 2 field credits: 61 is out of range (0–60)".into(),
            ),
            (
                "courses",
                "CS101|Programming|6|A++|2024-S1",
                "column courses: item 1 field grade: \"A++\" is not one of A, B, C, D, E, F, P"
                    .into(),
            ),
            (
                "courses",
                "CS101|6|A",
                "column courses: item 1 has 3 fields; expected 5 (code|title|credits|grade|term)"
                    .into(),
            ),
        ] {
            let e = transcript_row(&[(column, cell)]).unwrap_err();
            assert_eq!(e.column, column);
            assert_eq!(e.to_string(), want);
        }
        // Characters, not bytes, are counted.
        assert!(transcript_row(&[("student_id", &"ü".repeat(32))]).is_ok());
        // The cause of a list item's field is kept as the source.
        let e = transcript_row(&[("courses", "CS101|Programming|6|Z|2024-S1")]).unwrap_err();
        let CellError::ItemField {
            item,
            field,
            source,
        } = &e.source
        else {
            panic!("{e:?}")
        };
        assert_eq!((*item, field.as_str()), (1, "grade"));
        assert!(matches!(**source, CellError::NotOneOf { .. }));
        assert!(std::error::Error::source(&e.source).is_some());
    }

    #[test]
    fn borrowed_claims_are_the_built_claims_and_issue_the_same_bytes() {
        use rand::SeedableRng as _;
        use vouch_core::vc::{self, ClaimsRequest, CredentialRequest};
        let issuer =
            vouch_core::vc::IssuerKey::new(ed25519_dalek::SigningKey::from_bytes(&[5; 32]));
        let holder = vouch_core::jws::PublicKey::Ed25519(
            ed25519_dalek::SigningKey::from_bytes(&[6; 32]).verifying_key(),
        );
        let employment = find("employment").unwrap();
        let mut decimal_items = find("transcript").unwrap();
        // A decimal within list items, and an optional one.
        for item in &mut decimal_items.fields.last_mut().unwrap().items {
            if item.claim == "credits" {
                item.kind = FieldType::Decimal;
                item.required = false;
            }
        }
        let transcript = find("transcript").unwrap();
        let cases: Vec<(&Template, Vec<&str>)> = vec![
            (
                &transcript,
                vec![
                    "Uni",
                    "Ada \"Q\"",
                    "S1",
                    "CS",
                    "BSc",
                    "2025-07-15",
                    "3.60",
                    " CS101|Programming|6|A|2024-S1 ; MA101|Calculus| 5 |B|2024-S1",
                ],
            ),
            // No GPA (optional), one course.
            (
                &transcript,
                vec![
                    "Uni",
                    "Bo",
                    "S2",
                    "CS",
                    "BSc",
                    "2025-07-15",
                    "",
                    "CS101|P|6|A|2024-S1",
                ],
            ),
            (
                &decimal_items,
                vec![
                    "Uni",
                    "Cy",
                    "S3",
                    "CS",
                    "BSc",
                    "2025-07-15",
                    "4",
                    "CS101|P|6.50|A|2024-S1; CS102|Q||B|2024-S1",
                ],
            ),
            (
                &employment,
                vec!["ACME", "Ada", "Engineer", "R&D", "2020-01-01", ""],
            ),
            (
                &employment,
                vec!["ACME", "Ada", "Engineer", "", "2020-01-01", "2021-01-01"],
            ),
        ];
        for (template, cells) in cases {
            let cell = |i: usize| cells.get(i).copied();
            let built = template.claims_at(cell).unwrap();
            let (text, value) = template
                .with_claims(cell, |row| {
                    let Value::Object(value) = vouch_core::vc::Claim::Object(row.claims).to_value()
                    else {
                        unreachable!("an object")
                    };
                    assert_eq!(value, built, "{cells:?}");
                    // Built in the same order (the map may keep insertion order).
                    assert!(value.keys().eq(built.keys()), "{cells:?}");
                    let concealment = template.concealment_of(row.shape);
                    assert_eq!(concealment.paths, template.concealment(&built).paths);
                    let status = vouch_core::status_list::StatusRef {
                        idx: 7,
                        uri: "https://registry.example/status/1".into(),
                    };
                    let request = ClaimsRequest {
                        vct: &template.vct,
                        iat: 1_700_000_000,
                        exp: Some(1_800_000_000),
                        holder: &holder,
                        status: Some(&status),
                        claims: row.claims,
                        concealment: &concealment,
                    };
                    let text = vc::issue_claims(
                        &request,
                        &issuer,
                        &mut rand::rngs::StdRng::seed_from_u64(9),
                    );
                    // Planned once, into reused buffers: the same text.
                    let plan = vc::IssuePlan::new(concealment.clone());
                    let planned = ClaimsRequest {
                        concealment: plan.concealment(),
                        ..request
                    };
                    let mut buffers = vouch_core::sd_jwt::IssueBuffers::default();
                    let mut out = String::new();
                    vc::issue_planned(
                        &planned,
                        &plan,
                        &issuer,
                        &mut buffers,
                        &mut out,
                        &mut rand::rngs::StdRng::seed_from_u64(9),
                    )
                    .unwrap();
                    assert_eq!(Ok(&out), text.as_ref(), "{cells:?}");
                    let value = vc::issue_compact(
                        CredentialRequest {
                            vct: template.vct.clone(),
                            iat: request.iat,
                            exp: request.exp,
                            holder: holder.clone(),
                            status: Some(status.clone()),
                            claims: built.clone(),
                            concealment,
                        },
                        &issuer,
                        &mut rand::rngs::StdRng::seed_from_u64(9),
                    );
                    (text, value)
                })
                .unwrap();
            assert_eq!(text.unwrap(), value.unwrap());
            // Cells checked already: the same claims, not checked again.
            let scanned = template
                .with_scanned_claims(cell, |row| {
                    (
                        vouch_core::vc::Claim::Object(row.claims).to_value(),
                        row.shape.to_vec(),
                    )
                })
                .unwrap();
            let checked = template
                .with_claims(cell, |row| {
                    (
                        vouch_core::vc::Claim::Object(row.claims).to_value(),
                        row.shape.to_vec(),
                    )
                })
                .unwrap();
            assert_eq!(scanned, checked, "{cells:?}");
        }
        // A bad cell: the error `claims_at` gives, and `f` is not called.
        let cells = [
            "Uni",
            "Ada",
            "S1",
            "CS",
            "BSc",
            "2025-02-30",
            "",
            "CS101|P|6|A|2024-S1",
        ];
        let cell = |i: usize| cells.get(i).copied();
        let want = transcript.claims_at(cell).unwrap_err();
        let got = transcript
            .with_claims(cell, |_| panic!("called for a bad row"))
            .unwrap_err();
        assert_eq!(got, want);
        let cells = [
            "Uni",
            "Ada",
            "S1",
            "CS",
            "BSc",
            "2025-07-15",
            "",
            "CS101|P|x|A|2024-S1",
        ];
        let cell = |i: usize| cells.get(i).copied();
        assert_eq!(
            transcript.with_claims(cell, |_| ()).unwrap_err(),
            transcript.claims_at(cell).unwrap_err()
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for (bad, why) in [
            ("{", "EOF"),
            (
                r#"{"name":"x","kind":"x","vct":"v","title":"t","fields":[]}"#,
                "no fields",
            ),
            (
                r#"{"name":"x","kind":"x","vct":"v","title":"t","fields":[{"claim":"iss","label":"l","type":"string"}]}"#,
                "reserved",
            ),
            (
                r#"{"name":"x","kind":"x","vct":"v","title":"t","fields":[{"claim":"a","label":"l","type":"enum"}]}"#,
                "needs values",
            ),
            (
                r#"{"name":"x","kind":"x","vct":"v","title":"t","fields":[{"claim":"a","label":"l","type":"string"},{"claim":"b","column":"a","label":"l","type":"string"}]}"#,
                "twice",
            ),
            (
                r#"{"name":"x","kind":"x","vct":"v","title":"t","extra":1,"fields":[]}"#,
                "unknown field",
            ),
        ] {
            let e = parse(bad, "test").unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn dates() {
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2023-02-29"));
        assert!(!is_date("2023-13-01"));
        assert!(!is_date("2023-1-01"));
        assert!(!is_date("２０２３-01-01"));
    }
}
