//! Third-party peers for the peer suite (filled in by the end-to-end issue).
