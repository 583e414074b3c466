//! What the search index costs per message, by kind of message: stores MESSAGES messages of
//! one kind through [`Store::insert`] and times until a search has seen them all (a search
//! waits for the background indexer to catch up), so the figure is the indexer's, whose
//! thread is the slower of the two.
//!
//! `cargo bench -p mail-test-srv --bench indexer [-- MESSAGES [KIND]]` (default 20,000 of each
//! kind). Kinds: `smtp-source` (what `smtp-source -l 1000` sends: the `vs_smtp_sink` load),
//! `plain` (a plain-text message as lettre or smtplib sends it), `multipart` (text and HTML
//! alternatives, which take the full MIME parse), `attachment` (text and a base64 PDF).
//!
//! Instruction counts are steadier than time on a shared machine: run one kind under
//! `valgrind --tool=callgrind --separate-threads=yes` with N and with 2N messages and divide
//! the difference in the indexer thread's total (the `mail-test-srv-index` thread's file) by N;
//! start-up cancels out.

use std::time::{Duration, Instant};

use mail_test_srv::{Store, StoredMessage};

const KINDS: [&str; 4] = ["smtp-source", "plain", "multipart", "attachment"];

fn content(kind: &str, i: usize) -> String {
    let words = "the quick brown fox jumps over the lazy dog, and Grüße from the café";
    match kind {
        "smtp-source" => {
            let mut m = format!(
                "From: <a@x.test>\r\nTo: <b@x.test>\r\nDate: Tue,  1 Dec 2026 22:12:22 +0000 \
                 (UTC)\r\nMessage-Id: <41a7.{i:04}.0001@vm>\r\n\r\n"
            );
            for line in 0..13 {
                m.push_str(&format!("{}{}\r\n", line % 10, "X".repeat(79)));
            }
            m
        }
        "plain" => format!(
            "From: Sender {n} <sender{n}@example.test>\r\nTo: user{i}@example.test\r\n\
             Subject: Your report #{i} is ready\r\nDate: Tue, 01 Dec 2026 22:12:22 -0000\r\n\
             Message-ID: <{i}.plain@example.test>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
             {}\r\n",
            [words; 12].join("\r\n"),
            n = i % 50
        ),
        "multipart" => format!(
            "From: Sender <s@example.test>\r\nTo: user{i}@example.test\r\nSubject: Report #{i}\r\n\
             Message-ID: <{i}.mp@example.test>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n--b1\r\n\
             Content-Type: text/html; charset=utf-8\r\n\r\n<p>{}</p>\r\n--b1--\r\n",
            [words; 6].join("\r\n"),
            [words; 6].join("<br>\r\n")
        ),
        "attachment" => format!(
            "From: s@example.test\r\nTo: user{i}@example.test\r\nSubject: Invoice #{i}\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b2\"\r\n\r\n--b2\r\n\
             Content-Type: text/plain\r\n\r\n{words}\r\n--b2\r\n\
             Content-Type: application/pdf; name=\"invoice-{i}.pdf\"\r\n\
             Content-Disposition: attachment; filename=\"invoice-{i}.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b2--\r\n",
            "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n".repeat(10)
        ),
        _ => unreachable!("kinds are checked in main"),
    }
}

/// Seconds from the first insert until a search sees every message.
fn run(kind: &str, count: usize) -> Duration {
    let store = Store::new(count + 1);
    let messages: Vec<StoredMessage> = (0..count)
        .map(|i| {
            let to = vec![format!("user{i}@example.test")];
            StoredMessage::new("a@x.test".into(), to, content(kind, i).into_bytes())
        })
        .collect();
    let started = Instant::now();
    for m in messages {
        store.insert(m).expect("insert");
    }
    let (found, _) = store.search("a@x.test", 0, 1);
    assert_eq!(found, count, "every message is indexed before the search answers");
    started.elapsed()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let count = args.first().and_then(|a| a.parse().ok()).unwrap_or(20_000usize).max(1);
    let kinds: Vec<&str> = match args.get(1) {
        Some(kind) if KINDS.contains(&kind.as_str()) => vec![kind.as_str()],
        Some(kind) => panic!("unknown kind {kind:?}: one of {KINDS:?}"),
        None => KINDS.to_vec(),
    };
    println!("mail-test-srv indexer: {count} messages of each kind, store + index");
    for kind in kinds {
        let bytes = content(kind, count / 2).len();
        let elapsed = run(kind, count);
        println!(
            "  {kind:<12} {bytes:>5} bytes  {:>6.2} us/message  {:>8.0} messages/s",
            elapsed.as_secs_f64() * 1e6 / count as f64,
            count as f64 / elapsed.as_secs_f64()
        );
    }
}
