//! Why one attempt at the remote app gave no cut-out, and what to do about it.
//!
//! The decision is made from types — the HTTP status the app answered, the kind of failure — never
//! from message text.

use crate::error::{write_caused, Source};
use reqwest::StatusCode;
use std::fmt;
use std::time::Duration;

/// What went wrong in one step of an attempt (discovery, upload, submit, stream, download).
#[derive(Debug)]
pub(crate) struct Problem {
    context: String,
    status: Option<StatusCode>,
    source: Option<Source>,
}

impl Problem {
    pub(crate) fn new(context: impl Into<String>) -> Problem {
        Problem { context: context.into(), status: None, source: None }
    }

    /// The app answered `status` (with `body`, shortened, as the detail).
    pub(crate) fn http(step: &str, status: StatusCode, body: &str) -> Problem {
        let detail = short(body);
        let context = if detail.is_empty() {
            format!("{step}: HTTP {status}")
        } else {
            format!("{step}: HTTP {status}: {detail}")
        };
        Problem { context, status: Some(status), source: None }
    }

    pub(crate) fn because(mut self, source: impl Into<Source>) -> Problem {
        self.source = Some(source.into());
        self
    }

    /// The HTTP status the app answered, when this is one.
    pub(crate) fn status(&self) -> Option<StatusCode> {
        self.status
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write_caused(f, &self.context, self.source.as_ref())
    }
}

impl std::error::Error for Problem {}

/// What the caller should do about a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Passing trouble (network, 5xx, dropped or stalled stream, app error): try again.
    Retry,
    /// The remote named a wait (429 Retry-After, quota "try again in H:MM:SS").
    Wait(Duration),
    /// The app's queue is full: back-pressure, not a failure of this photo.
    Busy,
    /// Not logged in (anymore): log in and try again.
    Unauthorized,
    /// The app answers but cannot give a cut-out (no such endpoint, no image with alpha).
    Unusable,
}

/// Why an attempt did not produce a cut-out, and what the caller should do.
#[derive(Debug)]
pub(crate) struct Failure {
    pub kind: Kind,
    pub problem: Problem,
}

impl Failure {
    pub(crate) fn retry(problem: Problem) -> Failure {
        Failure { kind: Kind::Retry, problem }
    }

    pub(crate) fn wait(wait: Duration, problem: Problem) -> Failure {
        Failure { kind: Kind::Wait(wait), problem }
    }

    pub(crate) fn busy(problem: Problem) -> Failure {
        Failure { kind: Kind::Busy, problem }
    }

    pub(crate) fn unauthorized(problem: Problem) -> Failure {
        Failure { kind: Kind::Unauthorized, problem }
    }

    pub(crate) fn unusable(problem: Problem) -> Failure {
        Failure { kind: Kind::Unusable, problem }
    }
}

/// Text from the app on one line, at most 300 characters.
pub(crate) fn short(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(300).collect()
}
