//! The send loop: one worker per connection takes the next recipient from a shared counter,
//! renders the message, sends it and reports the outcome to the collector, which updates the
//! progress display and keeps the result per recipient (for the failures and resume files).
//!
//! Stopping is two-staged, like most mail tools: the first Ctrl-C lets the messages in flight
//! finish and starts nothing new; the second abandons those too (they go to the resume file,
//! since whether the server took them is unknown).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use logger::Logger;
use mailer::Mailer;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::progress::{Counters, Progress};
use crate::recipients::Recipient;
use crate::template::Template;

/// What to send.
pub struct Job {
    /// Recipients in file order.
    pub recipients: Vec<Recipient>,
    /// Subject template.
    pub subject: Template,
    /// Body template.
    pub body: Template,
    /// Pause between two messages of one worker.
    pub sleep: Duration,
}

/// How one recipient's message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server accepted it (`possibly_duplicated`: after a fault that may have delivered an
    /// earlier copy).
    Sent {
        /// Whether an earlier attempt may have delivered it too.
        possibly_duplicated: bool,
    },
    /// It failed for good; the reason is the mailer's error text.
    Failed(String),
    /// Abandoned in flight by the second Ctrl-C: the server may or may not have it.
    Abandoned,
}

/// The stop signals: `stop` and `refused` start nothing new, `abort` abandons what is in
/// flight.
#[derive(Clone, Default)]
pub struct Stop {
    /// Set by the first Ctrl-C.
    pub stop: CancellationToken,
    /// Set by the second Ctrl-C.
    pub abort: CancellationToken,
    /// Set when the server refuses the credentials (a 5xx to AUTH): every further message
    /// would be refused the same way, and a burst of failed logins can lock the account.
    pub refused: CancellationToken,
}

impl Stop {
    /// Whether to start no new message.
    fn is_stopping(&self) -> bool {
        self.stop.is_cancelled() || self.refused.is_cancelled()
    }
}

impl Stop {
    /// Turns Ctrl-C (SIGINT) and SIGTERM into the two stop stages, logging each. The handlers
    /// are registered before this returns, and each stays registered, so a signal is never
    /// lost between the two stages.
    pub fn on_signals(&self, log: Arc<dyn Logger>) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let stop = self.clone();
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = interrupt.recv() => "Ctrl-C",
                _ = terminate.recv() => "SIGTERM",
            };
            logger::warning!(log, "{name}: finishing the messages in flight (again to abandon them)";
                event = "interrupted", signal = name);
            stop.stop.cancel();
            let name = tokio::select! {
                _ = interrupt.recv() => "Ctrl-C",
                _ = terminate.recv() => "SIGTERM",
            };
            logger::warning!(log, "{name} again: abandoning the messages in flight";
                event = "aborted", signal = name);
            stop.abort.cancel();
        });
        Ok(())
    }
}

/// Sends `job` through `mailers` (one worker each) until done or stopped. Returns the outcome
/// per recipient, in `job.recipients` order; `None` means never started.
pub async fn run(
    job: Arc<Job>,
    mailers: Vec<Arc<dyn Mailer>>,
    log: Arc<dyn Logger>,
    progress: &Progress,
    counters: Arc<Counters>,
    stop: Stop,
) -> Vec<Option<Outcome>> {
    let next = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut workers = Vec::new();
    for mailer in mailers {
        let worker = Worker {
            job: job.clone(),
            mailer,
            next: next.clone(),
            tx: tx.clone(),
            log: log.clone(),
            stop: stop.clone(),
        };
        workers.push(tokio::spawn(worker.run()));
    }
    // The workers hold the only senders now: the channel closes when the last one ends.
    drop(tx);

    let mut outcomes = vec![None; job.recipients.len()];
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + progress.interval(),
        progress.interval(),
    );
    loop {
        tokio::select! {
            received = rx.recv() => {
                let Some((index, outcome)) = received else { break };
                let counter = match &outcome {
                    Outcome::Sent { .. } => Some(&counters.sent),
                    Outcome::Failed(_) => Some(&counters.failed),
                    Outcome::Abandoned => None,
                };
                if let Some(counter) = counter {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                outcomes[index] = Some(outcome);
                progress.tick();
            }
            _ = ticker.tick(), if !progress.has_bar() => progress.line(&*log),
        }
    }
    for worker in workers {
        // A worker that panicked has already left its in-flight message "never started", in
        // the resume file: sending it again is the safe side.
        let _ = worker.await;
    }
    outcomes
}

struct Worker {
    job: Arc<Job>,
    mailer: Arc<dyn Mailer>,
    next: Arc<AtomicUsize>,
    tx: mpsc::UnboundedSender<(usize, Outcome)>,
    log: Arc<dyn Logger>,
    stop: Stop,
}

impl Worker {
    async fn run(self) {
        let job = &*self.job;
        let mut first = true;
        loop {
            if self.stop.is_stopping() {
                break;
            }
            // The recipient is claimed before the pause, so a worker whose list has run out
            // ends at once instead of sleeping once more; one claimed and then stopped during
            // the pause stays `None`, "not sent", and goes to the resume file.
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(recipient) = job.recipients.get(index) else { break };
            if !first && !job.sleep.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(job.sleep) => {}
                    _ = self.stop.stop.cancelled() => break,
                    _ = self.stop.refused.cancelled() => break,
                }
            }
            first = false;
            let subject = job.subject.render(&recipient.vars);
            let body = job.body.render(&recipient.vars);
            let to = [recipient.email.as_str()];
            let result = tokio::select! {
                // A send that has finished is recorded even when the abort came at the same
                // moment: reporting a delivered message as not sent would send it twice on
                // resume.
                biased;
                result = self.mailer.send_mail(&to, &subject, &body) => result,
                _ = self.stop.abort.cancelled() => {
                    let _ = self.tx.send((index, Outcome::Abandoned));
                    break;
                }
            };
            let outcome = match result {
                Ok(sent) => Outcome::Sent { possibly_duplicated: sent.possibly_duplicated },
                Err(e) => {
                    logger::err!(self.log, "message not sent"; event = "failed",
                        line = recipient.line, error = e);
                    if e.is_permanent() && e.stage() == Some(mailer::Stage::Auth) {
                        logger::err!(self.log, "the server refused the credentials: stopping";
                            event = "credentials_refused");
                        self.stop.refused.cancel();
                    }
                    logger::debug!(self.log, "message not sent"; event = "failed_address",
                        line = recipient.line, to = recipient.email);
                    Outcome::Failed(format!("{e:#}"))
                }
            };
            if self.tx.send((index, outcome)).is_err() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use mailer::{BoxFuture, DryRunMailer, Error, Sent};

    use super::*;

    /// Sends through a `DryRunMailer`, except: addresses starting with `bad` fail, those
    /// starting with `login` get a 535 at AUTH, and `stuck@...` never completes. Records what it was asked to send.
    struct Fake {
        inner: DryRunMailer,
        seen: Mutex<Vec<(String, String, String)>>,
    }

    impl Fake {
        fn new() -> Arc<Fake> {
            let log: Arc<dyn Logger> = Arc::new(logger::Mock::new());
            Arc::new(Fake {
                inner: DryRunMailer::new("ops@example.test", log),
                seen: Mutex::default(),
            })
        }
    }

    impl Mailer for Fake {
        fn send_message<'a>(
            &'a self,
            email: &'a mailer::Email,
        ) -> BoxFuture<'a, Result<Sent, Error>> {
            self.inner.send_message(email)
        }

        fn send_mail<'a>(
            &'a self,
            to: &'a [&'a str],
            subject: &'a str,
            body: &'a str,
        ) -> BoxFuture<'a, Result<Sent, Error>> {
            self.seen.lock().unwrap().push((to[0].to_owned(), subject.to_owned(), body.to_owned()));
            Box::pin(async move {
                if to[0].starts_with("bad") {
                    return Err(Error::Config("refused by the fake".into()));
                }
                if to[0].starts_with("login") {
                    let reply = "5.7.8 authentication failed".into();
                    return Err(Error::Reply { stage: mailer::Stage::Auth, code: 535, reply });
                }
                if to[0].starts_with("stuck") {
                    std::future::pending::<()>().await;
                }
                self.inner.send_mail(to, subject, body).await
            })
        }

        fn close(&self) -> BoxFuture<'_, ()> {
            self.inner.close()
        }
    }

    fn job(emails: &[&str]) -> Arc<Job> {
        let recipients = emails
            .iter()
            .enumerate()
            .map(|(i, e)| Recipient {
                email: e.to_string(),
                line: i as u64 + 1,
                vars: BTreeMap::from([("email".to_owned(), e.to_string())]),
            })
            .collect();
        Arc::new(Job {
            recipients,
            subject: Template::parse("for {{email}}").unwrap(),
            body: Template::parse("Hello {{email}}").unwrap(),
            sleep: Duration::ZERO,
        })
    }

    async fn go(
        job: Arc<Job>,
        workers: usize,
        fake: Arc<Fake>,
        stop: Stop,
    ) -> Vec<Option<Outcome>> {
        let counters = Arc::new(Counters::default());
        let progress = Progress::new(
            job.recipients.len() as u64,
            counters.clone(),
            false,
            Duration::from_secs(60),
        );
        let mailers = (0..workers).map(|_| fake.clone() as Arc<dyn Mailer>).collect();
        let log: Arc<dyn Logger> = Arc::new(logger::Mock::new());
        run(job, mailers, log, &progress, counters, stop).await
    }

    #[tokio::test]
    async fn every_recipient_gets_an_outcome_in_file_order() {
        let emails: Vec<String> = (0..40)
            .map(|i| {
                if i % 7 == 3 {
                    format!("bad{i}@example.test")
                } else {
                    format!("u{i}@example.test")
                }
            })
            .collect();
        let emails: Vec<&str> = emails.iter().map(String::as_str).collect();
        let fake = Fake::new();
        let outcomes = go(job(&emails), 3, fake.clone(), Stop::default()).await;

        assert_eq!(outcomes.len(), 40);
        for (email, outcome) in emails.iter().zip(&outcomes) {
            match outcome {
                Some(Outcome::Failed(reason)) => {
                    assert!(email.starts_with("bad") && reason.contains("refused by the fake"))
                }
                Some(Outcome::Sent { possibly_duplicated: false }) => {
                    assert!(!email.starts_with("bad"))
                }
                other => panic!("{email}: {other:?}"),
            }
        }
        let seen = fake.seen.lock().unwrap();
        assert_eq!(seen.len(), 40, "each recipient sent exactly once");
        let one = seen.iter().find(|(to, ..)| to == "u5@example.test").unwrap();
        assert_eq!(
            (one.1.as_str(), one.2.as_str()),
            ("for u5@example.test", "Hello u5@example.test")
        );
    }

    #[tokio::test]
    async fn the_pause_comes_between_messages_not_after_the_last() {
        let mut job = Arc::try_unwrap(job(&["a@example.test"])).ok().unwrap();
        job.sleep = Duration::from_secs(3600);
        let fake = Fake::new();
        // Bounded: with a pause after the last message this would take an hour.
        let outcomes = tokio::time::timeout(
            Duration::from_secs(30),
            go(Arc::new(job), 1, fake.clone(), Stop::default()),
        )
        .await
        .expect("the run ends once the list is done");
        assert_eq!(outcomes, [Some(Outcome::Sent { possibly_duplicated: false })]);
    }

    #[tokio::test]
    async fn refused_credentials_stop_the_run() {
        let fake = Fake::new();
        let emails = ["a@example.test", "login@example.test", "c@example.test", "d@example.test"];
        let stop = Stop::default();
        let outcomes = go(job(&emails), 1, fake.clone(), stop.clone()).await;
        assert_eq!(outcomes[0], Some(Outcome::Sent { possibly_duplicated: false }));
        assert!(matches!(&outcomes[1], Some(Outcome::Failed(r)) if r.contains("535")));
        assert_eq!(outcomes[2..], [None, None], "nothing more tried after the 535");
        assert_eq!(fake.seen.lock().unwrap().len(), 2);
        assert!(stop.refused.is_cancelled() && !stop.stop.is_cancelled());
    }

    #[tokio::test]
    async fn a_stop_before_the_start_sends_nothing() {
        let stop = Stop::default();
        stop.stop.cancel();
        let fake = Fake::new();
        let outcomes = go(job(&["a@example.test", "b@example.test"]), 2, fake.clone(), stop).await;
        assert_eq!(outcomes, [None, None]);
        assert!(fake.seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn abort_abandons_a_send_that_never_ends() {
        let stop = Stop::default();
        let fake = Fake::new();
        let job = job(&["a@example.test", "stuck@example.test", "c@example.test"]);
        let running = tokio::spawn({
            let (stop, fake) = (stop.clone(), fake.clone());
            async move { go(job, 1, fake, stop).await }
        });
        // Wait for the stuck send to start, then stop (it keeps hanging) and abort.
        let started = async {
            while fake.seen.lock().unwrap().len() < 2 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), started)
            .await
            .expect("the stuck send starts");
        stop.stop.cancel();
        stop.abort.cancel();
        let outcomes =
            tokio::time::timeout(Duration::from_secs(10), running).await.unwrap().unwrap();
        assert_eq!(outcomes[0], Some(Outcome::Sent { possibly_duplicated: false }));
        assert_eq!(outcomes[1..], [Some(Outcome::Abandoned), None]);
    }
}
