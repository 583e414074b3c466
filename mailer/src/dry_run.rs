//! [`DryRunMailer`]: validates and builds every message like [`crate::SmtpMailer`] (reading
//! attachment files too), logs what it would send, and sends nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use logger::Logger;

use crate::message::{Sender, parse_mailbox, prepare};
use crate::{BoxFuture, Email, Error, Mailer, Sent, events};

/// A [`Mailer`] that sends nothing: for `--dry-run` and for tests of code that takes a
/// `Mailer`. Addresses are validated exactly as [`crate::SmtpMailer`] does, so a dry run
/// finds the same bad input a real run would.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use mailer::Mailer;
/// let log = logger::Mock::new();
/// let m = mailer::DryRunMailer::new("noreply@example.com", Arc::new(log.clone()));
/// let sent = m.send_mail(&["a@example.com"], "hi", "body").await.unwrap();
/// assert!(sent.message_id.ends_with("@example.com>"));
/// assert_eq!(log.get_all_matching("event=dry_run").len(), 1);
/// # });
/// ```
pub struct DryRunMailer {
    from: Result<Sender, Error>,
    log: Arc<dyn Logger>,
    count: AtomicU64,
}

impl DryRunMailer {
    /// A dry-run mailer sending "as" `from`; an invalid `from` is returned by every send.
    pub fn new(from: &str, log: Arc<dyn Logger>) -> Self {
        DryRunMailer { from: parse_mailbox(from).map(Sender::new), log, count: AtomicU64::new(0) }
    }

    /// How many messages it would have sent.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    async fn send(&self, email: &Email) -> Result<Sent, Error> {
        let from = self.from.as_ref().map_err(Clone::clone)?;
        let p = prepare(from, email).await?;
        self.count.fetch_add(1, Ordering::Relaxed);
        logger::info!(self.log, "dry run: message not sent";
            event = events::DRY_RUN, message_id = p.message_id, recipients = p.to.len(),
            bytes = p.wire.len());
        Ok(Sent { message_id: p.message_id, attempts: 0, possibly_duplicated: false })
    }
}

impl Mailer for DryRunMailer {
    fn send_message<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<Sent, Error>> {
        Box::pin(self.send(email))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            logger::info!(self.log, "closed"; event = events::CLOSED, server = "dry-run");
        })
    }
}
