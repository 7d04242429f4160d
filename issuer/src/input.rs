//! Reading a CSV of credential subjects against a template. Every row is
//! checked before anything is issued; each problem names the row and column.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value};
use vouch_core::did::DidError;
use vouch_core::DidKey;

use crate::template::{
    CellError, ColumnError, CsvField, CsvTemplate, RowClaims, Template, HOLDER_COLUMN,
};

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

/// As [`read`], from bytes: every row read and checked (on every core), the
/// valid ones kept with their claims.
///
/// # Errors
/// [`CsvError`] when the header does not fit the template, or there are no
/// rows.
pub fn parse(bytes: &[u8], template: &Template) -> Result<(Vec<Row>, Vec<RowError>), CsvError> {
    let csv = CsvRows::new(bytes, template)?;
    let (mut rows, errors) = csv.check_all(true, |row| row, &crate::issuer::Quiet)?;
    rows.sort_unstable_by_key(|r| r.number);
    Ok((rows, errors))
}

/// What [`scan`] found: the numbers of the valid rows, in order, and the
/// errors of the others.
#[derive(Debug)]
pub struct Scan {
    /// The valid rows' numbers, ascending.
    pub valid: Vec<usize>,
    /// The invalid rows, by row number.
    pub errors: Vec<RowError>,
}

/// Checks every row of a CSV against `template` on every core, keeping
/// only which rows are valid: what a batch needs before it issues anything,
/// without holding every row's claims in memory ([`CsvRows`] reads them
/// again while signing). `progress` counts lines. [`CsvRows::scan`] does
/// the same and spares the signing a second check of the rows.
///
/// # Errors
/// [`CsvError`] when the header does not fit the template, or there are no
/// rows.
pub fn scan(
    bytes: &[u8],
    template: &Template,
    progress: &dyn crate::issuer::Progress,
) -> Result<Scan, CsvError> {
    CsvRows::new(bytes, template)?.scan(progress)
}

/// Records read per turn by one thread of [`CsvRows::check_all`] or a
/// batch's signers.
pub const CHUNK: usize = 256;

/// One record as read by a [`CsvRows`] ([`CsvRows::next_records`]): its
/// 1-based row number and the record (or why it cannot be read); for a row
/// that reader's own [`CsvRows::scan`] found valid, also the holder the
/// scan decoded, marked as that reader's. Made only by a reader, so no
/// other reader's record passes for one of its scanned rows.
#[derive(Debug)]
pub struct Record {
    number: usize,
    record: Result<csv::StringRecord, csv::Error>,
    /// The reader whose scan found this row valid, and the holder it
    /// decoded.
    scanned: Option<(ReaderId, DidKey)>,
}

impl Record {
    /// Its 1-based row number (the header is row 0).
    pub fn number(&self) -> usize {
        self.number
    }
}

/// Which [`CsvRows`] a [`Record`] was scanned by: a number no other reader
/// of this process has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReaderId(u64);

impl ReaderId {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// What a reader's [`CsvRows::scan`] keeps: the valid rows' numbers,
/// ascending, and each one's holder as the scan decoded it.
#[derive(Debug, Default)]
struct Scanned {
    numbers: Vec<usize>,
    holders: Vec<DidKey>,
}

/// A CSV whose header fits a template, read record by record by several
/// threads in turn ([`CsvRows::next_records`]), each checking its own
/// records ([`CsvRows::check`]).
pub struct CsvRows<'a> {
    template: &'a Template,
    headers: Vec<String>,
    /// Each template field's column, by position in `template.fields`.
    columns: Vec<Option<usize>>,
    holder: usize,
    /// Lines in the input: the records, roughly, for progress.
    lines: usize,
    /// The CSV.
    bytes: &'a [u8],
    /// The reader, the records read, and how many of `scanned`'s rows
    /// are behind it.
    reader: Mutex<(csv::Reader<&'a [u8]>, usize, usize)>,
    /// This reader, as its records name it.
    id: ReaderId,
    /// The rows this reader's [`CsvRows::scan`] found valid, and their
    /// holders: their cells are not checked again, nor their holders
    /// decoded ([`CsvRows::with_claims`]).
    scanned: OnceLock<Scanned>,
}

/// A reader of `bytes` at its first record (the header read), or why the
/// header cannot be read; and the header.
fn records(bytes: &[u8]) -> Result<(csv::Reader<&[u8]>, Vec<String>), CsvError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|source| CsvError::Header { source })?
        .iter()
        .map(str::to_owned)
        .collect();
    Ok((reader, headers))
}

impl std::fmt::Debug for CsvRows<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CsvRows({}, {:?})", self.template.name, self.headers)
    }
}

impl<'a> CsvRows<'a> {
    /// Reads and checks the header.
    ///
    /// # Errors
    /// [`CsvError`] when the header cannot be read, misses a required
    /// column or has one the template does not.
    pub fn new(bytes: &'a [u8], template: &'a Template) -> Result<Self, CsvError> {
        let (reader, headers) = records(bytes)?;
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
        let position = |name: &str| headers.iter().position(|h| h == name);
        let columns = template
            .fields
            .iter()
            .map(|f| position(f.column()))
            .collect();
        // Present: a missing holder column was refused above.
        let holder = position(HOLDER_COLUMN).unwrap_or_default();
        Ok(Self {
            template,
            columns,
            holder,
            headers,
            lines: bytes.iter().filter(|&&b| b == b'\n').count(),
            bytes,
            reader: Mutex::new((reader, 0, 0)),
            id: ReaderId::next(),
            scanned: OnceLock::new(),
        })
    }

    /// The next `n` records (fewer at the end, none after it), each with
    /// its row number, in file order across all callers.
    pub fn next_records(&self, n: usize) -> Vec<Record> {
        // A panic elsewhere cannot leave the reader half-updated: it only
        // ever advances by whole records.
        let mut guard = self
            .reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (reader, read, behind) = &mut *guard;
        let scanned = self.scanned.get();
        let mut out = Vec::with_capacity(n);
        let mut record = csv::StringRecord::new();
        while out.len() < n {
            *read += 1;
            let record = match reader.read_record(&mut record) {
                Ok(true) => {
                    // The next record made as large as this one, not grown
                    // to it.
                    let room =
                        csv::StringRecord::with_capacity(record.as_slice().len(), record.len());
                    Ok(std::mem::replace(&mut record, room))
                }
                Ok(false) => break,
                Err(e) => Err(e),
            };
            // Rows come in ascending order: the scanned row this one may
            // be is the first not behind the reader.
            let scanned = scanned.and_then(|s| {
                while s.numbers.get(*behind).is_some_and(|&v| v < *read) {
                    *behind += 1;
                }
                (s.numbers.get(*behind) == Some(read))
                    .then(|| (self.id, s.holders[*behind].clone()))
            });
            out.push(Record {
                number: *read,
                record,
                scanned,
            });
        }
        out
    }

    /// Checks one record against the template. `holders` remembers the
    /// holder DIDs this thread has decoded (decoding checks the curve
    /// point; one holder often has several credentials).
    ///
    /// # Errors
    /// [`RowError`] naming the row, and the column when one is at fault.
    pub fn check(
        &self,
        record: Record,
        holders: &mut HashMap<String, DidKey>,
    ) -> Result<Row, RowError> {
        self.check_record(record, holders, true)
    }

    /// Checks every row from the first, as [`scan`] does, and rewinds;
    /// remembers which rows are valid, and their holders, so that
    /// [`CsvRows::with_claims`] does not check their cells nor decode their
    /// holders again for the records this reader reads of them afterwards
    /// (the bytes cannot have changed: this reader borrows them).
    /// `progress` counts lines.
    ///
    /// # Errors
    /// [`CsvError`] when the header cannot be read again (it was read by
    /// [`CsvRows::new`]), or there are no rows.
    pub fn scan(&self, progress: &dyn crate::issuer::Progress) -> Result<Scan, CsvError> {
        self.rewind()?;
        let (mut rows, errors) = self.check_all(false, |row| (row.number, row.holder), progress)?;
        // One ascending run per checking thread (each takes its chunks in
        // file order): a stable sort merges the runs, moving each row
        // (and its holder) a few times, not log n times.
        rows.sort_by_key(|&(number, _)| number);
        let (numbers, holders): (Vec<usize>, Vec<DidKey>) = rows.into_iter().unzip();
        let valid = numbers.clone();
        // A second scan of the same bytes finds the same rows: the first
        // one's are kept. Set before the rewind, so every record read
        // after it is marked.
        let _ = self.scanned.set(Scanned { numbers, holders });
        self.rewind()?;
        Ok(Scan { valid, errors })
    }

    /// Reads again from the first record.
    fn rewind(&self) -> Result<(), CsvError> {
        let (reader, _) = records(self.bytes)?;
        *self
            .reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (reader, 0, 0);
        Ok(())
    }

    /// Checks one record as [`CsvRows::check`] does (the same errors),
    /// then hands `f` its holder and its claims borrowed from the cells
    /// ([`CsvTemplate::with_claims`]): nothing is built for the claims. A
    /// record this reader read of a row its own [`CsvRows::scan`] found
    /// valid has its cells checked and its holder decoded already: it is
    /// only read ([`CsvTemplate::with_scanned_claims`]; its cell count is
    /// still checked, as reading needs), with the holder the scan decoded.
    /// Any other record (of a row the scan refused, read before the scan,
    /// or read by another reader) is checked whole.
    ///
    /// # Errors
    /// [`RowError`] naming the row, and the column when one is at fault.
    pub fn with_claims<R>(
        &self,
        record: Record,
        holders: &mut HashMap<String, DidKey>,
        f: impl FnOnce(&DidKey, RowClaims<'_>) -> R,
    ) -> Result<R, RowError> {
        let number = record.number;
        match record.scanned {
            // Scanned by this reader: read, not checked again.
            Some((by, holder)) if by == self.id => {
                let record = record.record.map_err(|e| unreadable(number, e))?;
                self.cell_count(number, &record)?;
                let cell = |i| self.cell(&record, i);
                self.template
                    .with_scanned_claims(cell, |claims| f(&holder, claims))
            }
            _ => {
                let (record, holder) = self.read(number, record.record, holders)?;
                let cell = |i| self.cell(&record, i);
                self.template.with_claims(cell, |claims| f(&holder, claims))
            }
        }
        .map_err(|e| cell_error(number, e))
    }

    /// The record, readable, with its holder ([`CsvRows::holder`]): how
    /// every check of a record starts.
    fn read(
        &self,
        number: usize,
        record: Result<csv::StringRecord, csv::Error>,
        holders: &mut HashMap<String, DidKey>,
    ) -> Result<(csv::StringRecord, DidKey), RowError> {
        let record = record.map_err(|e| unreadable(number, e))?;
        let holder = self.holder(number, &record, holders)?;
        Ok((record, holder))
    }

    /// Refuses a record with another number of cells than the header.
    fn cell_count(&self, number: usize, record: &csv::StringRecord) -> Result<(), RowError> {
        if record.len() == self.headers.len() {
            return Ok(());
        }
        Err(RowError {
            number,
            column: None,
            problem: RowProblem::Cells {
                cells: record.len(),
                header: self.headers.len(),
            },
        })
    }

    /// The cell of the template's field `i` in `record`, if its column is
    /// there.
    fn cell<'r>(&self, record: &'r csv::StringRecord, i: usize) -> Option<&'r str> {
        self.columns[i].and_then(|c| record.get(c))
    }

    /// The record's holder, after checking its number of cells: decoded
    /// once per thread (`holders`).
    fn holder(
        &self,
        number: usize,
        record: &csv::StringRecord,
        holders: &mut HashMap<String, DidKey>,
    ) -> Result<DidKey, RowError> {
        self.cell_count(number, record)?;
        let text = record.get(self.holder).unwrap_or_default();
        if let Some(d) = holders.get(text) {
            return Ok(d.clone());
        }
        let d = DidKey::parse(text).map_err(|e| RowError {
            number,
            column: Some(HOLDER_COLUMN.into()),
            problem: RowProblem::Holder(e),
        })?;
        holders.insert(text.to_owned(), d.clone());
        Ok(d)
    }

    /// As [`CsvRows::check`]; without `build`, the row's claims are left
    /// empty and only checked (the same errors, nothing allocated for
    /// them).
    fn check_record(
        &self,
        Record { number, record, .. }: Record,
        holders: &mut HashMap<String, DidKey>,
        build: bool,
    ) -> Result<Row, RowError> {
        let (record, holder) = self.read(number, record, holders)?;
        let cell = |i: usize| self.cell(&record, i);
        let claims = if build {
            self.template.claims_at(cell)
        } else {
            self.template.check_at(cell).map(|()| Map::new())
        };
        let claims = claims.map_err(|e| cell_error(number, e))?;
        Ok(Row {
            number,
            holder,
            claims,
        })
    }

    /// Reads and checks every record on every core; keeps `keep(row)` of
    /// each valid row, in no particular order, and the errors by row
    /// number. `progress` counts records against the number of lines.
    fn check_all<T: Send>(
        &self,
        build: bool,
        keep: impl Fn(Row) -> T + Sync,
        progress: &dyn crate::issuer::Progress,
    ) -> Result<(Vec<T>, Vec<RowError>), CsvError> {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        progress.start("checking", self.lines as u64);
        let keep = &keep;
        let parts: Vec<(Vec<T>, Vec<RowError>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(move || {
                        let mut holders = HashMap::new();
                        let (mut rows, mut errors) = (Vec::new(), Vec::new());
                        loop {
                            let records = self.next_records(CHUNK);
                            if records.is_empty() {
                                break;
                            }
                            for record in records {
                                match self.check_record(record, &mut holders, build) {
                                    Ok(row) => rows.push(keep(row)),
                                    Err(e) => errors.push(e),
                                }
                                progress.step();
                            }
                        }
                        (rows, errors)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join())
                .collect::<Result<_, _>>()
        })
        .map_err(|_| CsvError::Panicked)?;
        progress.finish();
        let (mut rows, mut errors) = (Vec::new(), Vec::new());
        for (r, e) in parts {
            rows.extend(r);
            errors.extend(e);
        }
        errors.sort_by_key(|e| e.number);
        if rows.is_empty() && errors.is_empty() {
            return Err(CsvError::NoRows);
        }
        Ok((rows, errors))
    }
}

/// Row `number`'s error for a record the CSV reader could not read.
fn unreadable(number: usize, e: csv::Error) -> RowError {
    RowError {
        number,
        column: None,
        problem: RowProblem::Unreadable(e),
    }
}

/// Row `number`'s error for a cell the template refused.
fn cell_error(number: usize, ColumnError { column, source }: ColumnError) -> RowError {
    RowError {
        number,
        column: Some(column),
        problem: RowProblem::Cell(source),
    }
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
        // Checking without building the claims finds the same.
        let scanned = scan(csv.as_bytes(), &t, &crate::issuer::Quiet).unwrap();
        assert_eq!(scanned.valid, [1]);
        let again: Vec<String> = scanned.errors.iter().map(ToString::to_string).collect();
        assert_eq!(again, shown);
        // Reading the claims borrowed from the cells finds the same.
        assert_eq!(borrowed_errors(csv.as_bytes(), &t), shown);
    }

    /// The errors of [`CsvRows::with_claims`] over every record.
    fn borrowed_errors(bytes: &[u8], t: &Template) -> Vec<String> {
        let rows = CsvRows::new(bytes, t).unwrap();
        let mut holders = HashMap::new();
        rows.next_records(100)
            .into_iter()
            .filter_map(|r| rows.with_claims(r, &mut holders, |_, _| ()).err())
            .map(|e| e.to_string())
            .collect()
    }

    /// A reader's own scan spares the signing the cell checks of the rows
    /// it found valid, and only those: the claims are the same, a row it
    /// refused is checked (and refused) again, and a reader that did not
    /// scan checks every row.
    #[test]
    fn only_rows_a_readers_own_scan_found_valid_skip_the_second_check() {
        let t = crate::template::find("transcript").unwrap();
        let courses = "CS1|Intro|6|A|2024-S1; CS2|Data|6|B|2025-S1";
        let csv = format!(
            "holder,institution,student_name,student_id,programme,degree,award_date,gpa,courses\n\
             {HOLDER},Uni,Ada,S1,CS,BSc,2025-07-15,3.50,\"{courses}\"\n\
             {HOLDER},Uni,Bob,S2,CS,BSc,2025-07-15,3.50,\"CS1|Intro|6|A++|2024-S1\"\n\
             {HOLDER},Uni,Cy,S3,CS,BSc,2025-07-15,3.75,\"{courses}\"\n"
        );
        let claims = |rows: &CsvRows<'_>| -> Vec<Result<String, String>> {
            let mut holders = HashMap::new();
            rows.next_records(10)
                .into_iter()
                .map(|r| {
                    rows.with_claims(r, &mut holders, |h, c| {
                        format!("{} {:?} {:?}", h.as_str(), c.claims, c.shape)
                    })
                    .map_err(|e| e.to_string())
                })
                .collect()
        };
        let unscanned = CsvRows::new(csv.as_bytes(), &t).unwrap();
        let checked = claims(&unscanned);
        let scanned = CsvRows::new(csv.as_bytes(), &t).unwrap();
        let scan = scanned.scan(&crate::issuer::Quiet).unwrap();
        assert_eq!(scan.valid, [1, 3]);
        assert_eq!(scan.errors.len(), 1);
        // Rewound after the scan: all three rows are read again.
        let read = claims(&scanned);
        assert_eq!(read, checked);
        assert!(read[0].as_ref().unwrap().contains("Intro"));
        assert!(read[1]
            .as_ref()
            .unwrap_err()
            .starts_with("row 2, column courses: item 1 field grade: \"A++\""));
        assert_eq!(scanned.scanned.get().unwrap().numbers, [1, 3]);
        assert_eq!(scanned.scanned.get().unwrap().holders.len(), 2);
    }

    /// A record another reader read is checked whole by a reader that has
    /// scanned, even where that reader's own row of the same number was
    /// valid: the skip is tied to the reader that scanned, not to the row
    /// number.
    #[test]
    fn another_readers_record_is_checked_by_a_reader_that_scanned() {
        let t = crate::template::find("transcript").unwrap();
        let head =
            "holder,institution,student_name,student_id,programme,degree,award_date,gpa,courses\n";
        let row = |name: &str, grade: &str| {
            format!(
                "{HOLDER},Uni,{name},S1,CS,BSc,2025-07-15,3.50,\"CS1|Intro|6|{grade}|2024-S1\"\n"
            )
        };
        let good = format!("{head}{}{}", row("Ada", "A"), row("Bob", "B"));
        let bad = format!("{head}{}{}", row("Ada", "A"), row("Bob", "A++"));
        let scanned = CsvRows::new(good.as_bytes(), &t).unwrap();
        assert_eq!(scanned.scan(&crate::issuer::Quiet).unwrap().valid, [1, 2]);
        let other = CsvRows::new(bad.as_bytes(), &t).unwrap();
        let mut holders = HashMap::new();
        let results: Vec<Result<(), String>> = other
            .next_records(10)
            .into_iter()
            .map(|r| {
                scanned
                    .with_claims(r, &mut holders, |_, _| ())
                    .map_err(|e| e.to_string())
            })
            .collect();
        assert_eq!(results[0], Ok(()));
        assert!(results[1]
            .as_ref()
            .unwrap_err()
            .starts_with("row 2, column courses: item 1 field grade: \"A++\""));
        // Another reader that scanned its own rows valid, under another
        // column order: its records are checked through this reader's
        // columns (where its gpa sits under award_date), not skipped.
        let swapped = format!(
            "holder,institution,student_name,student_id,programme,degree,gpa,award_date,courses\n\
             {HOLDER},Uni,Ada,S1,CS,BSc,3.50,2025-07-15,\"CS1|Intro|6|A|2024-S1\"\n"
        );
        let scanned_too = CsvRows::new(swapped.as_bytes(), &t).unwrap();
        assert_eq!(scanned_too.scan(&crate::issuer::Quiet).unwrap().valid, [1]);
        for r in scanned_too.next_records(10) {
            assert!(r.scanned.is_some());
            let err = scanned
                .with_claims(r, &mut holders, |_, _| ())
                .unwrap_err()
                .to_string();
            assert!(err.contains("award_date"), "{err}");
        }
        // Its own records of the same rows are read with the holder its
        // scan decoded (none decoded again into the holder cache).
        let mut decoded = HashMap::new();
        let own: Vec<String> = scanned
            .next_records(10)
            .into_iter()
            .map(|r| {
                assert!(r.scanned.is_some());
                scanned
                    .with_claims(r, &mut decoded, |h, _| h.as_str().to_owned())
                    .unwrap()
            })
            .collect();
        assert_eq!(own, [HOLDER, HOLDER]);
        assert!(decoded.is_empty(), "the holder was decoded again");
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
        assert_eq!(borrowed_errors(&bytes, &t), [errors[0].to_string()]);
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
