//! [`Stdout`]: the short line format or JSON lines, to standard output or any `io::Write`.

use std::io::{self, IsTerminal, Write};
use std::sync::{Mutex, PoisonError};

use crate::clock::{self, Stamp};
use crate::format::{with_line_buffer, write_body};
use crate::{Level, Logger, Record};
use crate::{checksum, json};

const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// Writes each record as one line in the short format:
///
/// `HH:MM:SS.ffffff <severity digit> <program> [AUDIT] message key=value`
///
/// The time is UTC with microseconds; the digit is the syslog severity (3, 4, 6, 7). Or, with
/// [`StdoutFormat::Json`], as one JSON object per line for a container's log collector:
///
/// `{"ts":"2026-11-28T22:12:01.617363Z","level":"info","program":"svc","audit":false,
/// "message":"sent","attempt":3,"peer":"127.0.0.1:25"}`
///
/// `ts` is RFC 3339 UTC with microseconds, `level` one of `err`, `warning`, `info`, `debug`;
/// the fields follow in order: integers and booleans as JSON numbers and booleans, strings as
/// strings, any other value as a number when its text is one (a float) and else as a string;
/// a field named like a column (`ts`, `level`, ...) gets a `_` in front. Each line
/// is built in a reused buffer and handed to the writer with exactly one `write_all`, so lines
/// from many threads never interleave and, on an unbuffered file or pipe, each is one
/// `write(2)`. With colour on, Err lines are red and Warning lines yellow. Nothing is
/// buffered or dropped: like any write to standard output, a slow reader of a pipe slows the
/// writer (the alternative, a queue that drops lines under load, loses exactly the lines an
/// incident needs).
///
/// ```
/// use logger::{Level, Logger, Stdout};
/// let out = Stdout::with_writer(Vec::new(), "demo", Level::Info);
/// out.info("hello");
/// out.debug("not written: below the threshold");
/// let text = String::from_utf8(out.into_writer()).unwrap();
/// assert!(text.ends_with(" 6 demo hello\n"), "{text}");
/// ```
pub struct Stdout<W: Write + Send = io::Stdout> {
    writer: Mutex<W>,
    program: String,
    /// What follows the time, per level in `Level::ALL` (declaration) order: ` <digit>
    /// <program> ` or `","level":"info","program":"p","audit":`, built once so a line is one
    /// copy here instead of several small ones.
    columns: [String; 4],
    format: StdoutFormat,
    level: Level,
    colour: bool,
    checksum: bool,
}

/// The line format of a [`Stdout`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StdoutFormat {
    /// `HH:MM:SS.ffffff 6 program message key=value`, the default.
    #[default]
    Short,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for StdoutFormat {
    type Err = crate::ParseConfigError;

    /// `short` or `json`, any case.
    fn from_str(s: &str) -> Result<Self, crate::ParseConfigError> {
        match s.to_ascii_lowercase().as_str() {
            "short" | "text" => Ok(StdoutFormat::Short),
            "json" => Ok(StdoutFormat::Json),
            _ => Err(crate::ParseConfigError::new(format!(
                "unknown stdout format {s:?} (expected short or json)"
            ))),
        }
    }
}

impl std::fmt::Display for StdoutFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StdoutFormat::Short => "short",
            StdoutFormat::Json => "json",
        })
    }
}

impl Stdout {
    /// A logger on the process's standard output at threshold `level`, in colour when
    /// standard output is a terminal and `NO_COLOR` is unset or empty (no-color.org).
    pub fn new(program: &str, level: Level) -> Self {
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let colour = io::stdout().is_terminal() && !no_colour;
        Stdout::with_writer(io::stdout(), program, level).with_colour(colour)
    }
}

impl<W: Write + Send> Stdout<W> {
    /// A logger writing to `writer` at threshold `level`, without colour.
    pub fn with_writer(writer: W, program: &str, level: Level) -> Self {
        let program = sanitize_program(program);
        Stdout {
            writer: Mutex::new(writer),
            columns: columns(&program, StdoutFormat::Short),
            program,
            format: StdoutFormat::Short,
            level,
            colour: false,
            checksum: false,
        }
    }

    /// The same logger writing `format`. JSON lines are never coloured and carry no line
    /// checksum (a collector parses them; the checksum is for text lines through syslog).
    pub fn with_format(mut self, format: StdoutFormat) -> Self {
        self.format = format;
        self.columns = columns(&self.program, format);
        self
    }

    /// The same logger with colour turned on or off.
    pub fn with_colour(mut self, on: bool) -> Self {
        self.colour = on;
        self
    }

    /// The same logger with Boulder's line checksum on or off: `HH:MM:SS.ffffff 6 prog
    /// <checksum> [AUDIT] message k=v`, the checksum computed over what follows it (see
    /// [`crate::checksum`]), so `log-validator` can check a captured stdout.
    pub fn with_checksum(mut self, on: bool) -> Self {
        self.checksum = on;
        self
    }

    /// The threshold: records at this level or more severe are written.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The writer back, for tests that captured output in a `Vec<u8>`.
    pub fn into_writer(self) -> W {
        self.writer.into_inner().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends the complete line for `record`, newline included, and returns where it starts
    /// in `line` (with the checksum on, the body is written first, ahead of the line, and
    /// copied in after the checksum computed over it).
    fn format_line(&self, line: &mut String, record: &Record<'_>) -> usize {
        if self.format == StdoutFormat::Json {
            line.push_str("{\"ts\":\"");
            clock::write_now(line, Stamp::Rfc3339);
            line.push_str(&self.columns[record.level() as usize]);
            line.push_str(if record.is_audit() { "true" } else { "false" });
            json::write_body(line, record);
            line.push('\n');
            return 0;
        }
        if self.checksum {
            // The body first, ahead of the line, to checksum it; then copied in after the sum.
            write_body(line, record);
            let (sum, len) = (checksum::checksum(line.as_bytes()), line.len());
            let colour = self.open_line(line, record.level());
            sum.iter().for_each(|&b| line.push(char::from(b)));
            line.push(' ');
            line.extend_from_within(..len);
            close_line(line, colour);
            return len;
        }
        let colour = self.open_line(line, record.level());
        write_body(line, record);
        close_line(line, colour);
        0
    }

    /// Appends the colour (if any), the time and the columns; returns the colour.
    #[inline(always)]
    fn open_line(&self, line: &mut String, level: Level) -> Option<&'static str> {
        let colour = match level {
            _ if !self.colour => None,
            Level::Err => Some(RED),
            Level::Warning => Some(YELLOW),
            Level::Info | Level::Debug => None,
        };
        if let Some(c) = colour {
            line.push_str(c);
        }
        clock::write_now(line, Stamp::TimeOfDay);
        line.push_str(&self.columns[level as usize]);
        colour
    }
}

/// Ends a line: the colour reset when it was coloured, and the line break.
#[inline(always)]
fn close_line(line: &mut String, colour: Option<&str>) {
    if colour.is_some() {
        line.push_str(RESET);
    }
    line.push('\n');
}

/// What follows the time in each level's lines.
fn columns(program: &str, format: StdoutFormat) -> [String; 4] {
    match format {
        StdoutFormat::Short => Level::ALL.map(|l| format!(" {} {program} ", l.severity())),
        StdoutFormat::Json => Level::ALL.map(|l| {
            let mut c =
                format!("\",\"level\":\"{}\",\"program\":\"", l.as_str().to_ascii_lowercase());
            json::escape_into(&mut c, program);
            c.push_str("\",\"audit\":");
            c
        }),
    }
}

/// The program column is one word: spaces and control characters would break the columns.
pub(crate) fn sanitize_program(program: &str) -> String {
    let p: String = program
        .chars()
        .map(|c| if c.is_whitespace() || c.is_control() { '_' } else { c })
        .collect();
    if p.is_empty() { "-".to_owned() } else { p }
}

impl<W: Write + Send> Logger for Stdout<W> {
    fn enabled(&self, level: Level) -> bool {
        level <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if record.level() > self.level {
            return;
        }
        with_line_buffer(|line| {
            let start = self.format_line(line, record);
            let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            // Nowhere better to report a failing stdout: logging never fails its caller.
            let _ = w.write_all(&line.as_bytes()[start..]);
        });
    }

    fn flush(&self) {
        let _ = self.writer.lock().unwrap_or_else(PoisonError::into_inner).flush();
    }
}

impl<W: Write + Send> std::fmt::Debug for Stdout<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stdout")
            .field("program", &self.program)
            .field("level", &self.level)
            .field("format", &self.format)
            .field("colour", &self.colour)
            .field("checksum", &self.checksum)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts `write` calls, to prove one line is one write.
    #[derive(Default)]
    struct Writes {
        data: Vec<u8>,
        calls: usize,
    }

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            self.data.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn output(out: Stdout<Writes>) -> (String, usize) {
        let w = out.into_writer();
        (String::from_utf8(w.data).unwrap(), w.calls)
    }

    /// Checks `HH:MM:SS.ffffff ` and returns the rest of the line.
    fn strip_time(line: &str) -> &str {
        let (time, rest) = line.split_at(16);
        let b = time.as_bytes();
        for (i, &c) in b.iter().enumerate() {
            match i {
                2 | 5 => assert_eq!(c, b':', "{line}"),
                8 => assert_eq!(c, b'.', "{line}"),
                15 => assert_eq!(c, b' ', "{line}"),
                _ => assert!(c.is_ascii_digit(), "{line}"),
            }
        }
        rest
    }

    #[test]
    fn short_format_one_write_per_line() {
        let out = Stdout::with_writer(Writes::default(), "probe", Level::Debug);
        crate::info!(out, "sent {} messages", 3; event = "sent", peer = "a b");
        out.audit_err("denied");
        out.debug("detail");
        let (text, calls) = output(out);
        let lines: Vec<&str> = text.lines().map(strip_time).collect();
        assert_eq!(
            lines,
            [
                r#"6 probe sent 3 messages event=sent peer="a b""#,
                "3 probe [AUDIT] denied",
                "7 probe detail"
            ]
        );
        assert_eq!(calls, 3);
    }

    #[test]
    fn a_forged_audit_line_stays_one_line() {
        let out = Stdout::with_writer(Vec::new(), "p", Level::Info);
        out.info("hello\n[AUDIT] forged");
        crate::info!(out, "x"; v = "1\r\n00:00:00.000000 3 p [AUDIT] forged");
        let text = String::from_utf8(out.into_writer()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        let lines: Vec<&str> = text.lines().map(strip_time).collect();
        assert_eq!(lines[0], r"6 p hello\n[AUDIT] forged");
        assert_eq!(lines[1], r#"6 p x v="1\r\n00:00:00.000000 3 p [AUDIT] forged""#);
    }

    #[test]
    fn threshold_filters_and_enabled_agrees() {
        let out = Stdout::with_writer(Vec::new(), "p", Level::Warning);
        assert!(out.enabled(Level::Err) && out.enabled(Level::Warning));
        assert!(!out.enabled(Level::Info) && !out.enabled(Level::Debug));
        out.info("no");
        out.debug("no");
        out.warning("yes");
        out.err("yes");
        let text = String::from_utf8(out.into_writer()).unwrap();
        let lines: Vec<&str> = text.lines().map(strip_time).collect();
        assert_eq!(lines, ["4 p yes", "3 p yes"]);
    }

    #[test]
    fn colour_only_when_asked_err_red_warning_yellow() {
        let out = Stdout::with_writer(Vec::new(), "p", Level::Info).with_colour(true);
        out.err("e");
        out.warning("w");
        out.info("i");
        let text = String::from_utf8(out.into_writer()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with(RED) && lines[0].ends_with(&format!("3 p e{RESET}")));
        assert!(lines[1].starts_with(YELLOW) && lines[1].ends_with(&format!("4 p w{RESET}")));
        assert!(!lines[2].contains('\x1b'));
        let plain = Stdout::with_writer(Vec::new(), "p", Level::Info);
        plain.err("e");
        assert!(!plain.into_writer().contains(&0x1b));
    }

    #[test]
    fn checksum_covers_what_follows_it() {
        let out = Stdout::with_writer(Vec::new(), "p", Level::Info).with_checksum(true);
        out.info("Hello, World!");
        crate::audit_info!(out, "granted"; user = "a b");
        let text = String::from_utf8(out.into_writer()).unwrap();
        let lines: Vec<&str> = text.lines().map(strip_time).collect();
        assert_eq!(lines[0], "6 p 0MNK7A Hello, World!");
        let body = r#"[AUDIT] granted user="a b""#;
        let sum = checksum::checksum(body.as_bytes());
        assert_eq!(lines[1], format!("6 p {} {body}", std::str::from_utf8(&sum).unwrap()));
    }

    #[test]
    fn json_lines_have_the_columns_then_the_fields() {
        let out = Stdout::with_writer(Writes::default(), "p\"q", Level::Debug)
            .with_format(StdoutFormat::Json)
            .with_colour(true)
            .with_checksum(true);
        crate::warning!(out, "sent {}", "x\ny"; attempt = 3, peer = "127.0.0.1:25", ok = true);
        out.audit_err("denied");
        let (text, calls) = output(out);
        assert_eq!(calls, 2);
        let lines: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        // Key order, exactly (serde_json's map sorts its keys).
        let after_ts = text.lines().next().unwrap().split_at(34).1;
        assert_eq!(
            after_ts,
            r#"","level":"warning","program":"p\"q","audit":false,"message":"sent x\ny","attempt":3,"peer":"127.0.0.1:25","ok":true}"#
        );
        let first = lines[0].as_object().unwrap();
        let ts = first["ts"].as_str().unwrap();
        assert!(ts.len() == 27 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
        assert_eq!(first["level"], "warning");
        assert_eq!(first["program"], "p\"q");
        assert_eq!(first["audit"], false);
        assert_eq!(first["message"], "sent x\ny");
        assert_eq!(first["attempt"], 3);
        assert_eq!(first["peer"], "127.0.0.1:25");
        assert_eq!(first["ok"], true);
        assert_eq!((&lines[1]["level"], &lines[1]["audit"]), (&"err".into(), &true.into()));
        assert_eq!(lines[1]["message"], "denied");
        assert!(!text.contains('\x1b'), "JSON is never coloured: {text}");
    }

    #[test]
    fn formats_parse_and_display() {
        assert_eq!("JSON".parse::<StdoutFormat>(), Ok(StdoutFormat::Json));
        assert_eq!("short".parse::<StdoutFormat>(), Ok(StdoutFormat::Short));
        assert!("xml".parse::<StdoutFormat>().unwrap_err().to_string().contains("\"xml\""));
        assert_eq!(StdoutFormat::Json.to_string(), "json");
    }

    #[test]
    fn program_name_is_one_word() {
        let out = Stdout::with_writer(Vec::new(), "my prog\n", Level::Info);
        out.info("m");
        let text = String::from_utf8(out.into_writer()).unwrap();
        assert_eq!(strip_time(text.trim_end()), "6 my_prog_ m");
    }

    #[test]
    fn many_threads_never_interleave() {
        let out = Stdout::with_writer(Vec::new(), "p", Level::Info);
        std::thread::scope(|s| {
            for t in 0..8 {
                let out = &out;
                s.spawn(move || {
                    for i in 0..200 {
                        crate::info!(out, "line"; thread = t, i = i);
                    }
                });
            }
        });
        let text = String::from_utf8(out.into_writer()).unwrap();
        assert_eq!(text.lines().count(), 1600);
        for line in text.lines() {
            let rest = strip_time(line);
            assert!(rest.starts_with("6 p line thread="), "{line}");
        }
    }
}
