//! Mailer (filled in by the mailer issue).
