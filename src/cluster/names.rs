//! Names in the broker: the job stream, its subjects and consumers, the key-value buckets, and
//! how file names become subject tokens and keys (URL-safe base64, so any UTF-8 name fits).

use crate::job::{InputKind, Job};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Where one catalog's work and facts live in the broker: the deployment's, or a tenant's (design
/// §10) — its own stream, subjects, journal and heartbeats, so nothing crosses tenants and each
/// tenant's jobs are pulled on their own.
#[derive(Clone, Debug)]
pub(super) struct Names {
    tenant: Option<String>,
}

impl Names {
    /// The names of the deployment's catalog (`None`) or of a tenant's (a slug: letters, digits
    /// and `-`, which stream, subject and bucket names all take).
    pub(super) fn of(tenant: Option<&str>) -> Names {
        Names { tenant: tenant.map(str::to_owned) }
    }

    /// The tenant whose names these are.
    pub(super) fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    fn suffixed(&self, base: &str) -> String {
        match &self.tenant {
            Some(tenant) => format!("{base}_{tenant}"),
            None => base.to_owned(),
        }
    }

    /// The work-queue stream of jobs.
    pub(super) fn stream(&self) -> String {
        self.suffixed("THUMBGEN_JOBS")
    }

    /// Every job subject: `thumbgen.jobs.<kind>.<encoded name>`, or under `thumbgen.t.<tenant>.`.
    fn prefix(&self) -> String {
        match &self.tenant {
            Some(tenant) => format!("thumbgen.t.{tenant}.jobs."),
            None => "thumbgen.jobs.".to_owned(),
        }
    }

    pub(super) fn subjects(&self) -> String {
        format!("{}>", self.prefix())
    }

    pub(super) fn kind_subjects(&self, kind: InputKind) -> String {
        format!("{}{}.>", self.prefix(), kind_token(kind))
    }

    /// The journal of done work, name claims and leases.
    pub(super) fn journal(&self) -> String {
        self.suffixed("thumbgen_journal")
    }

    /// Node heartbeats.
    pub(super) fn nodes(&self) -> String {
        self.suffixed("thumbgen_nodes")
    }

    /// The subject a job is published on.
    pub(super) fn subject(&self, job: &Job) -> String {
        format!("{}{}.{}", self.prefix(), kind_token(job.kind), encode(&job.name))
    }

    /// The job a subject carries.
    pub(super) fn job_of(&self, subject: &str) -> Option<Job> {
        let rest = subject.strip_prefix(&self.prefix())?;
        let (kind, name) = rest.split_once('.')?;
        Some(Job::new(kind_from_token(kind)?, decode(name)?))
    }
}

/// The durable pull consumers of a stream, one per kind, so backgrounds can be taken first.
pub(super) fn consumer(kind: InputKind) -> &'static str {
    match kind {
        InputKind::Background => "workers-backgrounds",
        InputKind::Product => "workers-products",
    }
}

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
    fn each_tenant_has_its_own_stream_subjects_and_buckets_and_reads_no_other_subject() {
        let (deployment, a, b) = (Names::of(None), Names::of(Some("loja-a")), Names::of(Some("loja-b")));
        assert_eq!((deployment.stream(), deployment.journal()), ("THUMBGEN_JOBS".into(), "thumbgen_journal".into()));
        assert_eq!((a.stream(), a.journal(), a.nodes()), ("THUMBGEN_JOBS_loja-a".into(), "thumbgen_journal_loja-a".into(), "thumbgen_nodes_loja-a".into()));
        let job = Job::new(InputKind::Background, "praia.jpg");
        let subject = a.subject(&job);
        assert!(subject.starts_with("thumbgen.t.loja-a.jobs.background."), "{subject}");
        assert_eq!(a.job_of(&subject), Some(job.clone()));
        assert_eq!(b.job_of(&subject), None, "another tenant's subject is not a job of this one");
        assert_eq!(deployment.job_of(&subject), None);
        assert_eq!(a.job_of(&deployment.subject(&job)), None);
        // Work-queue streams may not share subjects: the deployment's wildcard takes no tenant's.
        assert!(!subject.starts_with(deployment.subjects().trim_end_matches('>')));
    }

    #[test]
    fn any_file_name_round_trips_through_a_subject() {
        let names = Names::of(None);
        for name in ["tênis azul.jpg", "a.b.c.png", "*>.jpg", "x y\nz.webp", "-rf.jpg"] {
            let job = Job::new(InputKind::Product, name);
            let subject = names.subject(&job);
            assert_eq!(subject.split('.').count(), 4, "{subject}");
            assert!(!subject.contains(char::is_whitespace));
            assert_eq!(names.job_of(&subject), Some(job));
        }
        assert!(
            matches!(fact_of(&key::stamp(InputKind::Background, "b.jpg")), Some(Fact::Stamp(InputKind::Background, n)) if n == "b.jpg")
        );
        assert!(matches!(fact_of(&key::output("p__b.jpg")), Some(Fact::Output(f)) if f == "p__b.jpg"));
        assert!(fact_of(&key::job_lease(InputKind::Product, "p.jpg")).is_none());
    }
}
