//! SMTPUTF8 (RFC 6531) from our own mailer to mail-test-srv: the server advertises it, the
//! mailer (through lettre) declares `SMTPUTF8` on MAIL for a non-ASCII address, and the
//! addresses are stored in UTF-8. A server that did not see the declaration would have
//! answered `553 5.6.7`, so a stored message proves it was sent.

use std::sync::Arc;
use std::time::Duration;

use mail_test_srv::{Options, TestServer};
use mailer::{Config, SmtpMailer, Tls};

#[tokio::test]
async fn the_mailer_declares_smtputf8_for_non_ascii_addresses() {
    let srv = TestServer::start(Options::default()).await.unwrap();
    let config =
        Config::new("127.0.0.1", srv.smtp_addr().port(), "jürgen@bücher.test").with_tls(Tls::None);
    let mailer = SmtpMailer::new(config, Arc::new(logger::Mock::new()));
    mailer
        .send(&["δοκιμή@παράδειγμα.test", "plain@x.test"], "grüße", "körper\n")
        .await
        .expect("sent with SMTPUTF8");
    assert_eq!(srv.store().wait_for(2, Duration::from_secs(10)).await, Ok(2));
    let m = &srv.store().messages()[0];
    assert_eq!(m.from, "jürgen@bücher.test");
    assert_eq!(m.to, ["δοκιμή@παράδειγμα.test", "plain@x.test"]);
    assert_eq!(srv.store().count_to("δοκιμή@παράδειγμα.test"), 1);
    mailer.close().await;
}
