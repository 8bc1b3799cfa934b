//! thumbgen: a hot-folder daemon that cuts products out of their photos and composes
//! marketplace-ready thumbnails.
//!
//! # Layout
//!
//! Modules are declared below from the bottom up, in layers: a module uses only modules declared
//! before it (checked by the `data_flows_one_way` test), so data flows one way and there are no
//! cycles.
//!
//! 1. Vocabulary and tools that know nothing of the product: [`job`] (the job, the input kind,
//!    the content hash), [`error`] (rejected / transient / vanished, start-up errors), `sync` (the
//!    lock policy), `backoff`, `disk` (file stamps, "still being written", free space), `write`
//!    (atomic writes), `parallel` (one job's pieces on every core), `imaging` (resize, box
//!    filter, PNG), `format` (input formats by magic bytes), `naming` (inputs and output names),
//!    [`preset`] (output presets), `shutdown` (the one handle every task holds), `dependency`
//!    (how what the daemon relies on reports its health), `clock` (local days), `deadline` (an
//!    HTTP request's time limit).
//! 2. Settings and the process: `config` (defaults < TOML < `.env` < environment < flags),
//!    `logging`, `signals`, `systemd`, `memory` (allocator tuned for image buffers), `folders`
//!    (the folder contract and what counts as an input).
//! 3. The stages, each its own room, in the order an input travels: [`validate`] (safe open,
//!    size, header, strict decode) → [`cutout`] (the product as cropped RGBA) → [`compose`] →
//!    [`encode`] (JPEG by libjpeg-turbo where the build found it, else pure Rust); [`remove`] (the mask that makes the cut-out: engines behind a trait, the
//!    embedded U²-Netp on onnxruntime or tract, a remote Gradio app), `preview` (small copies of
//!    thumbnails for the console), `reject` (hopeless inputs moved aside with a note), `store`
//!    (the journal of done work and name claims, the cut-out cache — each behind a trait with a
//!    local implementation).
//! 4. What the running daemon knows: `metrics` (the contract's Prometheus series), `status`,
//!    `resources`, `quota` (a tenant's photos per day).
//! 5. The machinery: `catalog` (where inputs come from and outputs go: the folders, or key
//!    prefixes in an S3-compatible bucket), `pipeline` (one job top to bottom, keyed by content so nothing is done
//!    twice), `queue` (the work queue seam and its local implementation), `cluster` (cluster mode:
//!    the queue, the journal and cut-out reservations on NATS JetStream, heartbeats, status),
//!    `watch` (file events and scans turn complete files into jobs), `listing` (a bucket's new
//!    objects found by listing it), `worker` (runs jobs,
//!    retries, fans a new background out to every product).
//! 6. The surfaces: `health`, `hooks` (S3 event notifications, a fast path to the listing), `console` (the web console: catalog, uploads, rejections, ZIPs),
//!    `http`, `app` (assembles the parts), `daemon` (`thumbgen run`), `batch` (`thumbgen
//!    process`), `probe` (`thumbgen health`), `extract` (`thumbgen cutout`), [`cli`].
//!
//! Everything outside the image path (the vocabulary, [`validate`], [`cutout`], [`compose`],
//! [`encode`]) needs the `daemon` feature (on by default): the fuzz targets build without it.
//!
//! The library's public API is what the binary, the tests and the fuzz targets use; everything
//! else is crate-private.

// Without the `daemon` feature (the fuzz targets' build) helpers only the daemon calls are unused.
#![cfg_attr(not(feature = "daemon"), allow(dead_code, unused_imports))]

/// Declares modules only the daemon needs: without the `daemon` feature the library is the image
/// path alone (validate → cut-out → compose → encode), which the fuzz targets build instrumented.
macro_rules! daemon {
    ($($module:item)*) => { $(#[cfg(feature = "daemon")] $module)* };
}

// 1. vocabulary and tools
pub mod job;
pub mod error;
mod sync;
mod backoff;
mod disk;
mod write;
mod parallel;
mod imaging;
mod format;
mod naming;
pub mod preset;
daemon! {
    mod shutdown;
    mod dependency;
    mod clock;
    mod deadline;
}
// 2. settings and the process
daemon! {
    mod config;
    mod logging;
    mod signals;
    mod systemd;
    mod memory;
    mod folders;
}
// 3. the stages
pub mod validate;
pub mod cutout;
pub mod compose;
pub mod encode;
daemon! {
    pub mod remove;
    mod preview;
    mod reject;
    mod store;
}
daemon! {
    // 4. what the daemon knows
    mod metrics;
    mod status;
    mod resources;
    mod quota;
    // 5. the machinery
    mod catalog;
    mod pipeline;
    mod queue;
    mod cluster;
    mod watch;
    mod listing;
    mod worker;
    // 6. the surfaces
    mod health;
    mod hooks;
    mod console;
    mod http;
    mod app;
    mod daemon;
    mod batch;
    mod probe;
    mod extract;
    pub mod cli;
}

#[cfg(feature = "daemon")]
pub use config::ENV_KEYS;
pub use job::content_hash;

#[cfg(test)]
mod architecture;
#[cfg(test)]
mod testkit;
