//! The CLI's exit codes, and the error that carries one: an error without one exits with
//! [`Exit::FAILED`].

/// An error that says which exit code it ends the CLI with.
#[derive(Debug)]
pub struct Exit {
    /// The process exit code.
    pub code: u8,
    message: String,
}

impl Exit {
    /// 0: done.
    pub const OK: u8 = 0;
    /// 1: a selection by `--message-id` or `--group` matched no dead letter.
    pub const NOTHING_MATCHED: u8 = 1;
    /// 2: bad usage or input refused: flags, a purge without `--yes`, an edited body that does
    /// not validate (clap's own usage errors exit with 2 too).
    pub const USAGE: u8 = 2;
    /// 3: the broker or its management API cannot be reached or refuses the login.
    pub const UNREACHABLE: u8 = 3;
    /// 4: the queue or exchange named does not exist.
    pub const NOT_FOUND: u8 = 4;
    /// 5: anything else failed part-way (e.g. a copy was not confirmed); what was not moved or
    /// removed is still in place.
    pub const FAILED: u8 = 5;

    /// An error exiting with `code`.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Exit code 1, [`Exit::NOTHING_MATCHED`].
    pub fn nothing_matched(message: impl Into<String>) -> Self {
        Self::new(Self::NOTHING_MATCHED, message)
    }

    /// Exit code 2, [`Exit::USAGE`].
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Self::USAGE, message)
    }

    /// Exit code 3, [`Exit::UNREACHABLE`].
    pub fn unreachable(message: impl Into<String>) -> Self {
        Self::new(Self::UNREACHABLE, message)
    }

    /// Exit code 4, [`Exit::NOT_FOUND`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Self::NOT_FOUND, message)
    }

    /// The exit code `err` ends the CLI with: that of the outermost [`Exit`] in it, else 5.
    #[must_use]
    pub fn code_of(err: &anyhow::Error) -> u8 {
        err.downcast_ref::<Self>()
            .map_or(Self::FAILED, |exit| exit.code)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn the_code_survives_context_on_either_side() {
        let plain = anyhow::anyhow!("boom");
        assert_eq!(Exit::code_of(&plain), Exit::FAILED);
        let root = anyhow::Error::new(Exit::not_found("no queue 'q'")).context("dlq show");
        assert_eq!(Exit::code_of(&root), Exit::NOT_FOUND);
        let io: Result<(), _> = Err(std::io::Error::other("refused"));
        let wrapped = io
            .context(Exit::unreachable("cannot connect"))
            .context("dlq list")
            .unwrap_err();
        assert_eq!(Exit::code_of(&wrapped), Exit::UNREACHABLE);
        assert_eq!(
            crate::print::error_line(&wrapped),
            "dlq list: cannot connect: refused"
        );
    }
}
