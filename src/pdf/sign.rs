//! Signing: a PAdES baseline signature (SubFilter ETSI.CAdES.detached) filling an existing empty
//! signature field, written as an incremental update so the output starts with the exact bytes of
//! the input and earlier signatures stay valid. One private-key operation per signature.

use super::appearance::{Drawn, Visible, draw};
use super::font::Font;
use super::{PdfError, PdfResult};
use crate::pki::SigningKey;
use crate::pki::cms::{self, ID_DATA, SignRequest};
use lopdf::{Dictionary, Document, IncrementalDocument, Object, ObjectId, Stream, StringFormat};
use std::io::Write as _;
use time::OffsetDateTime;

/// Placeholder digits for the byte range, overwritten once the offsets are known.
const PLACEHOLDER: &str = "9999999999";

pub struct SignOptions<'a> {
    /// The empty signature field to fill (created when the document was made).
    pub field: &'a str,
    pub signer_cert: &'a [u8],
    /// The signer's issuing CA and up (the root may be left out).
    pub chain: Vec<Vec<u8>>,
    pub key: &'a dyn SigningKey,
    /// The signing time, written to /M (PAdES baseline forbids a signingTime attribute).
    pub time: OffsetDateTime,
    pub reason: Option<&'a str>,
    /// Bytes reserved for the CMS; the signature fails cleanly when it does not fit.
    pub reserve: usize,
    /// A time-stamping authority for a signature time-stamp (PAdES B-T); `None` gives B-B.
    pub timestamper: Option<&'a cms::Timestamper<'a>>,
    /// Make this a certification signature with DocMDP permissions `P` (2: form filling and
    /// signing allowed). Only the first signature of a document may certify it.
    pub certify: Option<u8>,
    /// What to show in the field: a red seal or a signature block; `None` leaves it invisible.
    pub visible: Option<(&'a Font, Visible)>,
}

/// The catalog's id and, when the AcroForm is an indirect object, its id.
fn catalog_and_form(doc: &Document) -> PdfResult<(ObjectId, Option<ObjectId>)> {
    let catalog_id = doc
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(err)?;
    let acroform = doc
        .catalog()
        .map_err(err)?
        .get(b"AcroForm")
        .ok()
        .and_then(|o| o.as_reference().ok());
    Ok((catalog_id, acroform))
}

/// A signature dictionary with a placeholder byte range and `reserve` zero bytes of /Contents,
/// both filled in once the update is written (`fill_contents`).
fn signature_dictionary(kind: &str, sub_filter: &str, reserve: usize) -> Dictionary {
    let mut sig = Dictionary::new();
    sig.set("Type", name(kind));
    sig.set("Filter", name("Adobe.PPKLite"));
    sig.set("SubFilter", name(sub_filter));
    let placeholder: i64 = PLACEHOLDER.parse().expect("digits");
    sig.set(
        "ByteRange",
        Object::Array(vec![
            Object::Integer(0),
            Object::Integer(placeholder),
            Object::Integer(placeholder),
            Object::Integer(placeholder),
        ]),
    );
    sig.set(
        "Contents",
        Object::String(vec![0u8; reserve], StringFormat::Hexadecimal),
    );
    sig
}

fn name(n: &str) -> Object {
    Object::Name(n.as_bytes().to_vec())
}

fn flate(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(1));
    enc.write_all(data).expect("writing to memory");
    enc.finish().expect("writing to memory")
}

fn stream(dict: Dictionary, data: &[u8]) -> Object {
    let mut dict = dict;
    dict.set("Filter", name("FlateDecode"));
    Object::Stream(Stream::new(dict, flate(data)).with_compression(false))
}

/// Adds the drawn appearance's font and form XObject to the update; returns the XObject's id.
fn add_appearance(doc: &mut Document, d: &Drawn) -> ObjectId {
    let mut file = Dictionary::new();
    if d.cff {
        file.set("Subtype", name("CIDFontType0C"));
    } else {
        file.set("Length1", Object::Integer(d.font_program.len() as i64));
    }
    let file_id = doc.add_object(stream(file, &d.font_program));
    let mut desc = Dictionary::new();
    desc.set("Type", name("FontDescriptor"));
    desc.set("FontName", name(&d.base_font));
    desc.set("Flags", Object::Integer(4));
    desc.set(
        "FontBBox",
        Object::Array(d.bbox.iter().map(|v| Object::Integer(*v as i64)).collect()),
    );
    desc.set("ItalicAngle", Object::Integer(0));
    desc.set("Ascent", Object::Integer(d.ascent as i64));
    desc.set("Descent", Object::Integer(d.descent as i64));
    desc.set("CapHeight", Object::Integer(d.cap_height as i64));
    desc.set("StemV", Object::Integer(80));
    desc.set(
        if d.cff { "FontFile3" } else { "FontFile2" },
        Object::Reference(file_id),
    );
    let desc_id = doc.add_object(Object::Dictionary(desc));
    let mut widths = Vec::new();
    for (cid, w) in &d.widths {
        widths.push(Object::Integer(*cid as i64));
        widths.push(Object::Array(vec![Object::Integer(*w as i64)]));
    }
    let mut info = Dictionary::new();
    info.set("Registry", Object::string_literal("Adobe"));
    info.set("Ordering", Object::string_literal("Identity"));
    info.set("Supplement", Object::Integer(0));
    let mut cid = Dictionary::new();
    cid.set("Type", name("Font"));
    cid.set(
        "Subtype",
        name(if d.cff {
            "CIDFontType0"
        } else {
            "CIDFontType2"
        }),
    );
    cid.set("BaseFont", name(&d.base_font));
    cid.set("CIDSystemInfo", Object::Dictionary(info));
    cid.set("FontDescriptor", Object::Reference(desc_id));
    cid.set("DW", Object::Integer(1000));
    cid.set("W", Object::Array(widths));
    if !d.cff {
        cid.set("CIDToGIDMap", name("Identity"));
    }
    let cid_id = doc.add_object(Object::Dictionary(cid));
    let to_unicode = doc.add_object(stream(Dictionary::new(), &d.to_unicode));
    let mut font = Dictionary::new();
    font.set("Type", name("Font"));
    font.set("Subtype", name("Type0"));
    font.set("BaseFont", name(&d.base_font));
    font.set("Encoding", name("Identity-H"));
    font.set(
        "DescendantFonts",
        Object::Array(vec![Object::Reference(cid_id)]),
    );
    font.set("ToUnicode", Object::Reference(to_unicode));
    let font_id = doc.add_object(Object::Dictionary(font));
    let mut fonts = Dictionary::new();
    fonts.set("F1", Object::Reference(font_id));
    let mut resources = Dictionary::new();
    resources.set("Font", Object::Dictionary(fonts));
    let mut form = Dictionary::new();
    form.set("Type", name("XObject"));
    form.set("Subtype", name("Form"));
    form.set(
        "BBox",
        Object::Array(vec![
            Object::Integer(0),
            Object::Integer(0),
            Object::Real(d.width),
            Object::Real(d.height),
        ]),
    );
    form.set("Resources", Object::Dictionary(resources));
    doc.add_object(stream(form, &d.content))
}

fn err(e: impl std::fmt::Display) -> PdfError {
    PdfError::Sign(e.to_string())
}

fn pdf_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn field_name(d: &Dictionary) -> Option<String> {
    let Ok(Object::String(bytes, _)) = d.get(b"T") else {
        return None;
    };
    if bytes.starts_with(&[0xfe, 0xff]) {
        let units: Vec<u16> = bytes[2..]
            .chunks(2)
            .filter(|c| c.len() == 2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).ok()
    } else {
        Some(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// Finds the AcroForm (a reference or a dictionary inside the catalog) and the field's object.
fn find_field(doc: &Document, name: &str) -> PdfResult<ObjectId> {
    let catalog = doc.catalog().map_err(err)?;
    let acroform = match catalog
        .get(b"AcroForm")
        .map_err(|_| err("the document has no form"))?
    {
        Object::Reference(id) => doc.get_dictionary(*id).map_err(err)?,
        Object::Dictionary(d) => d,
        _ => return Err(err("malformed AcroForm")),
    };
    let fields = acroform
        .get(b"Fields")
        .and_then(Object::as_array)
        .map_err(|_| err("the form has no fields"))?;
    for f in fields {
        let Ok(id) = f.as_reference() else { continue };
        let Ok(dict) = doc.get_dictionary(id) else {
            continue;
        };
        if field_name(dict).as_deref() == Some(name) {
            if dict.get(b"FT").and_then(Object::as_name).ok() != Some(b"Sig".as_slice()) {
                return Err(err(format!("field `{name}` is not a signature field")));
            }
            if dict.has(b"V") {
                return Err(PdfError::Sign(format!("field `{name}` is already signed")));
            }
            return Ok(id);
        }
    }
    Err(PdfError::Sign(format!("no signature field `{name}`")))
}

/// Signs `input` into the field `opts.field`.
pub fn sign(input: &[u8], opts: &SignOptions<'_>) -> PdfResult<Vec<u8>> {
    let doc = Document::load_mem(input).map_err(err)?;
    let field_id = find_field(&doc, opts.field)?;
    let (catalog_id, acroform_ref) = catalog_and_form(&doc)?;

    let mut inc = IncrementalDocument::create_from(input.to_vec(), doc);
    let mut sig = signature_dictionary("Sig", "ETSI.CAdES.detached", opts.reserve);
    sig.set(
        "M",
        Object::String(pdf_time(opts.time).into_bytes(), StringFormat::Literal),
    );
    if let Some(r) = opts.reason {
        let mut b = vec![0xfe, 0xff];
        for u in r.encode_utf16() {
            b.extend_from_slice(&u.to_be_bytes());
        }
        sig.set("Reason", Object::String(b, StringFormat::Hexadecimal));
    }
    if let Some(p) = opts.certify {
        if !(1..=3).contains(&p) {
            return Err(err("DocMDP permissions must be 1, 2 or 3"));
        }
        let mut params = Dictionary::new();
        params.set("Type", Object::Name(b"TransformParams".to_vec()));
        params.set("P", Object::Integer(p as i64));
        params.set("V", Object::Name(b"1.2".to_vec()));
        let mut reference = Dictionary::new();
        reference.set("Type", Object::Name(b"SigRef".to_vec()));
        reference.set("TransformMethod", Object::Name(b"DocMDP".to_vec()));
        reference.set("TransformParams", Object::Dictionary(params));
        sig.set(
            "Reference",
            Object::Array(vec![Object::Dictionary(reference)]),
        );
    }
    let sig_id = inc.new_document.add_object(Object::Dictionary(sig));
    if opts.certify.is_some() {
        inc.opt_clone_object_to_new_document(catalog_id)
            .map_err(err)?;
        let catalog = inc
            .new_document
            .get_dictionary_mut(catalog_id)
            .map_err(err)?;
        if catalog.has(b"Perms") {
            return Err(err("the document is already certified"));
        }
        let mut perms = Dictionary::new();
        perms.set("DocMDP", Object::Reference(sig_id));
        catalog.set("Perms", Object::Dictionary(perms));
    }

    inc.opt_clone_object_to_new_document(field_id)
        .map_err(err)?;
    let appearance = match &opts.visible {
        Some((font, what)) => {
            let rect = inc
                .new_document
                .get_dictionary(field_id)
                .map_err(err)?
                .get(b"Rect")
                .and_then(Object::as_array)
                .map_err(err)?
                .clone();
            let num = |o: &Object| {
                o.as_float()
                    .or_else(|_| o.as_i64().map(|v| v as f32))
                    .unwrap_or(0.0)
            };
            let (w, h) = if rect.len() == 4 {
                (
                    (num(&rect[2]) - num(&rect[0])).abs(),
                    (num(&rect[3]) - num(&rect[1])).abs(),
                )
            } else {
                (0.0, 0.0)
            };
            if w < 1.0 || h < 1.0 {
                return Err(err(format!(
                    "field `{}` has no area to draw in",
                    opts.field
                )));
            }
            let drawn = draw(font, what, w, h)?;
            Some(add_appearance(&mut inc.new_document, &drawn))
        }
        None => None,
    };
    let field = inc.new_document.get_dictionary_mut(field_id).map_err(err)?;
    field.set("V", Object::Reference(sig_id));
    if let Some(ap) = appearance {
        let mut ap_dict = Dictionary::new();
        ap_dict.set("N", Object::Reference(ap));
        field.set("AP", Object::Dictionary(ap_dict));
    }
    // Print and Locked: the signed widget may not be changed or removed.
    field.set("F", Object::Integer(132));

    // /SigFlags 3: the document has signatures and is to be changed only by appending.
    match acroform_ref {
        Some(id) => {
            inc.opt_clone_object_to_new_document(id).map_err(err)?;
            inc.new_document
                .get_dictionary_mut(id)
                .map_err(err)?
                .set("SigFlags", Object::Integer(3));
        }
        None => {
            inc.opt_clone_object_to_new_document(catalog_id)
                .map_err(err)?;
            let catalog = inc
                .new_document
                .get_dictionary_mut(catalog_id)
                .map_err(err)?;
            if let Ok(Object::Dictionary(form)) = catalog.get_mut(b"AcroForm") {
                form.set("SigFlags", Object::Integer(3));
            }
        }
    }

    let mut out = Vec::with_capacity(input.len() + 2 * opts.reserve + 4096);
    inc.save_to(&mut out).map_err(err)?;
    if !out.starts_with(input) {
        return Err(err("the update does not start with the input's bytes"));
    }
    fill_signature(&mut out, input.len(), opts)?;
    Ok(out)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Computes the byte range around the reserved /Contents in the appended section, signs the
/// covered bytes, and writes the CMS into the reservation.
fn fill_signature(out: &mut [u8], appended_from: usize, opts: &SignOptions<'_>) -> PdfResult<()> {
    fill_contents(out, appended_from, opts.reserve, |digest| {
        let mut certificates = vec![opts.signer_cert.to_vec()];
        certificates.extend(opts.chain.iter().cloned());
        cms::sign_with_timestamp(
            &SignRequest {
                content_type: ID_DATA,
                content: None,
                content_digest: digest,
                signer_cert: opts.signer_cert,
                key: opts.key,
                certificates,
                signing_time: None,
                unsigned_attributes: vec![],
            },
            opts.timestamper,
        )
        .map_err(err)
    })
}

/// Fixes the byte range around the reserved /Contents found after `appended_from`, and writes
/// what `contents` makes of the covered bytes' SHA-256 into the reservation.
fn fill_contents(
    out: &mut [u8],
    appended_from: usize,
    reserve: usize,
    contents: impl FnOnce([u8; 32]) -> PdfResult<Vec<u8>>,
) -> PdfResult<()> {
    let zeros = vec![b'0'; reserve * 2];
    let hex_start =
        find(out, &zeros, appended_from).ok_or_else(|| err("reserved /Contents not found"))?;
    let lt = hex_start - 1;
    if out[lt] != b'<' || out.get(hex_start + zeros.len()) != Some(&b'>') {
        return Err(err("reserved /Contents is not a hex string"));
    }
    let gt_end = hex_start + zeros.len() + 1;
    let range = [0usize, lt, gt_end, out.len() - gt_end];
    let needle = format!("{PLACEHOLDER} {PLACEHOLDER} {PLACEHOLDER}");
    let ph = find(out, needle.as_bytes(), appended_from)
        .ok_or_else(|| err("byte range placeholder not found"))?;
    let open = out[..ph]
        .iter()
        .rposition(|b| *b == b'[')
        .ok_or_else(|| err("byte range array"))?;
    let close = find(out, b"]", ph).ok_or_else(|| err("byte range array"))?;
    let text = format!("[{} {} {} {}", range[0], range[1], range[2], range[3]);
    let width = close - open;
    if text.len() > width {
        return Err(err("byte range does not fit its placeholder"));
    }
    out[open..close].copy_from_slice(format!("{text:<width$}").as_bytes());

    let mut h = openssl::sha::Sha256::new();
    h.update(&out[..range[1]]);
    h.update(&out[range[2]..]);
    let digest = h.finish();
    let cms = contents(digest)?;
    if cms.len() > reserve {
        return Err(PdfError::Sign(format!(
            "the signature needs {} bytes but only {reserve} are reserved",
            cms.len()
        )));
    }
    for (i, b) in cms.iter().enumerate() {
        let hex = format!("{b:02X}");
        out[hex_start + 2 * i..hex_start + 2 * i + 2].copy_from_slice(hex.as_bytes());
    }
    Ok(())
}

/// Adds (or extends) the document security store — the certificates and CRLs a verifier needs
/// to validate the signatures later without going online (PAdES B-LT) — as an incremental
/// update. Existing DSS entries are kept.
pub fn add_dss(input: &[u8], certificates: &[Vec<u8>], crls: &[Vec<u8>]) -> PdfResult<Vec<u8>> {
    let doc = Document::load_mem(input).map_err(err)?;
    let catalog_id = doc
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(err)?;
    let existing = doc.catalog().map_err(err)?.get(b"DSS").ok().cloned();
    let mut inc = IncrementalDocument::create_from(input.to_vec(), doc);
    let mut dss = match existing {
        Some(Object::Reference(id)) => inc
            .get_prev_documents()
            .get_dictionary(id)
            .map_err(err)?
            .clone(),
        Some(Object::Dictionary(d)) => d,
        _ => {
            let mut d = Dictionary::new();
            d.set("Type", name("DSS"));
            d
        }
    };
    for (key, items) in [("Certs", certificates), ("CRLs", crls)] {
        let mut refs = dss
            .get(key.as_bytes())
            .and_then(Object::as_array)
            .cloned()
            .unwrap_or_default();
        for item in items {
            let id = inc.new_document.add_object(stream(Dictionary::new(), item));
            refs.push(Object::Reference(id));
        }
        if !refs.is_empty() {
            dss.set(key, Object::Array(refs));
        }
    }
    let dss_id = inc.new_document.add_object(Object::Dictionary(dss));
    inc.opt_clone_object_to_new_document(catalog_id)
        .map_err(err)?;
    inc.new_document
        .get_dictionary_mut(catalog_id)
        .map_err(err)?
        .set("DSS", Object::Reference(dss_id));
    let mut out = Vec::with_capacity(input.len() + 16 * 1024);
    inc.save_to(&mut out).map_err(err)?;
    if !out.starts_with(input) {
        return Err(err("the update does not start with the input's bytes"));
    }
    Ok(out)
}

/// Adds a document time-stamp (PAdES B-LTA): an invisible signature field of type DocTimeStamp
/// whose /Contents is an RFC 3161 token over the whole document so far, as an incremental update.
pub fn add_document_timestamp(
    input: &[u8],
    field: &str,
    timestamper: &cms::Timestamper<'_>,
    reserve: usize,
) -> PdfResult<Vec<u8>> {
    let doc = Document::load_mem(input).map_err(err)?;
    if find_field(&doc, field).is_ok() {
        return Err(err(format!("field `{field}` already exists")));
    }
    let (catalog_id, acroform_ref) = catalog_and_form(&doc)?;
    let first_page = *doc
        .get_pages()
        .values()
        .next()
        .ok_or_else(|| err("no pages"))?;
    let mut inc = IncrementalDocument::create_from(input.to_vec(), doc);

    let sig = signature_dictionary("DocTimeStamp", "ETSI.RFC3161", reserve);
    let sig_id = inc.new_document.add_object(Object::Dictionary(sig));

    let mut widget = Dictionary::new();
    widget.set("Type", name("Annot"));
    widget.set("Subtype", name("Widget"));
    widget.set("FT", name("Sig"));
    widget.set("T", Object::string_literal(field));
    widget.set("F", Object::Integer(132));
    widget.set("Rect", Object::Array(vec![Object::Integer(0); 4]));
    widget.set("P", Object::Reference(first_page));
    widget.set("V", Object::Reference(sig_id));
    let widget_id = inc.new_document.add_object(Object::Dictionary(widget));

    inc.opt_clone_object_to_new_document(first_page)
        .map_err(err)?;
    let page = inc
        .new_document
        .get_dictionary_mut(first_page)
        .map_err(err)?;
    let mut annots = page
        .get(b"Annots")
        .and_then(Object::as_array)
        .cloned()
        .unwrap_or_default();
    annots.push(Object::Reference(widget_id));
    page.set("Annots", Object::Array(annots));

    let form_owner = acroform_ref.unwrap_or(catalog_id);
    inc.opt_clone_object_to_new_document(form_owner)
        .map_err(err)?;
    let owner = inc
        .new_document
        .get_dictionary_mut(form_owner)
        .map_err(err)?;
    let form = if acroform_ref.is_some() {
        owner
    } else {
        match owner.get_mut(b"AcroForm") {
            Ok(Object::Dictionary(d)) => d,
            _ => return Err(err("the document has no form")),
        }
    };
    let mut fields = form
        .get(b"Fields")
        .and_then(Object::as_array)
        .cloned()
        .unwrap_or_default();
    fields.push(Object::Reference(widget_id));
    form.set("Fields", Object::Array(fields));
    form.set("SigFlags", Object::Integer(3));

    let mut out = Vec::with_capacity(input.len() + 2 * reserve + 4096);
    inc.save_to(&mut out).map_err(err)?;
    if !out.starts_with(input) {
        return Err(err("the update does not start with the input's bytes"));
    }
    fill_contents(&mut out, input.len(), reserve, |digest| {
        timestamper(&digest).map_err(err)
    })?;
    Ok(out)
}
