//! What one recipient gets: the subject, bodies and extra headers as templates bound to the
//! recipients file's columns, rendered per row into a [`mailer::Email`].

use csv::StringRecord;

use crate::recipients::Columns;
use crate::template::{Bound, Escape, Template};

/// The parsed templates of a campaign, before they meet the recipients file.
#[derive(Debug, Clone)]
pub struct Templates {
    /// `--subject`.
    pub subject: Template,
    /// `--body`.
    pub text: Template,
    /// `--html-body`.
    pub html: Option<Template>,
    /// `--header`, in order: the name, the value template.
    pub headers: Vec<(String, Template)>,
}

/// The templates bound to the columns: ready to render for any row.
#[derive(Debug, Clone)]
pub struct Message {
    subject: Bound,
    text: Bound,
    html: Option<Bound>,
    headers: Vec<(String, Bound)>,
    email: usize,
}

/// One recipient's message, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The address.
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The text body.
    pub text: String,
    /// The HTML body.
    pub html: Option<String>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
}

impl Rendered {
    /// The mailer's message.
    pub fn into_email(self) -> mailer::Email {
        let mut email = mailer::Email::new(self.to, self.subject).with_text(self.text);
        if let Some(html) = self.html {
            email = email.with_html(html);
        }
        for (name, value) in self.headers {
            email = email.with_header(name, value);
        }
        email
    }
}

impl Message {
    /// Binds every template to `columns`. The error has one sentence per variable that has no
    /// column.
    pub fn bind(t: &Templates, columns: &Columns) -> Result<Message, Vec<String>> {
        let mut problems = Vec::new();
        let mut bind = |what: &str, template: &Template| match template.bind(columns) {
            Ok(bound) => Some(bound),
            Err(unknown) => {
                for var in unknown {
                    problems.push(format!(
                        "the {what} uses {{{{{var}}}}}, but the recipients file has no `{var}` \
                         column (it has: {})",
                        columns.names.join(", ")
                    ));
                }
                None
            }
        };
        let subject = bind("subject", &t.subject);
        let text = bind("body", &t.text);
        let html = t.html.as_ref().map(|h| bind("HTML body", h));
        let headers: Vec<_> = t
            .headers
            .iter()
            .map(|(name, v)| (name.clone(), bind(&format!("header {name}"), v)))
            .collect();
        match (subject, text, html) {
            (Some(subject), Some(text), html @ (None | Some(Some(_)))) if problems.is_empty() => {
                Ok(Message {
                    subject,
                    text,
                    html: html.flatten(),
                    headers: headers.into_iter().filter_map(|(n, b)| Some((n, b?))).collect(),
                    email: columns.email,
                })
            }
            _ => Err(problems),
        }
    }

    /// The columns used where a line break cannot go: the subject and the headers.
    pub fn single_line_columns(&self) -> Vec<usize> {
        let mut columns: Vec<usize> = self.subject.columns().collect();
        for (_, value) in &self.headers {
            columns.extend(value.columns());
        }
        columns.sort_unstable();
        columns.dedup();
        columns
    }

    /// The message for one row.
    pub fn render(&self, row: &StringRecord) -> Rendered {
        Rendered {
            to: row.get(self.email).unwrap_or("").to_owned(),
            subject: self.subject.render(row, Escape::None),
            text: self.text.render(row, Escape::None),
            html: self.html.as_ref().map(|h| h.render(row, Escape::Html)),
            headers: self
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), value.render(row, Escape::None)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates(headers: &[(&str, &str)]) -> Templates {
        Templates {
            subject: Template::parse("News for {{name}}").unwrap(),
            text: Template::parse("Hi {{name}} <{{email}}>\n").unwrap(),
            html: Some(Template::parse("<p>Hi {{name}}</p>").unwrap()),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), Template::parse(v).unwrap()))
                .collect(),
        }
    }

    fn columns(names: &[&str]) -> Columns {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        Columns { email: names.iter().position(|n| n == "email").unwrap(), names }
    }

    #[test]
    fn renders_every_part_for_a_row() {
        let t = templates(&[("List-Unsubscribe", "<https://example.com/u/{{email}}>")]);
        let m = Message::bind(&t, &columns(&["email", "name", "plan"])).unwrap();
        let r = m.render(&StringRecord::from(vec!["a@x.test", "Ann & Co", "pro"]));
        assert_eq!(r.to, "a@x.test");
        assert_eq!(r.subject, "News for Ann & Co");
        assert_eq!(r.text, "Hi Ann & Co <a@x.test>\n");
        assert_eq!(r.html.as_deref(), Some("<p>Hi Ann &amp; Co</p>"));
        assert_eq!(
            r.headers,
            [("List-Unsubscribe".into(), "<https://example.com/u/a@x.test>".into())]
        );
        assert_eq!(m.single_line_columns(), [0, 1], "subject and header columns");
    }

    #[test]
    fn every_unknown_variable_is_reported() {
        let t = templates(&[("X-Plan", "{{plan}}")]);
        let err = Message::bind(&t, &columns(&["email"])).unwrap_err();
        assert_eq!(err.len(), 4, "{err:#?}");
        assert!(err[0].starts_with("the subject uses {{name}}"), "{err:#?}");
        assert!(err[3].starts_with("the header X-Plan uses {{plan}}"), "{err:#?}");
    }
}
