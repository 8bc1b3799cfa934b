//! Keep-alive: a job held by this node gets in-progress acks a few times per ack deadline, so the
//! broker does not give it to another node while it waits for its turn or runs.

use async_nats::jetstream::{self, AckKind};
use std::sync::Arc;
use std::time::Duration;

/// Tells the broker the job is still being worked on, so its deadline does not pass.
pub(super) async fn keep_alive(message: Arc<jetstream::Message>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let _ = message.ack_with(AckKind::Progress).await;
    }
}
