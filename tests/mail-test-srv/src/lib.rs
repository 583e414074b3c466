//! Fake SMTP server (filled in by the mail-test-srv issue).
