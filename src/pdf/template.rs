//! Document templates: clause text in TOML that a legal editor can read and change, with
//! `{{ name }}` placeholders filled from a map of values. A template has an id and a version, and
//! its SHA-256 is recorded in every document made from it.

use super::layout::Block;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    id: String,
    version: String,
    title: String,
    blocks: Vec<RawBlock>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBlock {
    title: Option<String>,
    heading: Option<String>,
    text: Option<String>,
    indent: Option<bool>,
    table: Option<String>,
    page_break: Option<bool>,
    signatures: Option<bool>,
    qr: Option<String>,
    caption: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub id: String,
    pub version: String,
    pub title: String,
    /// SHA-256 of the template file, hex.
    pub hash: String,
    blocks: Vec<RawBlockOwned>,
}

#[derive(Debug, Clone)]
enum RawBlockOwned {
    Title(String),
    Heading(String),
    Text(String, bool),
    Table(String),
    PageBreak,
    Signatures,
    Qr(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template is not valid: {0}")]
    Syntax(String),
    #[error("placeholder {{{{ {0} }}}} has no value")]
    MissingValue(String),
    #[error("table `{0}` has no data")]
    MissingTable(String),
}

/// A table to place: column widths (fractions) and rows, the first being the header.
pub type TableData = (Vec<f32>, Vec<Vec<String>>);

/// An empty signature field to create on the signature page.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    pub field: String,
    pub label: String,
    pub width: f32,
    pub height: f32,
}

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let raw: RawTemplate =
            toml::from_str(text).map_err(|e| TemplateError::Syntax(e.to_string()))?;
        let mut blocks = Vec::new();
        for (i, b) in raw.blocks.into_iter().enumerate() {
            let block = match b {
                RawBlock { title: Some(t), .. } => RawBlockOwned::Title(t),
                RawBlock {
                    heading: Some(h), ..
                } => RawBlockOwned::Heading(h),
                RawBlock {
                    text: Some(t),
                    indent,
                    ..
                } => RawBlockOwned::Text(t, indent.unwrap_or(true)),
                RawBlock { table: Some(t), .. } => RawBlockOwned::Table(t),
                RawBlock {
                    page_break: Some(true),
                    ..
                } => RawBlockOwned::PageBreak,
                RawBlock {
                    signatures: Some(true),
                    ..
                } => RawBlockOwned::Signatures,
                RawBlock {
                    qr: Some(q),
                    caption,
                    ..
                } => RawBlockOwned::Qr(q, caption.unwrap_or_default()),
                _ => {
                    return Err(TemplateError::Syntax(format!(
                        "block {} has no content",
                        i + 1
                    )));
                }
            };
            blocks.push(block);
        }
        let hash = openssl::sha::sha256(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Template {
            id: raw.id,
            version: raw.version,
            title: raw.title,
            hash,
            blocks,
        })
    }

    /// The template's fixed text (placeholders left out): the characters every document made
    /// from it shares, embedded from one cached font subset.
    pub fn fixed_text(&self) -> String {
        let mut out = self.title.clone();
        for b in &self.blocks {
            match b {
                RawBlockOwned::Title(t) | RawBlockOwned::Heading(t) | RawBlockOwned::Text(t, _) => {
                    out.push_str(t)
                }
                RawBlockOwned::Qr(_, c) => out.push_str(c),
                _ => {}
            }
        }
        // Drop the placeholders: their names are not printed.
        let mut fixed = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(i) = rest.find("{{") {
            fixed.push_str(&rest[..i]);
            match rest[i..].find("}}") {
                Some(j) => rest = &rest[i + j + 2..],
                None => {
                    rest = "";
                }
            }
        }
        fixed.push_str(rest);
        fixed
    }

    /// Every placeholder the template uses, for checking data against it.
    pub fn placeholders(&self) -> Vec<String> {
        let mut out = Vec::new();
        for b in &self.blocks {
            let texts: Vec<&str> = match b {
                RawBlockOwned::Title(t) | RawBlockOwned::Heading(t) | RawBlockOwned::Text(t, _) => {
                    vec![t]
                }
                RawBlockOwned::Qr(q, c) => vec![q, c],
                _ => vec![],
            };
            for t in texts {
                let mut rest = t;
                while let Some(start) = rest.find("{{") {
                    let Some(end) = rest[start..].find("}}") else {
                        break;
                    };
                    out.push(rest[start + 2..start + end].trim().to_owned());
                    rest = &rest[start + end + 2..];
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Fills the template. A placeholder without a value is an error, never an empty gap.
    pub fn fill(
        &self,
        values: &BTreeMap<String, String>,
        tables: &BTreeMap<String, TableData>,
        fields: &[FieldSpec],
    ) -> Result<Vec<Block>, TemplateError> {
        let fill = |t: &str| -> Result<String, TemplateError> {
            let mut out = String::with_capacity(t.len() + 32);
            let mut rest = t;
            while let Some(start) = rest.find("{{") {
                out.push_str(&rest[..start]);
                let end = rest[start..].find("}}").ok_or_else(|| {
                    TemplateError::Syntax(format!("unclosed placeholder in `{t}`"))
                })?;
                let key = rest[start + 2..start + end].trim();
                out.push_str(
                    values
                        .get(key)
                        .ok_or_else(|| TemplateError::MissingValue(key.to_owned()))?,
                );
                rest = &rest[start + end + 2..];
            }
            out.push_str(rest);
            Ok(out)
        };
        let mut out = Vec::with_capacity(self.blocks.len() + fields.len());
        for b in &self.blocks {
            match b {
                RawBlockOwned::Title(t) => out.push(Block::Title(fill(t)?)),
                RawBlockOwned::Heading(t) => out.push(Block::Heading(fill(t)?)),
                RawBlockOwned::Text(t, indent) => out.push(Block::Paragraph {
                    text: fill(t)?,
                    indent: *indent,
                }),
                RawBlockOwned::Table(name) => {
                    let (widths, rows) = tables
                        .get(name)
                        .ok_or_else(|| TemplateError::MissingTable(name.clone()))?;
                    out.push(Block::Table {
                        widths: widths.clone(),
                        rows: rows.clone(),
                    });
                }
                RawBlockOwned::PageBreak => out.push(Block::PageBreak),
                RawBlockOwned::Signatures => {
                    for f in fields {
                        out.push(Block::SignatureField {
                            field: f.field.clone(),
                            label: f.label.clone(),
                            width: f.width,
                            height: f.height,
                        });
                    }
                }
                RawBlockOwned::Qr(q, c) => out.push(Block::QrCode {
                    data: fill(q)?,
                    size: 64.0,
                    caption: fill(c)?,
                }),
            }
        }
        Ok(out)
    }
}
