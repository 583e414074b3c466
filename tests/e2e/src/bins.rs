//! Paths of the workspace binaries (filled in by the notify-mailer issue).
