//! `{{name}}` substitution in the subject and body. Parsed once and checked against the
//! recipients file's columns before anything is sent, so a typo such as `{{emial}}` stops the
//! run instead of going out to every customer.

use std::collections::BTreeMap;

/// A parsed template: literal text and `{{variable}}` slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(String),
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
            parts.push(Part::Var(name.to_ascii_lowercase()));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The variables the template uses that are not in `columns`.
    pub fn unknown_vars<'a>(&'a self, columns: &[String]) -> Vec<&'a str> {
        let mut unknown: Vec<&str> = Vec::new();
        for part in &self.parts {
            if let Part::Var(name) = part
                && !columns.contains(name)
                && !unknown.contains(&name.as_str())
            {
                unknown.push(name);
            }
        }
        unknown
    }

    /// The text for one recipient. Variables missing from `vars` render empty (they were
    /// checked with [`Template::unknown_vars`] before sending).
    pub fn render(&self, vars: &BTreeMap<String, String>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Var(name) => out.push_str(vars.get(name).map_or("", String::as_str)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn substitutes_email_and_columns() {
        let t = Template::parse("Hello {{name}},\nyour address {{ Email }} is on plan {{plan}}.")
            .unwrap();
        let v = vars(&[("email", "a@example.com"), ("name", "Alice"), ("plan", "pro")]);
        assert_eq!(t.render(&v), "Hello Alice,\nyour address a@example.com is on plan pro.");
    }

    #[test]
    fn text_without_variables_is_unchanged() {
        let text = "a { b } c {x} }} d";
        let t = Template::parse(text).unwrap();
        assert_eq!(t.render(&BTreeMap::new()), text);
    }

    #[test]
    fn unknown_variables_are_found_before_sending() {
        let t = Template::parse("{{email}} {{emial}} {{name}} {{emial}}").unwrap();
        let columns = vec!["email".to_owned()];
        assert_eq!(t.unknown_vars(&columns), ["emial", "name"]);
        assert!(Template::parse("{{EMAIL}}").unwrap().unknown_vars(&columns).is_empty());
    }

    #[test]
    fn unclosed_or_empty_slots_are_errors() {
        assert!(Template::parse("Hi {{name").unwrap_err().contains("never closed"));
        assert!(Template::parse("Hi {{}}").is_err());
        assert!(Template::parse("Hi {{a b}}").is_err());
    }

    #[test]
    fn substituted_values_are_not_parsed_again() {
        let t = Template::parse("{{name}}").unwrap();
        assert_eq!(t.render(&vars(&[("name", "{{email}}")])), "{{email}}");
    }
}
