//! Visible signatures: the red round seal of an organisation (ring, star, the organisation's
//! name set along the arc glyph by glyph, the seal's purpose underneath) and a person's signature
//! block (name, time, "电子签名"), drawn as vector graphics with an embedded font subset.

use super::font::Font;
use super::writer;
use super::{PdfError, PdfResult};
use std::collections::{BTreeMap, BTreeSet};
use std::f32::consts::PI;
use std::fmt::Write as _;

/// What to draw in a signature field.
#[derive(Clone, Debug)]
pub enum Visible {
    Seal {
        organisation: String,
        purpose: String,
    },
    Signature {
        name: String,
        time: String,
    },
}

/// A drawn appearance: the content stream (glyphs as subset CIDs), and the font data to embed.
pub struct Drawn {
    pub content: Vec<u8>,
    pub width: f32,
    pub height: f32,
    pub font_program: Vec<u8>,
    pub cff: bool,
    pub widths: Vec<(u16, u16)>,
    pub to_unicode: Vec<u8>,
    pub base_font: String,
    pub bbox: [i32; 4],
    pub ascent: i32,
    pub descent: i32,
    pub cap_height: i32,
}

struct Glyphs<'a> {
    font: &'a Font,
    used: BTreeMap<u16, char>,
}

impl Glyphs<'_> {
    fn get(&mut self, c: char) -> PdfResult<(u16, f32)> {
        let g = self.font.glyph(c).ok_or(PdfError::MissingGlyph(c))?;
        self.used.entry(g).or_insert(c);
        Ok((g, self.font.advance_milli(g)))
    }
}

fn n(v: f32) -> String {
    writer::num(v as f64)
}

/// A circle of radius r around (cx, cy) from four Bézier curves.
fn circle(s: &mut String, cx: f32, cy: f32, r: f32) {
    let k = 0.552_284_8 * r;
    let _ = write!(
        s,
        "{} {} m {} {} {} {} {} {} c {} {} {} {} {} {} c {} {} {} {} {} {} c {} {} {} {} {} {} c ",
        n(cx + r),
        n(cy),
        n(cx + r),
        n(cy + k),
        n(cx + k),
        n(cy + r),
        n(cx),
        n(cy + r),
        n(cx - k),
        n(cy + r),
        n(cx - r),
        n(cy + k),
        n(cx - r),
        n(cy),
        n(cx - r),
        n(cy - k),
        n(cx - k),
        n(cy - r),
        n(cx),
        n(cy - r),
        n(cx + k),
        n(cy - r),
        n(cx + r),
        n(cy - k),
        n(cx + r),
        n(cy),
    );
}

pub fn draw(font: &Font, what: &Visible, width: f32, height: f32) -> PdfResult<Drawn> {
    let mut g = Glyphs {
        font,
        used: BTreeMap::new(),
    };
    // Glyph ids are written after subsetting; collect the runs first.
    struct Run {
        size: f32,
        matrix: [f32; 6],
        glyphs: Vec<u16>,
    }
    let mut runs: Vec<Run> = Vec::new();
    let mut graphics = String::new();
    match what {
        Visible::Seal {
            organisation,
            purpose,
        } => {
            let size = width.min(height);
            let (cx, cy) = (width / 2.0, height / 2.0);
            let r = size / 2.0 - size * 0.03;
            let _ = write!(
                graphics,
                "q 0.86 0.08 0.08 RG 0.86 0.08 0.08 rg {} w ",
                n(size * 0.035)
            );
            circle(&mut graphics, cx, cy, r);
            graphics.push_str("S ");
            // A five-pointed star in the centre.
            let (outer, inner) = (size * 0.13, size * 0.052);
            for i in 0..10 {
                let a = PI / 2.0 + i as f32 * PI / 5.0;
                let rr = if i % 2 == 0 { outer } else { inner };
                let _ = write!(
                    graphics,
                    "{} {} {} ",
                    n(cx + rr * a.cos()),
                    n(cy + rr * a.sin()),
                    if i == 0 { "m" } else { "l" }
                );
            }
            graphics.push_str("h f Q\n");
            // The name along the upper arc, left to right, each glyph upright to the circle.
            let chars: Vec<char> = organisation.chars().collect();
            let fs = size * 0.105;
            let rt = r - size * 0.12;
            let span = (220.0f32).to_radians().min(chars.len() as f32 * 0.42);
            let start = PI / 2.0 + span / 2.0;
            let step = if chars.len() > 1 {
                span / (chars.len() - 1) as f32
            } else {
                0.0
            };
            for (i, ch) in chars.iter().enumerate() {
                let (gid, adv) = g.get(*ch)?;
                let theta = start - i as f32 * step;
                let phi = theta - PI / 2.0;
                let half = adv * fs / 2000.0;
                let x = cx + rt * theta.cos() - half * phi.cos();
                let y = cy + rt * theta.sin() - half * phi.sin();
                runs.push(Run {
                    size: fs,
                    matrix: [phi.cos(), phi.sin(), -phi.sin(), phi.cos(), x, y],
                    glyphs: vec![gid],
                });
            }
            // The purpose underneath, horizontal.
            let ps = size * 0.085;
            let glyphs: Vec<(u16, f32)> = purpose
                .chars()
                .map(|c| g.get(c))
                .collect::<PdfResult<_>>()?;
            let w: f32 = glyphs.iter().map(|(_, a)| a).sum::<f32>() * ps / 1000.0;
            runs.push(Run {
                size: ps,
                matrix: [1.0, 0.0, 0.0, 1.0, cx - w / 2.0, cy - size * 0.3],
                glyphs: glyphs.iter().map(|(g, _)| *g).collect(),
            });
        }
        Visible::Signature { name, time } => {
            let _ = writeln!(
                graphics,
                "q 0.1 0.2 0.6 RG 0.8 w 1 1 {} {} re S Q",
                n(width - 2.0),
                n(height - 2.0)
            );
            // (text, size, distance of the text's top from the top edge)
            let lines = [
                (name.as_str(), height * 0.36, height * 0.36),
                ("电子签名", height * 0.15, height * 0.08),
                (time.as_str(), height * 0.14, height * 0.76),
            ];
            for (text, size, y) in lines {
                let glyphs: Vec<(u16, f32)> =
                    text.chars().map(|c| g.get(c)).collect::<PdfResult<_>>()?;
                let y = height - y - size;
                runs.push(Run {
                    size,
                    matrix: [1.0, 0.0, 0.0, 1.0, 6.0, y.max(2.0)],
                    glyphs: glyphs.iter().map(|(g, _)| *g).collect(),
                });
            }
        }
    }
    let used: BTreeSet<u16> = g.used.keys().copied().collect();
    let subset = font.subset(&used)?;
    let (program, map) = (&subset.0, &subset.1);
    let color = match what {
        Visible::Seal { .. } => "0.86 0.08 0.08 rg",
        Visible::Signature { .. } => "0.1 0.2 0.6 rg",
    };
    let mut content = graphics;
    for run in &runs {
        let m = run.matrix;
        let _ = write!(
            content,
            "BT {color} /F1 {} Tf {} {} {} {} {} {} Tm <",
            n(run.size),
            n(m[0]),
            n(m[1]),
            n(m[2]),
            n(m[3]),
            n(m[4]),
            n(m[5])
        );
        for gid in &run.glyphs {
            let _ = write!(content, "{:04X}", map.get(gid).copied().unwrap_or(0));
        }
        content.push_str("> Tj ET\n");
    }
    let pairs: Vec<(u16, char)> = g
        .used
        .iter()
        .filter_map(|(old, ch)| map.get(old).map(|n| (*n, *ch)))
        .collect();
    let widths = map
        .iter()
        .map(|(old, new)| (*new, font.advance_milli(*old).round() as u16))
        .collect();
    Ok(Drawn {
        content: content.into_bytes(),
        width,
        height,
        font_program: program.clone(),
        cff: font.is_cff(),
        widths,
        to_unicode: writer::to_unicode_cmap(&pairs),
        base_font: font.subset_name(&used),
        bbox: font.bbox_milli(),
        ascent: font.ascender_milli(),
        descent: font.descender_milli(),
        cap_height: font.cap_height_milli(),
    })
}
