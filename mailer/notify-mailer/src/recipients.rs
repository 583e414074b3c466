//! The recipients file: a plain list (one address per line; blank lines and lines starting with
//! `#` are skipped) or CSV with a header row that has an `email` column, read by the csv
//! crate's rules (quoted fields may span lines; `#` starts a comment only at the start of a
//! record, so a `#` line inside quotes is content).
//!
//! The file is never held in memory. [`check`] validates it in one streaming pass that keeps a
//! bit per record (send it or not) and a 16-byte key per distinct address (to drop repeats);
//! [`RecipientsFile::rows`] reads it again, through the same open file, when sending and when
//! writing the resume and failures files.

use std::collections::HashSet;
use std::fs::File;
use std::hash::{DefaultHasher, Hasher};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use csv::StringRecord;

/// How many invalid rows and repeated addresses are kept for the report (the rest are counted).
pub const REPORT_LIMIT: usize = 50;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Plain list or CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One address per line.
    Plain,
    /// CSV with a header row.
    Csv,
}

/// The columns every row has: the header names (lowercased, for templates), and which one
/// holds the address. A plain list has one column, `email`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// Lowercased header names, in file order.
    pub names: Vec<String>,
    /// The index of the `email` column.
    pub email: usize,
}

impl Columns {
    /// The index of column `name` (already lowercased).
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// Where a row starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pos {
    /// Byte offset in the file.
    pub byte: u64,
    /// 1-based line. For CSV this is where the reader was when it started the record, which
    /// can be a comment or blank line above it: [`RecipientsFile::line_of`] gives the exact one.
    pub line: u64,
}

/// One record as read.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// The fields, trimmed. A plain list has one.
    pub fields: StringRecord,
    /// Where it starts.
    pub pos: Pos,
    /// The record is not UTF-8 text (its fields are then empty).
    pub bad_utf8: bool,
}

impl Row {
    /// The address field (empty when missing).
    pub fn email<'a>(&'a self, columns: &Columns) -> &'a str {
        self.fields.get(columns.email).unwrap_or("")
    }
}

/// An open recipients file. It stays open for the whole run, so a re-read sees the file that
/// was checked even when an editor replaces it by renaming a new one into place; a file
/// changed in place is noticed (size or modification time) and refused.
#[derive(Debug)]
pub struct RecipientsFile {
    path: PathBuf,
    file: Arc<File>,
    stamp: (u64, Option<SystemTime>),
    format: Format,
    header: Option<StringRecord>,
    columns: Columns,
}

impl RecipientsFile {
    /// Opens `path`, tells its format and reads the CSV header row. Errors are whole
    /// sentences that start with the path.
    pub fn open(path: &Path) -> Result<RecipientsFile, String> {
        let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let file = File::open(path)
            .map_err(|e| at(&format_args!("cannot read the recipients file: {e}")))?;
        let meta = file.metadata().map_err(|e| at(&e))?;
        if meta.is_dir() {
            return Err(at(&"is a directory, not a recipients file"));
        }
        let stamp = (meta.len(), meta.modified().ok());
        let file = Arc::new(file);
        let first = first_significant_line(&file).map_err(|e| at(&e))?;
        let Some(first) = first else {
            return Err(at(&"the recipients file lists no addresses"));
        };
        let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
            || first.contains(',')
            || first.trim_matches('"').trim().eq_ignore_ascii_case("email");
        let mut this = RecipientsFile {
            path: path.to_owned(),
            file,
            stamp,
            format: Format::Plain,
            header: None,
            columns: Columns { names: vec!["email".into()], email: 0 },
        };
        if is_csv {
            let mut reader = csv_reader(At::new(this.file.clone(), 0, false));
            let header = reader
                .headers()
                .map_err(|e| at(&format_args!("not a valid CSV file: {}", csv_error(&e))))?
                .clone();
            let names: Vec<String> = header.iter().map(str::to_lowercase).collect();
            for (i, name) in names.iter().enumerate() {
                if !name.is_empty() && names[..i].contains(name) {
                    return Err(at(&format_args!(
                        "the column `{name}` appears twice in the header row"
                    )));
                }
            }
            let email = names.iter().position(|h| h == "email").ok_or_else(|| {
                at(&format_args!(
                    "a CSV recipients file needs an `email` column; the header row has: {}",
                    header.iter().collect::<Vec<_>>().join(", ")
                ))
            })?;
            this.format = Format::Csv;
            this.header = Some(header);
            this.columns = Columns { names, email };
        }
        Ok(this)
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Plain list or CSV.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The header row as written (trimmed), for CSV.
    pub fn header(&self) -> Option<&StringRecord> {
        self.header.as_ref()
    }

    /// The columns.
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// A reader over every record from the start, in file order (blank records skipped).
    /// `digest` hashes every byte read (for the campaign fingerprint). Fails when the file has
    /// changed since it was opened.
    pub fn rows(&self, digest: bool) -> io::Result<Rows> {
        let meta = self.file.metadata()?;
        if (meta.len(), meta.modified().ok()) != self.stamp {
            return Err(io::Error::other(format!(
                "{}: the recipients file changed since it was checked",
                self.path.display()
            )));
        }
        let inner = match self.format {
            Format::Csv => {
                let mut reader = csv_reader(At::new(self.file.clone(), 0, digest));
                // The header was checked at open; reading it again positions the reader.
                reader.headers().map_err(|e| io::Error::other(csv_error(&e)))?;
                Inner::Csv { reader, raw: csv::ByteRecord::new() }
            }
            Format::Plain => Inner::Plain {
                reader: BufReader::with_capacity(64 * 1024, At::new(self.file.clone(), 0, digest)),
                byte: 0,
                line: 0,
                buf: Vec::new(),
            },
        };
        Ok(Rows { inner })
    }

    /// The rows `checked` kept (the recipients), with their numbers, in file order.
    pub fn recipients<'a>(&self, checked: &'a Checked) -> io::Result<Recipients<'a>> {
        Ok(Recipients { rows: self.rows(false)?, kept: &checked.kept, record: 0, index: 0 })
    }

    /// The exact line a row starts on. The csv crate reports where it started reading the
    /// record, before the comment and blank lines it skipped; this reads from there past
    /// them. Cheap enough for error messages, not meant for every row.
    pub fn line_of(&self, pos: Pos) -> u64 {
        self.exact(pos).line
    }

    /// Where the record that the csv crate says starts at `pos` really starts.
    fn exact(&self, pos: Pos) -> Pos {
        if self.format == Format::Plain {
            return pos;
        }
        let mut at = pos;
        let mut in_comment = false;
        let mut buf = [0u8; 4096];
        loop {
            let n = match self.file.read_at(&mut buf, at.byte) {
                Ok(0) | Err(_) => return at,
                Ok(n) => n,
            };
            for &b in &buf[..n] {
                match (in_comment, b) {
                    (_, b'\n') => {
                        in_comment = false;
                        at.line += 1;
                    }
                    (true, _) | (false, b'\r') => {}
                    (false, b'#') => in_comment = true,
                    (false, _) => return at,
                }
                at.byte += 1;
            }
        }
    }

    /// Whether the record at `pos` opens a quoted field that is never closed: the csv crate
    /// then silently takes everything to the end of the file as that one field. Only the
    /// last record can do that, so only it is checked.
    pub fn ends_in_open_quote(&self, pos: Pos) -> io::Result<bool> {
        if self.format == Format::Plain {
            return Ok(false);
        }
        let mut quotes = QuoteState::FieldStart;
        let mut buf = vec![0u8; 64 * 1024];
        let mut offset = self.exact(pos).byte;
        loop {
            let n = self.file.read_at(&mut buf, offset)?;
            if n == 0 {
                return Ok(matches!(quotes, QuoteState::Quoted | QuoteState::QuoteInQuoted));
            }
            for &b in &buf[..n] {
                quotes = quotes.next(b);
            }
            offset += n as u64;
        }
    }
}

/// The csv crate's quoting rules, just enough to tell whether a record ends inside quotes: a
/// quote opens a quoted field only as the field's first byte; inside, `""` is a quote and a
/// lone `"` closes the field.
#[derive(Debug, Clone, Copy)]
enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

impl QuoteState {
    fn next(self, b: u8) -> QuoteState {
        use QuoteState::*;
        match (self, b) {
            (FieldStart, b'"') => Quoted,
            (FieldStart | Unquoted, b',' | b'\n' | b'\r') => FieldStart,
            (FieldStart | Unquoted, _) => Unquoted,
            (Quoted, b'"') => QuoteInQuoted,
            (Quoted, _) => Quoted,
            (QuoteInQuoted, b'"') => Quoted,
            (QuoteInQuoted, b',' | b'\n' | b'\r') => FieldStart,
            (QuoteInQuoted, _) => Unquoted,
        }
    }
}

fn csv_reader<R: Read>(input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .flexible(true)
        .trim(csv::Trim::All)
        .buffer_capacity(64 * 1024)
        .from_reader(input)
}

fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "the header row is not UTF-8 text".into(),
        _ => e.to_string(),
    }
}

/// The first line that is neither blank nor a `#` comment, BOM removed: enough to tell a
/// plain list from CSV.
fn first_significant_line(file: &Arc<File>) -> io::Result<Option<String>> {
    let mut reader = BufReader::new(At::new(file.clone(), 0, false));
    skip_bom(&mut reader)?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if !text.is_empty() && !text.starts_with('#') {
            return Ok(Some(text.to_owned()));
        }
    }
}

/// Consumes a UTF-8 byte order mark at the start of `reader`, if there is one; returns its
/// length.
pub fn skip_bom(reader: &mut impl BufRead) -> io::Result<u64> {
    let buf = reader.fill_buf()?;
    if buf.starts_with(BOM) {
        reader.consume(BOM.len());
        return Ok(BOM.len() as u64);
    }
    Ok(0)
}

/// Reads a file from an offset of its own with `pread`, so several readers of one open file
/// never move each other's position; optionally hashing what it reads.
struct At {
    file: Arc<File>,
    offset: u64,
    digest: Option<ring::digest::Context>,
}

impl At {
    fn new(file: Arc<File>, offset: u64, digest: bool) -> At {
        At {
            file,
            offset,
            digest: digest.then(|| ring::digest::Context::new(&ring::digest::SHA256)),
        }
    }
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        if let Some(digest) = &mut self.digest {
            digest.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// The records of a [`RecipientsFile`], in order.
pub struct Rows {
    inner: Inner,
}

enum Inner {
    Plain { reader: BufReader<At>, byte: u64, line: u64, buf: Vec<u8> },
    Csv { reader: csv::Reader<At>, raw: csv::ByteRecord },
}

impl Rows {
    /// Reads the next record into `row`; `false` at the end of the file. Blank records (an
    /// empty or whitespace-only line) are skipped, in both formats.
    pub fn next_into(&mut self, row: &mut Row) -> io::Result<bool> {
        match &mut self.inner {
            Inner::Plain { reader, byte, line, buf } => loop {
                if *line == 0 {
                    *byte += skip_bom(reader)?;
                }
                buf.clear();
                let n = reader.read_until(b'\n', buf)?;
                if n == 0 {
                    return Ok(false);
                }
                let start = Pos { byte: *byte, line: *line + 1 };
                *byte += n as u64;
                *line += 1;
                row.fields.clear();
                row.pos = start;
                match std::str::from_utf8(buf) {
                    Ok(text) => {
                        let value = text.trim();
                        if value.is_empty() || value.starts_with('#') {
                            continue;
                        }
                        row.bad_utf8 = false;
                        row.fields.push_field(value);
                    }
                    Err(_) => row.bad_utf8 = true,
                }
                return Ok(true);
            },
            Inner::Csv { reader, raw } => loop {
                let more = reader.read_byte_record(raw).map_err(|e| match e.into_kind() {
                    csv::ErrorKind::Io(e) => e,
                    other => io::Error::other(format!("{other:?}")),
                })?;
                if !more {
                    return Ok(false);
                }
                if raw.len() == 1 && raw[0].is_empty() {
                    continue;
                }
                let pos = raw
                    .position()
                    .map_or(Pos::default(), |p| Pos { byte: p.byte(), line: p.line() });
                row.pos = pos;
                row.fields.clear();
                row.bad_utf8 = false;
                for field in raw.iter() {
                    match std::str::from_utf8(field) {
                        Ok(text) => row.fields.push_field(text),
                        Err(_) => {
                            row.fields.clear();
                            row.bad_utf8 = true;
                            break;
                        }
                    }
                }
                return Ok(true);
            },
        }
    }

    /// Reads the next record into a new [`Row`].
    #[cfg(test)]
    pub fn next_row(&mut self) -> io::Result<Option<Row>> {
        let mut row = Row::default();
        Ok(self.next_into(&mut row)?.then_some(row))
    }

    /// The SHA-256 of every byte read so far, when the reader was made with `digest`.
    pub fn digest(self) -> Option<[u8; 32]> {
        let at = match self.inner {
            Inner::Plain { reader, .. } => reader.into_inner(),
            Inner::Csv { reader, .. } => reader.into_inner(),
        };
        let digest = at.digest?.finish();
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Some(out)
    }
}

/// The recipients of a file: its rows that the check kept, numbered 0.. in file order (the
/// numbers the journal records).
pub struct Recipients<'a> {
    rows: Rows,
    kept: &'a Bitmap,
    record: u64,
    index: usize,
}

impl Recipients<'_> {
    /// Reads the next recipient into `row` and returns its number; `None` at the end.
    pub fn next_into(&mut self, row: &mut Row) -> io::Result<Option<usize>> {
        while self.rows.next_into(row)? {
            let kept = self.kept.get(self.record);
            self.record += 1;
            if kept {
                self.index += 1;
                return Ok(Some(self.index - 1));
            }
        }
        Ok(None)
    }

    /// How many recipients were read.
    pub fn count(&self) -> usize {
        self.index
    }
}

/// A row that cannot be sent to, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The exact line it starts on.
    pub line: u64,
    /// Its address field, as written (trimmed).
    pub value: String,
    /// Why it was refused.
    pub reason: String,
}

/// One bit per record: whether it is sent.
#[derive(Debug, Clone, Default)]
pub struct Bitmap {
    words: Vec<u64>,
    len: u64,
}

impl Bitmap {
    fn push(&mut self, bit: bool) {
        if self.len.is_multiple_of(64) {
            self.words.push(0);
        }
        if bit {
            self.words[(self.len / 64) as usize] |= 1 << (self.len % 64);
        }
        self.len += 1;
    }

    /// Bit `i` (false past the end).
    pub fn get(&self, i: u64) -> bool {
        self.words.get((i / 64) as usize).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// The result of the validation pass.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Records read (blank records not counted).
    pub records: u64,
    /// Per record: it is a valid address seen for the first time, to be sent.
    pub kept: Bitmap,
    /// How many are kept: the recipients of the run, numbered 0.. in file order.
    pub count: usize,
    /// The first [`REPORT_LIMIT`] invalid rows.
    pub invalid: Vec<Invalid>,
    /// All invalid rows.
    pub invalid_total: u64,
    /// The first [`REPORT_LIMIT`] repeated addresses, as (line, address).
    pub duplicates: Vec<(u64, String)>,
    /// All repeated addresses.
    pub duplicates_total: u64,
    /// SHA-256 of the file's bytes.
    pub digest: [u8; 32],
}

/// Validates every record of `file` in one pass: the address (as the mailer will take it),
/// the number of fields, the UTF-8, and that the columns in `single_line` (those the subject
/// and headers use) hold no line break or other control character. Repeated addresses
/// (compared ignoring case) are kept once. Returns an error only for a file that cannot be
/// read; bad rows are in the result, with their lines.
pub fn check(file: &RecipientsFile, single_line: &[usize]) -> Result<Checked, String> {
    let io_error =
        |e: io::Error| format!("{}: cannot read the recipients file: {e}", file.path().display());
    let columns = file.columns();
    let mut rows = file.rows(true).map_err(io_error)?;
    let mut row = Row::default();
    let mut checked = Checked::default();
    let mut seen: HashSet<u128> = HashSet::new();
    let mut last = None;
    while rows.next_into(&mut row).map_err(io_error)? {
        last = Some(row.pos);
        checked.records += 1;
        let problem = problem(&row, columns, single_line);
        let email = row.email(columns);
        let kept = match problem {
            Some(reason) => {
                checked.invalid_total += 1;
                if checked.invalid.len() < REPORT_LIMIT {
                    let line = file.line_of(row.pos);
                    checked.invalid.push(Invalid { line, value: email.to_owned(), reason });
                }
                false
            }
            None if !seen.insert(address_key(email)) => {
                checked.duplicates_total += 1;
                if checked.duplicates.len() < REPORT_LIMIT {
                    checked.duplicates.push((file.line_of(row.pos), email.to_owned()));
                }
                false
            }
            None => true,
        };
        checked.kept.push(kept);
        checked.count += usize::from(kept);
    }
    checked.digest = rows.digest().unwrap_or_default();
    if let Some(pos) = last
        && file.ends_in_open_quote(pos).map_err(io_error)?
    {
        return Err(format!(
            "{}:{}: a quoted field opened in this record is never closed: it runs to the end of \
             the file",
            file.path().display(),
            file.line_of(pos)
        ));
    }
    Ok(checked)
}

fn problem(row: &Row, columns: &Columns, single_line: &[usize]) -> Option<String> {
    if row.bad_utf8 {
        return Some("not UTF-8 text".into());
    }
    if row.fields.len() != columns.names.len() {
        return Some(format!(
            "it has {} fields, the header row has {}",
            row.fields.len(),
            columns.names.len()
        ));
    }
    if let Err(reason) = validate(row.email(columns)) {
        return Some(reason.into());
    }
    for &i in single_line {
        if row.fields.get(i).is_some_and(|v| v.chars().any(char::is_control)) {
            return Some(format!(
                "the `{}` column holds a line break or another control character, and the \
                 subject or a header uses it",
                columns.names[i]
            ));
        }
    }
    None
}

/// A 128-bit key for an address, ignoring case: two SipHash-1-3 hashes with different
/// prefixes over its lowercase form. Keeping keys instead of addresses makes a million-address
/// list cost 16 bytes per address; two different addresses collide with a chance near 2^-128.
fn address_key(email: &str) -> u128 {
    let lower;
    let bytes = if email.bytes().any(|b| b.is_ascii_uppercase()) || !email.is_ascii() {
        lower = email.to_lowercase();
        lower.as_bytes()
    } else {
        email.as_bytes()
    };
    let half = |salt: u8| {
        let mut h = DefaultHasher::new();
        h.write_u8(salt);
        h.write(bytes);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// Checks that `s` is a bare address an SMTP server will take in `RCPT TO:<...>`.
pub fn validate(s: &str) -> Result<(), &'static str> {
    use lettre::address::AddressError;
    if s.is_empty() {
        return Err("empty address");
    }
    if s.contains('<') || s.contains('>') {
        return Err("write the bare address, without a name or angle brackets");
    }
    match lettre::Address::from_str(s) {
        // The mailer's own check too, so an address accepted here is never refused at send
        // time (cheap for a plain `user@domain`: the mailer then skips its full parser).
        Ok(_) if mailer::parse_address(s).is_err() => Err("not an address the mailer accepts"),
        Ok(_) => Ok(()),
        Err(AddressError::MissingParts) => {
            Err("not an address: no @, or nothing before or after it")
        }
        Err(AddressError::InvalidUser) => Err("invalid characters before the @"),
        Err(AddressError::InvalidDomain) => Err("invalid domain after the @"),
        Err(_) => Err("not a valid address"),
    }
}

/// The report printed when the file has bad rows: one `FILE:LINE: reason: "value"` line
/// each, then a count of those not shown.
pub fn report_invalid(path: &Path, checked: &Checked) -> String {
    let mut out = String::new();
    for bad in &checked.invalid {
        let mut value = String::new();
        logger::escape_into(&mut value, &bad.value);
        out.push_str(&format!("{}:{}: {}: \"{value}\"\n", path.display(), bad.line, bad.reason));
    }
    let shown = checked.invalid.len() as u64;
    if checked.invalid_total > shown {
        out.push_str(&format!("... and {} more invalid rows\n", checked.invalid_total - shown));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &[u8]) -> (tempfile::TempDir, RecipientsFile) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let f = RecipientsFile::open(&path).unwrap();
        (dir, f)
    }

    /// (line, email) of every kept row.
    fn kept(f: &RecipientsFile, checked: &Checked) -> Vec<(u64, String)> {
        let mut recipients = f.recipients(checked).unwrap();
        let mut row = Row::default();
        let mut out = Vec::new();
        while let Some(i) = recipients.next_into(&mut row).unwrap() {
            assert_eq!(i, out.len(), "numbered 0.. in file order");
            out.push((f.line_of(row.pos), row.email(f.columns()).to_owned()));
        }
        assert_eq!(recipients.count(), checked.count);
        out
    }

    fn pairs(list: &[(u64, &str)]) -> Vec<(u64, String)> {
        list.iter().map(|(l, e)| (*l, e.to_string())).collect()
    }

    #[test]
    fn plain_list_with_comments_blank_lines_and_a_bom() {
        let (_d, f) = file(
            "list.txt",
            b"\xEF\xBB\xBF# customers\n\na@example.com\n  b@example.org  \n# end\n",
        );
        assert_eq!(f.format(), Format::Plain);
        let c = check(&f, &[]).unwrap();
        assert_eq!(kept(&f, &c), pairs(&[(3, "a@example.com"), (4, "b@example.org")]));
        assert_eq!(f.columns().names, ["email"]);
    }

    #[test]
    fn a_bom_before_the_first_address_is_not_part_of_it() {
        let (_d, f) = file("list.txt", b"\xEF\xBB\xBFa@example.com\n");
        let c = check(&f, &[]).unwrap();
        assert_eq!((c.count, c.invalid_total), (1, 0));
        let (_d, f) = file("list.csv", b"\xEF\xBB\xBFemail,name\na@example.com,A\n");
        assert_eq!(f.columns().names, ["email", "name"]);
        assert_eq!(check(&f, &[]).unwrap().count, 1);
    }

    #[test]
    fn bad_addresses_are_reported_with_their_line_numbers() {
        let (_d, f) =
            file("list.txt", b"a@example.com\nnot-an-address\n\nc@\nAlice <d@example.com>\n");
        let c = check(&f, &[]).unwrap();
        assert_eq!(c.count, 1);
        let lines: Vec<u64> = c.invalid.iter().map(|i| i.line).collect();
        assert_eq!(lines, [2, 4, 5]);
        let report = report_invalid(Path::new("list.txt"), &c);
        assert!(report.contains("list.txt:2: not an address"), "{report}");
        assert!(report.contains("list.txt:5: write the bare address"), "{report}");
    }

    #[test]
    fn the_report_escapes_control_characters_and_counts_the_rest() {
        let mut text = String::new();
        for _ in 0..(REPORT_LIMIT + 3) {
            text.push_str("x\u{1b}[31m\ry\n");
        }
        let (_d, f) = file("list.txt", text.as_bytes());
        let c = check(&f, &[]).unwrap();
        let report = report_invalid(Path::new("f"), &c);
        assert_eq!(report.lines().count(), REPORT_LIMIT + 1, "{report}");
        assert!(!report.contains('\u{1b}'), "{report:?}");
        assert!(report.ends_with("... and 3 more invalid rows\n"), "{report}");
    }

    #[test]
    fn csv_columns_and_exact_lines_past_comments_and_crlf() {
        let text = "# list\nname,Email,plan\n# a\n\n# b\nAlice,alice@example.com,pro\r\n\n\
                    Bob, bob@example.com ,free\n# c\nCy,bad,x\n";
        let (_d, f) = file("list.txt", text.as_bytes());
        assert_eq!(f.format(), Format::Csv);
        assert_eq!(f.columns().names, ["name", "email", "plan"]);
        let c = check(&f, &[]).unwrap();
        assert_eq!(kept(&f, &c), pairs(&[(6, "alice@example.com"), (8, "bob@example.com")]));
        assert_eq!(c.invalid.iter().map(|i| i.line).collect::<Vec<_>>(), [10]);
    }

    #[test]
    fn quoted_fields_keep_blank_and_hash_lines_inside_them() {
        // The defect of the old reader: comment and blank lines were removed before parsing,
        // so this quote swallowed b's and c's rows into a's message.
        let text = "email,name,note\na@x.test,Al,\"first line\n\n# second line\"\nb@x.test,Bo,\n\
                    c@x.test,Cy,\n";
        let (_d, f) = file("list.csv", text.as_bytes());
        let c = check(&f, &[]).unwrap();
        assert_eq!(kept(&f, &c), pairs(&[(2, "a@x.test"), (5, "b@x.test"), (6, "c@x.test")]));
        let mut rows = f.rows(false).unwrap();
        let a = rows.next_row().unwrap().unwrap();
        assert_eq!(&a.fields[2], "first line\n\n# second line");
    }

    #[test]
    fn a_quote_never_closed_is_refused_with_its_line() {
        let text = "email,name\na@x.test,Al\nb@x.test,\"Bo\nc@x.test,Cy\n";
        let (_d, f) = file("list.csv", text.as_bytes());
        let err = check(&f, &[]).unwrap_err();
        assert!(err.ends_with(":3: a quoted field opened in this record is never closed: it runs to the end of the file"), "{err}");
        // A quote inside an unquoted field is a character, and a comment above is no record.
        let text = "email,size\na@x.test,5\"\n# it's 5\" tall\nb@x.test,\"6\"\"\"\n";
        let (_d, f) = file("list.csv", text.as_bytes());
        assert_eq!(check(&f, &[]).unwrap().count, 2);
    }

    #[test]
    fn ragged_rows_and_bad_utf8_are_invalid_rows() {
        let (_d, f) = file("list.csv", b"email,name\na@example.com,A,extra\nb@example.com,\xff\n");
        let c = check(&f, &[]).unwrap();
        assert_eq!(c.count, 0);
        assert_eq!(c.invalid[0].reason, "it has 3 fields, the header row has 2");
        assert_eq!((c.invalid[1].line, c.invalid[1].reason.as_str()), (3, "not UTF-8 text"));
    }

    #[test]
    fn single_line_columns_refuse_line_breaks() {
        let (_d, f) = file("list.csv", b"email,name\na@example.com,\"A\nB\"\nb@example.com,B\n");
        let name = f.columns().index("name").unwrap();
        let c = check(&f, &[name]).unwrap();
        assert_eq!(c.count, 1);
        assert!(
            c.invalid[0].reason.contains("`name` column holds a line break"),
            "{:?}",
            c.invalid
        );
        assert_eq!(check(&f, &[]).unwrap().count, 2, "a line break in a body field is content");
    }

    #[test]
    fn a_header_named_email_alone_is_csv() {
        let (_d, f) = file("list.resume", b"# resume\nemail\na@example.com\n");
        assert_eq!(f.format(), Format::Csv);
        assert_eq!(check(&f, &[]).unwrap().count, 1);
    }

    #[test]
    fn csv_problems_in_the_header_row() {
        let dir = tempfile::tempdir().unwrap();
        let open = |text: &str| {
            let path = dir.path().join("h.csv");
            std::fs::write(&path, text).unwrap();
            RecipientsFile::open(&path).unwrap_err()
        };
        let err = open("name,address\nA,a@example.com\n");
        assert!(err.contains("`email` column") && err.contains("name, address"), "{err}");
        assert!(open("email,Name,name\n").contains("`name` appears twice"));
        assert!(open("# nobody\n\n").contains("lists no addresses"));
    }

    #[test]
    fn repeated_addresses_are_sent_once() {
        let (_d, f) = file("list.txt", b"a@example.com\nb@example.com\nA@Example.com\n");
        let c = check(&f, &[]).unwrap();
        assert_eq!(c.count, 2);
        assert_eq!(c.duplicates, [(3, "A@Example.com".to_owned())]);
        assert!(!c.kept.get(2));
    }

    #[test]
    fn the_digest_covers_every_byte() {
        let (_d, a) = file("a.txt", b"a@example.com\n");
        let (_d2, b) = file("b.txt", b"a@example.com\n# changed\n");
        assert_ne!(check(&a, &[]).unwrap().digest, check(&b, &[]).unwrap().digest);
    }

    #[test]
    fn a_file_changed_in_place_is_not_read_again() {
        let (d, f) = file("list.txt", b"a@example.com\n");
        std::fs::write(d.path().join("list.txt"), b"b@example.com\nc@example.com\n").unwrap();
        let err = f.rows(false).err().expect("refused");
        assert!(err.to_string().contains("changed since it was checked"), "{err}");
    }

    proptest::proptest! {
        /// A plain address lettre accepts, the mailer accepts as the same address.
        #[test]
        fn plain_addr_specs_are_what_the_mailer_accepts(s in "[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]{1,12}@[a-zA-Z0-9.-]{1,12}") {
            if lettre::Address::from_str(&s).is_ok() {
                let parsed = mailer::parse_address(&s);
                proptest::prop_assert!(parsed.is_ok(), "{s:?}: {parsed:?}");
                let address = parsed.unwrap();
                proptest::prop_assert_eq!(AsRef::<str>::as_ref(&address), s.as_str());
            }
        }

        /// Case and the fast path do not change the key.
        #[test]
        fn keys_ignore_case(s in "[a-zA-Z0-9]{1,10}@[a-zA-Z]{1,10}\\.[a-z]{2,3}") {
            proptest::prop_assert_eq!(address_key(&s), address_key(&s.to_lowercase()));
            proptest::prop_assert_eq!(address_key(&s), address_key(&s.to_uppercase()));
        }
    }

    #[test]
    fn validation_accepts_ordinary_addresses() {
        for ok in ["a@example.com", "first.last+tag@sub.example.co.uk", "x@localhost"] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a", "a@", "@b.com", "a b@c.com", "a@b c.com", "<a@b.com>", "a@b.com\r\n"] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
    }
}
