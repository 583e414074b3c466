//! Accounting: what a run meant to deliver against what the server stored, as read from
//! `GET /api/messages`. Lost, duplicated and unknown deliveries are counted, never assumed.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Deliveries per recipient and per Message-ID, from the server's stored messages.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Deliveries (message x recipient) stored.
    pub deliveries: usize,
    /// Messages stored.
    pub messages: usize,
    /// Deliveries per recipient address.
    pub per_recipient: BTreeMap<String, usize>,
    /// Stored copies per Message-ID.
    pub per_message_id: BTreeMap<String, usize>,
    /// Stored messages without a Message-ID header.
    pub without_message_id: usize,
}

impl Tally {
    /// Counts the messages of a `/api/messages` listing.
    pub fn from_messages(messages: &[Value]) -> Tally {
        let mut tally = Tally { messages: messages.len(), ..Tally::default() };
        for message in messages {
            for to in message["to"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                tally.deliveries += 1;
                *tally.per_recipient.entry(to.to_owned()).or_default() += 1;
            }
            match message["message_id"].as_str() {
                Some(id) => *tally.per_message_id.entry(id.to_owned()).or_default() += 1,
                None => tally.without_message_id += 1,
            }
        }
        tally
    }

    /// Recipients of `expected` that received nothing.
    pub fn lost<'a>(&self, expected: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        expected
            .into_iter()
            .filter(|r| !self.per_recipient.contains_key(*r))
            .map(str::to_owned)
            .collect()
    }

    /// Deliveries beyond the first, per recipient, summed.
    pub fn duplicate_deliveries(&self) -> usize {
        self.per_recipient.values().map(|n| n - 1).sum()
    }

    /// Message-IDs stored more than once (the same message resent after a fault).
    pub fn repeated_message_ids(&self) -> BTreeSet<String> {
        self.per_message_id.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id.clone()).collect()
    }

    /// Recipients that got something but are not in `expected`.
    pub fn unexpected<'a>(&self, expected: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let expected: BTreeSet<&str> = expected.into_iter().collect();
        self.per_recipient.keys().filter(|r| !expected.contains(r.as_str())).cloned().collect()
    }
}

/// The number after `label` in a notify-mailer summary line such as `  sent         500`
/// or `421: 12` inside the faults line.
pub fn summary_number(summary: &str, label: &str) -> Option<u64> {
    summary.lines().find_map(|line| {
        let start = line.find(label)? + label.len();
        line[start..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lost_and_duplicated() {
        let messages: Vec<Value> = serde_json::from_str(
            r#"[{"to":["a@x"],"message_id":"<1@x>"},{"to":["a@x"],"message_id":"<1@x>"},
                {"to":["b@x","c@x"],"message_id":"<2@x>"},{"to":["z@x"]}]"#,
        )
        .unwrap();
        let t = Tally::from_messages(&messages);
        assert_eq!((t.messages, t.deliveries, t.without_message_id), (4, 5, 1));
        assert_eq!(t.lost(["a@x", "b@x", "d@x"]), ["d@x"]);
        assert_eq!(t.duplicate_deliveries(), 1);
        assert_eq!(t.repeated_message_ids().into_iter().collect::<Vec<_>>(), ["<1@x>"]);
        assert_eq!(t.unexpected(["a@x", "b@x", "c@x"]), ["z@x"]);
    }

    #[test]
    fn reads_summary_numbers() {
        let s =
            "  sent         500 (2 possibly delivered twice)\n  faults       421: 12, closed: 9\n";
        assert_eq!(summary_number(s, "sent"), Some(500));
        assert_eq!(summary_number(s, "421:"), Some(12));
        assert_eq!(summary_number(s, "closed:"), Some(9));
        assert_eq!(summary_number(s, "failed"), None);
    }
}
