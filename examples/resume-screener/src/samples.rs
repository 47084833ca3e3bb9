//! Sample resumes and a job description, so the app can be tried without files at hand (the
//! page's "Add sample resumes" button fetches them from `GET /samples/{name}`).

use sse_examples_support::pdf::SamplePdf;

/// A job description that the samples match to different degrees.
pub const SAMPLE_DESCRIPTION: &str = "Senior Rust engineer. You will build async services \
with Rust, Tokio and axum, stream progress to browsers with Server-Sent Events, and run them on \
Kubernetes with PostgreSQL. Experience with distributed systems and observability is a plus.";

/// One sample resume.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Its file name (also its URL under `/samples/`).
    pub name: &'static str,
    /// Its lines of text.
    pub lines: &'static [&'static str],
}

/// The sample resumes: two PDFs and a text file.
pub const SAMPLES: &[Sample] = &[
    Sample {
        name: "ada-rust-engineer.pdf",
        lines: &[
            "Ada Example - Senior Rust Engineer",
            "Seven years building async services in Rust with Tokio and axum.",
            "Designed a Server-Sent Events gateway streaming job progress to browsers.",
            "Runs services on Kubernetes; PostgreSQL schema design and tuning.",
            "Distributed systems, tracing and observability with OpenTelemetry.",
        ],
    },
    Sample {
        name: "grace-backend-developer.pdf",
        lines: &[
            "Grace Example - Backend Developer",
            "Go and Python services, REST APIs, PostgreSQL and Redis.",
            "Some Rust for command-line tools. Docker and Kubernetes deployments.",
        ],
    },
    Sample {
        name: "alan-data-scientist.txt",
        lines: &[
            "Alan Example - Data Scientist",
            "Python, pandas, scikit-learn and statistics.",
            "Machine learning models for forecasting; Jupyter notebooks and dashboards.",
        ],
    },
];

/// The bytes of the sample named `name`: a generated PDF or UTF-8 text.
pub fn sample_file(name: &str) -> Option<Vec<u8>> {
    let s = SAMPLES.iter().find(|s| s.name == name)?;
    if name.ends_with(".pdf") {
        // One page, 12 pt (the shared generator, with its real text layer).
        SamplePdf::new()
            .font_size(12)
            .build(&[s.lines.join("\n")])
            .ok()
    } else {
        Some(s.lines.join("\n").into_bytes())
    }
}
