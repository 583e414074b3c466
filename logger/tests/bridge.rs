//! The tracing and `log` bridges, each under `tracing::subscriber::with_default` or called
//! directly: no global subscriber or logger is installed, so these run in parallel. (Every
//! subscriber here wants every level: tracing caches a callsite's interest across the scoped
//! subscribers of one process, so a filtering subscriber lives alone in
//! `tracing_logger_filter.rs`.)

use std::sync::{Arc, Mutex};

use logger::{Level, LogAdapter, Logger, Mock, TracingLayer, TracingLogger};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

fn layered(mock: &Mock) -> impl tracing::Subscriber + Send + Sync + use<> {
    tracing_subscriber::registry().with(TracingLayer::new(Arc::new(mock.clone())))
}

#[test]
fn tracing_levels_map_to_the_four_levels() {
    let mock = Mock::new();
    tracing::subscriber::with_default(layered(&mock), || {
        tracing::error!(target: "t", "e");
        tracing::warn!(target: "t", "w");
        tracing::info!(target: "t", "i");
        tracing::debug!(target: "t", "d");
        tracing::trace!(target: "t", "tr");
    });
    assert_eq!(
        mock.get_all(),
        [
            "ERR: e target=t",
            "WARNING: w target=t",
            "INFO: i target=t",
            "DEBUG: d target=t",
            "DEBUG: tr target=t"
        ]
    );
}

#[test]
fn message_and_fields_become_a_record() {
    let mock = Mock::new();
    let err = std::io::Error::other("reset by peer");
    tracing::subscriber::with_default(layered(&mock), || {
        tracing::warn!(
            target: "smtp",
            code = 421,
            attempt = 2u64,
            ok = false,
            ratio = 0.5,
            peer = "127.0.0.1:25",
            dbg = ?Some(3),
            error = &err as &(dyn std::error::Error + 'static),
            "server said {}",
            "busy\nforged"
        );
    });
    assert_eq!(
        mock.get_all(),
        [
            r#"WARNING: server said busy\nforged code=421 attempt=2 ok=false ratio=0.5 peer=127.0.0.1:25 dbg=Some(3) error="reset by peer" target=smtp"#
        ]
    );
    let rec = &mock.records()[0];
    assert_eq!(rec.level, Level::Warning);
    assert_eq!(rec.message, "server said busy\nforged");
    assert_eq!(rec.field("code"), Some("421"));
    assert_eq!(rec.field("target"), Some("smtp"));
}

#[test]
fn events_below_the_logger_threshold_are_not_formatted() {
    struct Boom;
    impl std::fmt::Debug for Boom {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("formatted an event the logger does not want")
        }
    }
    let mock = Mock::new();
    let sink: Arc<dyn Logger> =
        Arc::new(logger::Fanout::new().with(Arc::new(mock.clone()), Level::Info));
    let subscriber = tracing_subscriber::registry().with(TracingLayer::new(sink));
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!(v = ?Boom, "no");
        tracing::info!("yes");
    });
    assert_eq!(mock.get_all(), ["INFO: yes target=bridge"]);
}

#[test]
fn the_layer_does_not_filter_for_other_layers() {
    // A logger at Info next to a layer that wants everything: Debug still reaches the other.
    let mock = Mock::new();
    let seen = Seen::default();
    let sink: Arc<dyn Logger> =
        Arc::new(logger::Fanout::new().with(Arc::new(mock.clone()), Level::Info));
    let subscriber =
        tracing_subscriber::registry().with(TracingLayer::new(sink)).with(seen.clone());
    tracing::subscriber::with_default(subscriber, || {
        tracing::debug!(target: "t", "detail");
        tracing::info!(target: "t", "news");
    });
    assert_eq!(mock.get_all(), ["INFO: news target=t"]);
    assert_eq!(*seen.0.lock().unwrap(), ["DEBUG t message=detail", "INFO t message=news"]);
}

#[test]
fn events_from_other_threads_and_tasks_arrive() {
    let mock = Mock::new();
    let subscriber = Arc::new(layered(&mock));
    std::thread::scope(|s| {
        for t in 0..4 {
            let subscriber = Arc::clone(&subscriber);
            s.spawn(move || {
                tracing::subscriber::with_default(subscriber, || {
                    for i in 0..50 {
                        tracing::info!(thread = t, i, "tick");
                    }
                });
            });
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    tracing::subscriber::with_default(Arc::clone(&subscriber), || {
        rt.block_on(async {
            let tasks: Vec<_> = (0..10)
                .map(|n| tokio::spawn(async move { tracing::info!(task = n, "from a task") }))
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        })
    });
    assert_eq!(mock.get_all_matching(r"^INFO: tick thread=\d i=\d+ target=bridge$").len(), 200);
    assert_eq!(mock.get_all_matching(r"^INFO: from a task task=\d target=bridge$").len(), 10);
}

/// Records what reaches a tracing subscriber.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> Layer<S> for Seen {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct V(String);
        impl Visit for V {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={:?}", field.name(), value));
            }
        }
        let mut v = V(format!("{} {}", event.metadata().level(), event.metadata().target()));
        event.record(&mut v);
        self.0.lock().unwrap().push(v.0);
    }
}

#[test]
fn tracing_logger_emits_events_with_the_shared_text() {
    let seen = Seen::default();
    let subscriber = tracing_subscriber::registry().with(seen.clone());
    tracing::subscriber::with_default(subscriber, || {
        let log = TracingLogger::new(Level::Info);
        logger::warning!(log, "retry"; attempt = 3, reply = "421 busy");
        log.audit_err("denied\nforged");
        log.debug("dropped by the threshold");
        assert!(log.enabled(Level::Info) && !log.enabled(Level::Debug));
    });
    assert_eq!(
        *seen.0.lock().unwrap(),
        [
            r#"WARN logger::bridge message=retry attempt=3 reply="421 busy""#,
            r#"ERROR logger::bridge message=[AUDIT] denied\nforged audit=true"#,
        ]
    );
}

#[test]
fn tracing_logger_and_layer_together_do_not_loop() {
    let mock = Mock::new();
    tracing::subscriber::with_default(layered(&mock), || {
        TracingLogger::new(Level::Debug).info("once");
        tracing::info!(target: "svc", "direct");
    });
    assert_eq!(mock.get_all(), ["INFO: direct target=svc"]);
}

#[test]
fn log_crate_records_reach_the_logger() {
    let mock = Mock::new();
    let sink: Arc<dyn Logger> =
        Arc::new(logger::Fanout::new().with(Arc::new(mock.clone()), Level::Info));
    let adapter = LogAdapter::new(sink);
    let record = |level, msg: &str| {
        log::Log::log(
            &adapter,
            &log::Record::builder()
                .level(level)
                .target("lettre::transport")
                .args(format_args!("{msg}"))
                .build(),
        );
    };
    record(log::Level::Error, "e");
    record(log::Level::Warn, "w");
    record(log::Level::Info, "i\nforged");
    record(log::Level::Debug, "d");
    record(log::Level::Trace, "t");
    assert_eq!(
        mock.get_all(),
        [
            "ERR: e target=lettre::transport",
            "WARNING: w target=lettre::transport",
            r"INFO: i\nforged target=lettre::transport",
        ]
    );
    let meta = log::Metadata::builder().level(log::Level::Debug).target("x").build();
    assert!(!log::Log::enabled(&adapter, &meta));
}

#[test]
fn span_fields_follow_the_event_fields_outermost_span_first() {
    let mock = Mock::new();
    tracing::subscriber::with_default(layered(&mock), || {
        let request = tracing::info_span!("request", request_id = %"r-7", user = "alice");
        let _request = request.enter();
        let send =
            tracing::info_span!("send", peer = "127.0.0.1:25", attempt = tracing::field::Empty);
        let _send = send.enter();
        tracing::info!(target: "smtp", code = 250, "sent");
        // A value recorded later joins the span's fields in its declared place.
        send.record("attempt", 2);
        tracing::warn!(target: "smtp", "retry");
    });
    assert_eq!(
        mock.get_all(),
        [
            "INFO: sent code=250 request_id=r-7 user=alice peer=127.0.0.1:25 target=smtp",
            "WARNING: retry request_id=r-7 user=alice peer=127.0.0.1:25 attempt=2 target=smtp",
        ]
    );
    let rec = &mock.records()[0];
    let keys: Vec<&str> = rec.fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["code", "request_id", "user", "peer", "target"]);
}

#[test]
fn instrumented_functions_and_explicit_parents_carry_their_spans() {
    #[tracing::instrument(skip_all, fields(request_id = %id))]
    fn handle(id: u32) {
        tracing::info!(target: "svc", "handled");
    }
    let mock = Mock::new();
    tracing::subscriber::with_default(layered(&mock), || {
        handle(42);
        let detached = tracing::info_span!("job", job = 9);
        tracing::info!(target: "svc", parent: &detached, "explicit parent");
        tracing::info!(target: "svc", parent: None, "no parent");
        // A span with no fields adds nothing; its parent's fields still come through.
        let outer = tracing::info_span!("outer", tenant = "t1").entered();
        let bare = tracing::info_span!("bare").entered();
        tracing::info!(target: "svc", "nested");
        drop((bare, outer));
    });
    assert_eq!(
        mock.get_all(),
        [
            "INFO: handled request_id=42 target=svc",
            "INFO: explicit parent job=9 target=svc",
            "INFO: no parent target=svc",
            "INFO: nested tenant=t1 target=svc",
        ]
    );
}

#[test]
fn many_fields_across_spans_all_arrive_in_order() {
    let mock = Mock::new();
    tracing::subscriber::with_default(layered(&mock), || {
        let _a = tracing::info_span!("a", a1 = 1, a2 = 2, a3 = 3, a4 = 4, a5 = 5, a6 = 6).entered();
        let _b = tracing::info_span!("b", b1 = 1, b2 = 2, b3 = 3, b4 = 4, b5 = 5, b6 = 6).entered();
        tracing::info!(target: "t", e1 = 1, e2 = 2, e3 = 3, e4 = 4, e5 = 5, e6 = 6, "many");
    });
    let rec = &mock.records()[0];
    let keys: Vec<&str> = rec.fields.iter().map(|(k, _)| k.as_str()).collect();
    let mut expected: Vec<String> =
        ["e", "a", "b"].iter().flat_map(|p| (1..=6).map(move |i| format!("{p}{i}"))).collect();
    expected.push("target".into());
    assert_eq!(keys, expected);
}

#[test]
fn tracing_values_keep_their_types_in_json_lines() {
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let out = Shared::default();
    let json = logger::Stdout::with_writer(out.clone(), "svc", Level::Info)
        .with_format(logger::StdoutFormat::Json);
    let subscriber = tracing_subscriber::registry().with(TracingLayer::new(Arc::new(json)));
    tracing::subscriber::with_default(subscriber, || {
        let _span = tracing::info_span!("req", request_id = 7, user = "alice").entered();
        tracing::info!(target: "smtp", code = 421, ok = true, ratio = 0.5, peer = "10.0.0.1",
            as_text = "42", dbg = ?Some(3), "busy");
    });
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).expect(&text);
    assert_eq!(v["message"], "busy");
    assert_eq!((&v["code"], &v["ok"], &v["ratio"]), (&421.into(), &true.into(), &0.5.into()));
    assert_eq!(
        (&v["peer"], &v["as_text"], &v["dbg"]),
        (&"10.0.0.1".into(), &"42".into(), &"Some(3)".into())
    );
    // Span fields are kept as text, and a number in them is still a number.
    assert_eq!(
        (&v["request_id"], &v["user"], &v["target"]),
        (&7.into(), &"alice".into(), &"smtp".into())
    );
}
