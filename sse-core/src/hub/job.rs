//! [`JobPublisher`]: a typed handle for a job's progress, ending in `completed` or `failed`.

use super::{PublishAck, PublishError, Topic};
use crate::Event;

/// Publishes one job's progress and its end.
///
/// A job topic carries `progress` events (conflated under the key `progress`: a late or slow
/// client gets the latest), any other events, and exactly one terminal event. If the publisher
/// is dropped without [`complete`](Self::complete) or [`fail`](Self::fail) — the worker panicked
/// or returned early — the job is finished as failed with a clear reason, so that no browser
/// waits forever on a dead job.
///
/// Usable from async code and from plain threads: publishing never blocks on subscribers and
/// needs no runtime.
///
/// ```
/// use sse_core::{Event, Hub};
///
/// let hub = Hub::new();
/// let job = hub.job("transcode-7")?;
/// std::thread::spawn(move || {
///     for p in [25, 50, 75] {
///         job.progress(&serde_json::json!({ "progress": p }))?;
///     }
///     job.complete(Event::new().event("complete").data("done"))
/// })
/// .join()
/// .unwrap()?;
/// assert!(hub.get_topic("transcode-7").unwrap().is_finished());
/// # Ok::<(), sse_core::hub::PublishError>(())
/// ```
#[derive(Debug)]
#[must_use = "dropping a JobPublisher fails the job"]
pub struct JobPublisher {
    topic: Topic,
    finished: bool,
}

impl JobPublisher {
    pub(crate) fn new(topic: Topic) -> Self {
        JobPublisher {
            topic,
            finished: false,
        }
    }

    /// The job's topic.
    pub fn topic(&self) -> &Topic {
        &self.topic
    }

    /// The job id (its topic name).
    pub fn id(&self) -> &str {
        self.topic.name()
    }

    /// Publishes a `progress` event with JSON data, conflated under the key `progress`.
    pub fn progress<T: serde::Serialize + Sync>(&self, value: &T) -> Result<u64, PublishError> {
        self.topic
            .publish_keyed("progress", Event::new().event("progress").json(value))
    }

    /// Publishes any event.
    pub fn event(&self, event: Event<'_>) -> Result<u64, PublishError> {
        self.topic.publish(event)
    }

    /// Publishes an event that becomes the job's latest state for `key`.
    pub fn event_keyed(&self, key: &str, event: Event<'_>) -> Result<u64, PublishError> {
        self.topic.publish_keyed(key, event)
    }

    /// Finishes the job with a terminal event (for example `event: completed`).
    pub fn complete(mut self, event: Event<'_>) -> Result<u64, PublishError> {
        let r = self.topic.finish(event);
        // An invalid terminal event leaves the job open: dropping `self` then fails it.
        self.finished = matches!(r, Ok(_) | Err(PublishError::Finished));
        r
    }

    /// Finishes the job as failed: a terminal `failed` event with JSON data `{"error": reason}`.
    pub fn fail(mut self, reason: &str) -> Result<u64, PublishError> {
        self.finished = true;
        self.topic.finish(failed_event(reason))
    }

    /// Finishes the job with a custom terminal failure event.
    pub fn fail_with(mut self, event: Event<'_>) -> Result<u64, PublishError> {
        let r = self.topic.finish(event);
        self.finished = matches!(r, Ok(_) | Err(PublishError::Finished));
        r
    }

    /// [`progress`](Self::progress) for async code, through a backplane if the hub has one
    /// (see [`Topic::publish_async`]).
    pub fn progress_async<T: serde::Serialize + Sync>(&self, value: &T) -> PublishAck {
        self.topic
            .publish_keyed_async("progress", Event::new().event("progress").json(value))
    }

    /// [`event`](Self::event) for async code (see [`Topic::publish_async`]).
    pub fn event_async(&self, event: Event<'_>) -> PublishAck {
        self.topic.publish_async(event)
    }

    /// [`complete`](Self::complete) for async code (see [`Topic::finish_async`]).
    pub async fn complete_async(mut self, event: Event<'_>) -> Result<u64, PublishError> {
        let r = self.topic.finish_async(event).await;
        self.finished = matches!(r, Ok(_) | Err(PublishError::Finished));
        r
    }

    /// [`fail`](Self::fail) for async code (see [`Topic::finish_async`]).
    pub async fn fail_async(mut self, reason: &str) -> Result<u64, PublishError> {
        let r = self.topic.finish_async(failed_event(reason)).await;
        self.finished = matches!(r, Ok(_) | Err(PublishError::Finished));
        r
    }
}

fn failed_event(reason: &str) -> Event<'_> {
    Event::new()
        .event("failed")
        .json_owned(serde_json::json!({ "error": reason }))
}

impl Drop for JobPublisher {
    fn drop(&mut self) {
        if !self.finished && !self.topic.is_finished() {
            let reason = if std::thread::panicking() {
                "worker panicked before finishing the job"
            } else {
                "worker ended without finishing the job"
            };
            // Already finished by someone else is fine; nothing else can be done in a drop.
            if self.topic.hub().backplane().is_some() {
                // Handed to the backplane now, from any thread; nobody waits for the ack.
                drop(self.topic.finish_async(failed_event(reason)));
            } else {
                let _ = self.topic.finish(failed_event(reason));
            }
        }
    }
}
