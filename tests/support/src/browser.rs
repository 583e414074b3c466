//! Headless Chromium for browser tests: a WebDriver session through chromedriver
//! ([`Browser`], async, with `fantoccini`), and `--dump-dom` for a page's DOM after its
//! scripts ran ([`dump_dom`]). Both are killed on drop, Chromium's helper processes included.

use std::io;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub use fantoccini;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

use crate::ports::{free_port, loopback};
use crate::process::{Held, missing, processes_with_arg, run};

/// Debian's `chromium` package.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's `chromium-driver` package.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The flags every Chromium here starts with: headless, as root without the sandbox, and
/// none of the background connections to Google's hosts, which this machine's closed network
/// refuses many at a time (the user data directory is added per browser).
pub const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--window-size=1280,800",
];

/// A WebDriver session with headless Chromium: chromedriver on a free loopback port, a fresh
/// `--user-data-dir`. Drive it through [`Browser::client`] (a `fantoccini::Client`). Dropping
/// it kills chromedriver and every Chromium process of this profile; [`Browser::close`] ends
/// the session cleanly first.
pub struct Browser {
    client: Option<Client>,
    driver: Held,
    profile: tempfile::TempDir,
    started_in: Duration,
}

impl Browser {
    /// Starts chromedriver, waits until it listens, and opens a session.
    pub async fn start() -> io::Result<Browser> {
        let started = Instant::now();
        let profile = tempfile::Builder::new().prefix("chromium-").tempdir()?;
        if !Path::new(CHROMIUM).exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{CHROMIUM} not found (apt-get install chromium; .ci/run installs it)"),
            ));
        }
        let mut last = None;
        // A port picked here can be taken before chromedriver binds it.
        for _ in 0..5 {
            let port = free_port();
            let driver = Held::spawn(
                Command::new(CHROMEDRIVER).arg(format!("--port={port}")).arg("--silent"),
            )
            .map_err(|e| missing(e, "chromium-driver"))?;
            // A blocking wait (chromedriver listens within a second); nothing else in the
            // test's runtime has to run meanwhile.
            let listen = format!("listen on 127.0.0.1:{port}");
            let driver = match driver.wait_ready(START_TIMEOUT, &listen, |d| d.listens_tcp(port)) {
                Ok(driver) => driver,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let mut args: Vec<String> = FLAGS.iter().map(|f| f.to_string()).collect();
            args.push(format!("--user-data-dir={}", profile.path().display()));
            let capabilities = json!({
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
            });
            let serde_json::Value::Object(capabilities) = capabilities else {
                unreachable!("a JSON object literal")
            };
            let connect = ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities)
                .connect(&format!("http://{}", loopback(port)))
                .await;
            return match connect {
                Ok(client) => Ok(Browser {
                    client: Some(client),
                    driver,
                    profile,
                    started_in: started.elapsed(),
                }),
                Err(e) => {
                    let error = driver.into_error(&format!("could not start Chromium: {e}"));
                    kill_profile(profile.path());
                    Err(error)
                }
            };
        }
        Err(last.expect("at least one attempt"))
    }

    /// The WebDriver client: `goto`, `find`, `source`, `execute`, `screenshot`, ...
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("the client lives until close")
    }

    /// How long [`Browser::start`] took, to an open session.
    pub fn start_time(&self) -> Duration {
        self.started_in
    }

    /// The profile directory (`--user-data-dir`), which every Chromium process of this
    /// browser has on its command line.
    pub fn profile_dir(&self) -> &Path {
        self.profile.path()
    }

    /// chromedriver's pid.
    pub fn driver_pid(&self) -> u32 {
        self.driver.pid()
    }

    /// Ends the session (Chromium quits), then stops chromedriver.
    pub async fn close(mut self) -> io::Result<()> {
        if let Some(client) = self.client.take() {
            client.close().await.map_err(io::Error::other)?;
        }
        self.driver.terminate(Duration::from_secs(10))?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        kill_profile(self.profile.path());
    }
}

/// Kills every process whose command line names `profile`: Chromium's zygote and renderers
/// may leave chromedriver's process group.
fn kill_profile(profile: &Path) {
    let needle = profile.display().to_string();
    for process in processes_with_arg(&needle) {
        let _ = crate::process::signal(process.pid, "KILL");
    }
}

/// Loads `url` in a headless Chromium of its own and returns the DOM after its scripts ran
/// (`--dump-dom`, with `--virtual-time-budget=5000` to let timers and fetches settle).
pub fn dump_dom(url: &str) -> io::Result<String> {
    let profile = tempfile::Builder::new().prefix("chromium-").tempdir()?;
    let result = run(
        Command::new(CHROMIUM)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--virtual-time-budget=5000")
            .arg("--dump-dom")
            .arg(url),
        START_TIMEOUT,
    )
    .map_err(|e| missing(e, "chromium"));
    kill_profile(profile.path());
    let done = result?;
    if !done.success() {
        return Err(io::Error::other(format!("chromium --dump-dom {url}: {}", done.transcript())));
    }
    Ok(done.stdout)
}
