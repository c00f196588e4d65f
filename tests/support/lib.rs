//! End-to-end test support (work in progress).
