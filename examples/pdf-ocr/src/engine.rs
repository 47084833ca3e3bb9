//! The per-page work: tesseract OCR of a rendered page, or the PDF's own text layer.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::JobError;

/// Which engine the app should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineChoice {
    /// Tesseract where `pdftoppm` and `tesseract` are installed, else the text layer.
    #[default]
    Auto,
    /// Always the PDF's text layer.
    TextLayer,
    /// Tesseract; falls back to the text layer (with a warning) if it is not installed.
    Tesseract,
}

impl std::str::FromStr for EngineChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" | "auto" => Ok(EngineChoice::Auto),
            "text-layer" | "text" => Ok(EngineChoice::TextLayer),
            "tesseract" | "ocr" => Ok(EngineChoice::Tesseract),
            other => Err(format!(
                "unknown engine {other:?} (expected auto, text-layer or tesseract)"
            )),
        }
    }
}

/// The engine in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// Render each page with `pdftoppm`, OCR it with `tesseract`.
    Tesseract {
        /// Path of `pdftoppm`.
        pdftoppm: PathBuf,
        /// Path of `tesseract`.
        tesseract: PathBuf,
    },
    /// Extract each page's text layer with `lopdf`.
    TextLayer,
}

impl Engine {
    /// Resolves `choice`, looking for `pdftoppm` and `tesseract` on the `PATH`.
    pub fn detect(choice: EngineChoice) -> Engine {
        if choice == EngineChoice::TextLayer {
            return Engine::TextLayer;
        }
        match (find_program("pdftoppm"), find_program("tesseract")) {
            (Some(pdftoppm), Some(tesseract)) => Engine::Tesseract {
                pdftoppm,
                tesseract,
            },
            _ => {
                if choice == EngineChoice::Tesseract {
                    eprintln!(
                        "pdf-ocr: tesseract requested but pdftoppm/tesseract are not on the PATH \
                         (Debian: apt-get install poppler-utils tesseract-ocr); using the text layer"
                    );
                }
                Engine::TextLayer
            }
        }
    }

    /// `"tesseract"` or `"text-layer"`, as the events name it.
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Tesseract { .. } => "tesseract",
            Engine::TextLayer => "text-layer",
        }
    }
}

/// The first executable file named `name` in the `PATH` (what `which` does).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// The text layer of page `page` (1-based). Fragments lopdf cannot decode are skipped and
/// counted.
pub(crate) fn text_layer(doc: &lopdf::Document, page: u32) -> (String, usize) {
    let mut text = String::new();
    let mut unreadable = 0;
    for chunk in doc.extract_text_chunks(&[page]) {
        match chunk {
            Ok(t) => text.push_str(&t),
            Err(_) => unreadable += 1,
        }
    }
    (text, unreadable)
}

/// A private scratch directory holding the uploaded PDF for the external tools; removed on drop.
pub(crate) struct WorkDir {
    dir: PathBuf,
}

impl WorkDir {
    pub(crate) fn create(job_id: &str, pdf: &[u8]) -> Result<WorkDir, JobError> {
        let dir = std::env::temp_dir().join(format!("pdf-ocr-{}-{job_id}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| JobError::internal(format!("cannot create {}: {e}", dir.display())))?;
        let wd = WorkDir { dir };
        std::fs::write(wd.pdf(), pdf)
            .map_err(|e| JobError::internal(format!("cannot write {}: {e}", wd.pdf().display())))?;
        Ok(wd)
    }

    fn pdf(&self) -> PathBuf {
        self.dir.join("input.pdf")
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Renders page `page` (1-based) at `dpi` with `pdftoppm -r DPI -f N -l N -png` and OCRs the
/// image with `tesseract`, each under `timeout`.
pub(crate) fn ocr_page(
    pdftoppm: &Path,
    tesseract: &Path,
    wd: &WorkDir,
    page: u32,
    dpi: u32,
    timeout: Duration,
) -> Result<String, JobError> {
    let image_base = wd.dir.join(format!("page-{page}"));
    let mut render = Command::new(pdftoppm);
    render
        .arg("-r")
        .arg(dpi.to_string())
        .arg("-f")
        .arg(page.to_string())
        .arg("-l")
        .arg(page.to_string())
        .args(["-png", "-singlefile"])
        .arg(wd.pdf())
        .arg(&image_base);
    run(render, wd, "pdftoppm", page, timeout)?;
    let image = wd.dir.join(format!("page-{page}.png"));

    let text_base = wd.dir.join(format!("text-{page}"));
    let mut ocr = Command::new(tesseract);
    // One thread per tesseract: the jobs already run in parallel.
    ocr.arg(&image).arg(&text_base).env("OMP_THREAD_LIMIT", "1");
    let ran = run(ocr, wd, "tesseract", page, timeout);
    let _ = std::fs::remove_file(&image);
    ran?;
    let text_file = wd.dir.join(format!("text-{page}.txt"));
    let bytes = std::fs::read(&text_file)
        .map_err(|e| JobError::ocr(format!("tesseract wrote no text for page {page}: {e}")))?;
    let _ = std::fs::remove_file(&text_file);
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Runs `cmd` to completion within `timeout`; kills it past that. Output goes to files, so a
/// chatty tool can never block on a full pipe.
fn run(
    mut cmd: Command,
    wd: &WorkDir,
    what: &str,
    page: u32,
    timeout: Duration,
) -> Result<(), JobError> {
    let stderr_path = wd.dir.join(format!("{what}-{page}.stderr"));
    let stderr = File::create(&stderr_path)
        .map_err(|e| JobError::internal(format!("cannot create {}: {e}", stderr_path.display())))?;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr));
    let mut child = cmd
        .spawn()
        .map_err(|e| JobError::ocr(format!("cannot start {what} for page {page}: {e}")))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(JobError::ocr(format!(
                    "{what} timeout on page {page} (after {} s)",
                    timeout.as_secs_f32()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                let _ = child.kill();
                return Err(JobError::ocr(format!("{what} on page {page}: {e}")));
            }
        }
    };
    let log = std::fs::read(&stderr_path).unwrap_or_default();
    let _ = std::fs::remove_file(&stderr_path);
    if status.success() {
        return Ok(());
    }
    // The tool's own words stay in the server's log: they name server paths and say nothing a
    // client can act on.
    let log = String::from_utf8_lossy(&log);
    let lines: Vec<&str> = log.trim().lines().collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    eprintln!("pdf-ocr: {what} failed on page {page} ({status}): {tail}");
    if what == "pdftoppm" {
        // pdftoppm reads the file the client sent: a failure is the file's problem.
        return Err(JobError::invalid_pdf(format!(
            "page {page} of the PDF cannot be rendered: the file is damaged or malformed"
        )));
    }
    Err(JobError::ocr(format!("{what} failed on page {page}")))
}
