//! The documents room: laying out Chinese and Latin text on pages and writing archival PDFs with
//! an embedded, subset CJK font, ready to carry signatures. A library: no axum, no sqlx.

pub mod appearance;
pub mod font;
pub mod layout;
pub mod numerals;
pub mod read;
pub mod sign;
pub mod template;
pub mod update;
pub mod verify;
pub mod writer;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PdfError {
    #[error("invalid document date {0:?} (RFC 3339 expected)")]
    Date(String),
    #[error("font {path}: {reason}")]
    Font { path: String, reason: String },
    #[error("the font has no glyph for {0:?}")]
    MissingGlyph(char),
    #[error("font subsetting failed: {0}")]
    Subset(String),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

pub type PdfResult<T> = Result<T, PdfError>;
