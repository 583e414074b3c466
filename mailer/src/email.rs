//! [`Email`] and [`Attachment`]: what [`crate::Mailer::send_message`] sends.
//!
//! Building never fails: everything is checked when the message is sent, before any network
//! I/O (a bad address, header or content type, an unreadable attachment is a permanent
//! [`crate::Error`] and nothing is sent).

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A message: recipients, subject, a text and/or HTML body, attachments, extra headers.
///
/// Text and HTML together go out as `multipart/alternative`; with attachments the whole is
/// `multipart/mixed`. Every message carries `Date`, `Message-ID` and `MIME-Version: 1.0`.
///
/// ```
/// let email = mailer::Email::new("Alice <alice@example.com>", "Your invoice")
///     .with_text("Hello Alice,\nyour invoice is attached.\n")
///     .with_html("<p>Hello Alice,</p><p>your invoice is attached.</p>")
///     .with_reply_to("billing@example.com")
///     .with_header("List-Unsubscribe", "<https://example.com/u/alice>")
///     .with_header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
///     .with_attachment(mailer::Attachment::from_bytes("invoice.txt", "Total: 42 EUR\n"));
/// assert_eq!(email.recipients().count(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Email {
    pub(crate) to: Vec<String>,
    pub(crate) cc: Vec<String>,
    pub(crate) reply_to: Vec<String>,
    pub(crate) subject: String,
    pub(crate) text: Option<String>,
    pub(crate) html: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) attachments: Vec<Attachment>,
}

impl Email {
    /// A message to `to` (`addr@example.com` or `Name <addr@example.com>`) with `subject`.
    pub fn new(to: impl Into<String>, subject: impl Into<String>) -> Self {
        Email {
            to: vec![to.into()],
            cc: Vec::new(),
            reply_to: Vec::new(),
            subject: subject.into(),
            text: None,
            html: None,
            headers: Vec::new(),
            attachments: Vec::new(),
        }
    }

    /// The text message of [`crate::Mailer::send_mail`].
    pub(crate) fn text(to: &[&str], subject: &str, body: &str) -> Self {
        Email {
            to: to.iter().map(|t| (*t).to_owned()).collect(),
            text: Some(body.to_owned()),
            ..Email::new(String::new(), subject)
        }
    }

    /// Adds another `To` recipient.
    pub fn with_to(mut self, to: impl Into<String>) -> Self {
        self.to.push(to.into());
        self
    }

    /// Adds a `Cc` recipient (it gets the message too).
    pub fn with_cc(mut self, cc: impl Into<String>) -> Self {
        self.cc.push(cc.into());
        self
    }

    /// Adds a `Reply-To` address.
    pub fn with_reply_to(mut self, reply_to: impl Into<String>) -> Self {
        self.reply_to.push(reply_to.into());
        self
    }

    /// Sets the plain-text body. Line endings may be LF, CRLF or CR.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Sets the HTML body (sent as the preferred alternative to the text body, if any).
    pub fn with_html(mut self, html: impl Into<String>) -> Self {
        self.html = Some(html.into());
        self
    }

    /// Adds a header such as `List-Unsubscribe` or `List-Unsubscribe-Post` (RFC 8058). The
    /// name must be RFC 5322 `ftext` and not one the mailer writes itself (`From`, `To`,
    /// `Cc`, `Bcc`, `Reply-To`, `Subject`, `Date`, `Message-ID`, `MIME-Version`,
    /// `Content-*`, ...); the value must not hold CR, LF or other control characters
    /// (non-ASCII is encoded per RFC 2047). Each name at most once.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds an attachment.
    pub fn with_attachment(mut self, attachment: Attachment) -> Self {
        self.attachments.push(attachment);
        self
    }

    /// Every envelope recipient: `To` then `Cc`, as given.
    pub fn recipients(&self) -> impl Iterator<Item = &str> {
        self.to.iter().chain(&self.cc).map(String::as_str)
    }
}

/// A file attached to an [`Email`]: bytes in memory, or a path read when the message is
/// sent (before any network I/O; an unreadable file is a permanent error).
///
/// The content type defaults to one guessed from the file name's extension
/// (`application/octet-stream` when unknown). `text/*` attachments are sent with CRLF line
/// endings, as MIME requires of text; anything else is base64, byte for byte.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub(crate) filename: String,
    pub(crate) content_type: Option<String>,
    pub(crate) source: Source,
}

#[derive(Debug, Clone)]
pub(crate) enum Source {
    Bytes(Arc<[u8]>),
    Path(PathBuf),
}

impl Attachment {
    /// An attachment named `filename` holding `bytes` (cheap to clone afterwards).
    pub fn from_bytes(filename: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        let bytes: Vec<u8> = bytes.into();
        Attachment {
            filename: filename.into(),
            content_type: None,
            source: Source::Bytes(bytes.into()),
        }
    }

    /// The file at `path`, named by its last component; read at each send.
    pub fn from_path(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let filename = path.file_name().map(|n| n.to_string_lossy().into_owned());
        Attachment {
            filename: filename.unwrap_or_else(|| "attachment".to_owned()),
            content_type: None,
            source: Source::Path(path),
        }
    }

    /// Sets the MIME type (`application/pdf`, `text/csv; charset=utf-8`, ...).
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Sets the file name the recipient sees.
    pub fn with_filename(mut self, filename: impl Into<String>) -> Self {
        self.filename = filename.into();
        self
    }

    /// The content type given, or the one the file name suggests.
    pub(crate) fn content_type(&self) -> String {
        self.content_type.clone().unwrap_or_else(|| guess_content_type(&self.filename).to_owned())
    }
}

/// The MIME type for a file name's extension (a short list of what services attach).
fn guess_content_type(filename: &str) -> &'static str {
    let ext = Path::new(filename).extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "txt" | "log" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "ics" => "text/calendar; charset=utf-8",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_the_extension_unless_given() {
        assert_eq!(
            Attachment::from_bytes("a.PDF", b"x".to_vec()).content_type(),
            "application/pdf"
        );
        assert_eq!(
            Attachment::from_bytes("notes", b"x".to_vec()).content_type(),
            "application/octet-stream"
        );
        assert_eq!(
            Attachment::from_path("/tmp/report.csv").content_type(),
            "text/csv; charset=utf-8"
        );
        let given = Attachment::from_bytes("a.bin", b"x".to_vec()).with_content_type("image/webp");
        assert_eq!(given.content_type(), "image/webp");
        assert_eq!(Attachment::from_path("/var/tmp/r.txt").filename, "r.txt");
    }

    #[test]
    fn recipients_are_to_then_cc() {
        let e = Email::new("a@x.test", "s").with_to("b@x.test").with_cc("c@x.test");
        assert_eq!(e.recipients().collect::<Vec<_>>(), ["a@x.test", "b@x.test", "c@x.test"]);
    }
}
