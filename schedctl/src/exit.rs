//! Exit codes and how a failed command is reported.
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done |
//! | 1 | we failed (I/O, a peer, a bug) |
//! | 2 | bad input: the command line, a file or a value the user gave |
//! | 3 | refused: the request is valid but stale or unsafe (a digest that no longer matches) |

use std::process::ExitCode;

/// Why a command stopped, with the exit code that tells scripts which kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Something failed on our side or a peer's: exit 1.
    Failed,
    /// The user's input is wrong: exit 2.
    BadInput,
    /// The request is understood but refused (stale digest, unsafe state): exit 3.
    Refused,
}

/// A command's failure: what went wrong (with its whole chain of causes) and its kind.
#[derive(Debug)]
pub struct CommandError {
    kind: Kind,
    error: anyhow::Error,
}

impl CommandError {
    /// A failure of the given kind.
    pub fn new(kind: Kind, error: impl Into<anyhow::Error>) -> Self {
        Self {
            kind,
            error: error.into(),
        }
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Prints the error chain on stderr and returns the exit code of its kind.
    pub fn report(self) -> ExitCode {
        // A closed stdout (`schedctl ... | head`) is not a failure.
        if is_broken_pipe(&self.error) {
            return ExitCode::SUCCESS;
        }
        eprintln!("error: {}", self.error);
        for cause in self.error.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        ExitCode::from(match self.kind {
            Kind::Failed => 1,
            Kind::BadInput => 2,
            Kind::Refused => 3,
        })
    }
}

/// The error and its causes on one line.
impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Anything that is not classified explicitly is our failure (exit 1).
impl From<anyhow::Error> for CommandError {
    fn from(error: anyhow::Error) -> Self {
        Self::new(Kind::Failed, error)
    }
}

impl From<std::io::Error> for CommandError {
    fn from(error: std::io::Error) -> Self {
        Self::new(Kind::Failed, error)
    }
}

impl From<crate::store::StoreError> for CommandError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::new(Kind::Failed, error)
    }
}

/// Shorthand: mark an error as bad user input (exit 2).
pub fn bad_input(error: impl Into<anyhow::Error>) -> CommandError {
    CommandError::new(Kind::BadInput, error)
}

/// Shorthand: mark an error as a refusal (exit 3).
pub fn refused(error: impl Into<anyhow::Error>) -> CommandError {
    CommandError::new(Kind::Refused, error)
}

/// The result of a command.
pub type CommandResult = Result<(), CommandError>;
