//! A small PDF generator, so the app can be tried without a PDF at hand.

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, Stream};

/// The text of page `n` of the sample PDF.
pub(crate) fn sample_page_text(n: usize) -> String {
    format!(
        "Sample book, page {n}\n\
         The quick brown fox jumps over the lazy dog.\n\
         Server-Sent Events report progress page by page.\n\
         This is line four of page {n}."
    )
}

/// A valid PDF with one A4 page per entry of `pages`, each line of an entry drawn as real text
/// (Helvetica 18 pt, WinAnsi encoding: characters outside Latin-1 become `?`). Its text layer
/// reads back with `lopdf`, and rendered at 150 dpi it OCRs cleanly.
pub fn sample_pdf<S: AsRef<str>>(pages: &[S]) -> std::io::Result<Vec<u8>> {
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
            Operation::new("Tf", vec!["F1".into(), 18.into()]),
            Operation::new("TL", vec![26.into()]),
            Operation::new("Td", vec![60.into(), 760.into()]),
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
            .map_err(std::io::Error::other)?;
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
    doc.save_to(&mut out).map_err(std::io::Error::other)?;
    Ok(out)
}
