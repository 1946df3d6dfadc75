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
    /// The Basic Multilingual Plane's part of `cmap` as a table (glyph id + 1; 0 for none): a
    /// lookup per character laid out, where hashing the character cost more than the rest.
    bmp: Vec<u32>,
    advances: Vec<u16>,
    /// Subsets made last, by glyph set (see `subset`).
    subsets: std::sync::Mutex<std::collections::VecDeque<(Vec<u16>, Arc<Subset>)>>,
    /// The face cut down to the common characters, made on first use (see `Common`).
    common: OnceLock<Option<Common>>,
}

/// The face reduced to the 6,763 characters of GB 2312 (levels 1 and 2), printable ASCII and the
/// common punctuation: subsetting walks every glyph of its source, and the whole Simplified
/// Chinese face has 44,232, so a subset for a signature block (a name and a date) costs about
/// 0.8 ms from the whole face and 0.08 ms from this one (measured). A text with a character
/// outside it (a rare character in a name) is subset from the whole face as before.
struct Common {
    data: Vec<u8>,
    /// Glyph ids of the whole face → ids in `data` (increasing with them).
    ids: HashMap<u16, u16>,
}

/// GB 2312's hanzi, 94 to a line (generated with Python's `gb2312` codec, rows 16–87).
const GB2312_HANZI: &str = include_str!("gb2312.txt");

/// An embeddable font program and the old → new glyph id map.
type Subset = (Vec<u8>, HashMap<u16, u16>);

/// Subsets kept per font: a seal's text (an organisation's name and the seal's purpose) is the
/// same on every document it seals, and subsetting a CJK face walks every glyph of it whatever
/// the text, about a millisecond each time.
const KEPT_SUBSETS: usize = 64;

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
        let mut bmp = vec![0u32; 0x10000];
        for (ch, gid) in &cmap {
            if let Some(slot) = bmp.get_mut(*ch as usize) {
                *slot = u32::from(*gid) + 1;
            }
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
            bmp,
            advances,
            data: Cow::Borrowed(&[]),
            subsets: Default::default(),
            common: OnceLock::new(),
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
        match self.inner.bmp.get(ch as usize) {
            Some(0) => None,
            Some(g) => Some((g - 1) as u16),
            None => self.inner.cmap.get(&ch).copied(),
        }
    }

    /// How many glyphs the face has (ids are below this).
    pub fn glyph_count(&self) -> usize {
        self.inner.advances.len()
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
    pub fn subset(&self, glyphs: &BTreeSet<u16>) -> PdfResult<Arc<Subset>> {
        let order: Vec<u16> = glyphs.iter().copied().collect();
        if let Ok(kept) = self.inner.subsets.lock()
            && let Some((_, s)) = kept.iter().find(|(k, _)| *k == order)
        {
            return Ok(s.clone());
        }
        let made = Arc::new(self.make_subset(&order)?);
        if let Ok(mut kept) = self.inner.subsets.lock() {
            if kept.len() >= KEPT_SUBSETS {
                kept.pop_front();
            }
            kept.push_back((order, made.clone()));
        }
        Ok(made)
    }

    /// A subset made afresh, not kept (what `subset` costs when the glyph set is new).
    pub fn subset_fresh(&self, glyphs: &BTreeSet<u16>) -> PdfResult<Subset> {
        let order: Vec<u16> = glyphs.iter().copied().collect();
        self.make_subset(&order)
    }

    fn common(&self) -> Option<&Common> {
        self.inner
            .common
            .get_or_init(|| {
                let mut glyphs: Vec<u16> = GB2312_HANZI
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .chain((0x20u8..0x7f).map(char::from))
                    .chain("，。、；：？！（）【】《》“”‘’—…·－％　０１２３４５６７８９".chars())
                    .filter_map(|c| self.glyph(c))
                    .collect();
                glyphs.push(0);
                glyphs.sort_unstable();
                glyphs.dedup();
                let remapper = subsetter::GlyphRemapper::new_from_glyphs_sorted(&glyphs);
                let data = subsetter::subset(&self.inner.data, self.inner.index, &remapper).ok()?;
                let ids = glyphs
                    .iter()
                    .filter_map(|g| remapper.get(*g).map(|n| (*g, n)))
                    .collect();
                Some(Common { data, ids })
            })
            .as_ref()
    }

    fn make_subset(&self, order: &[u16]) -> PdfResult<Subset> {
        let (font, map) = self.subset_font(order, true)?;
        Ok((self.program_of(font)?, map))
    }

    /// The subset as a whole font file, and the old → new id map. From the common face when
    /// allowed and it has every glyph (the same outlines, a tenth of the work), else from the
    /// whole face.
    fn subset_font(&self, order: &[u16], common: bool) -> PdfResult<(Vec<u8>, HashMap<u16, u16>)> {
        let err = |e: subsetter::Error| PdfError::Subset(format!("{e:?}"));
        // CFF faces only: what is embedded is the subset's `CFF ` table, and that is the same
        // bytes either way (tested), so a document renders to the same bytes as before (the
        // reviewer's check 9 re-renders byte for byte, also documents made before an upgrade).
        if common
            && self.inner.cff
            && let Some(common) = self.common()
            && let Some(reduced) = order
                .iter()
                .map(|g| common.ids.get(g).copied())
                .collect::<Option<Vec<u16>>>()
        {
            let remapper = subsetter::GlyphRemapper::new_from_glyphs_sorted(&reduced);
            let font = subsetter::subset(&common.data, 0, &remapper).map_err(err)?;
            let map = order
                .iter()
                .zip(&reduced)
                .filter_map(|(g, r)| remapper.get(*r).map(|n| (*g, n)))
                .collect();
            return Ok((font, map));
        }
        let remapper = subsetter::GlyphRemapper::new_from_glyphs_sorted(order);
        let font = subsetter::subset(&self.inner.data, self.inner.index, &remapper).map_err(err)?;
        let map = order
            .iter()
            .filter_map(|g| remapper.get(*g).map(|n| (*g, n)))
            .collect();
        Ok((font, map))
    }

    /// The embeddable program of a subset: for CFF outlines only the `CFF ` table, for
    /// TrueType the whole font.
    fn program_of(&self, subset: Vec<u8>) -> PdfResult<Vec<u8>> {
        if self.inner.cff {
            let face = ttf_parser::RawFace::parse(&subset, 0)
                .map_err(|e| PdfError::Subset(e.to_string()))?;
            Ok(face
                .table(ttf_parser::Tag::from_bytes(b"CFF "))
                .ok_or_else(|| PdfError::Subset("subset has no CFF table".into()))?
                .to_vec())
        } else {
            Ok(subset)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_are_kept_by_glyph_set_and_bounded() {
        let font = Font::bundled();
        let set =
            |text: &str| -> BTreeSet<u16> { text.chars().filter_map(|c| font.glyph(c)).collect() };
        let seal = set("东莞市云境房地产开发有限公司合同专用章");
        let first = font.subset(&seal).unwrap();
        let again = font.subset(&seal).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the same text is subset once");
        assert_eq!(
            *first,
            font.subset_fresh(&seal).unwrap(),
            "and kept as made"
        );
        let other = font.subset(&set("不动产登记专用章")).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        for i in 0..KEPT_SUBSETS as u16 {
            font.subset(&BTreeSet::from([1 + i])).unwrap();
        }
        assert!(font.inner.subsets.lock().unwrap().len() <= KEPT_SUBSETS);
        let after = font.subset(&seal).unwrap();
        assert!(!Arc::ptr_eq(&first, &after), "the oldest went out");
    }

    /// Every glyph's outline, by new id, as drawing commands.
    fn outlines(font: &[u8], n: u16) -> Vec<String> {
        struct Path(String);
        impl ttf_parser::OutlineBuilder for Path {
            fn move_to(&mut self, x: f32, y: f32) {
                self.0 += &format!("M{x} {y}");
            }
            fn line_to(&mut self, x: f32, y: f32) {
                self.0 += &format!("L{x} {y}");
            }
            fn quad_to(&mut self, a: f32, b: f32, x: f32, y: f32) {
                self.0 += &format!("Q{a} {b} {x} {y}");
            }
            fn curve_to(&mut self, a: f32, b: f32, c: f32, d: f32, x: f32, y: f32) {
                self.0 += &format!("C{a} {b} {c} {d} {x} {y}");
            }
            fn close(&mut self) {
                self.0 += "Z";
            }
        }
        let face = ttf_parser::Face::parse(font, 0).unwrap();
        (0..n)
            .map(|g| {
                let mut p = Path(String::new());
                face.outline_glyph(ttf_parser::GlyphId(g), &mut p);
                p.0
            })
            .collect()
    }

    #[test]
    fn subsets_from_the_common_face_have_the_whole_faces_outlines() {
        let font = Font::bundled();
        let glyphs: Vec<u16> = "买受人张伟2026-12-04T19:45签署，（）"
            .chars()
            .filter_map(|c| font.glyph(c))
            .collect::<BTreeSet<u16>>()
            .into_iter()
            .collect();
        let (common, map_c) = font.subset_font(&glyphs, true).unwrap();
        let (whole, map_w) = font.subset_font(&glyphs, false).unwrap();
        assert!(
            font.common()
                .is_some_and(|c| glyphs.iter().all(|g| c.ids.contains_key(g)))
        );
        assert_eq!(map_c, map_w, "the same new ids");
        let n = glyphs.len() as u16 + 1;
        let (a, b) = (outlines(&common, n), outlines(&whole, n));
        assert!(a.iter().skip(1).all(|o| !o.is_empty()), "every glyph drawn");
        assert_eq!(a, b, "the same outlines");
        assert_eq!(
            font.program_of(common).unwrap(),
            font.program_of(whole).unwrap(),
            "and the same embedded program, byte for byte"
        );
        // The same for the whole contract template's characters (many font dicts).
        let template: Vec<u16> = include_str!("../../templates/contract/gf-2014-0171.toml")
            .chars()
            .chain((0x20u8..0x7f).map(char::from))
            .filter_map(|c| font.glyph(c))
            .filter(|g| font.common().unwrap().ids.contains_key(g))
            .collect::<BTreeSet<u16>>()
            .into_iter()
            .collect();
        assert!(template.len() > 900, "{}", template.len());
        let (common, _) = font.subset_font(&template, true).unwrap();
        let (whole, _) = font.subset_font(&template, false).unwrap();
        assert_eq!(
            font.program_of(common).unwrap(),
            font.program_of(whole).unwrap()
        );
        // A character outside GB 2312 (in a name) comes from the whole face.
        let rare = font.glyph('堃').expect("the face has it");
        assert!(!font.common().unwrap().ids.contains_key(&rare));
        let (_, map) = font.subset_font(&[rare], true).unwrap();
        assert!(map.contains_key(&rare));
    }
}
