//! What an uploaded file is, and its text.
//!
//! [`sniff`] decides from the bytes (not the declared type) whether a file is a PDF (a `%PDF-`
//! header in its first 1024 bytes, as PDF readers accept) or plain text (UTF-8, or Latin-1 when
//! it is not valid UTF-8, without control characters other than tab, line and page breaks).
//! Anything else is refused before the batch starts. [`extract_text`] then runs on a worker:
//! a PDF's text layer is read with `lopdf` (the crate the pdf-ocr example uses), page by page.
//! A file whose text cannot be read (a corrupt or encrypted PDF, a scan without a text layer)
//! fails alone.

use std::fmt;

/// How many leading bytes may precede the `%PDF-` header.
const PDF_HEADER_WINDOW: usize = 1024;

/// Most pages read from one PDF.
pub const MAX_PDF_PAGES: usize = 200;

/// The kinds of files accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A PDF (its text layer is extracted).
    Pdf,
    /// Plain text.
    Text,
}

impl Kind {
    /// `"pdf"` or `"text"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pdf => "pdf",
            Kind::Text => "text",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `bytes` start (within 1024 bytes) with a PDF header.
pub fn is_pdf(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(PDF_HEADER_WINDOW)];
    head.windows(5).any(|w| w == b"%PDF-")
}

/// `bytes` as text, if they are text: UTF-8 (a byte order mark is dropped), else Latin-1; `None`
/// when they hold control characters other than tab, CR, LF and form feed.
pub fn decode_text(bytes: &[u8]) -> Option<String> {
    let b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let binary = b
        .iter()
        .any(|&c| (c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r' | 0x0c)) || c == 0x7f);
    if binary {
        return None;
    }
    match std::str::from_utf8(b) {
        Ok(s) => Some(s.to_owned()),
        Err(_) => Some(b.iter().map(|&c| char::from(c)).collect()),
    }
}

/// What a file is, from its bytes; `Err` says why it is refused.
///
/// A file named `*.pdf` or declared `application/pdf` must have a PDF header: a text file
/// posing as a PDF is refused rather than read as text.
pub fn sniff(filename: &str, content_type: Option<&str>, bytes: &[u8]) -> Result<Kind, String> {
    if bytes.is_empty() {
        return Err(format!("{filename:?} is empty"));
    }
    if is_pdf(bytes) {
        return Ok(Kind::Pdf);
    }
    let declared_pdf = filename.to_ascii_lowercase().ends_with(".pdf")
        || content_type.is_some_and(|t| t.eq_ignore_ascii_case("application/pdf"));
    if declared_pdf {
        return Err(format!(
            "{filename:?} is not a PDF: it has no %PDF- header (upload a PDF or a plain-text file)"
        ));
    }
    if decode_text(bytes).is_some() {
        return Ok(Kind::Text);
    }
    Err(format!(
        "{filename:?} is neither a PDF nor plain text (binary content; upload a PDF or a .txt file)"
    ))
}

/// The text of a file of `kind`, or why it cannot be read.
pub fn extract_text(kind: Kind, bytes: &[u8]) -> Result<String, String> {
    match kind {
        Kind::Pdf => pdf_text(bytes),
        Kind::Text => decode_text(bytes).ok_or_else(|| "the file is not plain text".to_owned()),
    }
}

/// The text layer of every page of a PDF, pages separated by a line break.
pub fn pdf_text(bytes: &[u8]) -> Result<String, String> {
    let doc =
        lopdf::Document::load_mem(bytes).map_err(|e| format!("the PDF cannot be parsed: {e}"))?;
    if doc.is_encrypted() {
        return Err("the PDF is encrypted".to_owned());
    }
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    if pages.is_empty() {
        return Err("the PDF has no pages".to_owned());
    }
    if pages.len() > MAX_PDF_PAGES {
        return Err(format!(
            "the PDF has {} pages; at most {MAX_PDF_PAGES} are read",
            pages.len()
        ));
    }
    let mut text = String::new();
    let mut undecodable = 0usize;
    for page in pages {
        for chunk in doc.extract_text_chunks(&[page]) {
            match chunk {
                Ok(t) => text.push_str(&t),
                Err(_) => undecodable += 1,
            }
        }
        text.push('\n');
    }
    if text.trim().is_empty() {
        return Err(if undecodable > 0 {
            format!("no text could be decoded from the PDF ({undecodable} unreadable fragments)")
        } else {
            "the PDF has no text layer (a scanned document?)".to_owned()
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(sniff("a.pdf", None, b"%PDF-1.4\n..."), Ok(Kind::Pdf));
        assert_eq!(sniff("a.bin", None, b"\n\n%PDF-1.7 x"), Ok(Kind::Pdf));
        assert_eq!(
            sniff("cv.txt", Some("text/plain"), b"Rust, Tokio"),
            Ok(Kind::Text)
        );
        assert_eq!(sniff("cv", None, "café".as_bytes()), Ok(Kind::Text));
        assert_eq!(sniff("cv", None, b"caf\xe9"), Ok(Kind::Text));
        assert!(sniff("cv.pdf", None, b"hello")
            .unwrap_err()
            .contains("not a PDF"));
        assert!(sniff("x", Some("application/pdf"), b"hello").is_err());
        assert!(sniff("img.png", None, b"\x89PNG\r\n\x1a\n\0\0")
            .unwrap_err()
            .contains("neither"));
        assert!(sniff("e.txt", None, b"").unwrap_err().contains("empty"));
    }

    #[test]
    fn latin1_fallback() {
        assert_eq!(decode_text(b"caf\xe9").as_deref(), Some("café"));
        assert_eq!(decode_text(b"\xEF\xBB\xBFhi").as_deref(), Some("hi"));
        assert_eq!(decode_text(b"a\0b"), None);
    }

    #[test]
    fn corrupt_pdfs_fail() {
        assert!(pdf_text(b"%PDF-1.4\nthis is not a PDF body at all\n").is_err());
        assert!(pdf_text(b"%PDF-").is_err());
    }

    #[test]
    fn sample_pdf_reads_back() {
        let pdf = sse_examples_support::pdf::SamplePdf::new()
            .font_size(12)
            .build(&["Rust engineer\nTokio and axum"])
            .unwrap();
        let text = pdf_text(&pdf).unwrap();
        assert!(text.contains("Rust engineer"), "{text:?}");
        assert!(text.contains("Tokio and axum"), "{text:?}");
        // Truncated in the middle: unreadable.
        assert!(pdf_text(&pdf[..pdf.len() / 2]).is_err());
    }
}
