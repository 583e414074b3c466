//! The workspace's own programs (`notify-mailer`, the `demo` example), found where cargo put
//! them for this build and run as a user would: a child process with flags, its output captured,
//! a deadline on how long it may take.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What kind of cargo target a program is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `[[bin]]`: `target/<profile>/<name>`.
    Bin,
    /// An `[[example]]`: `target/<profile>/examples/<name>`.
    Example,
}

/// The `notify-mailer` binary of this build.
pub fn notify_mailer() -> io::Result<PathBuf> {
    program("notify-mailer", Kind::Bin, "notify-mailer")
}

/// The `demo` example of this build.
pub fn demo() -> io::Result<PathBuf> {
    program("mailer", Kind::Example, "demo")
}

/// The `target/<profile>` directory of the running test executable
/// (`target/<profile>/deps/<test>-<hash>`).
pub fn profile_dir() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| io::Error::other(format!("unexpected test path {}", exe.display())))
}

/// The path of program `name` of `package`. `cargo test --workspace` has built it next to the
/// test executable (`target/<profile>/`); when it is missing there or older than the sources
/// (`cargo test -p e2e` after an edit), it is built with `$CARGO build` into a target directory
/// of its own, `target/e2e-programs/`. Never into the running cargo's own directory: that
/// would replace libraries the rest of the test run (doc tests) links against.
pub fn program(package: &str, kind: Kind, name: &str) -> io::Result<PathBuf> {
    // Tests run in parallel threads: one build at a time, the others wait and then find it.
    static BUILD: Mutex<()> = Mutex::new(());
    let dir = profile_dir()?;
    let in_dir = |dir: &Path| match kind {
        Kind::Bin => dir.join(name),
        Kind::Example => dir.join("examples").join(name),
    };
    let path = in_dir(&dir);
    let _guard = BUILD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if is_fresh(&path) {
        return Ok(path);
    }
    let profile = dir.file_name().map_or_else(|| "debug".into(), |n| n.to_os_string());
    let own_target = dir.parent().unwrap_or(&dir).join("e2e-programs");
    let path = in_dir(&own_target.join(&profile));
    if is_fresh(&path) {
        return Ok(path);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    // Variables cargo set for this test process: passed on, build scripts that track them
    // (ring's does) would see a changed environment and rebuild every time.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let per_run =
            ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_", "CARGO_CRATE_", "CARGO_TARGET_TMPDIR"]
                .iter()
                .any(|p| key.starts_with(p));
        if per_run
            || key == "CARGO_PRIMARY_PACKAGE"
            || key == "CARGO_RUSTC_CURRENT_DIR"
            || key == "OUT_DIR"
        {
            build.env_remove(&*key);
        }
    }
    build.env("CARGO_TARGET_DIR", &own_target);
    build.args([
        "build",
        "-p",
        package,
        if kind == Kind::Bin { "--bin" } else { "--example" },
        name,
    ]);
    if profile == "release" {
        build.arg("--release");
    }
    let status = build.status()?;
    if !status.success() || !path.exists() {
        return Err(io::Error::other(format!("building {} failed: {status}", path.display())));
    }
    Ok(path)
}

/// Whether `path` exists and is newer than every source file of the crates it is built from.
fn is_fresh(path: &Path) -> bool {
    let Ok(built) = path.metadata().and_then(|m| m.modified()) else { return false };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let sources = [
        "mailer/src",
        "mailer/examples",
        "mailer/notify-mailer/src",
        "logger/src",
        "tests/mail-test-srv/src",
    ];
    sources.iter().all(|dir| newest(&root.join(dir)).is_none_or(|t| t <= built))
}

/// The newest modification time of a file under `dir`.
fn newest(dir: &Path) -> Option<std::time::SystemTime> {
    let mut latest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time =
            if path.is_dir() { newest(&path) } else { entry.metadata().ok()?.modified().ok() };
        latest = latest.max(time);
    }
    latest
}

/// What a finished program run produced.
#[derive(Debug)]
pub struct Output {
    /// How it exited.
    pub status: ExitStatus,
    /// Everything it wrote to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything it wrote to stderr (lossy UTF-8).
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Output {
    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The stdout lines that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<&str> {
        self.stdout.lines().filter(|l| l.contains(needle)).collect()
    }

    /// Both streams, for assertion messages.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {}, {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Runs `program args...` to completion with stdin closed, killing it if it outlives `limit`
/// (then the error says so, with what it printed).
pub fn run<S: AsRef<OsStr>>(program: &Path, args: &[S], limit: Duration) -> io::Result<Output> {
    Running::start(program, args)?.wait(limit)
}

/// A started program whose output is being collected; for tests that act on it while it runs
/// (send it SIGINT, watch the server).
pub struct Running {
    child: Child,
    started: Instant,
    stdout: Collected,
    stderr: Collected,
}

/// One output stream, read on its own thread (so a chatty program never blocks on a full
/// pipe) into a buffer the test can look at while the program runs.
struct Collected {
    text: Arc<Mutex<Vec<u8>>>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Collected {
    fn new(stream: Option<impl Read + Send + 'static>) -> Self {
        let text = Arc::new(Mutex::new(Vec::new()));
        let reader = stream.map(|mut stream| {
            let text = text.clone();
            thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n @ 1..) = stream.read(&mut chunk) {
                    text.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(&chunk[..n]);
                }
            })
        });
        Collected { text, reader }
    }

    fn so_far(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Everything, once the program has exited and the pipe is closed.
    fn finish(&mut self) -> String {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.so_far()
    }
}

impl Running {
    /// Starts `program args...` with stdin closed and both outputs collected.
    pub fn start<S: AsRef<OsStr>>(program: &Path, args: &[S]) -> io::Result<Self> {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", program.display())))?;
        Ok(Running::new(child))
    }

    fn new(mut child: Child) -> Self {
        let stdout = Collected::new(child.stdout.take());
        let stderr = Collected::new(child.stderr.take());
        Running { child, started: Instant::now(), stdout, stderr }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it has written to stdout so far.
    pub fn stdout_so_far(&self) -> String {
        self.stdout.so_far()
    }

    /// Waits for it to exit, killing it after `limit` (an error carrying its output).
    pub fn wait(mut self, limit: Duration) -> io::Result<Output> {
        let deadline = self.started + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break Some(status);
            }
            if Instant::now() >= deadline {
                self.child.kill()?;
                self.child.wait()?;
                break None;
            }
            thread::sleep(Duration::from_millis(10));
        };
        let elapsed = self.started.elapsed();
        let stdout = self.stdout.finish();
        let stderr = self.stderr.finish();
        match status {
            Some(status) => Ok(Output { status, stdout, stderr, elapsed }),
            None => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "still running after {limit:?}: killed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
                ),
            )),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A test that panicked mid-run must not leave the program behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `notify-mailer` retry flags for servers whose faults are injected, not real overload: a
/// long backoff would only slow a test down. 25 attempts make giving up on a message at a 35 %
/// fault chance a 1-in-10^11 event.
pub const FAST_RETRIES: [&str; 6] =
    ["--retry-base", "5ms", "--retry-max", "100ms", "--max-attempts", "25"];

/// The input files of a `notify-mailer` run to `n` numbered addresses, `user1@DOMAIN` ...
/// (one per line), with a `Hello {{email}}.` body, in a temporary directory that lives as long
/// as this value.
pub struct Mailing {
    dir: tempfile::TempDir,
    /// The addresses, in file order.
    pub recipients: Vec<String>,
}

impl Mailing {
    /// Writes the recipients and body files.
    pub fn new(n: usize, domain: &str) -> io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let recipients: Vec<String> = (1..=n).map(|i| format!("user{i}@{domain}")).collect();
        std::fs::write(dir.path().join("recipients.txt"), recipients.join("\n") + "\n")?;
        std::fs::write(dir.path().join("body.txt"), "Hello {{email}}.\n")?;
        Ok(Mailing { dir, recipients })
    }

    /// The path of `name` in the run's directory (`recipients.txt`, and what the run writes
    /// beside it: `recipients.txt.journal`, `.resume`, `.failed.csv`).
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// The recipients as `&str`, for [`crate::tally::Tally`]'s checks.
    pub fn addresses(&self) -> impl Iterator<Item = &str> {
        self.recipients.iter().map(String::as_str)
    }

    /// The flags every such run starts with: `--server SERVER --tls none --from FROM
    /// --subject SUBJECT --body ... --recipients ...`; a test adds its own after them.
    pub fn args(&self, server: SocketAddr, from: &str, subject: &str) -> Vec<String> {
        let path = |name: &str| self.dir.path().join(name).to_string_lossy().into_owned();
        let args = ["--server", &server.to_string(), "--tls", "none", "--from", from];
        let files = ["--body", &path("body.txt"), "--recipients", &path("recipients.txt")];
        args.iter().chain(&["--subject", subject]).chain(&files).map(|s| s.to_string()).collect()
    }
}

/// The workspace README.
pub fn readme() -> io::Result<String> {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
}

/// The part of `readme` from the heading that starts with `heading` to the next heading of the
/// same or a higher level (empty when there is no such heading). Lines in fenced code blocks
/// are never headings (a shell comment starts with `#` too).
pub fn readme_section<'a>(readme: &'a str, heading: &str) -> &'a str {
    let level = heading.chars().take_while(|&c| c == '#').count();
    let mut in_code = false;
    let mut start = None;
    let mut offset = 0;
    for line in readme.split_inclusive('\n') {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code {
            let hashes = line.chars().take_while(|&c| c == '#').count();
            let is_heading = hashes > 0 && line[hashes..].starts_with(' ');
            match start {
                None if line.starts_with(heading) => start = Some(offset),
                Some(s) if is_heading && hashes <= level => return &readme[s..offset],
                _ => {}
            }
        }
        offset += line.len();
    }
    start.map_or("", |s| &readme[s..])
}

/// Cargo's own flags, which README commands use to build and run the programs.
const CARGO_FLAGS: &[&str] =
    &["--release", "--example", "--bin", "--workspace", "--ignored", "--doc", "--include-ignored"];

/// Every `--long-flag` written in `text`, except cargo's own.
pub fn flags_in(text: &str) -> std::collections::BTreeSet<String> {
    let mut flags = std::collections::BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("--") {
        let start = i + at;
        let mut end = start + 2;
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'-') {
            end += 1;
        }
        let before_ok = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        let flag = &text[start..end];
        if before_ok && flag.len() > 3 && !flag.ends_with('-') && !CARGO_FLAGS.contains(&flag) {
            flags.insert(flag.to_owned());
        }
        i = end.max(start + 2);
    }
    flags
}
