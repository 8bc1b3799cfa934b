//! Catalog: every product — the photos in `produtos/` and the product photos in `rejeitados/` —
//! newest first, with its state, the engine of its cut-out, its thumbnails and, for a rejected
//! one, why.
//!
//! States (design §8): `working` while a worker runs its job; `waiting_remote` while its retry
//! waits for the removal engine to answer again; `pending` while it is queued, waits to be
//! retried for another reason, or has no main thumbnail made from its current content yet;
//! `done` once the main thumbnail is made from exactly this content (background versions still
//! to come keep the product queued, hence `pending`); `rejected` when it is in `rejeitados/`.
//! Only the page asked for gets its thumbnails listed; a state filter looks at each product with
//! a few hash-table look-ups.

use super::listing::Entry;
use super::problem::Problem;
use super::rejected::RejectedFile;
use super::{segment, Console, Running};
use crate::error::Cause;
use crate::job::{InputKind, Job};
use crate::naming;
use crate::queue::Place;
use crate::store::{job_key, OutputRecord};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Products per page unless asked otherwise, and at most.
const PER_PAGE: usize = 48;
const MAX_PER_PAGE: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum State {
    Pending,
    Working,
    Done,
    Rejected,
    WaitingRemote,
    /// Its tenant's photos for today are used up: it waits for tomorrow.
    OverQuota,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Query {
    /// 1-based.
    page: Option<usize>,
    per_page: Option<usize>,
    /// Part of the name, any case.
    q: Option<String>,
    state: Option<State>,
}

/// A product in the catalog, from either folder.
enum Item<'a> {
    Photo(&'a Entry),
    Rejected(&'a RejectedFile),
}

impl Item<'_> {
    fn name(&self) -> &str {
        match self {
            Item::Photo(e) => &e.name,
            Item::Rejected(r) => &r.name,
        }
    }

    fn mtime_ns(&self) -> i64 {
        match self {
            Item::Photo(e) => e.stamp.mtime_ns,
            Item::Rejected(r) => r.stamp.mtime_ns,
        }
    }
}

impl Console {
    /// One page of the catalog (blocking).
    pub(super) fn products(&self, query: &Query) -> Result<Value, Problem> {
        let running = self.running()?;
        let photos = self.products.snapshot();
        let rejected = self.rejected.snapshot();
        let needle = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(str::to_lowercase);
        let matches = |name: &str| needle.as_deref().is_none_or(|n| name.to_lowercase().contains(n));
        let rejected_products = rejected.entries.iter().filter(|r| r.kind != Some(InputKind::Background));
        let mut items: Vec<Item> = photos
            .entries
            .iter()
            .map(Item::Photo)
            .chain(rejected_products.map(Item::Rejected))
            .filter(|item| matches(item.name()))
            .collect();
        items.sort_by(|a, b| b.mtime_ns().cmp(&a.mtime_ns()).then_with(|| a.name().cmp(b.name())));
        if let Some(wanted) = query.state {
            items.retain(|item| self.state(running, item) == wanted);
        }
        let per_page = query.per_page.unwrap_or(PER_PAGE).clamp(1, MAX_PER_PAGE);
        let pages = items.len().div_ceil(per_page).max(1);
        let page = query.page.unwrap_or(1).clamp(1, pages);
        let shown: Vec<Value> =
            items.iter().skip((page - 1) * per_page).take(per_page).map(|item| self.product(running, item)).collect();
        Ok(json!({ "items": shown, "total": items.len(), "page": page, "per_page": per_page, "pages": pages }))
    }

    fn state(&self, running: &Running, item: &Item) -> State {
        let entry = match item {
            Item::Rejected(_) => return State::Rejected,
            Item::Photo(entry) => entry,
        };
        let job = Job::new(InputKind::Product, entry.name.clone());
        let place = self.deps.queue.place(&job);
        match (place, running.workers.retry_cause(&job)) {
            (Some(Place::Running), _) => State::Working,
            (_, Some(Cause::Engine)) => State::WaitingRemote,
            (_, Some(Cause::OverQuota)) => State::OverQuota,
            (Some(Place::Waiting), _) | (_, Some(_)) => State::Pending,
            (None, None) if self.main_done(running, entry) => State::Done,
            (None, None) => State::Pending,
        }
    }

    /// True when the main thumbnail was made from the photo's current content.
    fn main_done(&self, running: &Running, entry: &Entry) -> bool {
        let journal = &running.journal;
        let Some(hash) = journal.known_hash(InputKind::Product, &entry.name, &entry.stamp) else { return false };
        let Some(stem) = journal.stem_of(InputKind::Product, &entry.name) else { return false };
        let main = naming::output_name(&stem, None, None, self.settings.main_ext);
        let key = job_key(&hash, None, &self.settings.main_fingerprint);
        journal.output(&main).is_some_and(|r| r.product == entry.name && r.key == key)
    }

    fn product(&self, running: &Running, item: &Item) -> Value {
        let state = self.state(running, item);
        match item {
            Item::Rejected(r) => json!({
                "name": r.name,
                "state": state,
                "outputs": [],
                "engine": null,
                "reason": r.note.reason,
                "problem": r.note.problem,
                "advice": r.note.advice,
                "modified": r.stamp.mtime_ns.div_euclid(1_000_000_000),
                "original": null,
            }),
            Item::Photo(e) => {
                let journal = &running.journal;
                let hash = journal.known_hash(InputKind::Product, &e.name, &e.stamp);
                let engine = hash.as_deref().and_then(|h| journal.cutout_engine(h));
                json!({
                    "name": e.name,
                    "state": state,
                    "outputs": self.outputs(running, &e.name),
                    "engine": engine,
                    "reason": null,
                    "modified": e.stamp.mtime_ns.div_euclid(1_000_000_000),
                    "original": format!("{}/files/originals/{}?v={}", self.access.prefix(), segment(&e.name), e.stamp.mtime_ns),
                })
            }
        }
    }

    /// The thumbnails of `product` (or, with `background`, of that background only): the main
    /// image first, then by name, each with its URLs.
    pub(super) fn outputs(&self, running: &Running, product: &str) -> Vec<Value> {
        let journal = &running.journal;
        let mut outputs: Vec<_> = journal
            .outputs_of(Some(product), None)
            .into_iter()
            .filter_map(|file| journal.output(&file).map(|record| (file, record)))
            .collect();
        outputs.sort_by(|(a, ra), (b, rb)| ra.background.is_some().cmp(&rb.background.is_some()).then(a.cmp(b)));
        outputs.into_iter().map(|(file, record)| self.output_json(&file, &record)).collect()
    }
}

impl Console {
    /// One thumbnail as the API shows it: `file`, `url` (full size), `preview`, `background`, and
    /// `node`, the node that made it (cluster mode; `null` when not recorded).
    pub(super) fn output_json(&self, file: &str, record: &OutputRecord) -> Value {
        let (name, key, at) = (segment(file), &record.key, self.access.prefix());
        json!({
            "file": file,
            "url": format!("{at}/files/thumbnails/{name}?v={key}"),
            "preview": format!("{at}/files/previews/{name}?v={key}"),
            "background": record.background,
            "node": record.node,
        })
    }
}
