//! How things fail, as types that carry their cause and say what to do.
//!
//! A job that does not end in thumbnails ends in one of three ways, and the split decides what
//! happens to the input: a [`Rejection`] can never succeed and moves the file to `rejeitados/`
//! with an explanation; a [`Transient`] failure (disk full, engine down, file still being written)
//! keeps the file where it is and retries it; a vanished file was deleted or renamed away meanwhile.
//! A [`StartError`] stops the daemon before it serves: it keeps its chain of causes and ends with
//! advice for the person starting it.
//!
//! This module depends on nothing else in the crate.

use std::error::Error;
use std::fmt;

/// A boxed error from a library (I/O, HTTP, an inference runtime), kept as the cause.
pub type Source = Box<dyn Error + Send + Sync + 'static>;

#[derive(Debug)]
pub enum JobError {
    Rejected(Rejection),
    Transient(Transient),
    Vanished,
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            JobError::Rejected(r) => write!(f, "rejected ({}): {}", r.reason.label(), r.problem),
            JobError::Transient(t) => write!(f, "will retry: {t}"),
            JobError::Vanished => f.write_str("the file disappeared before it could be read"),
        }
    }
}

impl From<Rejection> for JobError {
    fn from(r: Rejection) -> Self {
        JobError::Rejected(r)
    }
}

impl From<Transient> for JobError {
    fn from(t: Transient) -> Self {
        JobError::Transient(t)
    }
}

/// What kind of passing trouble stopped a job; the worker's retry policy depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Writing outputs, cut-outs or records failed (full disk, read-only or missing folder).
    Storage,
    /// An input could not be read for a reason that may pass (I/O error, network mount).
    Read,
    /// The removal engine could not make the cut-out (remote down, quota, model failure).
    Engine,
    /// Encoding an output failed.
    Encode,
    /// The input looks incomplete and is still being written.
    StillBeingWritten,
    /// Another worker is making the same cut-out right now.
    Busy,
    /// A bug: the job panicked. The log has the details.
    Internal,
    /// The tenant's photos for today are used up (`max_photos_per_day`): it waits for tomorrow.
    OverQuota,
}

impl Cause {
    pub const ALL: [Cause; 8] = [
        Cause::Storage,
        Cause::Read,
        Cause::Engine,
        Cause::Encode,
        Cause::StillBeingWritten,
        Cause::Busy,
        Cause::Internal,
        Cause::OverQuota,
    ];

    /// The `cause` label of `thumbgen_inputs_waiting` and the key in `/health`.
    pub fn label(self) -> &'static str {
        match self {
            Cause::Storage => "storage",
            Cause::Read => "read",
            Cause::Engine => "engine",
            Cause::Encode => "encode",
            Cause::StillBeingWritten => "still_being_written",
            Cause::Busy => "busy",
            Cause::Internal => "internal",
            Cause::OverQuota => "over_quota",
        }
    }
}

/// A failure that may pass: the input stays and is tried again.
#[derive(Debug)]
pub struct Transient {
    cause: Cause,
    context: String,
    source: Option<Source>,
}

impl Transient {
    pub fn new(cause: Cause, context: impl Into<String>) -> Transient {
        Transient { cause, context: context.into(), source: None }
    }

    /// Keeps `source` as the underlying error.
    pub fn because(mut self, source: impl Into<Source>) -> Transient {
        self.source = Some(source.into());
        self
    }

    pub fn cause(&self) -> Cause {
        self.cause
    }

    /// True when a filesystem ran out of space (or quota): retrying helps only once space returns.
    pub fn out_of_space(&self) -> bool {
        let mut next: Option<&(dyn Error + 'static)> = self.source.as_deref().map(|e| e as &(dyn Error + 'static));
        while let Some(e) = next {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if matches!(io.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
                    || io.kind() == std::io::ErrorKind::StorageFull
                {
                    return true;
                }
            }
            next = e.source();
        }
        false
    }
}

impl fmt::Display for Transient {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write_caused(f, &self.context, self.source.as_ref())
    }
}

impl Error for Transient {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
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
    RepeatedCrash,
}

impl RejectReason {
    pub const ALL: [RejectReason; 11] = [
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
        RejectReason::RepeatedCrash,
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
            RejectReason::RepeatedCrash => "repeated_crash",
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
pub fn read_error(path: &std::path::Path, e: std::io::Error) -> JobError {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => JobError::Vanished,
        ErrorKind::PermissionDenied => JobError::Rejected(Rejection::new(
            RejectReason::Unreadable,
            format!("thumbgen is not allowed to read {}", path.display()),
            "Give the thumbgen user read permission (e.g. chmod 644) and copy the file into the folder again.",
        )),
        _ if e.raw_os_error() == Some(libc::ELOOP) => JobError::Rejected(symlink_rejection()),
        _ => Transient::new(Cause::Read, format!("cannot read {}", path.display())).because(e).into(),
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

/// A failure that stops the daemon (or a command) before it starts working: what failed, why,
/// and what the person starting it can do.
#[derive(Debug)]
pub struct StartError {
    what: String,
    source: Option<Source>,
    advice: Option<String>,
}

impl StartError {
    pub fn new(what: impl Into<String>) -> StartError {
        StartError { what: what.into(), source: None, advice: None }
    }

    pub fn because(mut self, source: impl Into<Source>) -> StartError {
        self.source = Some(source.into());
        self
    }

    pub fn advice(mut self, advice: impl Into<String>) -> StartError {
        self.advice = Some(advice.into());
        self
    }

    /// Says what the failure concerned (`tenant shop-a: …`).
    pub(crate) fn context(mut self, context: impl std::fmt::Display) -> StartError {
        self.what = format!("{context}: {}", self.what);
        self
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write_caused(f, &self.what, self.source.as_ref())?;
        if let Some(advice) = &self.advice {
            write!(f, ". {advice}")?;
        }
        Ok(())
    }
}

impl Error for StartError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// A setting with a value thumbgen cannot use; the message names the key (and its environment
/// variable) and what is accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for ConfigError {}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> StartError {
        StartError::new(e.0)
    }
}

/// Writes `context`, then the chain of causes of `source` when there is one.
pub(crate) fn write_caused(f: &mut fmt::Formatter, context: &str, source: Option<&Source>) -> fmt::Result {
    f.write_str(context)?;
    match source {
        Some(source) => write!(f, ": {}", chain(source.as_ref())),
        None => Ok(()),
    }
}

/// An error with its causes, one after the other ("error sending request: connection refused").
/// Causes that only repeat the text before them are left out.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_recognised_through_the_chain_of_causes() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let t = Transient::new(Cause::Storage, "cannot write x.jpg").because(full);
        assert!(t.out_of_space());
        assert!(t.to_string().starts_with("cannot write x.jpg: "), "{t}");
        let other = Transient::new(Cause::Storage, "cannot write").because(std::io::Error::other("boom"));
        assert!(!other.out_of_space());
    }

    #[test]
    fn start_errors_keep_their_cause_and_end_with_advice() {
        let e = StartError::new("cannot listen on 127.0.0.1:1")
            .because(std::io::Error::from(std::io::ErrorKind::AddrInUse))
            .advice("Set PORT to a free port");
        let text = e.to_string();
        assert!(
            text.starts_with("cannot listen on 127.0.0.1:1: ") && text.ends_with(". Set PORT to a free port"),
            "{text}"
        );
        assert!(e.source().is_some());
    }
}
