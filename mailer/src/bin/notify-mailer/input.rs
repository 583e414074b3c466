//! Reading and checking every input before the first connection: recipients, body, subject,
//! sender, password and CA files. All problems are collected and reported together, so one run
//! shows an operator everything to fix.

use std::path::Path;

use crate::args::Args;
use crate::recipients::{self, List};
use crate::template::Template;

/// Everything a run needs, validated. `Debug` never shows the password.
pub struct Inputs {
    /// The recipients to send to (invalid ones removed only with `--skip-invalid`).
    pub list: List,
    /// The subject template.
    pub subject: Template,
    /// The body template.
    pub body: Template,
    /// The SMTP AUTH password, when `--password-file` was given.
    pub password: Option<String>,
    /// The PEM text of `--ca-file`.
    pub ca_pem: Option<String>,
    /// The invalid recipients that `--skip-invalid` skipped (already reported to the user).
    pub skipped_report: Option<String>,
}

impl std::fmt::Debug for Inputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inputs")
            .field("list", &self.list)
            .field("subject", &self.subject)
            .field("body", &self.body)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_pem", &self.ca_pem)
            .field("skipped_report", &self.skipped_report)
            .finish()
    }
}

/// Reads and checks every input named in `args`. The error is the whole report, one problem
/// per line, ending with "nothing was sent".
pub fn load(args: &Args) -> Result<Inputs, String> {
    let mut problems = Vec::new();

    let list = match recipients::read(&args.recipients) {
        Ok(list) => Some(list),
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    let mut skipped_report = None;
    if let Some(list) = &list {
        if !list.invalid.is_empty() {
            let report = recipients::report_invalid(&args.recipients, &list.invalid, 50);
            if args.skip_invalid {
                skipped_report = Some(report);
            } else {
                problems.push(format!(
                    "{} invalid address(es) in {} (fix them, or pass --skip-invalid to send to \
                     the rest):\n{}",
                    list.invalid.len(),
                    args.recipients.display(),
                    report.trim_end()
                ));
            }
        }
        if list.recipients.is_empty() && !list.invalid.is_empty() {
            problems.push(format!("{}: no valid address to send to", args.recipients.display()));
        }
    }

    let subject = check_subject(&args.subject).map_err(|e| problems.push(e)).ok();
    let body = read_body(&args.body).map_err(|e| problems.push(e)).ok();
    if let Err(e) = check_from(&args.from) {
        problems.push(e);
    }
    let password = args.password_file.as_deref().map(read_password).transpose();
    let password = password.map_err(|e| problems.push(e)).ok().flatten();
    let ca_pem = args.ca_file.as_deref().map(read_ca).transpose();
    let ca_pem = ca_pem.map_err(|e| problems.push(e)).ok().flatten();

    if let (Some(list), Some(subject), Some(body)) = (&list, &subject, &body) {
        for (what, template) in [("subject", subject), ("body", body)] {
            for var in template.unknown_vars(&list.columns) {
                problems.push(format!(
                    "the {what} uses {{{{{var}}}}}, but the recipients file has no `{var}` column \
                     (it has: {})",
                    list.columns.join(", ")
                ));
            }
        }
    }

    match (list, subject, body) {
        (Some(list), Some(subject), Some(body)) if problems.is_empty() => {
            Ok(Inputs { list, subject, body, password, ca_pem, skipped_report })
        }
        _ => Err(format!("{}\nnothing was sent", problems.join("\n"))),
    }
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

fn read_body(path: &Path) -> Result<Template, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("{}: cannot read the body file: {e}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| format!("{}: the body is not UTF-8 text ({e})", path.display()))?;
    if text.trim().is_empty() {
        return Err(format!("{}: the body file is empty", path.display()));
    }
    Template::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn check_from(from: &str) -> Result<(), String> {
    if from.chars().any(char::is_control) {
        return Err("--from holds a line break or another control character".into());
    }
    mailer::parse_mailbox(from).map(|_| ()).map_err(|e| format!("--from {from:?}: {e}"))
}

fn read_password(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the password file: {e}", path.display()))?;
    let password = text.lines().next().unwrap_or("").to_owned();
    if password.is_empty() {
        return Err(format!("{}: the password file is empty", path.display()));
    }
    Ok(password)
}

fn read_ca(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the CA file: {e}", path.display()))?;
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
        fn put(&self, name: &str, text: &str) -> String {
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

    #[test]
    fn valid_inputs_load() {
        let f = Files::new();
        let list = f.put("list.csv", "email,name\na@example.com,Ann\n");
        let body = f.put("body.txt", "Hi {{name}} <{{email}}>\n");
        let inputs =
            load(&args(&["--subject", "For {{email}}", "--body", &body, "--recipients", &list]))
                .unwrap();
        let r = &inputs.list.recipients[0];
        assert_eq!(inputs.body.render(&r.vars), "Hi Ann <a@example.com>\n");
        assert_eq!(inputs.subject.render(&r.vars), "For a@example.com");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let f = Files::new();
        let list = f.put("list.txt", "a@example.com\nbroken\nalso broken@\n");
        let body = f.put("body.txt", "Hi {{name}}\n");
        let err = load(&args(&["--subject", "x\ry", "--body", &body, "--recipients", &list]))
            .unwrap_err();
        assert!(err.contains("2 invalid address(es)"), "{err}");
        assert!(err.contains("list.txt:2: "), "{err}");
        assert!(err.contains("list.txt:3: "), "{err}");
        assert!(err.contains("--subject holds a line break"), "{err}");
        assert!(err.ends_with("nothing was sent"), "{err}");
    }

    #[test]
    fn unknown_template_variables_stop_the_run() {
        let f = Files::new();
        let list = f.put("list.txt", "a@example.com\n");
        let body = f.put("body.txt", "Hi {{name}}\n");
        let err =
            load(&args(&["--subject", "s", "--body", &body, "--recipients", &list])).unwrap_err();
        assert!(err.contains("the body uses {{name}}"), "{err}");
    }

    #[test]
    fn skip_invalid_keeps_the_valid_addresses() {
        let f = Files::new();
        let list = f.put("list.txt", "a@example.com\nbroken\n");
        let body = f.put("body.txt", "Hi\n");
        let inputs = load(&args(&[
            "--subject",
            "s",
            "--body",
            &body,
            "--recipients",
            &list,
            "--skip-invalid",
        ]))
        .unwrap();
        assert_eq!(inputs.list.recipients.len(), 1);
        assert!(inputs.skipped_report.unwrap().contains("list.txt:2: "));
    }

    #[test]
    fn missing_files_and_empty_bodies_are_reported() {
        let f = Files::new();
        let body = f.put("body.txt", "  \n");
        let err =
            load(&args(&["--subject", "s", "--body", &body, "--recipients", "/nonexistent/list"]))
                .unwrap_err();
        assert!(err.contains("/nonexistent/list: cannot read the recipients file"), "{err}");
        assert!(err.contains("the body file is empty"), "{err}");
    }

    #[test]
    fn sender_password_and_ca_are_checked() {
        let f = Files::new();
        let list = f.put("list.txt", "a@example.com\n");
        let body = f.put("body.txt", "Hi\n");
        let pw = f.put("pw", "\n");
        let ca = f.put("ca.pem", "not a certificate\n");
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
    fn debug_never_shows_the_password() {
        let f = Files::new();
        let list = f.put("list.txt", "a@example.com\n");
        let body = f.put("body.txt", "Hi\n");
        let pw = f.put("pw", "s3cret-pw\n");
        let extra = ["--subject", "s", "--body", &body, "--recipients", &list];
        let inputs =
            load(&args(&[&extra[..], &["--username", "u", "--password-file", &pw]].concat()))
                .unwrap();
        assert_eq!(inputs.password.as_deref(), Some("s3cret-pw"));
        let shown = format!("{inputs:?}");
        assert!(shown.contains("<redacted>") && !shown.contains("s3cret"), "{shown}");
    }
}
