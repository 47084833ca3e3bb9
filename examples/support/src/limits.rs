//! Bounds on the work the apps accept: jobs in flight per client and overall
//! ([`Admission`]), and bytes on disk ([`DiskBudget`]). A refusal is an [`ApiError`] with
//! `Retry-After`: 429 when this client has too much in flight, 503 when the server has.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::ApiError;

/// Counts the jobs each client has in flight (queued or running), and all of them together.
///
/// ```
/// use sse_examples_support::limits::Admission;
/// let admission = Admission::new(2, 3);
/// let a = admission.admit("alice").expect("first");
/// let _b = admission.admit("alice").expect("second");
/// assert_eq!(admission.admit("alice").unwrap_err().status().as_u16(), 429);
/// let _c = admission.admit("bob").expect("bob's first");
/// assert_eq!(admission.admit("carol").unwrap_err().status().as_u16(), 503);
/// drop(a); // the job ended: its slot is free again
/// assert!(admission.admit("alice").is_ok());
/// ```
#[derive(Debug)]
pub struct Admission {
    per_client: usize,
    overall: usize,
    retry_after: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    total: usize,
    per_client: HashMap<String, usize>,
}

/// A job's slot: held while the job is queued or running, released when dropped.
#[derive(Debug)]
#[must_use = "the slot is released when the ticket is dropped"]
pub struct Ticket {
    admission: Arc<Admission>,
    client: String,
}

impl Admission {
    /// At most `per_client` jobs in flight per client and `overall` in all (each at least 1).
    pub fn new(per_client: usize, overall: usize) -> Arc<Admission> {
        Arc::new(Admission {
            per_client: per_client.max(1),
            overall: overall.max(1),
            retry_after: 5,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for one more job of `client`: 429 when the client already has `per_client` jobs
    /// in flight, 503 when the server has `overall`; both with `Retry-After`.
    pub fn admit(self: &Arc<Self>, client: &str) -> Result<Ticket, ApiError> {
        let mut state = self.lock();
        let mine = state.per_client.get(client).copied().unwrap_or(0);
        if mine >= self.per_client {
            return Err(ApiError::too_many(format!(
                "too many jobs in flight for this client ({mine} of at most {}): wait for one to finish",
                self.per_client
            ))
            .retry_after(self.retry_after));
        }
        if state.total >= self.overall {
            return Err(ApiError::unavailable(format!(
                "the server is busy ({} jobs in flight, the most it accepts): try again later",
                state.total
            ))
            .retry_after(self.retry_after));
        }
        state.total += 1;
        *state.per_client.entry(client.to_owned()).or_insert(0) += 1;
        Ok(Ticket {
            admission: Arc::clone(self),
            client: client.to_owned(),
        })
    }

    /// Jobs in flight, all clients together.
    pub fn in_flight(&self) -> usize {
        self.lock().total
    }

    fn release(&self, client: &str) {
        let mut state = self.lock();
        state.total = state.total.saturating_sub(1);
        if let Some(n) = state.per_client.get_mut(client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.per_client.remove(client);
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.admission.release(&self.client);
    }
}

/// Most directory entries [`dir_bytes`] visits: a bound on the walk, not on the data.
const MAX_WALK_ENTRIES: usize = 100_000;
/// Deepest directory [`dir_bytes`] descends into (the apps keep one directory per job).
const MAX_WALK_DEPTH: usize = 4;

/// Bytes of the regular files under `dir` (symbolic links are not followed; a missing
/// directory is 0). The walk is bounded in depth and entries.
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut visited = 0usize;
    let mut stack: Vec<(PathBuf, usize)> = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            visited += 1;
            if visited > MAX_WALK_ENTRIES {
                return total;
            }
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_file() {
                total = total.saturating_add(meta.len());
            } else if meta.is_dir() && depth < MAX_WALK_DEPTH {
                stack.push((entry.path(), depth + 1));
            }
        }
    }
    total
}

/// A ceiling on the bytes an app keeps in its data directory.
#[derive(Debug, Clone)]
pub struct DiskBudget {
    dir: PathBuf,
    max_bytes: u64,
}

impl DiskBudget {
    /// At most `max_bytes` under `dir`.
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> DiskBudget {
        DiskBudget {
            dir: dir.into(),
            max_bytes,
        }
    }

    /// Bytes in use now.
    pub fn used(&self) -> u64 {
        dir_bytes(&self.dir)
    }

    /// Whether `incoming` more bytes fit: 503 with `Retry-After` when they do not (finished
    /// jobs' files are removed when their retention ends, so space comes back).
    pub fn check(&self, incoming: u64) -> Result<(), ApiError> {
        let used = self.used();
        if used.saturating_add(incoming) > self.max_bytes {
            return Err(ApiError::unavailable(format!(
                "the server's storage for jobs is full ({used} of {} bytes in use): try again later",
                self.max_bytes
            ))
            .retry_after(30));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_over_its_share_gets_429_and_a_full_server_503() {
        let a = Admission::new(1, 2);
        let t1 = a.admit("x").expect("x");
        let e = a.admit("x").unwrap_err();
        assert_eq!(e.status().as_u16(), 429);
        assert!(e.to_http().headers().contains_key("retry-after"));
        let _t2 = a.admit("y").expect("y");
        let e = a.admit("z").unwrap_err();
        assert_eq!(e.status().as_u16(), 503);
        assert_eq!(a.in_flight(), 2);
        drop(t1);
        assert_eq!(a.in_flight(), 1);
        assert!(a.admit("z").is_ok());
    }

    #[test]
    fn the_disk_budget_counts_nested_files_and_refuses_beyond_it() {
        let dir = std::env::temp_dir().join(format!("sse-limits-{}", std::process::id()));
        let sub = dir.join("job1");
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::write(sub.join("a"), vec![0u8; 1000]).expect("write");
        std::fs::write(dir.join("b"), vec![0u8; 24]).expect("write");
        let budget = DiskBudget::new(&dir, 2000);
        assert_eq!(budget.used(), 1024);
        assert!(budget.check(976).is_ok());
        let e = budget.check(977).unwrap_err();
        assert_eq!(e.status().as_u16(), 503);
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(dir_bytes(&dir), 0);
    }
}
