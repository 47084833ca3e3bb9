//! A small PDF generator, so the apps can be tried (and tested) without a PDF at hand.

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, Stream};

/// Making a PDF failed (encoding its content or writing it).
#[derive(Debug, thiserror::Error)]
#[error("cannot generate the sample PDF: {0}")]
pub struct PdfError(String);

/// A valid PDF with one A4 page per text, each line drawn as real text in Helvetica (WinAnsi
/// encoding: characters outside Latin-1 become `?`). Its text layer reads back with `lopdf`,
/// and at the default 18 pt rendered at 150 dpi it OCRs cleanly.
///
/// ```
/// use sse_examples_support::pdf::SamplePdf;
/// let bytes = SamplePdf::new().font_size(12).build(&["Page one", "Page two\nline 2"])?;
/// assert!(bytes.starts_with(b"%PDF-1.5"));
/// # Ok::<(), sse_examples_support::pdf::PdfError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SamplePdf {
    font_size: i64,
    leading: i64,
    top: i64,
}

impl Default for SamplePdf {
    fn default() -> Self {
        SamplePdf::new()
    }
}

impl SamplePdf {
    /// 18 pt text, 26 pt between lines, starting 82 pt below the top of the page.
    pub fn new() -> Self {
        SamplePdf {
            font_size: 18,
            leading: 26,
            top: 760,
        }
    }

    /// The text size in points; the line spacing follows (1.45 times the size).
    pub fn font_size(mut self, points: u16) -> Self {
        self.font_size = i64::from(points.max(1));
        self.leading = self.font_size * 29 / 20;
        self.top = 842 - 4 * self.font_size.min(20);
        self
    }

    /// The PDF: one page per entry of `pages`, one text line per line of the entry.
    pub fn build<S: AsRef<str>>(&self, pages: &[S]) -> Result<Vec<u8>, PdfError> {
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
        let mut kids = Vec::with_capacity(pages.len());
        for text in pages {
            let mut ops = vec![
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), self.font_size.into()]),
                Operation::new("TL", vec![self.leading.into()]),
                Operation::new("Td", vec![60.into(), self.top.into()]),
            ];
            for line in text.as_ref().lines() {
                let bytes: Vec<u8> = line
                    .chars()
                    .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
                    .collect();
                ops.push(Operation::new("Tj", vec![Object::string_literal(bytes)]));
                ops.push(Operation::new("T*", vec![]));
            }
            ops.push(Operation::new("ET", vec![]));
            let content = Content { operations: ops }
                .encode()
                .map_err(|e| PdfError(e.to_string()))?;
            let content_id = doc.add_object(Stream::new(dictionary! {}, content));
            let page_id = doc.add_object(dictionary! {
                "Type" => "Page",
                "Parent" => pages_id,
                "Contents" => content_id,
            });
            kids.push(Object::from(page_id));
        }
        let count = i64::try_from(kids.len()).unwrap_or(i64::MAX);
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages",
                "Kids" => kids,
                "Count" => count,
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
        doc.save_to(&mut out).map_err(|e| PdfError(e.to_string()))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_texts(bytes: &[u8]) -> Vec<String> {
        let doc = Document::load_mem(bytes).expect("the PDF parses");
        let pages = doc.get_pages();
        pages
            .keys()
            .map(|n| doc.extract_text(&[*n]).expect("a text layer"))
            .collect()
    }

    #[test]
    fn every_page_and_line_reads_back_from_the_text_layer() {
        let pdf = SamplePdf::new()
            .build(&["Chapter 1\nThe quick brown fox", "Chapter 2\nJumps over"])
            .expect("a PDF");
        let texts = page_texts(&pdf);
        assert_eq!(texts.len(), 2);
        assert!(
            texts[0].contains("Chapter 1") && texts[0].contains("quick brown fox"),
            "{texts:?}"
        );
        assert!(
            texts[1].contains("Chapter 2") && texts[1].contains("Jumps over"),
            "{texts:?}"
        );
    }

    #[test]
    fn characters_outside_latin1_become_question_marks() {
        let pdf = SamplePdf::new()
            .font_size(12)
            .build(&["caf\u{e9} \u{2603}"])
            .expect("a PDF");
        let texts = page_texts(&pdf);
        assert!(texts[0].contains('?'), "{texts:?}");
        assert!(!texts[0].contains('\u{2603}'), "{texts:?}");
    }

    #[test]
    fn no_pages_is_still_a_valid_pdf() {
        let pdf = SamplePdf::new().build::<&str>(&[]).expect("a PDF");
        assert!(page_texts(&pdf).is_empty());
    }
}
