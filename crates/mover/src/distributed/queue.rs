//! The task queue: a NATS JetStream stream with work-queue retention, on which
//! `strata migrate --queue` publishes a job's [`ChunkTask`]s and from which every
//! `strata worker` pulls through one durable consumer they share.
//!
//! JetStream does the distribution: a message is delivered to one worker at a time, comes
//! back to another after the consumer's ack wait if its worker neither acknowledges it nor
//! reports progress (a killed worker, a lost node), and leaves the stream once
//! acknowledged (work-queue retention). Only calls that NATS Server 2.9 (Debian's)
//! implements are used.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, stream::Stream};
use async_nats::ConnectOptions;
use futures::stream::{self as futures_stream, StreamExt, TryStreamExt};
use strata_catalog::JobId;

use super::task::ChunkTask;
use crate::MoverError;

/// The queue name when none is given (`--queue-name`): stream `strata_tasks`, subjects
/// `strata.tasks.<job id>`, consumer `strata-workers`. Deployments sharing a NATS server
/// keep apart by their names.
pub const DEFAULT_NAME: &str = "strata";
/// Publications awaiting the server's acknowledgement at once.
const PUBLISH_IN_FLIGHT: usize = 64;
/// How long a call to the server may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to the task queue.
#[derive(Clone)]
pub struct TaskQueue {
    shown: String,
    name: String,
    js: jetstream::Context,
}

/// Refuses a queue name NATS cannot use in stream, subject and consumer names.
fn check_name(name: &str) -> Result<(), MoverError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        return Ok(());
    }
    Err(MoverError::InvalidOptions(format!(
        "--queue-name {name:?}: use 1 to 64 letters, digits, '_' or '-'"
    )))
}

/// The queue URL as it may be shown: credentials (`user:password@`) removed.
pub fn shown_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
            format!("{scheme}://{host}")
        }
        None => url.to_string(),
    }
}

/// Refuses anything but `nats://HOST:PORT` (or `tls://`), naming the flag.
fn check_url(url: &str) -> Result<(), MoverError> {
    let shown = shown_url(url);
    let valid = ["nats://", "tls://"]
        .iter()
        .any(|scheme| url.starts_with(scheme) && url.len() > scheme.len());
    if valid {
        return Ok(());
    }
    Err(MoverError::InvalidOptions(format!(
        "--queue {shown}: expected a NATS URL, nats://HOST:PORT (a NATS server with \
         JetStream, `nats-server -js`)"
    )))
}

impl TaskQueue {
    /// Connects to the NATS server at `url`. With `keep_trying`, a server that is down is
    /// waited for (the client keeps reconnecting in the background and `on_event` hears
    /// every disconnection and reconnection); without, a server that does not answer is an
    /// error at once.
    pub async fn connect(
        url: &str,
        name: &str,
        keep_trying: bool,
        on_event: impl Fn(String) + Send + Sync + 'static,
    ) -> Result<TaskQueue, MoverError> {
        check_url(url)?;
        check_name(name)?;
        let shown = shown_url(url);
        let on_event = std::sync::Arc::new(on_event);
        let mut options = ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(REQUEST_TIMEOUT))
            .event_callback(move |event| {
                let on_event = on_event.clone();
                async move { on_event(event.to_string()) }
            });
        if keep_trying {
            options = options.retry_on_initial_connect();
        }
        let client = options.connect(url).await.map_err(|e| {
            queue_error(
                &shown,
                format!("cannot connect ({e}); is nats-server running there?"),
            )
        })?;
        Ok(TaskQueue {
            shown,
            name: name.to_string(),
            js: jetstream::new(client),
        })
    }

    /// The queue's URL without credentials.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn stream_name(&self) -> String {
        format!("{}_tasks", self.name)
    }

    fn consumer_name(&self) -> String {
        format!("{}-workers", self.name)
    }

    /// Every task subject of this queue.
    fn subjects(&self) -> String {
        format!("{}.tasks.>", self.name)
    }

    /// The subject of job `job`'s tasks.
    pub fn subject_of(&self, job: JobId) -> String {
        format!("{}.tasks.{job}", self.name)
    }

    /// The task stream, created (work-queue retention, on disk) if it does not exist.
    pub async fn stream(&self) -> Result<Stream, MoverError> {
        let stream = self.stream_name();
        let config = StreamConfig {
            name: stream.clone(),
            subjects: vec![self.subjects()],
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            ..Default::default()
        };
        self.js.get_or_create_stream(config).await.map_err(|e| {
            self.error(format!(
                "cannot open the task stream {stream} ({e}); the server must run with \
                 JetStream enabled (nats-server -js)"
            ))
        })
    }

    /// Replaces the job's tasks on the queue by `tasks`: the job's earlier tasks still
    /// queued (an interrupted run) are purged first, so each file range is queued once.
    pub async fn publish(&self, job: JobId, tasks: &[ChunkTask]) -> Result<(), MoverError> {
        let stream = self.stream().await?;
        let subject = self.subject_of(job);
        stream
            .purge()
            .filter(subject.clone())
            .await
            .map_err(|e| self.error(format!("cannot purge job {job}'s earlier tasks ({e})")))?;
        let js = &self.js;
        futures_stream::iter(tasks)
            .map(|task| {
                let subject = subject.clone();
                async move {
                    let ack = js
                        .publish(subject, task.to_json().into())
                        .await
                        .map_err(|e| e.to_string())?;
                    ack.await.map(|_| ()).map_err(|e| e.to_string())
                }
            })
            .buffer_unordered(PUBLISH_IN_FLIGHT)
            .try_collect::<Vec<()>>()
            .await
            .map_err(|e| {
                self.error(format!(
                    "publishing job {job}'s tasks failed ({e}); re-run to publish them again"
                ))
            })?;
        Ok(())
    }

    /// The workers' shared durable consumer, with `ack_wait` as its ack wait: created if
    /// missing, its ack wait changed if it differs (the last worker to start sets it).
    pub async fn consumer(&self, ack_wait: Duration) -> Result<PullConsumer, MoverError> {
        let stream = self.stream().await?;
        let name = self.consumer_name();
        let config = pull::Config {
            durable_name: Some(name.clone()),
            ack_policy: AckPolicy::Explicit,
            ack_wait,
            filter_subject: self.subjects(),
            ..Default::default()
        };
        let mut consumer: PullConsumer = stream
            .get_or_create_consumer(&name, config.clone())
            .await
            .map_err(|e| self.error(format!("cannot open the consumer {name} ({e})")))?;
        if consumer.cached_info().config.ack_wait != ack_wait {
            consumer = stream.create_consumer(config).await.map_err(|e| {
                self.error(format!(
                    "cannot set the ack wait of the consumer {name} to {ack_wait:?} ({e})"
                ))
            })?;
        }
        Ok(consumer)
    }

    /// An error of this queue.
    pub(crate) fn error(&self, detail: String) -> MoverError {
        queue_error(&self.shown, detail)
    }
}

fn queue_error(shown: &str, detail: String) -> MoverError {
    MoverError::Queue {
        url: shown.to_string(),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        assert_eq!(
            shown_url("nats://user:s3cret@host:4222"),
            "nats://host:4222"
        );
        assert_eq!(shown_url("nats://host:4222"), "nats://host:4222");
    }

    #[test]
    fn queue_names_nats_cannot_use_are_refused() {
        assert!(check_name("strata").is_ok());
        assert!(check_name("team-a_2").is_ok());
        for bad in ["", "a.b", "a b", "a>"] {
            let refused = check_name(bad).unwrap_err().to_string();
            assert!(refused.contains("--queue-name"), "{refused}");
        }
    }

    #[test]
    fn only_nats_urls_are_accepted() {
        assert!(check_url("nats://127.0.0.1:4222").is_ok());
        let refused = check_url("http://u:pw@host:80").unwrap_err().to_string();
        assert!(refused.contains("expected a NATS URL"), "{refused}");
        assert!(!refused.contains("pw"), "{refused}");
    }
}
