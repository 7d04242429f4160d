//! Reading a CSV of credential subjects against a template. Every row is
//! checked before anything is issued; each problem names the row and column.

use std::path::Path;

use serde_json::{Map, Value};
use vouch_core::DidKey;

use crate::template::{CsvField, CsvTemplate, Template, HOLDER_COLUMN};

/// One valid row.
#[derive(Debug, Clone)]
pub struct Row {
    /// 1-based data row (the header is row 0).
    pub number: usize,
    /// The holder's did:key.
    pub holder: DidKey,
    /// The claims.
    pub claims: Map<String, Value>,
}

/// One invalid row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based data row.
    pub number: usize,
    /// The column at fault, if one is.
    pub column: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(f, "row {}, column {c}: {}", self.number, self.message),
            None => write!(f, "row {}: {}", self.number, self.message),
        }
    }
}

/// Why the file as a whole cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Unreadable.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Not CSV, or a header problem.
    #[error("{path}: {why}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// The rows of `path`: the valid ones and the errors of the others.
///
/// # Errors
/// [`InputError`] when the file cannot be read or its header does not fit
/// the template.
pub fn read(path: &Path, template: &Template) -> Result<(Vec<Row>, Vec<RowError>), InputError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| InputError::Io {
        path: name.clone(),
        source,
    })?;
    parse(&bytes, template).map_err(|why| InputError::Format { path: name, why })
}

/// As [`read`], from bytes.
///
/// # Errors
/// A message when the header does not fit the template.
pub fn parse(bytes: &[u8], template: &Template) -> Result<(Vec<Row>, Vec<RowError>), String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("header: {e}"))?
        .iter()
        .map(str::to_owned)
        .collect();
    let wanted = template.columns();
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|c| {
            !headers.contains(c)
                && (c.as_str() == HOLDER_COLUMN
                    || template
                        .fields
                        .iter()
                        .any(|f| f.column() == c.as_str() && f.required))
        })
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "missing column(s) {} (template {} has: {})",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            template.name,
            wanted.join(", ")
        ));
    }
    if let Some(extra) = headers.iter().find(|h| !wanted.contains(h)) {
        return Err(format!(
            "unknown column {extra:?} (template {} has: {})",
            template.name,
            wanted.join(", ")
        ));
    }
    // Read the records in order, then check them on all cores.
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for (i, record) in reader.records().enumerate() {
        match record {
            Ok(r) => records.push((i + 1, r)),
            Err(e) => errors.push(RowError {
                number: i + 1,
                column: None,
                message: format!("not readable as CSV: {e}"),
            }),
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let per = records.len().div_ceil(threads).max(256);
    let checked: Vec<Vec<Result<Row, RowError>>> = std::thread::scope(|s| {
        let handles: Vec<_> = records
            .chunks(per)
            .map(|part| {
                let headers = &headers;
                s.spawn(move || check_rows(part, headers, template))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join())
            .collect::<Result<_, _>>()
    })
    .map_err(|_| "checking the rows failed unexpectedly".to_owned())?;
    let mut rows = Vec::with_capacity(records.len());
    for result in checked.into_iter().flatten() {
        match result {
            Ok(row) => rows.push(row),
            Err(e) => errors.push(e),
        }
    }
    errors.sort_by_key(|e| e.number);
    if rows.is_empty() && errors.is_empty() {
        return Err("no rows".into());
    }
    Ok((rows, errors))
}

/// Checks records against the template.
fn check_rows(
    records: &[(usize, csv::StringRecord)],
    headers: &[String],
    template: &Template,
) -> Vec<Result<Row, RowError>> {
    // Decoding a did:key checks the curve point; one holder often has several
    // credentials, so remember them.
    let mut holders: std::collections::HashMap<String, DidKey> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(records.len());
    for (number, record) in records {
        let number = *number;
        if record.len() != headers.len() {
            out.push(Err(RowError {
                number,
                column: None,
                message: format!(
                    "has {} cells; the header has {}",
                    record.len(),
                    headers.len()
                ),
            }));
            continue;
        }
        let cell = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .and_then(|i| record.get(i))
                .map(str::to_owned)
        };
        let text = cell(HOLDER_COLUMN).unwrap_or_default();
        let parsed = match holders.get(&text) {
            Some(d) => Ok(d.clone()),
            None => DidKey::parse(&text).inspect(|d| {
                holders.insert(text.clone(), d.clone());
            }),
        };
        let holder = match parsed {
            Ok(d) => d,
            Err(e) => {
                out.push(Err(RowError {
                    number,
                    column: Some(HOLDER_COLUMN.into()),
                    message: format!("{e} (give the DID from `vouch-wallet receive`)"),
                }));
                continue;
            }
        };
        out.push(
            template
                .claims(cell)
                .map(|claims| Row {
                    number,
                    holder,
                    claims,
                })
                .map_err(|(column, message)| RowError {
                    number,
                    column: Some(column),
                    message,
                }),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HOLDER: &str = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";

    #[test]
    fn rows_and_errors() {
        let t = crate::template::find("employment").unwrap();
        let csv = format!(
            "holder,employer,employee,title,department,start,end\n\
             {HOLDER},ACME,Ada,Engineer,R&D,2020-01-01,\n\
             {HOLDER},ACME,Bob,Engineer,,2020-13-01,\n\
             did:key:zBad,ACME,Cy,Engineer,,2020-01-01,\n\
             {HOLDER},ACME\n"
        );
        let (rows, errors) = parse(csv.as_bytes(), &t).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].number, 1);
        assert!(!rows[0].claims.contains_key("end"));
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            shown[0].starts_with("row 2, column start: \"2020-13-01\""),
            "{shown:?}"
        );
        assert!(shown[1].starts_with("row 3, column holder:"), "{shown:?}");
        assert!(shown[2].starts_with("row 4: has 2 cells"), "{shown:?}");
    }

    #[test]
    fn header_problems() {
        let t = crate::template::find("employment").unwrap();
        let e = parse(b"holder,employer\n", &t).unwrap_err();
        assert!(
            e.contains("missing column(s) employee, title, start"),
            "{e}"
        );
        let e = parse(
            b"holder,employer,employee,title,start,salary\nx,x,x,x,x,x\n",
            &t,
        )
        .unwrap_err();
        assert!(e.contains("unknown column \"salary\""), "{e}");
        assert!(parse(b"holder,employer,employee,title,start\n", &t)
            .unwrap_err()
            .contains("no rows"));
        assert!(parse(b"", &t).is_err());
        assert!(parse(&[0xff, 0xfe, 0x00], &t).is_err());
    }
}
