//! Credential templates as data: the `vct`, the fields, their CSV columns,
//! types, validation, and which claims the holder may withhold. Three ship
//! with the crate (`templates/*.json`); any other is loaded from a file, so a
//! new kind of credential needs no recompile.
//!
//! CSV form: one column per field (named by `column`, default the claim
//! name), plus `holder` (the holder's did:key, from `vouch-wallet receive`).
//! A `list` field is one column: items separated by `;`, an item's fields
//! separated by `|` in the order the template lists them, e.g.
//! `CS101|Programming|6|A|2024-S1; MA101|Calculus|5|B|2024-S1`.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vouch_core::sd_jwt::Concealment;
use vouch_core::vc::RESERVED_CLAIMS;
use vouch_core::ClaimPath;

/// Templates shipped with the crate.
pub const BUILTIN: [&str; 3] = [
    include_str!("../templates/transcript.json"),
    include_str!("../templates/employment.json"),
    include_str!("../templates/insurance-policy.json"),
];

/// The CSV column naming the holder's did:key.
pub const HOLDER_COLUMN: &str = "holder";

/// Whether the holder may withhold a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Disclosure {
    /// Always shown.
    #[default]
    Always,
    /// Selectively disclosable.
    Selective,
}

/// A field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    /// Text.
    String,
    /// `YYYY-MM-DD`.
    Date,
    /// A whole number.
    Integer,
    /// A decimal number.
    Decimal,
    /// One of `values`.
    Enum,
    /// A list of items with `items` fields (one CSV column).
    List,
}

/// One field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Claim name in the credential.
    pub claim: String,
    /// CSV column; defaults to the claim name.
    #[serde(default)]
    pub column: Option<String>,
    /// Display label.
    pub label: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: FieldType,
    /// Whether a value must be given (default: yes).
    #[serde(default = "yes")]
    pub required: bool,
    /// Always shown, or selectively disclosable.
    #[serde(default)]
    pub disclosure: Disclosure,
    /// For lists: whether each item is selectively disclosable.
    #[serde(default)]
    pub item_disclosure: Disclosure,
    /// Smallest number allowed.
    #[serde(default)]
    pub min: Option<f64>,
    /// Largest number allowed.
    #[serde(default)]
    pub max: Option<f64>,
    /// Longest text allowed (default 200).
    #[serde(default)]
    pub max_len: Option<usize>,
    /// For enums: the values allowed.
    #[serde(default)]
    pub values: Vec<String>,
    /// For lists: the item fields.
    #[serde(default)]
    pub items: Vec<Field>,
}

fn yes() -> bool {
    true
}

impl Field {
    /// The CSV column.
    pub fn column(&self) -> &str {
        self.column.as_deref().unwrap_or(&self.claim)
    }

    /// A short description of what the column holds, for `templates`.
    pub fn describe(&self) -> String {
        let base = match self.kind {
            FieldType::String => format!("text ≤ {}", self.max_len.unwrap_or(200)),
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
        let sd = match (self.disclosure, self.item_disclosure, self.kind) {
            (_, Disclosure::Selective, FieldType::List) => ", each item selectively disclosable",
            (Disclosure::Selective, _, _) => ", selectively disclosable",
            _ => ", always disclosed",
        };
        format!("{base}{opt}{sd}")
    }

    /// Parses and checks one cell. `Ok(None)` for an empty optional cell.
    fn value(&self, cell: &str) -> Result<Option<Value>, String> {
        let cell = cell.trim();
        if cell.is_empty() {
            return if self.required {
                Err("is empty but required".into())
            } else {
                Ok(None)
            };
        }
        let show = |c: &str| format!("{:?}", c.chars().take(60).collect::<String>());
        let value = match self.kind {
            FieldType::String => {
                let max = self.max_len.unwrap_or(200);
                if cell.chars().count() > max {
                    return Err(format!("is longer than {max} characters"));
                }
                if cell.chars().any(char::is_control) {
                    return Err("contains control characters".into());
                }
                Value::from(cell)
            }
            FieldType::Date => {
                if !is_date(cell) {
                    return Err(format!(
                        "{} is not a date (expected YYYY-MM-DD)",
                        show(cell)
                    ));
                }
                Value::from(cell)
            }
            FieldType::Integer => {
                let n: i64 = cell
                    .parse()
                    .map_err(|_| format!("{} is not a whole number", show(cell)))?;
                self.range(n as f64, cell)?;
                Value::from(n)
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
                    .ok_or_else(|| format!("{} is not a decimal number", show(cell)))?;
                self.range(n, cell)?;
                serde_json::from_str::<Value>(cell.trim_start_matches('+'))
                    .ok()
                    .filter(Value::is_number)
                    .unwrap_or_else(|| Value::from(n))
            }
            FieldType::Enum => {
                if !self.values.iter().any(|v| v == cell) {
                    return Err(format!(
                        "{} is not one of {}",
                        show(cell),
                        self.values.join(", ")
                    ));
                }
                Value::from(cell)
            }
            FieldType::List => {
                let mut items = Vec::new();
                for (i, raw) in cell.split(';').enumerate() {
                    let parts: Vec<&str> = raw.split('|').collect();
                    if parts.len() != self.items.len() {
                        return Err(format!(
                            "item {} has {} fields; expected {} ({})",
                            i + 1,
                            parts.len(),
                            self.items.len(),
                            self.items
                                .iter()
                                .map(|f| f.claim.as_str())
                                .collect::<Vec<_>>()
                                .join("|")
                        ));
                    }
                    let mut item = Map::new();
                    for (f, part) in self.items.iter().zip(parts) {
                        if let Some(v) = f
                            .value(part)
                            .map_err(|e| format!("item {} field {}: {e}", i + 1, f.claim))?
                        {
                            item.insert(f.claim.clone(), v);
                        }
                    }
                    items.push(Value::Object(item));
                }
                Value::Array(items)
            }
        };
        Ok(Some(value))
    }

    fn range(&self, n: f64, cell: &str) -> Result<(), String> {
        if self.min.is_some_and(|m| n < m) || self.max.is_some_and(|m| n > m) {
            return Err(format!(
                "{cell} is out of range ({}–{})",
                self.min.map_or("".into(), |m| m.to_string()),
                self.max.map_or("".into(), |m| m.to_string())
            ));
        }
        Ok(())
    }
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

/// A credential template.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Template name (`--template`).
    pub name: String,
    /// Accreditation kind it needs.
    pub kind: String,
    /// The credential's `vct`.
    pub vct: String,
    /// Display title.
    pub title: String,
    /// Validity in days from issuance; none: no `exp`.
    #[serde(default)]
    pub valid_days: Option<u32>,
    /// Decoy digests per `_sd` array, at most.
    #[serde(default)]
    pub max_decoys: u8,
    /// The fields.
    pub fields: Vec<Field>,
}

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
    /// Not a valid template.
    #[error("template {name}: {why}")]
    Invalid {
        /// Template or file.
        name: String,
        /// What is wrong.
        why: String,
    },
}

impl Template {
    /// All built-in templates.
    ///
    /// # Errors
    /// Only if a shipped template is broken (a test guards against it).
    pub fn builtins() -> Result<Vec<Template>, TemplateError> {
        BUILTIN
            .iter()
            .map(|t| Self::from_json(t, "built-in"))
            .collect()
    }

    /// A built-in template by name, or a template file by path.
    ///
    /// # Errors
    /// [`TemplateError`].
    pub fn find(name_or_path: &str) -> Result<Template, TemplateError> {
        for t in Self::builtins()? {
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
            return Self::from_json(&text, name_or_path);
        }
        Err(TemplateError::Unknown(name_or_path.into()))
    }

    /// Parses and checks a template.
    ///
    /// # Errors
    /// [`TemplateError::Invalid`] naming the problem.
    pub fn from_json(text: &str, origin: &str) -> Result<Template, TemplateError> {
        let t: Template = serde_json::from_str(text).map_err(|e| TemplateError::Invalid {
            name: origin.into(),
            why: e.to_string(),
        })?;
        t.check().map_err(|why| TemplateError::Invalid {
            name: t.name.clone(),
            why,
        })?;
        Ok(t)
    }

    fn check(&self) -> Result<(), String> {
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !token(&self.name) || !token(&self.kind) {
            return Err("name and kind must be letters, digits, '-' and '_'".into());
        }
        if self.vct.is_empty() {
            return Err("vct is empty".into());
        }
        let mut claims = HashSet::new();
        let mut columns = HashSet::from([HOLDER_COLUMN.to_owned()]);
        for f in &self.fields {
            check_field(f)?;
            if RESERVED_CLAIMS.contains(&f.claim.as_str()) {
                return Err(format!("claim {:?} is reserved by SD-JWT VC", f.claim));
            }
            if !claims.insert(f.claim.clone()) {
                return Err(format!("claim {:?} appears twice", f.claim));
            }
            if !columns.insert(f.column().to_owned()) {
                return Err(format!(
                    "column {:?} appears twice (or is 'holder')",
                    f.column()
                ));
            }
        }
        if self.fields.is_empty() {
            return Err("no fields".into());
        }
        Ok(())
    }

    /// The CSV columns, `holder` first.
    pub fn columns(&self) -> Vec<String> {
        std::iter::once(HOLDER_COLUMN.to_owned())
            .chain(self.fields.iter().map(|f| f.column().to_owned()))
            .collect()
    }

    /// The claims of one row; cells are looked up by column name.
    ///
    /// # Errors
    /// `(column, message)` of the first bad cell.
    pub fn claims(
        &self,
        cell: impl Fn(&str) -> Option<String>,
    ) -> Result<Map<String, Value>, (String, String)> {
        let mut claims = Map::new();
        for f in &self.fields {
            let raw = cell(f.column()).unwrap_or_default();
            if let Some(v) = f.value(&raw).map_err(|e| (f.column().to_owned(), e))? {
                claims.insert(f.claim.clone(), v);
            }
        }
        Ok(claims)
    }

    /// Which claims of `claims` the holder may withhold.
    pub fn concealment(&self, claims: &Map<String, Value>) -> Concealment {
        let mut paths = Vec::new();
        for f in &self.fields {
            let Some(v) = claims.get(&f.claim) else {
                continue;
            };
            let top =
                ClaimPath::from_segments(vec![vouch_core::path::Segment::Key(f.claim.clone())]);
            if f.disclosure == Disclosure::Selective {
                paths.push(top.clone());
            }
            if f.kind == FieldType::List && f.item_disclosure == Disclosure::Selective {
                let n = v.as_array().map_or(0, Vec::len);
                paths.extend((0..n).map(|i| top.child(vouch_core::path::Segment::Index(i))));
            }
        }
        Concealment {
            paths,
            max_decoys: self.max_decoys,
        }
    }
}

fn check_field(f: &Field) -> Result<(), String> {
    if f.claim.is_empty() || f.claim.contains(['|', ';']) {
        return Err(format!("field {:?}: bad claim name", f.claim));
    }
    match f.kind {
        FieldType::Enum if f.values.is_empty() => {
            Err(format!("field {}: an enum needs values", f.claim))
        }
        FieldType::List if f.items.is_empty() => {
            Err(format!("field {}: a list needs items", f.claim))
        }
        FieldType::List => {
            for i in &f.items {
                if i.kind == FieldType::List {
                    return Err(format!("field {}: lists cannot nest", f.claim));
                }
                check_field(i)?;
            }
            Ok(())
        }
        _ if !f.items.is_empty() => Err(format!("field {}: only lists have items", f.claim)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn builtins_load_and_describe() {
        let all = Template::builtins().unwrap();
        assert_eq!(
            all.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["transcript", "employment", "insurance-policy"]
        );
        let t = Template::find("transcript").unwrap();
        assert_eq!(t.columns()[0], "holder");
        assert!(t
            .fields
            .iter()
            .any(|f| f.describe().contains("code|title|credits|grade|term")));
        assert!(matches!(
            Template::find("nope"),
            Err(TemplateError::Unknown(_))
        ));
    }

    #[test]
    fn cells_are_checked_with_reasons() {
        let t = Template::find("transcript").unwrap();
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
        let err = |over| row(over).unwrap_err();
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
            let e = Template::from_json(bad, "test").unwrap_err().to_string();
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
