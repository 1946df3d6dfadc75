//! Fonts: the bundled CJK face or a configured one, its character map and advance widths read
//! once, and subsets of it for the glyphs a document uses (written as a CID font, CID = new glyph
//! id).

use super::{PdfError, PdfResult};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Noto Serif CJK SC Regular, the Simplified Chinese face of Debian's NotoSerifCJK-Regular.ttc cut
/// out as a single OpenType/CFF font (assets/fonts/README.md says how; SIL OFL 1.1). It is built
/// into the binary so that a machine without any CJK font makes every document, and so that every
/// instance renders the same bytes from the same data (the reviewer's check 9 re-renders a
/// contract and compares it byte for byte).
static BUNDLED: &[u8] = include_bytes!("../../assets/fonts/NotoSerifCJKsc-Regular.otf");

/// What `Font::source` says of the bundled face.
pub const BUNDLED_NAME: &str = "bundled:NotoSerifCJKsc-Regular.otf";

/// A loaded font face with its metrics; cheap to share.
#[derive(Clone)]
pub struct Font {
    inner: Arc<Inner>,
}

struct Inner {
    /// The file it came from, or `BUNDLED_NAME`.
    path: PathBuf,
    data: Cow<'static, [u8]>,
    index: u32,
    family: String,
    postscript_name: String,
    cff: bool,
    units_per_em: u16,
    ascender: i16,
    descender: i16,
    cap_height: i16,
    bbox: [i16; 4],
    cmap: HashMap<char, u16>,
    advances: Vec<u16>,
}

impl std::fmt::Debug for Font {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Font")
            .field("path", &self.inner.path)
            .field("index", &self.inner.index)
            .field("family", &self.inner.family)
            .finish()
    }
}

fn family_of(face: &ttf_parser::Face<'_>) -> String {
    face.names()
        .into_iter()
        .filter(|n| n.name_id == ttf_parser::name_id::FAMILY && n.is_unicode())
        .find_map(|n| n.to_string())
        .unwrap_or_default()
}

fn postscript_of(face: &ttf_parser::Face<'_>) -> String {
    face.names()
        .into_iter()
        .filter(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME && n.is_unicode())
        .find_map(|n| n.to_string())
        .unwrap_or_else(|| "CJKFont".into())
}

impl Font {
    /// Loads face `index` of a font file (.ttf, .otf or a .ttc collection).
    pub fn load(path: &Path, index: u32) -> PdfResult<Font> {
        let data = std::fs::read(path)?;
        Font::from_data(path.to_path_buf(), Cow::Owned(data), index)
    }

    /// The face built into the binary, parsed once per process.
    pub fn bundled() -> Font {
        static FONT: OnceLock<Font> = OnceLock::new();
        FONT.get_or_init(|| {
            Font::from_data(PathBuf::from(BUNDLED_NAME), Cow::Borrowed(BUNDLED), 0)
                .expect("the bundled font parses (assets/fonts)")
        })
        .clone()
    }

    fn from_data(path: PathBuf, data: Cow<'static, [u8]>, index: u32) -> PdfResult<Font> {
        let err = |reason: String| PdfError::Font {
            path: path.display().to_string(),
            reason,
        };
        let face = ttf_parser::Face::parse(&data, index).map_err(|e| err(e.to_string()))?;
        let mut cmap = HashMap::new();
        if let Some(table) = face.tables().cmap {
            for sub in table.subtables.into_iter().filter(|s| s.is_unicode()) {
                sub.codepoints(|cp| {
                    if let (Some(ch), Some(gid)) = (char::from_u32(cp), sub.glyph_index(cp)) {
                        cmap.entry(ch).or_insert(gid.0);
                    }
                });
            }
        }
        if cmap.is_empty() {
            return Err(err("no Unicode character map".into()));
        }
        let advances = (0..face.number_of_glyphs())
            .map(|g| face.glyph_hor_advance(ttf_parser::GlyphId(g)).unwrap_or(0))
            .collect();
        let bb = face.global_bounding_box();
        let inner = Inner {
            path: path.clone(),
            index,
            family: family_of(&face),
            postscript_name: postscript_of(&face),
            cff: face.tables().cff.is_some(),
            units_per_em: face.units_per_em(),
            ascender: face.ascender(),
            descender: face.descender(),
            cap_height: face.capital_height().unwrap_or(face.ascender()),
            bbox: [bb.x_min, bb.y_min, bb.x_max, bb.y_max],
            cmap,
            advances,
            data: Cow::Borrowed(&[]),
        };
        Ok(Font {
            inner: Arc::new(Inner { data, ..inner }),
        })
    }

    /// The document face: the configured file when there is one (in a collection the face whose
    /// family ends in "SC"; index 0 of Noto CJK is the Japanese face, with Japanese glyph forms),
    /// otherwise the bundled face. System fonts are not searched: what a machine happens to have
    /// installed must not change the documents' bytes.
    pub fn find(configured: Option<&Path>) -> PdfResult<Font> {
        let Some(path) = configured else {
            return Ok(Font::bundled());
        };
        let data = std::fs::read(path).map_err(|e| PdfError::Font {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let count = ttf_parser::fonts_in_collection(&data).unwrap_or(1);
        let chosen = (0..count)
            .find(|&i| {
                ttf_parser::Face::parse(&data, i).is_ok_and(|f| family_of(&f).ends_with(" SC"))
            })
            .unwrap_or(0);
        let font = Font::from_data(path.to_path_buf(), Cow::Owned(data), chosen)?;
        if font.glyph('中').is_none() {
            return Err(PdfError::Font {
                path: path.display().to_string(),
                reason: "the face has no Chinese characters".into(),
            });
        }
        Ok(font)
    }

    /// The file the face was read from, or `BUNDLED_NAME`.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }
    pub fn is_bundled(&self) -> bool {
        matches!(self.inner.data, Cow::Borrowed(_))
    }
    pub fn family(&self) -> &str {
        &self.inner.family
    }
    pub fn postscript_name(&self) -> &str {
        &self.inner.postscript_name
    }
    pub fn is_cff(&self) -> bool {
        self.inner.cff
    }

    pub fn glyph(&self, ch: char) -> Option<u16> {
        self.inner.cmap.get(&ch).copied()
    }

    /// Advance width of a glyph in thousandths of the em (PDF text space units).
    pub fn advance_milli(&self, gid: u16) -> f32 {
        let adv = self.inner.advances.get(gid as usize).copied().unwrap_or(0) as f32;
        adv * 1000.0 / self.inner.units_per_em as f32
    }

    /// Characters of `text` the font cannot show (line breaks and tabs aside).
    pub fn missing(&self, text: &str) -> Vec<char> {
        let mut out: Vec<char> = text
            .chars()
            .filter(|c| !matches!(c, '\n' | '\r' | '\t') && self.glyph(*c).is_none())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    fn milli(&self, v: i16) -> i32 {
        (v as i32 * 1000) / self.inner.units_per_em as i32
    }
    pub fn ascender_milli(&self) -> i32 {
        self.milli(self.inner.ascender)
    }
    pub fn descender_milli(&self) -> i32 {
        self.milli(self.inner.descender)
    }
    pub fn cap_height_milli(&self) -> i32 {
        self.milli(self.inner.cap_height)
    }
    pub fn bbox_milli(&self) -> [i32; 4] {
        let b = self.inner.bbox;
        [
            self.milli(b[0]),
            self.milli(b[1]),
            self.milli(b[2]),
            self.milli(b[3]),
        ]
    }

    /// The PostScript name of a subset, with its six-letter tag derived from the glyph set, so
    /// the same text always gives the same name (and the same bytes).
    pub fn subset_name(&self, glyphs: &BTreeSet<u16>) -> String {
        let ids: Vec<u8> = glyphs.iter().flat_map(|g| g.to_be_bytes()).collect();
        let digest = openssl::sha::sha256(&ids);
        let tag: String = digest[..6]
            .iter()
            .map(|b| (b'A' + b % 26) as char)
            .collect();
        format!("{tag}+{}", self.postscript_name().replace(' ', ""))
    }

    /// Subsets the font to `glyphs` (old ids). Returns the embeddable font program (for CFF
    /// outlines only the `CFF ` table, for TrueType the whole subset) and the old → new id map.
    pub fn subset(&self, glyphs: &BTreeSet<u16>) -> PdfResult<(Vec<u8>, HashMap<u16, u16>)> {
        let order: Vec<u16> = glyphs.iter().copied().collect();
        let remapper = subsetter::GlyphRemapper::new_from_glyphs_sorted(&order);
        let subset = subsetter::subset(&self.inner.data, self.inner.index, &remapper)
            .map_err(|e| PdfError::Subset(format!("{e:?}")))?;
        let map = order
            .iter()
            .filter_map(|g| remapper.get(*g).map(|n| (*g, n)))
            .collect();
        let program = if self.inner.cff {
            let face = ttf_parser::RawFace::parse(&subset, 0)
                .map_err(|e| PdfError::Subset(e.to_string()))?;
            face.table(ttf_parser::Tag::from_bytes(b"CFF "))
                .ok_or_else(|| PdfError::Subset("subset has no CFF table".into()))?
                .to_vec()
        } else {
            subset
        };
        Ok((program, map))
    }
}
