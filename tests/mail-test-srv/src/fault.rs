//! Fault injection: the chance, the stage, the mode, close-first, the seeded RNG and the
//! "gone away" window, behind one cheap [`Chaos`] handle that the HTTP API changes at run time.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Where in a session a fault is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Instead of the `220` greeting.
    Greeting,
    /// Instead of the `250` to `MAIL FROM` (the default, as Boulder had it).
    #[default]
    Mail,
    /// Instead of the `250` to `RCPT TO`.
    Rcpt,
    /// Instead of the `354` to `DATA`.
    Data,
    /// After the final dot: the message **is stored**, then the `250` is replaced by the
    /// fault, so the client cannot know whether it was delivered.
    #[serde(alias = "after-dot", alias = "dot")]
    AfterDot,
}

impl Stage {
    /// Every stage, in session order.
    pub const ALL: [Stage; 5] =
        [Stage::Greeting, Stage::Mail, Stage::Rcpt, Stage::Data, Stage::AfterDot];

    /// The name used in flags, JSON and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Greeting => "greeting",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::AfterDot => "after_dot",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Stage, String> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "greeting" | "connect" => Ok(Stage::Greeting),
            "mail" => Ok(Stage::Mail),
            "rcpt" => Ok(Stage::Rcpt),
            "data" => Ok(Stage::Data),
            "after_dot" | "dot" => Ok(Stage::AfterDot),
            _ => Err(format!("unknown stage {s:?} (greeting, mail, rcpt, data, after_dot)")),
        }
    }
}

/// How a fault shows itself to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    /// Close the connection without a reply.
    Close,
    /// Send `421 4.4.2 <host> Error: timeout exceeded`, then close.
    #[serde(alias = "421")]
    Reply421,
    /// Each fault is one or the other, drawn from the seeded RNG (half and half).
    #[default]
    Mixed,
    /// Reply [`ChaosConfig::reject_code`] instead (`451` by default) and keep the session:
    /// the command is refused, as smtp-sink's `-r`/`-f` and Mailpit's chaos do. After the
    /// final dot the message is then **not** stored.
    Reject,
}

impl FromStr for FaultMode {
    type Err = String;
    fn from_str(s: &str) -> Result<FaultMode, String> {
        match s.to_ascii_lowercase().as_str() {
            "close" => Ok(FaultMode::Close),
            "421" | "reply421" | "reply_421" => Ok(FaultMode::Reply421),
            "mixed" => Ok(FaultMode::Mixed),
            "reject" => Ok(FaultMode::Reject),
            _ => Err(format!("unknown fault mode {s:?} (close, 421, mixed, reject)")),
        }
    }
}

/// One injected fault, as the client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The connection was closed without a reply.
    Close,
    /// `421` then close.
    Reply421,
    /// This reply code, and the session goes on.
    Reject(u16),
}

impl FaultKind {
    /// `close`, `421` or `reject` (for logs).
    pub const fn as_str(self) -> &'static str {
        match self {
            FaultKind::Close => "close",
            FaultKind::Reply421 => "421",
            FaultKind::Reject(_) => "reject",
        }
    }
}

/// The fault settings, read and replaced as a whole (`GET`/`PUT /chaos`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChaosConfig {
    /// Probability of a fault at each occurrence of `stage`, in percent (0 to 100).
    pub chance: f64,
    /// Where faults happen.
    pub stage: Stage,
    /// Close, 421, or both.
    pub mode: FaultMode,
    /// The next this-many connections fault at `stage` for certain (Boulder's `-closeFirst`);
    /// counts down as connections arrive.
    pub close_first: u64,
    /// The reply code of [`FaultMode::Reject`]: 400 to 599 (default 451).
    pub reject_code: u16,
    /// Every reply at `stage` is held back this long first (whether or not a fault follows),
    /// like smtp-sink's `-W`: for testing client command timeouts. 0 = no delay.
    pub delay_ms: u64,
    /// Milliseconds left in the "gone away" window (read-only in `get`; `set` ignores it,
    /// use [`Chaos::gone_away`]).
    pub gone_away_ms: u64,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        ChaosConfig {
            chance: 0.0,
            stage: Stage::Mail,
            mode: FaultMode::Mixed,
            close_first: 0,
            reject_code: DEFAULT_REJECT_CODE,
            delay_ms: 0,
            gone_away_ms: 0,
        }
    }
}

/// The reply code of [`FaultMode::Reject`] unless configured: a transient local error.
pub const DEFAULT_REJECT_CODE: u16 = 451;

/// The runtime fault controller. Clones share one state.
#[derive(Clone)]
pub struct Chaos {
    inner: Arc<Mutex<Inner>>,
    /// No chance and no delay: nothing faults but a close-first connection. Read without the
    /// lock on every MAIL, RCPT and DATA of every session, which then never contend for it.
    quiet: Arc<AtomicBool>,
}

struct Inner {
    config: ChaosConfig,
    rng: StdRng,
    gone_until: Option<Instant>,
}

impl fmt::Debug for Chaos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chaos").field("config", &self.get()).finish()
    }
}

impl Chaos {
    /// A controller with this configuration; `seed` makes every draw reproducible (for one
    /// client at a time: concurrent sessions interleave their draws).
    pub fn new(config: ChaosConfig, seed: Option<u64>) -> Chaos {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let config = sanitized(config);
        let quiet = Arc::new(AtomicBool::new(is_quiet(&config)));
        Chaos { inner: Arc::new(Mutex::new(Inner { config, rng, gone_until: None })), quiet }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the config half-written (every write
        // is one assignment), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the configuration (chance is clamped to 0..=100, a reject code outside
    /// 400..=599 becomes 451; `gone_away_ms` is ignored).
    pub fn set(&self, config: ChaosConfig) {
        let mut inner = self.lock();
        inner.config = sanitized(config);
        self.quiet.store(is_quiet(&inner.config), Relaxed);
    }

    /// The current configuration, with the time left in the gone-away window.
    pub fn get(&self) -> ChaosConfig {
        let inner = self.lock();
        let left = inner
            .gone_until
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(Instant::now()));
        ChaosConfig { gone_away_ms: left.as_millis() as u64, ..inner.config.clone() }
    }

    /// Reseeds the RNG (a fixed seed makes the next draws reproducible).
    pub fn reseed(&self, seed: u64) {
        self.lock().rng = StdRng::seed_from_u64(seed);
    }

    /// Refuses new SMTP connections (accepted and closed at once, before any greeting) until
    /// `for_` has elapsed; `Duration::ZERO` ends the window. A window too long to represent
    /// (`gone_away_ms` comes from HTTP clients) lasts as long as the clock can count.
    pub fn gone_away(&self, for_: Duration) {
        let now = Instant::now();
        let until = now.checked_add(for_).unwrap_or_else(|| far_future(now));
        self.lock().gone_until = (!for_.is_zero()).then_some(until);
    }

    /// Whether new connections are being refused now.
    pub fn is_gone_away(&self) -> bool {
        let mut inner = self.lock();
        match inner.gone_until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                inner.gone_until = None;
                false
            }
            None => false,
        }
    }

    /// Called once per new connection: whether it is one of the close-first connections
    /// (which then fault at the first occurrence of the stage, whatever the chance).
    pub fn take_close_first(&self) -> bool {
        let mut inner = self.lock();
        if inner.config.close_first > 0 {
            inner.config.close_first -= 1;
            true
        } else {
            false
        }
    }

    /// Decides whether this occurrence of `stage` faults, and how. `doomed` is true for a
    /// close-first connection. One RNG draw for the chance (only when `stage` is the faulting
    /// stage and the chance is strictly between 0 and 100) and one for a mixed mode.
    pub fn draw(&self, stage: Stage, doomed: bool) -> Option<FaultKind> {
        if !doomed && self.quiet.load(Relaxed) {
            return None;
        }
        let mut inner = self.lock();
        if stage != inner.config.stage {
            return None;
        }
        let chance = inner.config.chance;
        let fault = doomed
            || chance >= 100.0
            || (chance > 0.0 && inner.rng.random_range(0.0..100.0) < chance);
        if !fault {
            return None;
        }
        Some(match inner.config.mode {
            FaultMode::Close => FaultKind::Close,
            FaultMode::Reply421 => FaultKind::Reply421,
            FaultMode::Reject => FaultKind::Reject(inner.config.reject_code),
            FaultMode::Mixed => {
                if inner.rng.random_bool(0.5) {
                    FaultKind::Close
                } else {
                    FaultKind::Reply421
                }
            }
        })
    }

    /// How long to hold back the reply at `stage`, if a delay is configured for it.
    pub fn delay(&self, stage: Stage) -> Option<Duration> {
        if self.quiet.load(Relaxed) {
            return None;
        }
        let inner = self.lock();
        (inner.config.stage == stage && inner.config.delay_ms > 0)
            .then(|| Duration::from_millis(inner.config.delay_ms))
    }

    /// The faulting stage now.
    pub fn stage(&self) -> Stage {
        self.lock().config.stage
    }
}

/// About a century after `now`: "until further notice" for a window that would overflow.
fn far_future(now: Instant) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 86_400);
    now.checked_add(CENTURY).unwrap_or(now)
}

fn is_quiet(config: &ChaosConfig) -> bool {
    config.chance <= 0.0 && config.delay_ms == 0
}

fn sanitized(config: ChaosConfig) -> ChaosConfig {
    let chance = if config.chance.is_nan() { 0.0 } else { config.chance.clamp(0.0, 100.0) };
    let reject_code = if (400..=599).contains(&config.reject_code) {
        config.reject_code
    } else {
        DEFAULT_REJECT_CODE
    };
    ChaosConfig { chance, reject_code, gone_away_ms: 0, ..config }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chaos(chance: f64, mode: FaultMode, seed: u64) -> Chaos {
        Chaos::new(ChaosConfig { chance, mode, ..ChaosConfig::default() }, Some(seed))
    }

    #[test]
    fn full_chance_always_faults_with_both_kinds() {
        let c = chaos(100.0, FaultMode::Mixed, 1);
        let draws: Vec<_> = (0..200).map(|_| c.draw(Stage::Mail, false)).collect();
        assert!(draws.iter().all(Option::is_some));
        let closes = draws.iter().filter(|d| **d == Some(FaultKind::Close)).count();
        // Binomial(200, 0.5): sd ~7; 60..140 is > 5 sd either side.
        assert!((60..140).contains(&closes), "closes = {closes}");
    }

    #[test]
    fn zero_chance_never_faults_and_other_stages_never_fault() {
        let c = chaos(0.0, FaultMode::Mixed, 1);
        assert!((0..1000).all(|_| c.draw(Stage::Mail, false).is_none()));
        let c = chaos(100.0, FaultMode::Close, 1);
        assert!(c.draw(Stage::Rcpt, false).is_none());
        assert!(c.draw(Stage::Greeting, false).is_none());
        assert_eq!(c.draw(Stage::Mail, false), Some(FaultKind::Close));
    }

    #[test]
    fn same_seed_same_faults() {
        let a = chaos(35.0, FaultMode::Mixed, 42);
        let b = chaos(35.0, FaultMode::Mixed, 42);
        let da: Vec<_> = (0..500).map(|_| a.draw(Stage::Mail, false)).collect();
        let db: Vec<_> = (0..500).map(|_| b.draw(Stage::Mail, false)).collect();
        assert_eq!(da, db);
    }

    #[test]
    fn close_first_counts_down() {
        let c = Chaos::new(
            ChaosConfig { close_first: 2, mode: FaultMode::Reply421, ..ChaosConfig::default() },
            Some(3),
        );
        assert!(c.take_close_first());
        assert!(c.take_close_first());
        assert!(!c.take_close_first());
        assert_eq!(c.draw(Stage::Mail, true), Some(FaultKind::Reply421));
        assert_eq!(c.draw(Stage::Mail, false), None);
    }

    #[test]
    fn gone_away_window_ends() {
        let c = chaos(0.0, FaultMode::Mixed, 1);
        assert!(!c.is_gone_away());
        c.gone_away(Duration::from_secs(60));
        assert!(c.is_gone_away());
        assert!(c.get().gone_away_ms > 59_000);
        c.gone_away(Duration::ZERO);
        assert!(!c.is_gone_away());
        // `PUT /chaos {"gone_away_ms": u64::MAX}` must not overflow the clock.
        c.gone_away(Duration::from_millis(u64::MAX));
        assert!(c.is_gone_away());
        assert!(c.get().gone_away_ms > 1_000_000_000);
    }

    #[test]
    fn nan_and_out_of_range_chances_are_clamped() {
        let c = chaos(0.0, FaultMode::Mixed, 1);
        c.set(ChaosConfig { chance: f64::NAN, ..ChaosConfig::default() });
        assert_eq!(c.get().chance, 0.0);
        c.set(ChaosConfig { chance: 250.0, ..ChaosConfig::default() });
        assert_eq!(c.get().chance, 100.0);
    }

    #[test]
    fn reject_mode_and_delay() {
        let c = Chaos::new(
            ChaosConfig {
                chance: 100.0,
                mode: FaultMode::Reject,
                reject_code: 550,
                delay_ms: 30,
                ..ChaosConfig::default()
            },
            Some(1),
        );
        assert_eq!(c.draw(Stage::Mail, false), Some(FaultKind::Reject(550)));
        assert_eq!(c.delay(Stage::Mail), Some(Duration::from_millis(30)));
        assert_eq!(c.delay(Stage::Rcpt), None);
        c.set(ChaosConfig {
            reject_code: 250,
            mode: FaultMode::Reject,
            chance: 100.0,
            ..ChaosConfig::default()
        });
        assert_eq!(c.draw(Stage::Mail, false), Some(FaultKind::Reject(DEFAULT_REJECT_CODE)));
        assert_eq!(c.delay(Stage::Mail), None);
    }

    #[test]
    fn stage_and_mode_names() {
        assert_eq!("after-dot".parse::<Stage>(), Ok(Stage::AfterDot));
        assert_eq!("421".parse::<FaultMode>(), Ok(FaultMode::Reply421));
        assert_eq!(serde_json::to_string(&Stage::AfterDot).unwrap(), "\"after_dot\"");
        assert_eq!(serde_json::from_str::<FaultMode>("\"421\"").unwrap(), FaultMode::Reply421);
    }
}
