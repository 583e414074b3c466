//! Pins how lettre 0.11.23 reports each fault, through the mailer's single `classify`: a lettre
//! upgrade that changes a mapping (EOF is only recognisable by the text "incomplete response")
//! fails here instead of silently turning a reconnect into a permanent failure.

mod common;

use std::time::Duration;

use common::{Action, Scripted};
use lettre::Address;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::Mail;
use lettre::transport::smtp::extension::ClientId;
use mailer::{Error, Fault, Stage, classify};

async fn connect(port: u16) -> Result<AsyncSmtpConnection, lettre::transport::smtp::Error> {
    AsyncSmtpConnection::connect_tokio1(
        ("127.0.0.1", port),
        Some(Duration::from_secs(2)),
        &ClientId::Domain("client.test".into()),
        None,
        None,
    )
    .await
}

/// The lettre error for a MAIL command the scripted server answers with `action`.
async fn mail_error(action: Action) -> lettre::transport::smtp::Error {
    let srv =
        Scripted::start(move |s| if s.stage == "mail" { action.clone() } else { Action::Ok }).await;
    let mut conn = connect(srv.port()).await.unwrap();
    let from: Address = "a@example.com".parse().unwrap();
    conn.command(Mail::new(Some(from), vec![])).await.unwrap_err()
}

#[tokio::test]
async fn eof_is_lettres_incomplete_response() {
    let e = mail_error(Action::Close).await;
    assert!(e.to_string().contains("incomplete response"), "{e}");
    assert_eq!(classify(&e), Fault::Eof);
    let err = Error::from_lettre(Stage::Mail, &e);
    assert!(err.needs_reconnect() && !err.is_permanent());
}

#[tokio::test]
async fn eof_before_the_greeting_is_eof_too() {
    let srv = Scripted::start(|_| Action::Close).await;
    let e = connect(srv.port()).await.err().expect("connect should fail");
    assert_eq!(classify(&e), Fault::Eof, "{e}");
}

#[tokio::test]
async fn a_421_reply_is_service_closing_with_its_text() {
    let e = mail_error(Action::ReplyClose("421 4.4.2 srv Error: timeout exceeded".into())).await;
    assert_eq!(classify(&e), Fault::ServiceClosing, "{e}");
    let err = Error::from_lettre(Stage::Mail, &e);
    assert_eq!(err.code(), Some(421));
    assert!(err.needs_reconnect());
    assert!(err.to_string().contains("timeout exceeded"), "{err}");
}

#[tokio::test]
async fn a_multi_line_421_is_service_closing() {
    let e = mail_error(Action::ReplyClose("421-4.4.2 first\r\n421 4.4.2 second".into())).await;
    assert_eq!(classify(&e), Fault::ServiceClosing, "{e}");
}

#[tokio::test]
async fn a_reset_is_reset() {
    let e = mail_error(Action::Reset).await;
    assert_eq!(classify(&e), Fault::Reset, "{e}");
}

#[tokio::test]
async fn other_4xx_is_transient_and_5xx_permanent() {
    let e = mail_error(Action::Reply("451 4.3.0 try later".into())).await;
    assert_eq!(classify(&e), Fault::Transient, "{e}");
    let err = Error::from_lettre(Stage::Mail, &e);
    assert!(err.is_retryable() && !err.needs_reconnect() && !err.is_permanent());
    let e = mail_error(Action::Reply("553 5.1.8 bad sender".into())).await;
    assert_eq!(classify(&e), Fault::Permanent, "{e}");
    let err = Error::from_lettre(Stage::Mail, &e);
    assert!(err.is_permanent() && err.is_bad_address());
    assert_eq!(err.code(), Some(553));
}

#[tokio::test]
async fn nothing_listening_is_refused() {
    let port = common::unused_port();
    let e = connect(port).await.err().expect("connect should fail");
    assert_eq!(classify(&e), Fault::Refused, "{e}");
}

#[tokio::test]
async fn writing_after_the_server_closed_is_eof_or_broken_pipe() {
    let srv = Scripted::start(|s| if s.stage == "mail" { Action::Reset } else { Action::Ok }).await;
    let mut conn = connect(srv.port()).await.unwrap();
    let from: Address = "a@example.com".parse().unwrap();
    let _ = conn.command(Mail::new(Some(from.clone()), vec![])).await.unwrap_err();
    // The socket is dead now; the next commands fail with a reconnect fault, never a
    // permanent one.
    for _ in 0..3 {
        let e = conn.command(Mail::new(Some(from.clone()), vec![])).await.unwrap_err();
        assert!(classify(&e).needs_reconnect(), "{e} -> {:?}", classify(&e));
    }
}
