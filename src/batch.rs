//! One pass (`thumbgen process`): everything pending in the folders, then exit.
//!
//! For cron jobs and CI: a progress bar on a terminal, a summary at the end, and an exit code a
//! script can act on — 0 when every input became thumbnails or was rejected with a reason,
//! 1 when some failed for a passing reason (they stay in place for the next run).

use crate::app::App;
use crate::config::Config;
use crate::error::StartError;
use crate::job::{InputKind, Job};
use crate::signals::{self, Signal};
use crate::worker::Retries;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Attempts per input before `process` leaves it for the next run.
const ATTEMPTS: u32 = 3;
/// How long `process` waits for its tasks after the last job.
const LINGER: Duration = Duration::from_secs(5);

pub(crate) async fn process(config: Config) -> Result<bool, StartError> {
    if config.nats_servers().is_some() {
        return Err(StartError::new("`thumbgen process` works on one node, and NATS_URL puts this one in a cluster")
            .advice("In cluster mode the running nodes process everything (see `thumbgen cluster status`); unset NATS_URL to process the folder alone"));
    }
    let mut signals = signals::listen()?;
    let app = App::new(config).await?;
    let workers = app.start_pipeline(Retries::UpTo(ATTEMPTS)).await?.workers;
    let catalog = app.catalog.clone();
    let jobs = tokio::task::spawn_blocking(move || -> Result<Vec<Job>, crate::error::Transient> {
        let mut jobs = Vec::new();
        for kind in InputKind::ALL {
            jobs.extend(catalog.inputs(kind)?.into_iter().map(|(name, _)| Job::new(kind, name)));
        }
        Ok(jobs)
    })
    .await
    .map_err(|e| StartError::new("listing the inputs stopped").because(e))?
    .map_err(|e| StartError::new(format!("cannot list the inputs in {}", app.catalog.location())).because(e))?;
    let total = jobs.len();
    for job in jobs {
        app.queue.push(job);
    }
    workers.spawn(app.config.worker_count());

    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} inputs  {elapsed_precise}  {msg}")
            .expect("valid template"),
    );
    let started = Instant::now();
    let mut interrupted = false;
    while !workers.all_done() {
        tokio::select! {
            signal = signals.recv() => {
                if matches!(signal, Some(Signal::Stop) | None) {
                    interrupted = true;
                    break;
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let tally = &workers.tally;
        bar.set_position(tally.inputs().min(total) as u64);
        bar.set_message(format!("{} thumbnails", tally.thumbnails.load(Ordering::Relaxed)));
    }
    bar.finish_and_clear();
    app.shutdown.stop();
    app.queue.close();
    app.shutdown.join(app.config.shutdown_timeout.0 + LINGER).await;

    let tally = &workers.tally;
    let failed = tally.failed.load(Ordering::Relaxed);
    println!(
        "thumbgen process: {} inputs in {:.1} s — {} thumbnails written, {} rejected (see {}), {} left for a later run{}",
        tally.inputs(),
        started.elapsed().as_secs_f64(),
        tally.thumbnails.load(Ordering::Relaxed),
        tally.rejected.load(Ordering::Relaxed),
        match &app.bucket {
            Some(bucket) => bucket.key_url(crate::catalog::bucket::REJECTED),
            None => app.folders.rejected.display().to_string(),
        },
        failed,
        if interrupted { " (interrupted)" } else { "" },
    );
    Ok(failed == 0 && !interrupted)
}
