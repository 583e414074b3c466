//! The send loop: a reader thread streams the recipients to send (those the journal does not
//! record as sent) into one bounded queue; `--parallel` senders take from it, record the
//! attempt in the journal, send through the one shared mailer (whose pool opens at most that
//! many connections, fewer if the server allows fewer), record the outcome and report it to
//! the collector, which keeps the state of every recipient for the summary and the resume and
//! failures files.
//!
//! A stop request (see [`crate::stop`]) closes the mailer: backoff waits end at once, the
//! transactions on the wire finish, nothing new starts. An abort abandons the sends still in
//! flight: they stay "attempted" in the journal, so whoever resumes knows they may have been
//! delivered.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use logger::Logger;
use mailer::{Mailer, SmtpMailer};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use crate::circuit::{self, Breaker};
use crate::journal::{Journal, Mark, Prior};
use crate::message::Message;
use crate::progress::{Counters, Progress};
use crate::recipients::{Checked, RecipientsFile, Row};
use crate::stop::{Reason, Stop};

/// How many rows the reader thread may read ahead of the senders.
const QUEUE: usize = 256;

/// What to send.
pub struct Plan {
    /// The recipients file.
    pub recipients: Arc<RecipientsFile>,
    /// Which records are recipients.
    pub checked: Arc<Checked>,
    /// What earlier runs recorded.
    pub prior: Arc<Prior>,
    /// The message templates.
    pub message: Arc<Message>,
    /// Pause between two messages of one sender.
    pub sleep: Duration,
    /// How many senders.
    pub parallel: usize,
    /// The circuit breaker's window (see [`crate::circuit`]).
    pub circuit_after: Duration,
}

/// The mailer to send through, and its counters when it is a real one.
#[derive(Clone)]
pub struct Sender {
    /// Sends (an `SmtpMailer` or a `DryRunMailer`).
    pub mailer: Arc<dyn Mailer>,
    /// The same mailer, for its counters, when it is an `SmtpMailer`.
    pub smtp: Option<Arc<SmtpMailer>>,
}

/// Where a recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started in this run.
    Pending,
    /// Recorded as sent by an earlier run: skipped.
    SentBefore,
    /// Being sent.
    InFlight,
    /// Accepted by the server in this run.
    Sent,
    /// Refused for good, or given up (the reason is kept).
    Failed,
    /// Given up after a try that lost its connection after the final dot: the server may
    /// have it (the reason is kept).
    FailedUnconfirmed,
    /// Stopped before it could be delivered.
    NotSent,
    /// Stopped after a try that lost its connection after the final dot: the server may
    /// have it.
    StoppedUnconfirmed,
    /// Given up while the server was unreachable (never connected).
    Unreachable,
    /// Abandoned in flight by an abort: the server may have it.
    Abandoned,
}

impl State {
    /// Whether it belongs in the resume file.
    pub fn is_left(self) -> bool {
        matches!(
            self,
            State::Pending
                | State::InFlight
                | State::NotSent
                | State::StoppedUnconfirmed
                | State::Unreachable
                | State::Abandoned
        )
    }

    /// Whether it belongs in the failures file.
    pub fn is_failed(self) -> bool {
        matches!(self, State::Failed | State::FailedUnconfirmed)
    }
}

/// Every recipient's state at the end of a run.
#[derive(Debug, Clone)]
pub struct Outcomes {
    /// By recipient number.
    pub states: Vec<State>,
    /// Why each failed one failed.
    pub reasons: HashMap<usize, String>,
    /// Sent after a fault that may have delivered a copy already.
    pub possibly_duplicated: u64,
    /// Sent although an earlier run did not know whether it arrived (in flight when that run
    /// ended, or unconfirmed), so it may have arrived twice.
    pub resent_unconfirmed: u64,
}

impl Outcomes {
    fn new(prior: &Prior, count: usize) -> Outcomes {
        let states = (0..count)
            .map(|i| if prior.is_sent(i) { State::SentBefore } else { State::Pending })
            .collect();
        Outcomes { states, reasons: HashMap::new(), possibly_duplicated: 0, resent_unconfirmed: 0 }
    }

    /// How many are in `state`.
    pub fn count(&self, state: State) -> u64 {
        self.states.iter().filter(|&&s| s == state).count() as u64
    }
}

/// One row to send: its recipient number and its fields.
struct Item {
    index: usize,
    row: Row,
}

/// How one send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Sent {
        possibly_duplicated: bool,
    },
    Failed(String),
    /// Gave up, but a try may have delivered it.
    FailedUnconfirmed(String),
    NotSent,
    /// Stopped, but a try may have delivered it.
    StoppedUnconfirmed(String),
    Unreachable(String),
    Abandoned,
}

enum Event {
    Started(usize),
    Done(usize, Outcome),
}

/// Sends `plan` until done or stopped; returns every recipient's state.
pub async fn run(
    plan: Arc<Plan>,
    sender: Sender,
    journal: Option<Arc<Journal>>,
    log: Arc<dyn Logger>,
    progress: &Progress,
    counters: Arc<Counters>,
    stop: Stop,
) -> Outcomes {
    let mut outcomes = Outcomes::new(&plan.prior, plan.checked.count);
    let (queue, rx) = mpsc::channel(QUEUE);
    let reader = {
        let (plan, stop) = (plan.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = read_queue(&plan, &queue, &stop) {
                let _ = stop.request(Reason::Failure(e));
            }
        })
    };
    let rx = Arc::new(Mutex::new(rx));
    let (events, mut received) = mpsc::unbounded_channel();
    let mut workers = Vec::new();
    for _ in 0..plan.parallel {
        let worker = Worker {
            plan: plan.clone(),
            sender: sender.clone(),
            journal: journal.clone(),
            rx: rx.clone(),
            events: events.clone(),
            log: log.clone(),
            stop: stop.clone(),
        };
        workers.push(tokio::spawn(worker.run()));
    }
    // The senders hold the only event senders now: the channel closes when the last one ends.
    drop(events);

    // Once a stop is requested, close the mailer until every sender has finished: the first
    // close ends backoff waits and lets the wire finish; a send that began just before the
    // request and reached the mailer after that close is caught by the next.
    let finished = CancellationToken::new();
    let closer = tokio::spawn({
        let (mailer, stop, finished) = (sender.mailer.clone(), stop.clone(), finished.clone());
        async move {
            stop.requested().await;
            while !finished.is_cancelled() {
                mailer.close().await;
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    () = finished.cancelled() => {}
                }
            }
        }
    });

    let breaker = sender.smtp.clone().map(|smtp| {
        let (window, log, stop) = (plan.circuit_after, log.clone(), stop.clone());
        tokio::spawn(watch_the_circuit(smtp, window, log, stop))
    });

    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + progress.interval(),
        progress.interval(),
    );
    loop {
        tokio::select! {
            event = received.recv() => match event {
                None => break,
                Some(Event::Started(i)) => outcomes.states[i] = State::InFlight,
                Some(Event::Done(i, outcome)) => {
                    record(&mut outcomes, &plan.prior, &counters, i, outcome);
                    progress.tick();
                }
            },
            _ = ticker.tick(), if !progress.has_bar() => progress.line(&*log),
        }
    }
    finished.cancel();
    closer.abort();
    if let Some(breaker) = breaker {
        breaker.abort();
    }
    for worker in workers {
        // A sender that panicked left its recipient in flight: it goes to the resume file,
        // marked as possibly delivered, which is the safe side.
        let _ = worker.await;
    }
    let _ = reader.await;
    for state in &mut outcomes.states {
        if *state == State::InFlight {
            *state = State::Abandoned;
        }
    }
    outcomes
}

/// Opens the circuit (a stop request) once [`Breaker`] says the server looks down; ends
/// when the run stops for any reason.
async fn watch_the_circuit(
    smtp: Arc<SmtpMailer>,
    window: Duration,
    log: Arc<dyn Logger>,
    stop: Stop,
) {
    let now = tokio::time::Instant::now;
    let mut breaker = Breaker::new(window, now(), &smtp.stats());
    let mut tick = tokio::time::interval(circuit::tick(window));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.requested() => return,
        }
        if let Some(open) = breaker.observe(now(), &smtp.stats()) {
            if stop.request(Reason::CircuitOpen) {
                logger::err!(log,
                    "the server is unreachable: nothing got through for {} ({} connection attempts failed): stopping",
                    humantime::format_duration(round_to_ms(open.quiet_for)), open.failed_attempts;
                    event = "circuit_open", failed_attempts = open.failed_attempts,
                    quiet_ms = open.quiet_for.as_millis());
            }
            return;
        }
    }
}

/// `d` without its sub-millisecond part, for a readable duration in a log line.
fn round_to_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn record(outcomes: &mut Outcomes, prior: &Prior, counters: &Counters, i: usize, outcome: Outcome) {
    outcomes.states[i] = match outcome {
        Outcome::Sent { possibly_duplicated } => {
            counters.sent.fetch_add(1, Ordering::Relaxed);
            outcomes.possibly_duplicated += u64::from(possibly_duplicated);
            outcomes.resent_unconfirmed += u64::from(prior.may_have_arrived(i));
            State::Sent
        }
        Outcome::Failed(reason) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            outcomes.reasons.insert(i, reason);
            State::Failed
        }
        Outcome::FailedUnconfirmed(reason) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            outcomes.reasons.insert(i, reason);
            State::FailedUnconfirmed
        }
        Outcome::StoppedUnconfirmed(reason) => {
            outcomes.reasons.insert(i, reason);
            State::StoppedUnconfirmed
        }
        Outcome::Unreachable(reason) => {
            outcomes.reasons.insert(i, reason);
            State::Unreachable
        }
        Outcome::NotSent => State::NotSent,
        Outcome::Abandoned => State::Abandoned,
    };
}

/// The reader thread: every recipient not recorded as sent, in file order, into the queue,
/// until the list ends, the senders are gone or a stop is requested.
fn read_queue(plan: &Plan, queue: &mpsc::Sender<Item>, stop: &Stop) -> Result<(), String> {
    let mut recipients = plan.recipients.recipients(&plan.checked).map_err(|e| e.to_string())?;
    let mut row = Row::default();
    while let Some(index) = recipients.next_into(&mut row).map_err(|e| e.to_string())? {
        if plan.prior.is_sent(index) {
            continue;
        }
        if stop.is_requested() || queue.blocking_send(Item { index, row: row.clone() }).is_err() {
            return Ok(());
        }
    }
    if recipients.count() != plan.checked.count {
        return Err(format!(
            "{}: the recipients file changed since it was checked",
            plan.recipients.path().display()
        ));
    }
    Ok(())
}

struct Worker {
    plan: Arc<Plan>,
    sender: Sender,
    journal: Option<Arc<Journal>>,
    rx: Arc<Mutex<mpsc::Receiver<Item>>>,
    events: mpsc::UnboundedSender<Event>,
    log: Arc<dyn Logger>,
    stop: Stop,
}

impl Worker {
    async fn run(self) {
        let mut first = true;
        // Journal lines not yet written: the last send's outcome. It goes out with the next
        // attempt in one write when the next row is already queued (half the writes of a
        // steady run), and on its own before this sender waits for anything.
        let mut carry = Vec::new();
        loop {
            let queued =
                (!carry.is_empty() && self.plan.sleep.is_zero() && !self.stop.is_requested())
                    .then(|| self.try_take())
                    .flatten();
            let item = match queued {
                Some(item) => item,
                None => {
                    if !self.flush(&mut carry) {
                        break;
                    }
                    tokio::select! {
                        biased;
                        () = self.stop.requested() => break,
                        item = async { self.rx.lock().await.recv().await } => match item {
                            Some(item) => item,
                            None => break,
                        },
                    }
                }
            };
            if !first && !self.plan.sleep.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(self.plan.sleep) => {}
                    () = self.stop.requested() => break,
                }
            }
            first = false;
            if !self.send(item, &mut carry).await {
                break;
            }
        }
        self.flush(&mut carry);
    }

    /// The next row, if one is queued and no other sender is taking one right now.
    fn try_take(&self) -> Option<Item> {
        self.rx.try_lock().ok()?.try_recv().ok()
    }

    /// Sends one, its attempt written to the journal first (after whatever `carry` held) and
    /// its outcome left in `carry`; `false` when the sender must stop.
    async fn send(&self, item: Item, carry: &mut Vec<u8>) -> bool {
        let Item { index, row } = item;
        let email = row.email(self.plan.recipients.columns());
        let _ = self.events.send(Event::Started(index));
        Journal::line(carry, index, email, Mark::Attempt);
        if !self.flush(carry) {
            let _ = self.events.send(Event::Done(index, Outcome::NotSent));
            return false;
        }
        let message = self.plan.message.render(&row.fields).into_email();
        let before = self.headway();
        let result = tokio::select! {
            // A send that has finished is recorded even when the abort came at the same
            // moment: reporting a delivered message as not sent would send it twice on resume.
            biased;
            result = self.sender.mailer.send_message(&message) => result,
            () = self.stop.aborted() => {
                let _ = self.events.send(Event::Done(index, Outcome::Abandoned));
                return false;
            }
        };
        let outcome = match result {
            Ok(sent) => Outcome::Sent { possibly_duplicated: sent.possibly_duplicated },
            Err(e) => self.failure(&e, &row, before),
        };
        match &outcome {
            Outcome::Sent { .. } => Journal::line(carry, index, email, Mark::Sent),
            Outcome::Failed(reason) => Journal::line(carry, index, email, Mark::Failed(reason)),
            Outcome::FailedUnconfirmed(reason) | Outcome::StoppedUnconfirmed(reason) => {
                Journal::line(carry, index, email, Mark::Unconfirmed(reason))
            }
            Outcome::NotSent | Outcome::Unreachable(_) => {
                Journal::line(carry, index, email, Mark::NotSent)
            }
            // Left "attempted": whoever resumes counts it as possibly delivered.
            Outcome::Abandoned => {}
        }
        let _ = self.events.send(Event::Done(index, outcome));
        true
    }

    /// What a failed send means, and whether it stops the run.
    fn failure(&self, e: &mailer::Error, row: &Row, before: Option<Headway>) -> Outcome {
        // `{:#}`: the error with its causes (lettre's, the OS's, rustls'), on one line.
        let reason = format!("{e:#}");
        if e.is_closed() {
            // Ended by the stop request's close(): not delivered, unless a try lost its
            // connection after the final dot.
            return match e.possibly_delivered() {
                true => Outcome::StoppedUnconfirmed(reason),
                false => Outcome::NotSent,
            };
        }
        let line = self.plan.recipients.line_of(row.pos);
        let unconfirmed = e.possibly_delivered();
        logger::err!(self.log, "message not sent"; event = "failed", line = line, error = reason,
            possibly_delivered = unconfirmed);
        logger::debug!(self.log, "message not sent"; event = "failed_address",
            line = line, to = row.email(self.plan.recipients.columns()));
        if e.is_permanent() && e.stage() == Some(mailer::Stage::Auth) {
            logger::err!(self.log, "the server refused the credentials: stopping";
                event = "credentials_refused");
            let _ = self.stop.request(Reason::CredentialsRefused);
        } else if e.is_unreachable() && before.is_some() && before == self.headway() {
            if self.stop.request(Reason::CircuitOpen) {
                logger::err!(self.log,
                    "the server is unreachable (a message gave up on connecting while nothing else got through): stopping";
                    event = "circuit_open", line = line, error = reason);
            }
            if !unconfirmed {
                return Outcome::Unreachable(reason);
            }
        }
        match unconfirmed {
            true => Outcome::FailedUnconfirmed(reason),
            false => Outcome::Failed(reason),
        }
    }

    /// How far the whole pool has got, for a real mailer.
    fn headway(&self) -> Option<Headway> {
        self.sender.smtp.as_ref().map(|m| {
            let s = m.stats();
            Headway { connects: s.connects, sent: s.sent }
        })
    }

    /// Writes `carry` to the journal, if there is one; a failure stops the run (going on
    /// would send mail that a resume cannot know about).
    fn flush(&self, carry: &mut Vec<u8>) -> bool {
        let Some(journal) = &self.journal else {
            carry.clear();
            return true;
        };
        match journal.write(carry) {
            Ok(()) => true,
            Err(e) => {
                let what = format!("{}: cannot write the journal: {e}", journal.path().display());
                logger::err!(self.log, "{what}: stopping"; event = "journal_failed", error = e);
                let _ = self.stop.request(Reason::Failure(what));
                carry.clear();
                false
            }
        }
    }
}

/// Connections opened and messages accepted by the whole pool: a send that gave up without
/// connecting, during which neither grew, means nobody could reach the server. (Either
/// growing means the server works and this message was unlucky, as when a server that allows
/// fewer connections than `--parallel` refuses the extra ones.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Headway {
    connects: u64,
    sent: u64,
}
