//! The broker: one NATS connection with JetStream, and the stream, consumers and buckets cluster
//! mode keeps its work and its facts in — created when missing, and created again when the
//! broker comes back without them (a restart that lost its store).

use super::names::{self, Names};
use super::BrokerError;
use crate::config::Config;
use crate::dependency::{Condition, Dependency, Report};
use crate::error::StartError;
use crate::job::InputKind;
use crate::sync::Mutex;
use async_nats::connection::State;
use async_nats::jetstream::{self, consumer, kv, stream};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How long duplicates of one job publish are recognised.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Handles on what provisioning made; replaced when the broker lost them.
pub(super) struct Handles {
    pub journal: kv::Store,
    pub nodes: kv::Store,
    pub backgrounds: consumer::PullConsumer,
    pub products: consumer::PullConsumer,
}

impl Handles {
    pub(super) fn consumer(&self, kind: InputKind) -> &consumer::PullConsumer {
        match kind {
            InputKind::Background => &self.backgrounds,
            InputKind::Product => &self.products,
        }
    }
}

pub(super) struct Broker {
    client: async_nats::Client,
    pub js: jetstream::Context,
    /// The catalog's stream, subjects and buckets (a tenant's own with tenants).
    pub names: Names,
    servers: String,
    ack_wait: Duration,
    handles: Mutex<Option<Arc<Handles>>>,
    /// When the journal's bucket was created: a new value means the broker lost its store.
    incarnation: Mutex<Option<String>>,
}

impl Broker {
    /// Connects (in the background when the broker is not up yet: the daemon starts anyway).
    pub(super) async fn connect(config: &Config, servers: Vec<String>, node: &str) -> Result<Broker, StartError> {
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("thumbgen {node}"))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .reconnect_delay_callback(|attempt| Duration::from_millis((250 * attempt as u64).min(2000)));
        if let Some(token) = &config.nats_token {
            options = options.token(token.expose().to_owned());
        }
        if let Some(creds) = &config.nats_creds {
            options = options.credentials_file(creds).await.map_err(|e| {
                StartError::new(format!("cannot read the NATS credentials file {}", creds.display()))
                    .because(e)
                    .advice("Check NATS_CREDS")
            })?;
        }
        if let Some(ca) = &config.nats_tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        let client = options.connect(servers.clone()).await.map_err(|e| {
            StartError::new(format!("cannot connect to NATS at {}", servers.join(",")))
                .because(e)
                .advice("Check NATS_URL (e.g. nats://10.0.0.5:4222)")
        })?;
        Ok(Broker {
            js: jetstream::new(client.clone()),
            names: Names::of(config.tenant.as_deref()),
            client,
            servers: servers.join(","),
            ack_wait: config.nats_ack_wait.0,
            handles: Mutex::new(None),
            incarnation: Mutex::new(None),
        })
    }

    pub(super) fn connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    pub(super) fn ack_wait(&self) -> Duration {
        self.ack_wait
    }

    /// What provisioning made, once it has.
    pub(super) fn handles(&self) -> Option<Arc<Handles>> {
        self.handles.lock().clone()
    }

    /// Forgets the handles after an operation found them gone, so the next check provisions.
    pub(super) fn lost(&self) {
        *self.handles.lock() = None;
    }

    /// Makes sure the stream, consumers and buckets exist. `Ok(true)` when the journal is new to
    /// this node: first start, or the broker came back without its store.
    pub(super) async fn provision(&self) -> Result<bool, BrokerError> {
        let journal = bucket(&self.js, &self.names.journal()).await?;
        let nodes = bucket(&self.js, &self.names.nodes()).await?;
        let stream = self
            .js
            .get_or_create_stream(stream::Config {
                name: self.names.stream(),
                subjects: vec![self.names.subjects()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                // One job queued behind the one running, as the local queue keeps it: more
                // publishes of the same input add nothing and are refused by the server.
                max_messages_per_subject: 2,
                discard: stream::DiscardPolicy::New,
                discard_new_per_subject: true,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| BrokerError::new("cannot create the job stream", e))?;
        let mut pulls = Vec::new();
        for kind in [InputKind::Background, InputKind::Product] {
            let consumer = stream
                .get_or_create_consumer(
                    names::consumer(kind),
                    consumer::pull::Config {
                        durable_name: Some(names::consumer(kind).into()),
                        filter_subject: self.names.kind_subjects(kind),
                        ack_policy: consumer::AckPolicy::Explicit,
                        ack_wait: self.ack_wait,
                        // Passing failures come back as often as they need; a job that keeps
                        // killing its workers is rejected by the crash count in its lease.
                        max_deliver: -1,
                        max_ack_pending: -1,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| BrokerError::new("cannot create the job consumers", e))?;
            pulls.push(consumer);
        }
        let products = pulls.pop().expect("two consumers");
        let backgrounds = pulls.pop().expect("two consumers");
        let created = journal_created(&self.js, &self.names).await?;
        let new = self.incarnation.lock().replace(created.clone()).as_ref() != Some(&created);
        *self.handles.lock() = Some(Arc::new(Handles { journal, nodes, backgrounds, products }));
        Ok(new)
    }

    /// Whether the stream and buckets provisioning made are still the broker's (a restart
    /// without its store removes them).
    pub(super) async fn still_provisioned(&self) -> bool {
        let Some(known) = self.incarnation.lock().clone() else { return false };
        matches!(journal_created(&self.js, &self.names).await, Ok(created) if created == known)
            && self.js.get_stream(self.names.stream()).await.is_ok()
    }
}

/// The key-value bucket `name`, created when missing.
async fn bucket(js: &jetstream::Context, name: &str) -> Result<kv::Store, BrokerError> {
    if let Ok(store) = js.get_key_value(name).await {
        return Ok(store);
    }
    js.create_key_value(kv::Config {
        bucket: name.into(),
        history: 1,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| BrokerError::new("cannot create a key-value bucket", e))
}

/// When the journal bucket's stream was created, as text.
async fn journal_created(js: &jetstream::Context, names: &Names) -> Result<String, BrokerError> {
    let stream = js
        .get_stream(format!("KV_{}", names.journal()))
        .await
        .map_err(|e| BrokerError::new("cannot read the journal bucket", e))?;
    let info = stream.get_info().await.map_err(|e| BrokerError::new("cannot read the journal bucket", e))?;
    Ok(info.created.to_string())
}

impl Dependency for Broker {
    fn report(&self) -> Report {
        let state = self.client.connection_state();
        let provisioned = self.handles.lock().is_some();
        let mut details = json!({
            "url": self.servers,
            "connection": match state {
                State::Connected => "connected",
                State::Disconnected => "disconnected",
                State::Pending => "connecting",
            },
            "provisioned": provisioned,
        });
        let (condition, mut message) = if state == State::Connected && provisioned {
            (Condition::Ok, format!("NATS broker at {} connected", self.servers))
        } else {
            (
                Condition::Failing,
                format!("NATS broker at {} unreachable; nothing is lost, work resumes when it is back", self.servers),
            )
        };
        // With tenants each has its own connection and stream: the health check says whose.
        if let Some(tenant) = self.names.tenant() {
            details["tenant"] = json!(tenant);
            message = format!("tenant {tenant}: {message}");
        }
        Report { name: "broker", condition, message, details, ready: condition == Condition::Ok }
    }
}
