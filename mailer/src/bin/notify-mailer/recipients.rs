//! Reading and validating the recipients file: a plain list (one address per line, blank lines
//! and `#` comments allowed) or a CSV file whose header row has an `email` column. Every bad
//! address is reported with its line number, so an operator can fix the whole file at once.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// One valid recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The address, trimmed and validated.
    pub email: String,
    /// The line it came from (1-based), for messages about it.
    pub line: u64,
    /// Template variables: `email`, plus every CSV column by its header name.
    pub vars: BTreeMap<String, String>,
}

/// An address that cannot be sent to, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The line it is on (1-based).
    pub line: u64,
    /// What the line held (trimmed).
    pub value: String,
    /// Why it was refused.
    pub reason: &'static str,
}

/// A parsed recipients file.
#[derive(Debug, Default)]
pub struct List {
    /// Variables every recipient has (`email`, and the CSV header names).
    pub columns: Vec<String>,
    /// Valid, distinct recipients in file order.
    pub recipients: Vec<Recipient>,
    /// Refused lines in file order.
    pub invalid: Vec<Invalid>,
    /// Addresses listed more than once (only the first is kept), as (line, address).
    pub duplicates: Vec<(u64, String)>,
}

/// A file that cannot be read as a recipients list at all.
#[derive(Debug, PartialEq, Eq)]
pub struct FileError(pub String);

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads and parses the file at `path`.
pub fn read(path: &Path) -> Result<List, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        FileError(format!("{}: cannot read the recipients file: {e}", path.display()))
    })?;
    let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    parse(&text, is_csv).map_err(|e| FileError(format!("{}: {e}", path.display())))
}

/// Parses a recipients list. It is CSV when `is_csv` (a `.csv` file) or when its first
/// significant line holds a comma, since an address in a plain list never does.
pub fn parse(text: &str, is_csv: bool) -> Result<List, String> {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'));
    let Some(first) = first else {
        return Err("the recipients file lists no addresses".into());
    };
    let mut list = if is_csv || first.contains(',') { parse_csv(text)? } else { parse_plain(text) };
    dedup(&mut list);
    if list.recipients.is_empty() && list.invalid.is_empty() {
        return Err("the recipients file lists no addresses".into());
    }
    Ok(list)
}

fn parse_plain(text: &str) -> List {
    let mut list = List { columns: vec!["email".into()], ..List::default() };
    for (i, line) in text.lines().enumerate() {
        let value = line.trim();
        if value.is_empty() || value.starts_with('#') {
            continue;
        }
        push(&mut list, i as u64 + 1, value, BTreeMap::new());
    }
    list
}

fn parse_csv(text: &str) -> Result<List, String> {
    // The csv crate's record positions are taken before it skips comment and empty lines (and
    // before the LF of a CRLF), so they can point above the record. Remove those lines first,
    // remembering where each kept line came from; then positions are exact.
    let mut kept = String::with_capacity(text.len());
    let mut origin = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
        origin.push(i as u64 + 1);
    }
    let mut reader =
        csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(false).from_reader(kept.as_bytes());
    let headers = reader.headers().map_err(|e| format!("not a valid CSV file: {e}"))?.clone();
    let columns: Vec<String> = headers.iter().map(|h| h.to_ascii_lowercase()).collect();
    let email_col = columns.iter().position(|h| h == "email").ok_or_else(|| {
        format!(
            "a CSV recipients file needs an `email` column; the header row has: {}",
            headers.iter().collect::<Vec<_>>().join(", ")
        )
    })?;
    let mut list = List { columns: columns.clone(), ..List::default() };
    for row in reader.records() {
        let row = row.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            let line = origin.get(line.saturating_sub(1)).copied().unwrap_or(0);
            let what = match e.kind() {
                csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                    format!("it has {len} fields, the header row has {expected_len}")
                }
                _ => e.to_string(),
            };
            format!("line {line}: not a valid CSV row: {what}")
        })?;
        let kept_line = row.position().map_or(0, |p| p.line() as usize);
        let line = origin.get(kept_line.saturating_sub(1)).copied().unwrap_or(0);
        let vars = columns
            .iter()
            .zip(row.iter())
            .filter(|(name, _)| *name != "email")
            .map(|(name, value)| (name.clone(), value.to_owned()))
            .collect();
        push(&mut list, line, row.get(email_col).unwrap_or(""), vars);
    }
    Ok(list)
}

fn push(list: &mut List, line: u64, value: &str, mut vars: BTreeMap<String, String>) {
    match validate(value) {
        Ok(()) => {
            vars.insert("email".into(), value.to_owned());
            list.recipients.push(Recipient { email: value.to_owned(), line, vars });
        }
        Err(reason) => list.invalid.push(Invalid { line, value: value.to_owned(), reason }),
    }
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
        // The mailer's own check too, so an address accepted here is never refused at send time.
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

/// Drops repeated addresses (compared ignoring case, as mail systems in practice do).
fn dedup(list: &mut List) {
    let mut seen = HashSet::new();
    let mut duplicates = Vec::new();
    list.recipients.retain(|r| {
        let fresh = seen.insert(r.email.to_ascii_lowercase());
        if !fresh {
            duplicates.push((r.line, r.email.clone()));
        }
        fresh
    });
    list.duplicates = duplicates;
}

/// The report printed when the file has bad addresses: one `FILE:LINE: reason: "value"` line
/// each, at most `limit` of them, then a count of the rest.
pub fn report_invalid(path: &Path, invalid: &[Invalid], limit: usize) -> String {
    let mut out = String::new();
    for bad in invalid.iter().take(limit) {
        let mut value = String::new();
        logger::escape_into(&mut value, &bad.value);
        out.push_str(&format!("{}:{}: {}: \"{value}\"\n", path.display(), bad.line, bad.reason));
    }
    if invalid.len() > limit {
        out.push_str(&format!("... and {} more invalid addresses\n", invalid.len() - limit));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(list: &List) -> Vec<&str> {
        list.recipients.iter().map(|r| r.email.as_str()).collect()
    }

    #[test]
    fn plain_list_with_comments_and_blank_lines() {
        let list =
            parse("# customers\n\na@example.com\n  b@example.org  \n# end\n", false).unwrap();
        assert_eq!(emails(&list), ["a@example.com", "b@example.org"]);
        assert_eq!(list.recipients[0].line, 3);
        assert_eq!(list.recipients[1].line, 4);
        assert_eq!(list.columns, ["email"]);
        assert_eq!(list.recipients[0].vars["email"], "a@example.com");
    }

    #[test]
    fn bad_addresses_are_reported_with_their_line_numbers() {
        let list =
            parse("a@example.com\nnot-an-address\n\nc@\nAlice <d@example.com>\n", false).unwrap();
        assert_eq!(emails(&list), ["a@example.com"]);
        let lines: Vec<u64> = list.invalid.iter().map(|i| i.line).collect();
        assert_eq!(lines, [2, 4, 5]);
        let report = report_invalid(Path::new("list.txt"), &list.invalid, 10);
        assert!(report.contains("list.txt:2: not an address"), "{report}");
        assert!(report.contains("list.txt:4: "), "{report}");
        assert!(report.contains("list.txt:5: write the bare address"), "{report}");
    }

    #[test]
    fn report_escapes_control_characters_and_caps_its_length() {
        let invalid: Vec<Invalid> = (1..=5)
            .map(|line| Invalid { line, value: "x\u{1b}[31m\ry".into(), reason: "bad" })
            .collect();
        let report = report_invalid(Path::new("f"), &invalid, 2);
        assert_eq!(report.lines().count(), 3, "{report}");
        assert!(!report.contains('\u{1b}') && !report.contains('\r'), "{report:?}");
        assert!(report.ends_with("... and 3 more invalid addresses\n"));
    }

    #[test]
    fn csv_with_an_email_column_and_other_columns_as_variables() {
        let text =
            "name,Email,plan\nAlice,alice@example.com,pro\n# skipped\nBob, bob@example.com ,free\n";
        let list = parse(text, false).unwrap();
        assert_eq!(emails(&list), ["alice@example.com", "bob@example.com"]);
        assert_eq!(list.columns, ["name", "email", "plan"]);
        assert_eq!(list.recipients[1].vars["name"], "Bob");
        assert_eq!(list.recipients[1].vars["plan"], "free");
        assert_eq!(list.recipients[1].line, 4);
    }

    #[test]
    fn csv_bad_rows_keep_their_line_numbers() {
        let list = parse("email\ngood@example.com\nbad@@example.com\n\"\"\n", true).unwrap();
        assert_eq!(emails(&list), ["good@example.com"]);
        let lines: Vec<(u64, &str)> = list.invalid.iter().map(|i| (i.line, i.reason)).collect();
        assert_eq!(lines[0].0, 3);
        assert_eq!(lines[1], (4, "empty address"));
    }

    #[test]
    fn csv_line_numbers_count_comments_and_blank_lines() {
        let list =
            parse("# list\nemail\n# a\n\n# b\nx@example.com\r\n\nbad\n# c\nbad2\n", true).unwrap();
        assert_eq!(list.recipients[0].line, 6);
        let lines: Vec<u64> = list.invalid.iter().map(|i| i.line).collect();
        assert_eq!(lines, [8, 10]);
    }

    #[test]
    fn csv_without_an_email_column_is_refused() {
        let err = parse("name,address\nA,a@example.com\n", false).unwrap_err();
        assert!(err.contains("`email` column") && err.contains("name, address"), "{err}");
    }

    #[test]
    fn csv_with_ragged_rows_is_refused() {
        let err = parse("email,name\na@example.com,A,extra\n", true).unwrap_err();
        assert_eq!(err, "line 2: not a valid CSV row: it has 3 fields, the header row has 2");
    }

    #[test]
    fn an_empty_list_is_refused() {
        assert!(parse("", false).is_err());
        assert!(parse("# nobody\n\n", false).is_err());
        assert!(parse("email\n", true).is_err());
    }

    #[test]
    fn repeated_addresses_are_sent_once() {
        let list = parse("a@example.com\nb@example.com\nA@Example.com\n", false).unwrap();
        assert_eq!(emails(&list), ["a@example.com", "b@example.com"]);
        assert_eq!(list.duplicates, [(3, "A@Example.com".to_owned())]);
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
