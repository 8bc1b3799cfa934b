//! Names in the broker: the job stream, its subjects and consumers, the key-value buckets, and
//! how file names become subject tokens and keys (URL-safe base64, so any UTF-8 name fits).

use crate::job::{InputKind, Job};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// The work-queue stream of jobs.
pub(super) const STREAM: &str = "THUMBGEN_JOBS";
/// Every job subject: `thumbgen.jobs.<kind>.<encoded name>`.
pub(super) const SUBJECTS: &str = "thumbgen.jobs.>";
/// The durable pull consumers, one per kind, so backgrounds can be taken first.
pub(super) fn consumer(kind: InputKind) -> &'static str {
    match kind {
        InputKind::Background => "workers-backgrounds",
        InputKind::Product => "workers-products",
    }
}
pub(super) fn kind_subjects(kind: InputKind) -> String {
    format!("thumbgen.jobs.{}.>", kind_token(kind))
}
/// The journal of done work, name claims and leases.
pub(super) const JOURNAL: &str = "thumbgen_journal";
/// Node heartbeats.
pub(super) const NODES: &str = "thumbgen_nodes";

fn kind_token(kind: InputKind) -> &'static str {
    match kind {
        InputKind::Product => "product",
        InputKind::Background => "background",
    }
}

fn kind_from_token(token: &str) -> Option<InputKind> {
    match token {
        "product" => Some(InputKind::Product),
        "background" => Some(InputKind::Background),
        _ => None,
    }
}

/// A name as one subject token or key segment.
pub(super) fn encode(name: &str) -> String {
    URL_SAFE_NO_PAD.encode(name.as_bytes())
}

pub(super) fn decode(token: &str) -> Option<String> {
    URL_SAFE_NO_PAD.decode(token).ok().and_then(|b| String::from_utf8(b).ok())
}

/// The subject a job is published on.
pub(super) fn subject(job: &Job) -> String {
    format!("thumbgen.jobs.{}.{}", kind_token(job.kind), encode(&job.name))
}

/// The job a subject carries.
pub(super) fn job_of(subject: &str) -> Option<Job> {
    let rest = subject.strip_prefix("thumbgen.jobs.")?;
    let (kind, name) = rest.split_once('.')?;
    Some(Job::new(kind_from_token(kind)?, decode(name)?))
}

/// Keys of the journal bucket, one family per kind of fact.
pub(super) mod key {
    use super::{encode, kind_token, InputKind};

    pub(in crate::cluster) fn stamp(kind: InputKind, name: &str) -> String {
        format!("stamp.{}.{}", kind_token(kind), encode(name))
    }

    pub(in crate::cluster) fn output(file: &str) -> String {
        format!("out.{}", encode(file))
    }

    pub(in crate::cluster) fn claim(kind: InputKind, stem: &str) -> String {
        format!("claim.{}.{}", kind_token(kind), encode(stem))
    }

    pub(in crate::cluster) fn cutout(hash: &str) -> String {
        format!("cutout.{hash}")
    }

    /// The lease of a job being run.
    pub(in crate::cluster) fn job_lease(kind: InputKind, name: &str) -> String {
        format!("lease.job.{}.{}", kind_token(kind), encode(name))
    }

    /// The lease of the node that lists the bucket for the cluster.
    pub(in crate::cluster) const LISTER_LEASE: &str = "lease.lister";

    /// The lease of a cut-out being made.
    pub(in crate::cluster) fn cutout_lease(hash: &str) -> String {
        format!("lease.cutout.{hash}")
    }

    /// A job rejected because it kept killing its workers.
    pub(in crate::cluster) fn dead(kind: InputKind, name: &str) -> String {
        format!("dead.{}.{}", kind_token(kind), encode(name))
    }

    /// Set once the journal was seeded (from a single-node journal, or after the broker lost it).
    pub(in crate::cluster) const SEEDED: &str = "meta.seeded";
}

/// What a journal key names, when it is a fact (leases and markers are not).
pub(super) enum Fact {
    Stamp(InputKind, String),
    Output(String),
    Claim,
    Cutout,
}

pub(super) fn fact_of(key: &str) -> Option<Fact> {
    let mut parts = key.splitn(3, '.');
    match (parts.next()?, parts.next(), parts.next()) {
        ("stamp", Some(kind), Some(name)) => Some(Fact::Stamp(kind_from_token(kind)?, decode(name)?)),
        ("out", Some(file), None) => Some(Fact::Output(decode(file)?)),
        ("claim", Some(_), Some(_)) => Some(Fact::Claim),
        ("cutout", Some(_), None) => Some(Fact::Cutout),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_file_name_round_trips_through_a_subject() {
        for name in ["tênis azul.jpg", "a.b.c.png", "*>.jpg", "x y\nz.webp", "-rf.jpg"] {
            let job = Job::new(InputKind::Product, name);
            let subject = subject(&job);
            assert_eq!(subject.split('.').count(), 4, "{subject}");
            assert!(!subject.contains(char::is_whitespace));
            assert_eq!(job_of(&subject), Some(job));
        }
        assert!(
            matches!(fact_of(&key::stamp(InputKind::Background, "b.jpg")), Some(Fact::Stamp(InputKind::Background, n)) if n == "b.jpg")
        );
        assert!(matches!(fact_of(&key::output("p__b.jpg")), Some(Fact::Output(f)) if f == "p__b.jpg"));
        assert!(fact_of(&key::job_lease(InputKind::Product, "p.jpg")).is_none());
    }
}
