//! How a job can end other than in thumbnails.
//!
//! The split decides what happens to the input: a [`Rejection`] can never succeed and moves the
//! file to `rejeitados/` with an explanation; a transient failure (disk full, engine down) keeps
//! the file where it is and retries it; a vanished file was deleted or renamed away meanwhile.

use std::fmt;

#[derive(Debug)]
pub enum JobError {
    Rejected(Rejection),
    Transient(String),
    Vanished,
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            JobError::Rejected(r) => write!(f, "rejected ({}): {}", r.reason.label(), r.problem),
            JobError::Transient(msg) => write!(f, "will retry: {msg}"),
            JobError::Vanished => f.write_str("the file disappeared before it could be read"),
        }
    }
}

impl From<Rejection> for JobError {
    fn from(r: Rejection) -> Self {
        JobError::Rejected(r)
    }
}

/// Why an input can never become thumbnails; the label is the `reason` of
/// `thumbgen_inputs_rejected_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    NotRegularFile,
    Symlink,
    Empty,
    TooLarge,
    UnsupportedFormat,
    TooManyPixels,
    Corrupt,
    Unreadable,
    NoProduct,
    NameCollision,
}

impl RejectReason {
    pub const ALL: [RejectReason; 10] = [
        RejectReason::NotRegularFile,
        RejectReason::Symlink,
        RejectReason::Empty,
        RejectReason::TooLarge,
        RejectReason::UnsupportedFormat,
        RejectReason::TooManyPixels,
        RejectReason::Corrupt,
        RejectReason::Unreadable,
        RejectReason::NoProduct,
        RejectReason::NameCollision,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RejectReason::NotRegularFile => "not_regular_file",
            RejectReason::Symlink => "symlink",
            RejectReason::Empty => "empty",
            RejectReason::TooLarge => "too_large",
            RejectReason::UnsupportedFormat => "unsupported_format",
            RejectReason::TooManyPixels => "too_many_pixels",
            RejectReason::Corrupt => "corrupt",
            RejectReason::Unreadable => "unreadable",
            RejectReason::NoProduct => "no_product",
            RejectReason::NameCollision => "name_collision",
        }
    }
}

/// What was wrong with an input and what the user can do about it.
#[derive(Clone, Debug)]
pub struct Rejection {
    pub reason: RejectReason,
    pub problem: String,
    pub advice: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, problem: impl Into<String>, advice: impl Into<String>) -> Self {
        Rejection { reason, problem: problem.into(), advice: advice.into() }
    }
}

/// Classifies an I/O error met while reading an input.
pub fn read_error(path: &std::path::Path, e: &std::io::Error) -> JobError {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => JobError::Vanished,
        ErrorKind::PermissionDenied => JobError::Rejected(Rejection::new(
            RejectReason::Unreadable,
            format!("thumbgen is not allowed to read {}", path.display()),
            "Give the thumbgen user read permission (e.g. chmod 644) and copy the file into the folder again.",
        )),
        _ if e.raw_os_error() == Some(libc::ELOOP) => JobError::Rejected(symlink_rejection()),
        _ => JobError::Transient(format!("cannot read {}: {e}", path.display())),
    }
}

/// The rejection of a symbolic link, which is never followed.
pub fn symlink_rejection() -> Rejection {
    Rejection::new(
        RejectReason::Symlink,
        "the file is a symbolic link; links are never followed so nothing outside the folder can be read",
        "Copy the photo itself into the folder instead of linking to it.",
    )
}
