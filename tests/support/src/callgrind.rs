//! Instruction counts from valgrind's callgrind, for benchmarks whose timings are too noisy on
//! a shared machine: run a program under [`command`], read the count with [`instructions`].

use std::ffi::OsStr;
use std::io;
use std::process::Command;

/// `valgrind --tool=callgrind --callgrind-out-file=/dev/null OPTIONS PROGRAM`: add the
/// program's arguments and environment, then pass it to [`instructions`].
pub fn command(options: &[&str], program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("valgrind");
    command.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"]);
    command.args(options).arg(program);
    command
}

/// Runs `command` (from [`command`]) to the end and returns the instructions callgrind
/// collected. Fails when valgrind is missing (`apt-get install valgrind`), when the program
/// fails (the error holds valgrind's stderr) or when no count is printed.
pub fn instructions(command: &mut Command) -> io::Result<u64> {
    let out = command.output().map_err(|e| {
        io::Error::new(e.kind(), format!("valgrind: {e} (apt-get install valgrind)"))
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(io::Error::other(format!("under callgrind: {}: {stderr}", out.status)));
    }
    collected(&stderr)
        .ok_or_else(|| io::Error::other(format!("no `Collected :` line from callgrind: {stderr}")))
}

/// The count in callgrind's `==PID== Collected : N` line.
fn collected(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|l| l.split_once("Collected : ")?.1.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_collected_line() {
        let stderr = "==41== Events    : Ir\n==41== Collected : 452626\n==41==\n";
        assert_eq!(collected(stderr), Some(452_626));
        assert_eq!(collected("==41== I   refs:      452,626\n"), None);
    }
}
