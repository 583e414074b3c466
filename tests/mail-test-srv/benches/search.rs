//! Search latency through the Mailpit API at 100,000 stored messages of about 1 KB, with the
//! inverted index, against the goal of 20 ms p50; and, for reference, the same kind of query
//! answered without the index (Boulder's `GET /api/messages?subject=`, a scan that parses
//! every message). Also prints how fast the store plus the background indexer take the
//! messages in, and the resident memory they cost.
//!
//! `cargo bench -p mail-test-srv --bench search [-- MESSAGES [REPEATS]]` (default 100,000
//! messages, 31 requests per query). The messages are generated from a fixed seed.

use std::time::{Duration, Instant};

use mail_test_srv::{Options, StoredMessage, TestServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Resident memory of this process, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A vocabulary of pronounceable made-up words, so that tokens repeat as in real text.
fn vocabulary(rng: &mut StdRng, n: usize) -> Vec<String> {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "da", "fe", "gu", "hi", "jo", "pa",
        "qu",
    ];
    (0..n)
        .map(|_| (0..rng.random_range(2..5)).map(|_| SYLLABLES[rng.random_range(0..16)]).collect())
        .collect()
}

fn words(rng: &mut StdRng, vocabulary: &[String], n: usize) -> String {
    let list: Vec<&str> =
        (0..n).map(|_| vocabulary[rng.random_range(0..vocabulary.len())].as_str()).collect();
    list.join(" ")
}

fn message(i: usize, rng: &mut StdRng, vocabulary: &[String]) -> StoredMessage {
    let to = format!("user{i}@example.test");
    let from = format!("sender{}@example.test", i % 500);
    let subject = format!("{} #{i}", words(rng, vocabulary, 5));
    let mut body = String::new();
    while body.len() < 800 {
        body.push_str(&words(rng, vocabulary, 12));
        body.push_str("\r\n");
    }
    let data = format!(
        "From: Sender {} <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
         Message-ID: <{i}.bench@example.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}",
        i % 500
    );
    StoredMessage::new(from, vec![to], data.into_bytes())
}

fn get(agent: &ureq::Agent, url: &str) -> String {
    agent.get(url).call().expect("HTTP").into_string().expect("body")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let numbers: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let count = numbers.first().copied().unwrap_or(100_000).max(1_000);
    let repeats = numbers.get(1).copied().unwrap_or(31).max(1);
    let server =
        TestServer::start(Options::default().with_max_messages(count + 1)).await.expect("start");
    let url = server.http_url().unwrap();
    let store = server.store();

    let mut rng = StdRng::seed_from_u64(7);
    let vocabulary = vocabulary(&mut rng, 3_000);
    let messages: Vec<StoredMessage> =
        (0..count).map(|i| message(i, &mut rng, &vocabulary)).collect();
    let bytes: usize = messages.iter().map(|m| m.data.len()).sum();
    let before = rss_kib();
    let started = Instant::now();
    for m in messages {
        store.insert(m).expect("insert");
    }
    let inserted = started.elapsed();
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(600)).build();
    // The first search waits until the indexer has caught up with every insert.
    get(&agent, &format!("{url}/api/v1/search?query=warmup"));
    let indexed = started.elapsed();
    let after = rss_kib();
    println!(
        "mail-test-srv search: {count} messages, {:.1} MiB of content (avg {} bytes)",
        bytes as f64 / 1048576.0,
        bytes / count
    );
    println!(
        "  ingest: store {:.0} msg/s; indexed {:.0} msg/s (store + background index, {:.2} s)",
        count as f64 / inserted.as_secs_f64(),
        count as f64 / indexed.as_secs_f64(),
        indexed.as_secs_f64()
    );
    println!(
        "  memory: +{:.1} MiB resident for {:.1} MiB stored ({:.2}x)",
        (after - before) as f64 / 1024.0,
        bytes as f64 / 1048576.0,
        (after - before) as f64 * 1024.0 / bytes as f64
    );

    let common = &vocabulary[0];
    let rare = &vocabulary[2_999];
    let phrase = format!("\"{} {}\"", vocabulary[10], vocabulary[11]);
    let queries = [
        format!("to:user{}@example.test", count / 2 + 17),
        "from:sender42@example.test".to_owned(),
        format!("subject:{common}"),
        rare.clone(),
        phrase,
        "example.test".to_owned(),
        format!("subject:#{} -from:sender1", count - 3),
    ];
    println!(
        "  query (through GET /api/v1/search, {repeats} runs)       matches    p50 ms   p90 ms"
    );
    let mut all = Vec::new();
    let mut subject_p50 = Duration::ZERO;
    for q in &queries {
        let path = format!("{url}/api/v1/search?query={}&limit=50", encode(q));
        let body = get(&agent, &path);
        let matches = serde_json::from_str::<serde_json::Value>(&body).unwrap()["messages_count"]
            .as_u64()
            .unwrap_or(0);
        let mut times: Vec<Duration> = (0..repeats)
            .map(|_| {
                let t = Instant::now();
                get(&agent, &path);
                t.elapsed()
            })
            .collect();
        times.sort();
        all.extend_from_slice(&times);
        if q.starts_with("subject:") && subject_p50.is_zero() {
            subject_p50 = percentile(&times, 0.5);
        }
        println!(
            "  {q:<52} {matches:>8} {:>9.2} {:>8.2}",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.9))
        );
    }
    all.sort();
    let p50 = percentile(&all, 0.5);
    println!(
        "  all queries: p50 {:.2} ms, p90 {:.2} ms; goal p50 <= 20 ms: {} ({:.2}x of the goal)",
        ms(p50),
        ms(percentile(&all, 0.9)),
        if p50 <= Duration::from_millis(20) { "met" } else { "MISSED" },
        ms(p50) / 20.0
    );

    // Without the index: the Boulder listing filters by subject by parsing every message.
    let t = Instant::now();
    let scanned = get(&agent, &format!("{url}/count?subject={}", encode(common)));
    let scan = t.elapsed();
    println!(
        "  reference without the index: GET /count?subject={common} (a scan) {:.1} ms -> {} \
         deliveries; the index answers subject:{common} {:.0}x faster",
        ms(scan),
        scanned.trim(),
        ms(scan) / ms(subject_p50).max(1e-3)
    );
    server.shutdown().await;
}
