//! [`JobPublisher`]: a typed handle for a job's progress, ending in `completed` or `failed`.

use super::{PublishAck, Topic};
use crate::Event;

/// Publishes one job's progress and its end.
///
/// A job topic carries `progress` events (conflated under the key `progress`: a late or slow
/// client gets the latest), any other events, and exactly one terminal event. If the publisher
/// is dropped without [`complete`](Self::complete), [`fail`](Self::fail) or
/// [`fail_with`](Self::fail_with) — the worker panicked or returned early — the job is finished
/// as failed with a clear reason, so that no browser waits forever on a dead job.
///
/// Every method hands its event over when called and returns a [`PublishAck`]: `.await` it in
/// async code, or call [`PublishAck::blocking_wait`] in a plain worker thread (an OCR or
/// transcoding loop). Publishing never waits for subscribers.
///
/// ```
/// use sse_core::{Event, Hub};
///
/// let hub = Hub::new();
/// let job = hub.job("transcode-7")?;
/// std::thread::spawn(move || {
///     for p in [25, 50, 75, 100] {
///         job.progress(&serde_json::json!({ "progress": p })).blocking_wait()?;
///     }
///     job.complete(Event::new().event("complete").data("done")).blocking_wait()
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
    pub fn progress<T: serde::Serialize + Sync>(&self, value: &T) -> PublishAck {
        self.topic
            .publish_keyed("progress", Event::new().event("progress").json(value))
    }

    /// Publishes any event.
    pub fn event(&self, event: Event<'_>) -> PublishAck {
        self.topic.publish(event)
    }

    /// Publishes an event that becomes the job's latest state for `key`.
    pub fn event_keyed(&self, key: &str, event: Event<'_>) -> PublishAck {
        self.topic.publish_keyed(key, event)
    }

    /// Finishes the job with a terminal event (for example `event: completed`).
    ///
    /// The event is handed over now. An invalid event is refused at once (the ack says why) and
    /// the job is then failed as if the publisher had been dropped.
    pub fn complete(self, event: Event<'_>) -> PublishAck {
        let finish = self.topic.finish(event);
        self.finished_by(finish)
    }

    /// Finishes the job as failed: a terminal `failed` event with JSON data `{"error": reason}`.
    pub fn fail(self, reason: &str) -> PublishAck {
        let finish = self.topic.finish(failed_event(reason));
        self.finished_by(finish)
    }

    /// Finishes the job with a terminal failure event of your own (for example `event: error`
    /// with the payload your clients expect).
    pub fn fail_with(self, event: Event<'_>) -> PublishAck {
        let finish = self.topic.finish(event);
        self.finished_by(finish)
    }

    fn finished_by(mut self, ack: PublishAck) -> PublishAck {
        // Handed over (or the topic was already finished): nothing left to do on drop.
        self.finished = ack.handed_over();
        ack
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
            let panicked = std::thread::panicking();
            let reason = if panicked {
                "worker panicked before finishing the job"
            } else {
                "worker ended without finishing the job"
            };
            tracing::warn!(
                job = self.id(),
                panicked,
                "job failed: its publisher was dropped without finishing it"
            );
            // Handed over now, from any thread, in memory or to the backplane; nobody can wait
            // for the ack in a drop, and a topic finished meanwhile by someone else is fine.
            drop(self.topic.finish(failed_event(reason)));
        }
    }
}
