//! The orderflow admin CLI (work in progress).
fn main() {}
