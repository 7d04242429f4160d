//! Credential templates as data: the `vct` and the accreditation kind it
//! belongs to, the fields with their display labels, types and validation
//! bounds, and which claims the holder may withhold.
//!
//! The issuer fills credentials from a template (reading CSV is the
//! issuer's business, not this module's); a verifier maps a credential's
//! `vct` to its kind and labels through the same templates
//! ([`Templates::by_vct`]). Three ship with the crate
//! (`core/templates/*.json`, [`Templates::builtin`]); any other is parsed
//! from JSON with [`Template::from_json`], so a new kind of credential needs
//! no recompile.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::path::{ClaimPath, Segment};
use crate::sd_jwt::Concealment;
use crate::vc::RESERVED_CLAIMS;

/// Templates shipped with the crate, as JSON.
pub const BUILTIN: [&str; 3] = [
    include_str!("../templates/transcript.json"),
    include_str!("../templates/employment.json"),
    include_str!("../templates/insurance-policy.json"),
];

/// Longest template JSON [`Template::from_json`] reads, in bytes.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

/// Whether the holder may withhold a claim (or a list's items). Not to be
/// confused with an SD-JWT [`crate::sd_jwt::Disclosure`], which is the
/// salted claim a holder reveals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Withholding {
    /// Always shown: never selectively disclosable.
    #[default]
    Always,
    /// Selectively disclosable: the holder chooses whether to show it.
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
    /// A list of records with `items` fields.
    List,
}

/// One field of a template: a claim of the credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Claim name in the credential.
    pub claim: String,
    /// Column the issuer reads it from; `None`: the claim name.
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
    #[serde(default, rename = "disclosure")]
    pub withholding: Withholding,
    /// For lists: whether each item is selectively disclosable.
    #[serde(default, rename = "item_disclosure")]
    pub item_withholding: Withholding,
    /// Smallest number allowed.
    #[serde(default)]
    pub min: Option<f64>,
    /// Largest number allowed.
    #[serde(default)]
    pub max: Option<f64>,
    /// Longest text allowed (default [`DEFAULT_MAX_LEN`]).
    #[serde(default)]
    pub max_len: Option<usize>,
    /// For enums: the values allowed.
    #[serde(default)]
    pub values: Vec<String>,
    /// For lists: the item fields.
    #[serde(default)]
    pub items: Vec<Field>,
}

/// Longest text a string field allows when it sets no `max_len`.
pub const DEFAULT_MAX_LEN: usize = 200;

fn yes() -> bool {
    true
}

impl Field {
    /// The item field of a list named `claim`.
    pub fn item(&self, claim: &str) -> Option<&Field> {
        self.items.iter().find(|f| f.claim == claim)
    }
}

/// A credential template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Template name.
    pub name: String,
    /// Accreditation kind an issuer needs to issue it.
    pub kind: String,
    /// The credential's `vct`.
    pub vct: String,
    /// Display title.
    pub title: String,
    /// Validity in days from issuance; `None`: no `exp`.
    #[serde(default)]
    pub valid_days: Option<u32>,
    /// Decoy digests per `_sd` array, at most.
    #[serde(default)]
    pub max_decoys: u8,
    /// The fields.
    pub fields: Vec<Field>,
}

/// Why a template is not a valid template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {name}: {why}")]
pub struct TemplateError {
    /// The template's name, or where its text came from when it did not
    /// parse.
    pub name: String,
    /// What is wrong.
    pub why: String,
}

impl Template {
    /// Parses and checks a template; `origin` names where the text came from
    /// (a file, `built-in`) for the error.
    ///
    /// # Errors
    /// [`TemplateError`] naming the problem: text longer than
    /// [`MAX_TEMPLATE_BYTES`], bad JSON, an unknown member, a reserved or
    /// repeated claim, a bad name or kind, a list without items.
    pub fn from_json(text: &str, origin: &str) -> Result<Template, TemplateError> {
        if text.len() > MAX_TEMPLATE_BYTES {
            return Err(TemplateError {
                name: origin.into(),
                why: format!(
                    "{} bytes, more than the {MAX_TEMPLATE_BYTES} allowed",
                    text.len()
                ),
            });
        }
        let t: Template = serde_json::from_str(text).map_err(|e| TemplateError {
            name: origin.into(),
            why: e.to_string(),
        })?;
        t.check().map_err(|why| TemplateError {
            name: t.name.clone(),
            why: why.to_string(),
        })?;
        Ok(t)
    }

    fn check(&self) -> Result<(), Invalid> {
        if !is_token(&self.name) || !is_token(&self.kind) {
            return Err(Invalid::NameOrKind);
        }
        if self.vct.is_empty() {
            return Err(Invalid::EmptyVct);
        }
        if self.fields.is_empty() {
            return Err(Invalid::NoFields);
        }
        let mut claims = HashSet::new();
        for f in &self.fields {
            check_field(f)?;
            if RESERVED_CLAIMS.contains(&f.claim.as_str()) {
                return Err(Invalid::Reserved(f.claim.clone()));
            }
            if !claims.insert(f.claim.as_str()) {
                return Err(Invalid::Repeated(f.claim.clone()));
            }
        }
        Ok(())
    }

    /// The top-level field named `claim`.
    pub fn field(&self, claim: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.claim == claim)
    }

    /// Which claims of `claims` the holder may withhold: each selective
    /// field present, and each item of a list whose items are selective.
    pub fn concealment(&self, claims: &Map<String, Value>) -> Concealment {
        let mut paths = Vec::new();
        for f in &self.fields {
            let Some(v) = claims.get(&f.claim) else {
                continue;
            };
            let top = ClaimPath::from_segments(vec![Segment::Key(f.claim.clone())]);
            if f.kind == FieldType::List && f.item_withholding == Withholding::Selective {
                let n = v.as_array().map_or(0, Vec::len);
                if f.withholding == Withholding::Selective {
                    paths.push(top.clone());
                }
                paths.extend((0..n).map(|i| top.child(Segment::Index(i))));
            } else if f.withholding == Withholding::Selective {
                paths.push(top);
            }
        }
        Concealment {
            paths,
            max_decoys: self.max_decoys,
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What [`Template::check`] finds wrong; the text of
/// [`TemplateError::why`].
#[derive(Debug, thiserror::Error)]
enum Invalid {
    #[error("name and kind must be letters, digits, '-' and '_'")]
    NameOrKind,
    #[error("vct is empty")]
    EmptyVct,
    #[error("no fields")]
    NoFields,
    #[error("claim {0:?} is reserved by SD-JWT VC")]
    Reserved(String),
    #[error("claim {0:?} appears twice")]
    Repeated(String),
    #[error("field {0:?}: bad claim name")]
    ClaimName(String),
    #[error("field {0}: an enum needs values")]
    EnumWithoutValues(String),
    #[error("field {0}: a list needs items")]
    ListWithoutItems(String),
    #[error("field {0}: lists cannot nest")]
    NestedList(String),
    #[error("field {list}: item field {item:?} appears twice")]
    RepeatedItem { list: String, item: String },
    #[error("field {0}: only lists have items")]
    ItemsOutsideList(String),
}

fn check_field(f: &Field) -> Result<(), Invalid> {
    if f.claim.is_empty() || f.claim.contains(['|', ';']) {
        return Err(Invalid::ClaimName(f.claim.clone()));
    }
    match f.kind {
        FieldType::Enum if f.values.is_empty() => Err(Invalid::EnumWithoutValues(f.claim.clone())),
        FieldType::List if f.items.is_empty() => Err(Invalid::ListWithoutItems(f.claim.clone())),
        FieldType::List => {
            let mut claims = HashSet::new();
            for i in &f.items {
                if i.kind == FieldType::List {
                    return Err(Invalid::NestedList(f.claim.clone()));
                }
                check_field(i)?;
                if !claims.insert(i.claim.as_str()) {
                    return Err(Invalid::RepeatedItem {
                        list: f.claim.clone(),
                        item: i.claim.clone(),
                    });
                }
            }
            Ok(())
        }
        _ if !f.items.is_empty() => Err(Invalid::ItemsOutsideList(f.claim.clone())),
        _ => Ok(()),
    }
}

/// A set of templates with distinct names and `vct`s: what a verifier
/// knows about kinds of credential.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Templates(Vec<Template>);

impl Templates {
    /// The templates shipped with the crate.
    ///
    /// # Errors
    /// Only if a shipped template is broken (a test guards against it).
    pub fn builtin() -> Result<Templates, TemplateError> {
        let all = BUILTIN
            .iter()
            .map(|t| Template::from_json(t, "built-in"))
            .collect::<Result<Vec<_>, _>>()?;
        Templates::new(all)
    }

    /// A set of templates.
    ///
    /// # Errors
    /// [`TemplateError`] when a template is not valid (what
    /// [`Template::from_json`] checks: the fields of a built value are
    /// public, so they are checked again here), or when two templates share
    /// a name or a `vct` (a `vct` must map to one kind).
    pub fn new(templates: Vec<Template>) -> Result<Templates, TemplateError> {
        for (i, t) in templates.iter().enumerate() {
            t.check().map_err(|why| TemplateError {
                name: t.name.clone(),
                why: why.to_string(),
            })?;
            if let Some(other) = templates[..i]
                .iter()
                .find(|o| o.name == t.name || o.vct == t.vct)
            {
                return Err(TemplateError {
                    name: t.name.clone(),
                    why: format!("shares its name or vct with template {}", other.name),
                });
            }
        }
        Ok(Templates(templates))
    }

    /// The template of a credential type.
    pub fn by_vct(&self, vct: &str) -> Option<&Template> {
        self.0.iter().find(|t| t.vct == vct)
    }

    /// The template named `name`.
    pub fn by_name(&self, name: &str) -> Option<&Template> {
        self.0.iter().find(|t| t.name == name)
    }

    /// All templates, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Template> {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a Templates {
    type Item = &'a Template;
    type IntoIter = std::slice::Iter<'a, Template>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<Templates> for Vec<Template> {
    fn from(t: Templates) -> Self {
        t.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn builtins_parse_and_map_vct_to_kind() {
        let all = Templates::builtin().unwrap();
        let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["transcript", "employment", "insurance-policy"]);
        let t = all.by_vct(crate::sample::TRANSCRIPT_VCT).unwrap();
        assert_eq!(t.kind, "transcript");
        assert_eq!(t.field("gpa").unwrap().label, "GPA");
        assert_eq!(
            t.field("courses").unwrap().item("grade").unwrap().label,
            "Grade"
        );
        assert!(all.by_vct("https://nope.example").is_none());
    }

    #[test]
    fn concealment_follows_withholding() {
        let t = Templates::builtin()
            .unwrap()
            .by_name("transcript")
            .unwrap()
            .clone();
        let claims = crate::sample::transcript_claims(1);
        // Six selective top-level claims, and each of the 12 courses.
        assert_eq!(t.concealment(&claims).paths.len(), 6 + 12);
    }

    #[test]
    fn bad_templates_are_refused_with_reasons() {
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
                r#"{"name":"x","kind":"x","vct":"v","title":"t","fields":[{"claim":"a","label":"l","type":"list","items":[{"claim":"b","label":"l","type":"string"},{"claim":"b","label":"m","type":"string"}]}]}"#,
                "appears twice",
            ),
            (
                r#"{"name":"x y","kind":"x","vct":"v","title":"t","fields":[{"claim":"a","label":"l","type":"string"}]}"#,
                "letters, digits",
            ),
        ] {
            let e = Template::from_json(bad, "test").unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        let huge = " ".repeat(MAX_TEMPLATE_BYTES + 1);
        assert!(Template::from_json(&huge, "big")
            .unwrap_err()
            .why
            .contains("more than"));
        let one = Templates::builtin().unwrap().by_name("employment").cloned();
        let two = vec![one.clone().unwrap(), one.unwrap()];
        assert!(Templates::new(two).is_err());
    }
}
