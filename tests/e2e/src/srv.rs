//! The `mail-test-srv` binary as a child process, and a client for its HTTP API.
//!
//! Tests that must kill the server for real (SIGKILL), read its memory from `/proc`, or flood
//! it with connections run the binary rather than the in-process `TestServer`, and then can
//! only observe it the way a user would: over HTTP.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use test_support::{free_port, wait_until};

/// The `mail-test-srv` binary of this build (built if missing, see [`crate::bins::program`]).
pub fn binary() -> io::Result<PathBuf> {
    crate::bins::program("mail-test-srv", crate::bins::Kind::Bin, "mail-test-srv")
}

/// A running `mail-test-srv` binary on loopback, killed (SIGKILL) on drop.
pub struct SrvProcess {
    child: Option<Child>,
    smtp: SocketAddr,
    http: Http,
}

impl SrvProcess {
    /// Starts `binary --smtp 127.0.0.1:SMTP --http 127.0.0.1:HTTP [extra...]` on the given
    /// ports (0 picks free ones) and waits until its HTTP API answers. Its output is discarded
    /// unless `E2E_SRV_OUTPUT` is set, so a flood of connection logs cannot fill a pipe.
    pub fn start(
        binary: &Path,
        smtp_port: u16,
        http_port: u16,
        extra: &[&str],
    ) -> io::Result<Self> {
        // A port picked here can be taken by another process before the child binds it: then
        // the child exits at once, and a fresh pair of ports is tried.
        let tries = if smtp_port == 0 || http_port == 0 { 5 } else { 1 };
        let mut last_error = None;
        for _ in 0..tries {
            match Self::start_once(binary, smtp_port, http_port, extra) {
                Ok(srv) => return Ok(srv),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("at least one try"))
    }

    fn start_once(
        binary: &Path,
        smtp_port: u16,
        http_port: u16,
        extra: &[&str],
    ) -> io::Result<Self> {
        let smtp_port = if smtp_port == 0 { free_port() } else { smtp_port };
        let http_port = if http_port == 0 { free_port() } else { http_port };
        let smtp: SocketAddr = ([127, 0, 0, 1], smtp_port).into();
        let http_addr: SocketAddr = ([127, 0, 0, 1], http_port).into();
        let output = || {
            if std::env::var_os("E2E_SRV_OUTPUT").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            }
        };
        let mut child = Command::new(binary)
            .arg("--smtp")
            .arg(smtp.to_string())
            .arg("--http")
            .arg(http_addr.to_string())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(output())
            .stderr(output())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", binary.display())))?;
        let http = Http::new(http_addr);
        let ready = wait_until(Duration::from_secs(20), || {
            http.count().is_ok() || matches!(child.try_wait(), Ok(Some(_)))
        });
        if !ready || child.try_wait()?.is_some() {
            let _ = child.kill();
            let status = child.wait()?;
            return Err(io::Error::other(format!(
                "mail-test-srv did not serve HTTP on {http_addr} (exit: {status})"
            )));
        }
        Ok(SrvProcess { child: Some(child), smtp, http })
    }

    /// Its SMTP address.
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp
    }

    /// A client for its HTTP API.
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// Its pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running (it has not crashed or exited).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL: no graceful shutdown, no chance to finish a reply.
    pub fn kill(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for SrvProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// A blocking client for the `mail-test-srv` HTTP API (`/count`, `/wait`, `/stats`,
/// `/api/messages`, `/chaos`). Run it from `spawn_blocking` inside async tests.
#[derive(Clone, Debug)]
pub struct Http {
    addr: SocketAddr,
    base: String,
    agent: ureq::Agent,
}

impl Http {
    /// A client for the API at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
        Http { addr, base: format!("http://{addr}"), agent }
    }

    /// The address of the API.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn get(&self, path: &str) -> io::Result<ureq::Response> {
        self.agent.get(&format!("{}{path}", self.base)).call().map_err(io::Error::other)
    }

    /// `GET /count`: deliveries (message x recipient).
    pub fn count(&self) -> io::Result<u64> {
        let text = self.get("/count")?.into_string()?;
        text.trim().parse().map_err(|e| io::Error::other(format!("/count {text:?}: {e}")))
    }

    /// `GET /wait?count=N&timeout_ms=T`: `Ok(count)` once `n` deliveries are stored,
    /// `Err(current)` on timeout (408).
    pub fn wait(&self, n: u64, timeout: Duration) -> io::Result<Result<u64, u64>> {
        let path = format!("/wait?count={n}&timeout_ms={}", timeout.as_millis());
        match self.agent.get(&format!("{}{path}", self.base)).call() {
            Ok(response) => Ok(Ok(parse_count(&response.into_string()?)?)),
            Err(ureq::Error::Status(408, response)) => {
                // The 408 body may or may not carry the count; ask /count to be sure.
                drop(response);
                Ok(Err(self.count()?))
            }
            Err(e) => Err(io::Error::other(e)),
        }
    }

    /// `GET /stats` as JSON.
    pub fn stats(&self) -> io::Result<Value> {
        self.get("/stats")?.into_json()
    }

    /// `GET /api/messages` as a JSON list.
    pub fn messages(&self) -> io::Result<Vec<Value>> {
        match self.get("/api/messages")?.into_json()? {
            Value::Array(list) => Ok(list),
            // Mailpit-style envelopes wrap the list: accept `{"messages": [...]}` too.
            Value::Object(mut map) => match map.remove("messages") {
                Some(Value::Array(list)) => Ok(list),
                _ => Err(io::Error::other("/api/messages: no list")),
            },
            other => Err(io::Error::other(format!("/api/messages: unexpected {other}"))),
        }
    }

    /// `GET /chaos` as JSON.
    pub fn chaos(&self) -> io::Result<Value> {
        self.get("/chaos")?.into_json()
    }

    /// `PUT /chaos` with a JSON body; returns the configuration the server now uses.
    pub fn set_chaos(&self, config: &Value) -> io::Result<Value> {
        self.agent
            .put(&format!("{}/chaos", self.base))
            .send_json(config)
            .map_err(io::Error::other)?
            .into_json()
            .or_else(|_| self.chaos())
    }
}

fn parse_count(text: &str) -> io::Result<u64> {
    let trimmed = text.trim();
    if let Ok(n) = trimmed.parse() {
        return Ok(n);
    }
    let json: Value = serde_json::from_str(trimmed)?;
    json.get("count")
        .and_then(Value::as_u64)
        .ok_or_else(|| io::Error::other(format!("no count in {trimmed:?}")))
}

/// A numeric field of a `/stats` snapshot, 0 when absent (a counter that never fired may be
/// omitted).
pub fn stat(stats: &Value, name: &str) -> u64 {
    stats.get(name).and_then(Value::as_u64).unwrap_or(0)
}
