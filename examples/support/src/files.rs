//! Job files: removed when a job's retention ends ([`remove_after`]) and all at shutdown
//! ([`remove_all`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Removes `path` (a job's directory or file) after `retention`, on the current Tokio runtime.
/// A missing path is fine (already removed, or never written).
pub fn remove_after(path: PathBuf, retention: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(retention).await;
        remove(&path).await;
    });
}

/// Removes `path` now, whether a directory or a file; a missing one is fine.
pub async fn remove(path: &Path) {
    if tokio::fs::remove_dir_all(path).await.is_err() {
        let _ = tokio::fs::remove_file(path).await;
    }
}

/// Removes an app's whole data directory (at shutdown). Returns whether it is gone.
pub async fn remove_all(dir: &Path) -> bool {
    remove(dir).await;
    tokio::fs::metadata(dir).await.is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_directory_is_removed_when_its_retention_ends() {
        let root = std::env::temp_dir().join(format!("sse-files-{}", std::process::id()));
        let job = root.join("job");
        tokio::fs::create_dir_all(&job).await.expect("mkdir");
        tokio::fs::write(job.join("out"), b"x")
            .await
            .expect("write");
        remove_after(job.clone(), Duration::from_millis(50));
        assert!(tokio::fs::metadata(&job).await.is_ok());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tokio::fs::metadata(&job).await.is_ok() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(tokio::fs::metadata(&job).await.is_err());
        assert!(remove_all(&root).await);
    }
}
