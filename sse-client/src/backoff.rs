//! How long the client waits before it reconnects.

use std::time::Duration;

/// The reconnection schedule: the server's reconnection time, grown exponentially with random
/// jitter while attempts fail, up to a cap.
///
/// With `retry` the reconnection time (the server's latest `retry:` field, or the request's
/// default) and `failures` the reconnections in a row that delivered no event:
///
/// * `failures == 0` (the connection that ended had delivered events): wait exactly `retry`, as
///   the specification says.
/// * otherwise wait `max(retry, floor) × multiplier^failures × (1 + jitter × u)`, `u` uniform
///   in `[0, 1)`, capped at `max_delay` — but never less than `retry`, which the server asked
///   for.
///
/// The jitter spreads the reconnections of many clients that lost the same server at the same
/// moment, so they do not all come back at once.
///
/// ```
/// use std::time::Duration;
/// use sse_client::Backoff;
///
/// let backoff = Backoff::default().max_delay(Duration::from_secs(10));
/// let retry = Duration::from_secs(1);
/// assert_eq!(backoff.delay(retry, 0), retry);
/// let second = backoff.delay(retry, 2); // 1 s × 2² × (1 + 0.5 × u)
/// assert!(second >= Duration::from_secs(4) && second < Duration::from_secs(6));
/// assert_eq!(backoff.delay(retry, 20), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    multiplier: f64,
    max_delay: Duration,
    jitter: f64,
    floor: Duration,
}

impl Default for Backoff {
    /// Doubling from the reconnection time (at least 100 ms), up to 50 % jitter, capped at 30 s.
    fn default() -> Self {
        Backoff {
            multiplier: 2.0,
            max_delay: Duration::from_secs(30),
            jitter: 0.5,
            floor: Duration::from_millis(100),
        }
    }
}

impl Backoff {
    /// No growth and no jitter: every reconnection waits the reconnection time, as a browser's
    /// `EventSource` does.
    pub fn constant() -> Self {
        Backoff {
            multiplier: 1.0,
            jitter: 0.0,
            floor: Duration::ZERO,
            ..Backoff::default()
        }
    }

    /// The factor the delay grows by with each failed attempt (default 2; values below 1, and
    /// non-finite ones, count as 1).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = if multiplier.is_finite() && multiplier > 1.0 {
            multiplier
        } else {
            1.0
        };
        self
    }

    /// The longest wait after failed attempts (default 30 s). A server's `retry:` longer than
    /// this is still honoured.
    pub fn max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// The random share added to a failed attempt's delay: up to `jitter ×` the delay (default
    /// 0.5, clamped to `0..=1`).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The smallest base the growth starts from, so that a reconnection time of zero does not
    /// turn failed attempts into a busy loop (default 100 ms).
    pub fn floor(mut self, floor: Duration) -> Self {
        self.floor = floor;
        self
    }

    /// The wait before the next reconnection, after `failures` reconnections in a row that
    /// delivered no event, with `retry` the reconnection time. Draws the jitter from a
    /// thread-local random generator.
    pub fn delay(&self, retry: Duration, failures: u32) -> Duration {
        self.delay_at(retry, failures, fastrand::f64())
    }

    /// [`Backoff::delay`] with the random draw `unit` (in `[0, 1)`) given.
    pub(crate) fn delay_at(&self, retry: Duration, failures: u32, unit: f64) -> Duration {
        if failures == 0 {
            return retry;
        }
        let exponent = i32::try_from(failures).unwrap_or(i32::MAX);
        let base = retry.max(self.floor).as_secs_f64();
        let grown = base * self.multiplier.powi(exponent) * (1.0 + self.jitter * unit);
        // `grown` may be infinite; `min` makes it finite, and `try_from` guards the top of the
        // range that a Duration cannot hold.
        let capped = grown.min(self.max_delay.as_secs_f64());
        let delay = Duration::try_from_secs_f64(capped).unwrap_or(self.max_delay);
        delay.min(self.max_delay).max(retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_connection_that_delivered_events_waits_exactly_the_reconnection_time() {
        let b = Backoff::default();
        for unit in [0.0, 0.5, 0.999] {
            assert_eq!(b.delay_at(50 * MS, 0, unit), 50 * MS);
            assert_eq!(b.delay_at(Duration::ZERO, 0, unit), Duration::ZERO);
        }
    }

    #[test]
    fn failed_attempts_grow_exponentially_with_jitter_up_to_the_cap() {
        let b = Backoff::default().max_delay(Duration::from_secs(2));
        let retry = 100 * MS;
        assert_eq!(b.delay_at(retry, 1, 0.0), 200 * MS);
        assert_eq!(b.delay_at(retry, 2, 0.0), 400 * MS);
        assert_eq!(b.delay_at(retry, 3, 0.0), 800 * MS);
        assert_eq!(b.delay_at(retry, 3, 0.5), 1000 * MS); // 800 × 1.25
        assert_eq!(b.delay_at(retry, 4, 0.0), 1600 * MS);
        assert_eq!(b.delay_at(retry, 4, 0.9), Duration::from_secs(2));
        assert_eq!(b.delay_at(retry, 5, 0.0), Duration::from_secs(2));
        assert_eq!(b.delay_at(retry, u32::MAX, 0.99), Duration::from_secs(2));
    }

    #[test]
    fn jitter_draws_differ_and_stay_in_range() {
        let b = Backoff::default();
        let retry = Duration::from_secs(1);
        let draws: Vec<Duration> = (0..200).map(|_| b.delay(retry, 1)).collect();
        for d in &draws {
            assert!(
                *d >= Duration::from_secs(2) && *d < Duration::from_secs(3),
                "{d:?}"
            );
        }
        let mut distinct = draws.clone();
        distinct.sort();
        distinct.dedup();
        assert!(
            distinct.len() > 100,
            "only {} distinct delays",
            distinct.len()
        );
    }

    #[test]
    fn a_zero_reconnection_time_still_backs_off_from_the_floor() {
        let b = Backoff::default().jitter(0.0);
        assert_eq!(b.delay_at(Duration::ZERO, 1, 0.0), 200 * MS);
        assert_eq!(b.floor(10 * MS).delay_at(Duration::ZERO, 2, 0.0), 40 * MS);
    }

    #[test]
    fn a_server_retry_above_the_cap_is_honoured() {
        let b = Backoff::default().max_delay(Duration::from_secs(1));
        let retry = Duration::from_secs(5);
        assert_eq!(b.delay_at(retry, 3, 0.7), retry);
    }

    #[test]
    fn constant_backoff_always_waits_the_reconnection_time() {
        let b = Backoff::constant();
        for failures in [0, 1, 5, 40] {
            assert_eq!(b.delay_at(300 * MS, failures, 0.9), 300 * MS);
            assert_eq!(b.delay_at(20 * MS, failures, 0.9), 20 * MS);
        }
    }

    #[test]
    fn out_of_range_settings_are_clamped() {
        let b = Backoff::default()
            .multiplier(f64::NAN)
            .jitter(7.0)
            .max_delay(Duration::MAX);
        assert_eq!(b.delay_at(MS * 100, 3, 0.5), 150 * MS);
        let b = Backoff::default().multiplier(0.1).jitter(-1.0);
        assert_eq!(b.delay_at(MS * 100, 3, 0.5), 100 * MS);
        let b = Backoff::default()
            .multiplier(1e300)
            .max_delay(Duration::MAX);
        assert_eq!(b.delay_at(MS, 9, 0.5), Duration::MAX);
    }
}
