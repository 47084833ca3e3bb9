//! Sample resumes and a job description, so the app can be tried without files at hand (the
//! page's "Add sample resumes" button fetches them from `GET /samples/{name}`).

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, Stream};

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
        sample_pdf(s.lines).ok()
    } else {
        Some(s.lines.join("\n").into_bytes())
    }
}

/// A valid one-page PDF with each line drawn as real text (Helvetica, WinAnsi encoding:
/// characters outside Latin-1 become `?`); its text layer reads back with `lopdf`.
pub fn sample_pdf<S: AsRef<str>>(lines: &[S]) -> std::io::Result<Vec<u8>> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let mut ops = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 12.into()]),
        Operation::new("TL", vec![18.into()]),
        Operation::new("Td", vec![60.into(), 780.into()]),
    ];
    for line in lines {
        let bytes: Vec<u8> = line
            .as_ref()
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
            .collect();
        ops.push(Operation::new("Tj", vec![Object::string_literal(bytes)]));
        ops.push(Operation::new("T*", vec![]));
    }
    ops.push(Operation::new("ET", vec![]));
    let content = Content { operations: ops }
        .encode()
        .map_err(std::io::Error::other)?;
    let content_id = doc.add_object(Stream::new(dictionary! {}, content));
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "Contents" => content_id,
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => vec![Object::from(page_id)],
            "Count" => 1,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    doc.trailer.set("Root", catalog_id);
    doc.compress();
    let mut out = Vec::new();
    doc.save_to(&mut out).map_err(std::io::Error::other)?;
    Ok(out)
}
