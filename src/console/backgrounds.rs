//! Backgrounds: each background with its state, its own preview, how many thumbnails use it and
//! one of them — the newest product on it — so a new background can be judged on the catalog at a
//! glance; rejected backgrounds with their reason.

use super::catalog::State;
use super::problem::Problem;
use super::{segment, Console};
use crate::job::{InputKind, Job};
use crate::queue::Place;
use serde_json::{json, Value};
use std::collections::HashMap;

impl Console {
    /// Every background, newest first, then the rejected ones (blocking).
    pub(super) fn backgrounds(&self) -> Result<Value, Problem> {
        let journal = &self.running()?.journal;
        let at = self.access.prefix();
        let products = self.products.snapshot();
        let newest: HashMap<&str, i64> = products.entries.iter().map(|e| (e.name.as_str(), e.stamp.mtime_ns)).collect();
        let mut items: Vec<Value> = Vec::new();
        for entry in &self.backgrounds.snapshot().entries {
            let hash = journal.known_hash(InputKind::Background, &entry.name, &entry.stamp);
            let state = match self.deps.queue.place(&Job::new(InputKind::Background, entry.name.clone())) {
                Some(Place::Running) => State::Working,
                Some(Place::Waiting) => State::Pending,
                None if hash.is_some() => State::Done,
                None => State::Pending,
            };
            let outputs: Vec<_> = journal
                .outputs_of(None, Some(&entry.name))
                .into_iter()
                .filter_map(|file| journal.output(&file).map(|r| (file, r)))
                .collect();
            let sample = outputs
                .iter()
                .max_by_key(|(file, r)| (newest.get(r.product.as_str()).copied(), std::cmp::Reverse(file.clone())))
                .map(|(file, r)| {
                    let mut sample = self.output_json(file, r);
                    sample["product"] = json!(r.product);
                    sample
                });
            items.push(json!({
                "name": entry.name,
                "state": state,
                "preview": hash.as_ref().map(|h| format!("{at}/files/backgrounds/{}?v={h}", segment(&entry.name))),
                "outputs": outputs.len(),
                "sample": sample,
                "zip": format!("{at}/api/thumbnails.zip?background={}", segment(&entry.name)),
                "reason": null,
            }));
        }
        let rejected = self.rejected.snapshot();
        for r in rejected.entries.iter().filter(|r| r.kind == Some(InputKind::Background)) {
            items.push(json!({
                "name": r.name,
                "state": State::Rejected,
                "preview": null,
                "outputs": 0,
                "sample": null,
                "zip": null,
                "reason": r.note.reason,
                "problem": r.note.problem,
                "advice": r.note.advice,
            }));
        }
        Ok(json!({ "items": items }))
    }
}
