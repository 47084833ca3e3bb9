//! Shared helpers for the examples.

pub mod characters;
pub mod demo;
pub mod pdf_ocr;
pub mod video;
