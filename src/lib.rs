//! thumbgen: a hot-folder daemon that cuts products out of their photos and composes
//! marketplace-ready thumbnails.
//!
//! # Layout
//!
//! The pipeline, in the order an input travels:
//! - [`watch`]: inotify (or polling) plus scans turn complete files into jobs.
//! - [`queue`]: bounded, deduplicated jobs; backgrounds first.
//! - [`worker`]: runs jobs on blocking threads; retries with backoff; fans a new background
//!   out to every product.
//! - [`pipeline`]: one job top to bottom, keyed by content so nothing is done twice:
//!   - [`validate`]: safe open, size, magic bytes, header dimensions, strict decode, EXIF.
//!   - [`remove`]: background removal engines (the embedded U²-Netp) and edge refinement.
//!   - [`cutout`]: the product as RGBA cropped to its alpha bounding box.
//!   - [`compose`]: fit, place, cover-crop the background, premultiplied blend, shadow.
//!   - [`encode`]: JPEG (4:4:4), PNG or WebP.
//!   - [`write`]: atomic writes (temp file, fsync, rename).
//!   - [`reject`]: moves hopeless inputs aside with an explanation.
//! - [`state`]: journal of done work and the cut-out cache under `.thumbgen/`.
//!
//! Around it:
//! - [`config`]: defaults < TOML < `.env` < environment < flags; [`preset`]: output presets;
//!   [`naming`]: input filters and output names; [`folders`]: the folder contract.
//! - [`app`]: assembles the shared parts; [`daemon`]: `thumbgen run`; [`batch`]:
//!   `thumbgen process`; [`cli`]: the command line; [`probe`]: `thumbgen health`.
//! - [`http`], [`health`], [`metrics`], [`status`]: what orchestrators and Prometheus see.
//! - [`memory`]: allocator tuned for big image buffers, trimmed when idle.
//! - [`logging`]: console and rotated JSON file; [`signals`]: stop and reload; [`systemd`]:
//!   readiness, stopping and watchdog notifications;
//!   [`error`]: rejection versus retry.

pub mod app;
pub mod batch;
pub mod cli;
pub mod compose;
pub mod config;
pub mod cutout;
pub mod daemon;
pub mod encode;
pub mod error;
pub mod folders;
pub mod health;
pub mod http;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod naming;
pub mod pipeline;
pub mod preset;
pub mod probe;
pub mod queue;
pub mod reject;
pub mod remove;
pub mod signals;
pub mod state;
pub mod status;
pub mod systemd;
pub mod validate;
pub mod watch;
pub mod worker;
pub mod write;
