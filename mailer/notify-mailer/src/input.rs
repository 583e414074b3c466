//! Reading and checking every input before the first connection: recipients, bodies, subject,
//! headers, sender, password and CA files. All problems are collected and reported together,
//! so one run shows an operator everything to fix.

use std::path::Path;
use std::sync::Arc;

use crate::args::Args;
use crate::journal::{Campaign, Fingerprint};
use crate::message::{Message, Templates};
use crate::recipients::{self, Checked, RecipientsFile};
use crate::template::Template;

/// Everything a run needs, validated. `Debug` never shows the password.
pub struct Inputs {
    /// The recipients file, open.
    pub recipients: Arc<RecipientsFile>,
    /// What the validation pass found.
    pub checked: Checked,
    /// The message templates, bound to the recipients file's columns.
    pub message: Arc<Message>,
    /// The SMTP AUTH password, when `--password-file` was given.
    pub password: Option<String>,
    /// The PEM text of `--ca-file`.
    pub ca_pem: Option<String>,
    /// The invalid rows that `--skip-invalid` skipped (to show the user).
    pub skipped_report: Option<String>,
    /// What identifies this campaign in the journal.
    pub campaign: Campaign,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field("recipients", &self.recipients)
            .field("count", &self.checked.count)
            .field("message", &self.message)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_pem", &self.ca_pem)
            .field("campaign", &self.campaign)
            .finish()
    }
}

/// Reads and checks every input named in `args`. The error is the whole report, one problem
/// per line, ending with "nothing was sent".
pub fn load(args: &Args) -> Result<Inputs, String> {
    let mut problems = Vec::new();
    let p = &mut problems;

    let subject = keep(p, check_subject(&args.subject));
    let body = keep(p, read_text(&args.body, "body"));
    let html = args.html_body.as_deref().map(|path| keep(p, read_text(path, "HTML body")));
    let headers: Vec<_> = args
        .headers
        .iter()
        .map(|h| {
            let t = Template::parse(&h.value).map_err(|e| format!("--header {}: {e}", h.name));
            keep(p, t).map(|t| (h.name.clone(), t))
        })
        .collect();
    keep(p, check_from(&args.from));
    let password = keep(p, args.password_file.as_deref().map(read_password).transpose()).flatten();
    let ca_pem = keep(p, args.ca_file.as_deref().map(read_ca).transpose()).flatten();
    if let Some(path) = &args.syslog_ca {
        // Read now only to check it: the logger reads it again when it connects.
        keep(p, read_ca(path));
        if !matches!(args.syslog, Some(logger::SyslogTarget::Tls { .. })) {
            p.push("--syslog-ca needs a TLS syslog target: --syslog tls:HOST:PORT".to_owned());
        }
    }
    let file = keep(p, RecipientsFile::open(&args.recipients));

    let templates = match (subject, &body, &html) {
        (Some(subject), Some((_, text)), html) if !matches!(html, Some(None)) => Some(Templates {
            subject,
            text: text.clone(),
            html: html.clone().flatten().map(|(_, t)| t),
            headers: headers.iter().flatten().cloned().collect(),
        }),
        _ => None,
    };
    let (Some(file), Some(templates)) = (file, templates) else {
        return Err(report(problems));
    };
    if headers.iter().any(Option::is_none) {
        return Err(report(problems));
    }
    let message = match Message::bind(&templates, file.columns()) {
        Ok(message) => message,
        Err(unknown) => {
            problems.extend(unknown);
            return Err(report(problems));
        }
    };
    let checked = match recipients::check(&file, &message.single_line_columns()) {
        Ok(checked) => checked,
        Err(e) => {
            problems.push(e);
            return Err(report(problems));
        }
    };

    let mut skipped_report = None;
    if checked.invalid_total > 0 {
        let report = recipients::report_invalid(file.path(), &checked);
        if args.skip_invalid {
            skipped_report = Some(report);
        } else {
            problems.push(format!(
                "{} invalid row(s) in {} (fix them, or pass --skip-invalid to send to the rest):\n{}",
                checked.invalid_total,
                file.path().display(),
                report.trim_end()
            ));
        }
    }
    if checked.count == 0 {
        problems.push(format!("{}: no valid address to send to", file.path().display()));
    }
    if !problems.is_empty() {
        return Err(report(problems));
    }

    let header_text: String =
        args.headers.iter().map(|h| format!("{}: {}\n", h.name, h.value)).collect();
    let bytes = |o: &Option<(String, Template)>| o.as_ref().map(|(raw, _)| raw.as_bytes().to_vec());
    let html_bytes = html.as_ref().and_then(bytes);
    let fingerprint = Fingerprint::of(&[
        ("from", args.from.as_bytes()),
        ("subject", args.subject.as_bytes()),
        ("body", bytes(&body).unwrap_or_default().as_slice()),
        ("html", html_bytes.as_deref().unwrap_or(b"-")),
        ("headers", header_text.as_bytes()),
        ("recipients", &checked.digest),
    ]);
    let campaign = Campaign { fingerprint, recipients: checked.count };
    Ok(Inputs {
        recipients: Arc::new(file),
        checked,
        message: Arc::new(message),
        password,
        ca_pem,
        skipped_report,
        campaign,
    })
}

/// Builds the first recipient's message the way the mailer will, without sending it: the
/// mailer's own checks (header names it writes itself, a header given twice, ...) then stop a
/// bad campaign before anything is sent, not at its first message.
pub async fn preflight(inputs: &Inputs, from: &str) -> Result<(), String> {
    use mailer::Mailer;
    let file = &inputs.recipients;
    let mut recipients = file.recipients(&inputs.checked).map_err(|e| e.to_string())?;
    let mut row = recipients::Row::default();
    if recipients.next_into(&mut row).map_err(|e| e.to_string())?.is_none() {
        return Ok(());
    }
    let email = inputs.message.render(&row.fields).into_email();
    // An empty Fanout has no sink: the rehearsal's `dry_run` line is not the run's to log.
    let dry_run = mailer::DryRunMailer::new(from, Arc::new(logger::Fanout::new()));
    match dry_run.send_message(&email).await {
        Err(e) if e.is_permanent() => Err(format!(
            "{}:{}: the message for this row cannot be sent: {e:#}\nnothing was sent",
            file.path().display(),
            file.line_of(row.pos)
        )),
        _ => Ok(()),
    }
}

/// The value, or `None` with the error added to `problems`.
fn keep<T>(problems: &mut Vec<String>, result: Result<T, String>) -> Option<T> {
    result.map_err(|e| problems.push(e)).ok()
}

fn report(problems: Vec<String>) -> String {
    format!("{}\nnothing was sent", problems.join("\n"))
}

fn check_subject(subject: &str) -> Result<Template, String> {
    if subject.trim().is_empty() {
        return Err("--subject is empty".into());
    }
    if subject.chars().any(char::is_control) {
        return Err("--subject holds a line break or another control character".into());
    }
    Template::parse(subject).map_err(|e| format!("--subject: {e}"))
}

/// A UTF-8 text file without its byte order mark.
fn read_utf8(path: &Path, what: &str) -> Result<String, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("{}: cannot read the {what} file: {e}", path.display()))?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").map(<[u8]>::to_vec).unwrap_or(bytes);
    String::from_utf8(bytes)
        .map_err(|e| format!("{}: the {what} is not UTF-8 text ({e})", path.display()))
}

/// A body file: its text and its template.
fn read_text(path: &Path, what: &str) -> Result<(String, Template), String> {
    let text = read_utf8(path, what)?;
    if text.trim().is_empty() {
        return Err(format!("{}: the {what} file is empty", path.display()));
    }
    let template = Template::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((text, template))
}

fn check_from(from: &str) -> Result<(), String> {
    if from.chars().any(char::is_control) {
        return Err("--from holds a line break or another control character".into());
    }
    mailer::parse_mailbox(from).map(|_| ()).map_err(|e| format!("--from {from:?}: {e}"))
}

fn read_password(path: &Path) -> Result<String, String> {
    let text = read_utf8(path, "password")?;
    let password = text.lines().next().unwrap_or("").to_owned();
    if password.is_empty() {
        return Err(format!("{}: the password file is empty", path.display()));
    }
    Ok(password)
}

fn read_ca(path: &Path) -> Result<String, String> {
    let text = read_utf8(path, "CA")?;
    let mut reader = text.as_bytes();
    let certs = rustls_pemfile::certs(&mut reader).collect::<Result<Vec<_>, _>>();
    match certs {
        Ok(certs) if !certs.is_empty() => Ok(text),
        Ok(_) => Err(format!("{}: no PEM certificate in the CA file", path.display())),
        Err(e) => Err(format!("{}: bad PEM in the CA file: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn new() -> Self {
            Files { dir: tempfile::tempdir().unwrap() }
        }
        fn put(&self, name: &str, text: &[u8]) -> String {
            let path = self.dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.to_str().unwrap().to_owned()
        }
    }

    fn args(extra: &[&str]) -> Args {
        let mut all = vec!["notify-mailer", "--dry-run", "--from", "ops@example.com"];
        all.extend_from_slice(extra);
        Args::try_parse_from(all).unwrap()
    }

    /// Loads a dry run of `subject`, `body` and `list`, then `extra` flags.
    fn load_with(subject: &str, body: &str, list: &str, extra: &[&str]) -> Result<Inputs, String> {
        let base = ["--subject", subject, "--body", body, "--recipients", list];
        load(&args(&[&base[..], extra].concat()))
    }

    fn first_row(inputs: &Inputs) -> csv::StringRecord {
        inputs.recipients.rows(false).unwrap().next_row().unwrap().unwrap().fields
    }

    #[test]
    fn valid_inputs_load() {
        let f = Files::new();
        let list = f.put("list.csv", b"email,name\na@example.com,Ann\n");
        let body = f.put("body.txt", b"\xEF\xBB\xBFHi {{name}} <{{email}}>\n");
        let inputs = load_with("For {{email}}", &body, &list, &[]).unwrap();
        let r = inputs.message.render(&first_row(&inputs));
        assert_eq!(r.text, "Hi Ann <a@example.com>\n", "the BOM is not part of the body");
        assert_eq!(r.subject, "For a@example.com");
        assert_eq!(inputs.campaign.recipients, 1);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let f = Files::new();
        let list = f.put("list.txt", b"a@example.com\nbroken\nalso broken@\n");
        let body = f.put("body.txt", b"Hi\n");
        let err = load_with("x\ry", &body, &list, &[]).unwrap_err();
        assert!(err.contains("--subject holds a line break"), "{err}");
        assert!(err.ends_with("nothing was sent"), "{err}");
        let err = load_with("x", &body, &list, &[]).unwrap_err();
        assert!(err.contains("2 invalid row(s)"), "{err}");
        assert!(err.contains("list.txt:2: "), "{err}");
        assert!(err.contains("list.txt:3: "), "{err}");
    }

    #[test]
    fn unknown_template_variables_stop_the_run() {
        let f = Files::new();
        let list = f.put("list.txt", b"a@example.com\n");
        let body = f.put("body.txt", b"Hi {{name}}\n");
        let err = load_with("s", &body, &list, &["--header", "X-Id: {{id}}"]).unwrap_err();
        assert!(err.contains("the body uses {{name}}"), "{err}");
        assert!(err.contains("the header X-Id uses {{id}}"), "{err}");
    }

    #[test]
    fn skip_invalid_keeps_the_valid_addresses() {
        let f = Files::new();
        let list = f.put("list.txt", b"a@example.com\nbroken\n");
        let body = f.put("body.txt", b"Hi\n");
        let inputs = load_with("s", &body, &list, &["--skip-invalid"]).unwrap();
        assert_eq!(inputs.checked.count, 1);
        assert!(inputs.skipped_report.unwrap().contains("list.txt:2: "));
    }

    #[test]
    fn missing_files_and_empty_bodies_are_reported() {
        let f = Files::new();
        let body = f.put("body.txt", b"  \n");
        let err = load_with("s", &body, "/nonexistent/list", &[]).unwrap_err();
        assert!(err.contains("/nonexistent/list: cannot read the recipients file"), "{err}");
        assert!(err.contains("the body file is empty"), "{err}");
    }

    #[test]
    fn sender_password_and_ca_are_checked() {
        let f = Files::new();
        let list = f.put("list.txt", b"a@example.com\n");
        let body = f.put("body.txt", b"Hi\n");
        let pw = f.put("pw", b"\n");
        let ca = f.put("ca.pem", b"not a certificate\n");
        let all = [
            "notify-mailer",
            "--dry-run",
            "--from",
            "not an address",
            "--subject",
            "s",
            "--body",
            &body,
            "--recipients",
            &list,
            "--username",
            "u",
            "--password-file",
            &pw,
            "--ca-file",
            &ca,
        ];
        let err = load(&Args::try_parse_from(all).unwrap()).unwrap_err();
        assert!(err.contains("--from \"not an address\": "), "{err}");
        assert!(err.contains("the password file is empty"), "{err}");
        assert!(err.contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn a_password_file_with_a_bom_and_crlf() {
        let f = Files::new();
        let pw = f.put("pw", b"\xEF\xBB\xBFs3cret-pw\r\n");
        assert_eq!(read_password(Path::new(&pw)).unwrap(), "s3cret-pw");
    }

    #[test]
    fn the_fingerprint_follows_every_part_of_the_campaign() {
        let f = Files::new();
        let list = f.put("list.txt", b"a@example.com\n");
        let body = f.put("body.txt", b"Hi\n");
        let base = ["--subject", "s", "--body", &body, "--recipients", &list];
        let fp = |extra: &[&str]| {
            load(&args(&[&base[..], extra].concat())).unwrap().campaign.fingerprint
        };
        let plain = fp(&[]);
        assert_eq!(plain, fp(&["--parallel", "4", "--sleep", "1s"]), "speed is not the campaign");
        assert_ne!(plain, fp(&["--header", "X-A: 1"]));
        let html = f.put("b.html", b"<p>Hi</p>");
        assert_ne!(plain, fp(&["--html-body", &html]));
        std::fs::write(&list, "a@example.com\nb@example.com\n").unwrap();
        assert_ne!(plain, fp(&[]));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let f = Files::new();
        let list = f.put("list.txt", b"a@example.com\n");
        let body = f.put("body.txt", b"Hi\n");
        let pw = f.put("pw", b"s3cret-pw\n");
        let extra = ["--subject", "s", "--body", &body, "--recipients", &list];
        let inputs =
            load(&args(&[&extra[..], &["--username", "u", "--password-file", &pw]].concat()))
                .unwrap();
        assert_eq!(inputs.password.as_deref(), Some("s3cret-pw"));
        let shown = format!("{inputs:?}");
        assert!(shown.contains("<redacted>") && !shown.contains("s3cret"), "{shown}");
    }
}
