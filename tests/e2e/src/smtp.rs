//! A plain, strict SMTP client written against the RFC, independent of lettre and of the
//! mailer: the "normal client" that must still be served after a server was abused.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One reply: its code and its text lines (without the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text of each line.
    pub lines: Vec<String>,
}

/// A blocking SMTP session with a timeout on every read and write.
pub struct Session {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Session {
    /// Connects and reads the greeting, which must be 220.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        let mut session = Session { reader: BufReader::new(stream), writer };
        session.expect(220)?;
        Ok(session)
    }

    /// Reads one (possibly multi-line) reply.
    pub fn reply(&mut self) -> io::Result<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "server closed"));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| io::Error::other(format!("not a reply line: {line:?}")))?;
            lines.push(line.get(4..).unwrap_or("").to_owned());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply { code, lines });
            }
        }
    }

    fn expect(&mut self, code: u16) -> io::Result<Reply> {
        let reply = self.reply()?;
        if reply.code == code {
            Ok(reply)
        } else {
            Err(io::Error::other(format!("expected {code}, got {reply:?}")))
        }
    }

    /// Sends one command line and reads its reply.
    pub fn command(&mut self, line: &str) -> io::Result<Reply> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// Sends one command line and requires the reply code `code`.
    pub fn command_expect(&mut self, line: &str, code: u16) -> io::Result<Reply> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())?;
        self.expect(code)
    }

    /// A whole transaction: MAIL, RCPT, DATA with dot-stuffing, each reply checked.
    pub fn send(&mut self, from: &str, to: &str, message: &str) -> io::Result<()> {
        self.command_expect(&format!("MAIL FROM:<{from}>"), 250)?;
        self.command_expect(&format!("RCPT TO:<{to}>"), 250)?;
        self.command_expect("DATA", 354)?;
        let mut data = String::with_capacity(message.len() + 8);
        for line in message.lines() {
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
            data.push_str("\r\n");
        }
        data.push_str(".\r\n");
        self.writer.write_all(data.as_bytes())?;
        self.expect(250).map(drop)
    }
}

/// The "normal client": EHLO, one message, QUIT, every reply as RFC 5321 says.
pub fn send_one(addr: SocketAddr, from: &str, to: &str, subject: &str) -> io::Result<()> {
    let mut session = Session::connect(addr, Duration::from_secs(10))?;
    session.command_expect("EHLO client.test", 250)?;
    let message =
        format!("From: <{from}>\nTo: <{to}>\nSubject: {subject}\n\nhello\n.leading dot\n");
    session.send(from, to, &message)?;
    session.command_expect("QUIT", 221).map(drop)
}
