//! [`PublishAck`]: what every publish returns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use super::backplane::BackplaneFuture;
use super::PublishError;

/// The acknowledgement of a publish: resolves to the event's sequence number once it is stored
/// (at once in memory; after the backplane's answer otherwise).
///
/// The event is handed over **when the publishing method is called**, not when the ack is first
/// polled: publishes are ordered as they were called, several can be in flight at once, and
/// dropping an ack does not cancel its publish (it only gives up the answer). Await it in async
/// code; on a plain thread (an OCR or transcoding loop), call [`blocking_wait`](Self::blocking_wait).
///
/// ```
/// use sse_core::{Event, Hub};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let hub = Hub::new();
/// let topic = hub.topic("prices")?;
/// // Several in flight at once, stored in call order.
/// let a = topic.publish(Event::new().data("1"));
/// let b = topic.publish(Event::new().data("2"));
/// assert_eq!((a.await?, b.await?), (1, 2));
/// # Ok::<(), sse_core::hub::PublishError>(())
/// # }).unwrap();
/// ```
#[must_use = "the ack tells whether the event was stored; `.await` it or call `blocking_wait`"]
pub struct PublishAck(State);

enum State {
    Ready(Option<Result<u64, PublishError>>),
    Waiting(BackplaneFuture<u64>),
}

impl PublishAck {
    pub(crate) fn ready(r: Result<u64, PublishError>) -> Self {
        PublishAck(State::Ready(Some(r)))
    }

    pub(crate) fn waiting(f: BackplaneFuture<u64>) -> Self {
        PublishAck(State::Waiting(f))
    }

    /// Whether the event was handed over (it may still fail in the backplane): false only when
    /// it was refused at once, for example as invalid.
    pub(crate) fn handed_over(&self) -> bool {
        !matches!(&self.0, State::Ready(Some(Err(e))) if !matches!(e, PublishError::Finished))
    }

    /// Waits for the acknowledgement on a thread that does not run a Tokio runtime: a plain
    /// worker thread, a `spawn_blocking` closure's thread is *not* one (it runs with a runtime
    /// context; use `Handle::block_on` on the ack there, or `.await` it).
    ///
    /// Refused with [`PublishError::WouldBlock`] on a thread that runs a Tokio runtime, in
    /// memory as with a backplane, so that code written for one node does not start failing the
    /// day a backplane is added: there, blocking could stall the runtime that drives the
    /// backplane. The event itself was handed over all the same.
    ///
    /// ```
    /// use sse_core::{Event, Hub};
    ///
    /// let hub = Hub::new();
    /// let job = hub.job("ocr-1")?;
    /// std::thread::spawn(move || {
    ///     for page in 1..=3 {
    ///         job.progress(&serde_json::json!({ "page": page })).blocking_wait()?;
    ///     }
    ///     job.complete(Event::new().event("completed").data("done")).blocking_wait()
    /// })
    /// .join()
    /// .unwrap()?;
    /// # Ok::<(), sse_core::hub::PublishError>(())
    /// ```
    pub fn blocking_wait(self) -> Result<u64, PublishError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(PublishError::WouldBlock);
        }
        match self.0 {
            State::Ready(r) => r.unwrap_or(Err(PublishError::AckConsumed)),
            State::Waiting(f) => block_on(f).map_err(PublishError::from),
        }
    }
}

impl Future for PublishAck {
    type Output = Result<u64, PublishError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            State::Ready(r) => Poll::Ready(r.take().unwrap_or(Err(PublishError::AckConsumed))),
            State::Waiting(f) => f.as_mut().poll(cx).map(|r| r.map_err(PublishError::from)),
        }
    }
}

impl fmt::Debug for PublishAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.0 {
            State::Ready(_) => "ready",
            State::Waiting(_) => "waiting",
        };
        f.debug_tuple("PublishAck").field(&state).finish()
    }
}

/// Runs `f` to completion on this thread (a thread outside any runtime).
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
