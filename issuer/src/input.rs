//! Reading a CSV of credential subjects against a template. Every row is
//! checked before anything is issued; each problem names the row and column.

use std::path::Path;

use serde_json::{Map, Value};
use vouch_core::did::DidError;
use vouch_core::DidKey;

use crate::template::{CellError, ColumnError, CsvField, CsvTemplate, Template, HOLDER_COLUMN};

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

/// One invalid row: `row 17, column grade: …`.
#[derive(Debug)]
pub struct RowError {
    /// 1-based data row.
    pub number: usize,
    /// The column at fault, if one is.
    pub column: Option<String>,
    /// What is wrong.
    pub problem: RowProblem,
}

/// What is wrong with a row.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RowProblem {
    /// The CSV reader could not read the record.
    #[error("not readable as CSV: {0}")]
    Unreadable(#[source] csv::Error),
    /// Another number of cells than the header.
    #[error("has {cells} cells; the header has {header}")]
    Cells {
        /// Cells in the row.
        cells: usize,
        /// Cells in the header.
        header: usize,
    },
    /// The holder cell is not a did:key.
    #[error("{0} (give the DID from `vouch-wallet receive`)")]
    Holder(#[source] DidError),
    /// A cell does not fit its field.
    #[error(transparent)]
    Cell(#[from] CellError),
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(f, "row {}, column {c}: {}", self.number, self.problem),
            None => write!(f, "row {}: {}", self.number, self.problem),
        }
    }
}

/// Why a CSV as a whole does not fit a template.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsvError {
    /// The header cannot be read.
    #[error("header: {source}")]
    Header {
        /// Cause.
        source: csv::Error,
    },
    /// Required columns are missing.
    #[error(
        "missing column(s) {} (template {template} has: {})",
        missing.join(", "),
        columns.join(", ")
    )]
    MissingColumns {
        /// The missing columns.
        missing: Vec<String>,
        /// The template's name.
        template: String,
        /// The template's columns.
        columns: Vec<String>,
    },
    /// A column the template does not have.
    #[error("unknown column {column:?} (template {template} has: {})", columns.join(", "))]
    UnknownColumn {
        /// The column.
        column: String,
        /// The template's name.
        template: String,
        /// The template's columns.
        columns: Vec<String>,
    },
    /// A header and no data rows.
    #[error("no rows")]
    NoRows,
    /// A row-checking thread panicked (a bug, not bad input).
    #[error("checking the rows failed unexpectedly")]
    Panicked,
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
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        source: CsvError,
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
    parse(&bytes, template).map_err(|source| InputError::Format { path: name, source })
}

/// As [`read`], from bytes.
///
/// # Errors
/// [`CsvError`] when the header does not fit the template, or there are no
/// rows.
pub fn parse(bytes: &[u8], template: &Template) -> Result<(Vec<Row>, Vec<RowError>), CsvError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|source| CsvError::Header { source })?
        .iter()
        .map(str::to_owned)
        .collect();
    let wanted = template.columns();
    let missing: Vec<String> = wanted
        .iter()
        .filter(|c| {
            !headers.contains(c)
                && (c.as_str() == HOLDER_COLUMN
                    || template
                        .fields
                        .iter()
                        .any(|f| f.column() == c.as_str() && f.required))
        })
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(CsvError::MissingColumns {
            missing,
            template: template.name.clone(),
            columns: wanted,
        });
    }
    if let Some(extra) = headers.iter().find(|h| !wanted.contains(h)) {
        return Err(CsvError::UnknownColumn {
            column: extra.chars().take(60).collect(),
            template: template.name.clone(),
            columns: wanted,
        });
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
                problem: RowProblem::Unreadable(e),
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
    .map_err(|_| CsvError::Panicked)?;
    let mut rows = Vec::with_capacity(records.len());
    for result in checked.into_iter().flatten() {
        match result {
            Ok(row) => rows.push(row),
            Err(e) => errors.push(e),
        }
    }
    errors.sort_by_key(|e| e.number);
    if rows.is_empty() && errors.is_empty() {
        return Err(CsvError::NoRows);
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
                problem: RowProblem::Cells {
                    cells: record.len(),
                    header: headers.len(),
                },
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
                    problem: RowProblem::Holder(e),
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
                .map_err(|ColumnError { column, source }| RowError {
                    number,
                    column: Some(column),
                    problem: RowProblem::Cell(source),
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
        // Each problem is typed, and names the value and the rule.
        assert_eq!(
            shown[0],
            "row 2, column start: \"2020-13-01\" is not a date (expected YYYY-MM-DD)"
        );
        assert!(matches!(
            errors[0].problem,
            RowProblem::Cell(CellError::NotDate { .. })
        ));
        assert!(matches!(errors[1].problem, RowProblem::Holder(_)));
        assert!(
            shown[1].ends_with("(give the DID from `vouch-wallet receive`)"),
            "{shown:?}"
        );
        assert_eq!(shown[2], "row 4: has 2 cells; the header has 7");
    }

    #[test]
    fn an_unreadable_record_is_a_row_error() {
        let t = crate::template::find("employment").unwrap();
        let csv = format!(
            "holder,employer,employee,title,department,start,end\n\
             {HOLDER},ACME,Ada,Engineer,R&D,2020-01-01,\n\
             {HOLDER},AC\u{ff}ME,Bob,Engineer,,2020-01-01,\n"
        );
        let mut bytes = csv.into_bytes();
        // Not UTF-8 in row 2.
        let at = bytes
            .windows(2)
            .position(|w| w == "\u{ff}".as_bytes())
            .unwrap();
        bytes.splice(at..at + 2, [0xff]);
        let (rows, errors) = parse(&bytes, &t).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(errors.len(), 1);
        assert!(matches!(errors[0].problem, RowProblem::Unreadable(_)));
        assert!(
            errors[0]
                .to_string()
                .starts_with("row 2: not readable as CSV:"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn header_problems() {
        let t = crate::template::find("employment").unwrap();
        let e = parse(b"holder,employer\n", &t).unwrap_err().to_string();
        assert!(
            e.contains("missing column(s) employee, title, start"),
            "{e}"
        );
        let e = parse(
            b"holder,employer,employee,title,start,salary\nx,x,x,x,x,x\n",
            &t,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown column \"salary\""), "{e}");
        assert!(matches!(
            parse(b"holder,employer,employee,title,start\n", &t),
            Err(CsvError::NoRows)
        ));
        let e = parse(b"holder,employer\n", &t).unwrap_err().to_string();
        assert_eq!(
            e,
            "missing column(s) employee, title, start (template employment has: holder, \
             employer, employee, title, department, start, end)"
        );
        assert!(parse(b"", &t).is_err());
        assert!(parse(&[0xff, 0xfe, 0x00], &t).is_err());
    }
}
