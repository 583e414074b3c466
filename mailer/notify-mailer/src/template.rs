//! `{{name}}` substitution in the subject, bodies and headers. Parsed once and bound to the
//! recipients file's columns before anything is sent, so a typo such as `{{emial}}` stops the
//! run instead of going out to every customer.

use csv::StringRecord;

use crate::recipients::Columns;

/// A parsed template: literal text and `{{variable}}` slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part<String>>,
}

/// A template whose variables are column indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    parts: Vec<Part<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part<V> {
    Text(String),
    Var(V),
}

/// How substituted values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// As they are (plain text, subject, headers).
    None,
    /// With `&`, `<`, `>`, `"` and `'` as HTML entities, so a column value can never add
    /// markup to an HTML body.
    Html,
}

impl Template {
    /// Parses `text`. A `{{` without its `}}`, or an empty or odd name inside, is an error;
    /// names are matched ignoring case and surrounding spaces (`{{ Email }}` is `email`).
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| {
                format!(
                    "\"{{{{\" at offset {} is never closed with \"}}}}\"",
                    text.len() - rest.len() + start
                )
            })?;
            let name = after[..end].trim();
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-')
            {
                return Err(format!("{{{{{}}}}} is not a variable name", &after[..end]));
            }
            parts.push(Part::Var(name.to_lowercase()));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// Binds the variables to `columns`; the error lists the variables it has no column for.
    pub fn bind(&self, columns: &Columns) -> Result<Bound, Vec<String>> {
        let mut unknown: Vec<String> = Vec::new();
        let mut parts = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            match part {
                Part::Text(text) => parts.push(Part::Text(text.clone())),
                Part::Var(name) => match columns.index(name) {
                    Some(i) => parts.push(Part::Var(i)),
                    None if !unknown.contains(name) => unknown.push(name.clone()),
                    None => {}
                },
            }
        }
        if unknown.is_empty() { Ok(Bound { parts }) } else { Err(unknown) }
    }
}

impl Bound {
    /// The text for one recipient's row.
    pub fn render(&self, row: &StringRecord, escape: Escape) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Var(i) => {
                    let value = row.get(*i).unwrap_or("");
                    match escape {
                        Escape::None => out.push_str(value),
                        Escape::Html => push_html_escaped(&mut out, value),
                    }
                }
            }
        }
        out
    }

    /// The columns it uses.
    pub fn columns(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(i) => Some(*i),
            Part::Text(_) => None,
        })
    }
}

fn push_html_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(names: &[&str]) -> Columns {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let email = names.iter().position(|n| n == "email").unwrap();
        Columns { names, email }
    }

    #[test]
    fn substitutes_email_and_columns() {
        let t = Template::parse("Hello {{name}},\nyour address {{ Email }} is on plan {{plan}}.")
            .unwrap();
        let b = t.bind(&columns(&["name", "email", "plan"])).unwrap();
        let row = StringRecord::from(vec!["Alice", "a@example.com", "pro"]);
        assert_eq!(
            b.render(&row, Escape::None),
            "Hello Alice,\nyour address a@example.com is on plan pro."
        );
        assert_eq!(b.columns().collect::<Vec<_>>(), [0, 1, 2]);
    }

    #[test]
    fn text_without_variables_is_unchanged() {
        let text = "a { b } c {x} }} d";
        let b = Template::parse(text).unwrap().bind(&columns(&["email"])).unwrap();
        assert_eq!(b.render(&StringRecord::new(), Escape::None), text);
    }

    #[test]
    fn unknown_variables_are_found_before_sending() {
        let t = Template::parse("{{email}} {{emial}} {{name}} {{emial}}").unwrap();
        assert_eq!(t.bind(&columns(&["email"])).unwrap_err(), ["emial", "name"]);
        assert!(Template::parse("{{EMAIL}}").unwrap().bind(&columns(&["email"])).is_ok());
    }

    #[test]
    fn unclosed_or_empty_slots_are_errors() {
        assert!(Template::parse("Hi {{name").unwrap_err().contains("never closed"));
        assert!(Template::parse("Hi {{}}").is_err());
        assert!(Template::parse("Hi {{a b}}").is_err());
    }

    #[test]
    fn substituted_values_are_not_parsed_again() {
        let b = Template::parse("{{name}}").unwrap().bind(&columns(&["email", "name"])).unwrap();
        let row = StringRecord::from(vec!["a@x", "{{email}}"]);
        assert_eq!(b.render(&row, Escape::None), "{{email}}");
    }

    #[test]
    fn html_values_cannot_add_markup() {
        let b = Template::parse("<p>Hi {{name}}</p>").unwrap().bind(&columns(&["email", "name"]));
        let row = StringRecord::from(vec!["a@x", "<script>alert('x')</script> & \"co\""]);
        assert_eq!(
            b.unwrap().render(&row, Escape::Html),
            "<p>Hi &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;co&quot;</p>"
        );
    }
}
