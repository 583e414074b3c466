//! End-to-end test helpers: paths of the built binaries and peer processes.
