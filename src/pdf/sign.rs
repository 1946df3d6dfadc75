//! Signing: a PAdES baseline signature (SubFilter ETSI.CAdES.detached) filling an existing empty
//! signature field, written as an incremental update so the output starts with the exact bytes of
//! the input and earlier signatures stay valid. One private-key operation per signature.

use super::appearance::{Drawn, Visible, draw};
use super::font::Font;
use super::read::{self, Object};
use super::update::{Update, dict_entries, get, set, to_obj};
use super::writer::{Obj, name, text};
use super::{PdfError, PdfResult};
use crate::pki::SigningKey;
use crate::pki::cms::{self, ID_DATA, SignRequest};
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
    /// Bytes reserved for the CMS; `0` sizes it from the real certificates (`reservation`). The
    /// signature fails cleanly when it does not fit.
    pub reserve: usize,
    /// A time-stamping authority for a signature time-stamp (PAdES B-T); `None` gives B-B.
    pub timestamper: Option<&'a cms::Timestamper<'a>>,
    /// Make this a certification signature with DocMDP permissions `P` (2: form filling and
    /// signing allowed). Only the first signature of a document may certify it.
    pub certify: Option<u8>,
    /// What to show in the field: a red seal or a signature block; `None` leaves it invisible.
    pub visible: Option<(&'a Font, Visible)>,
}

/// What a time-stamp token adds at most, unless the caller knows better: the TSTInfo, the
/// unit's certificate and its CA, the signed attributes and an RSA-4096 signature.
pub const TIMESTAMP_ALLOWANCE: usize = 6 * 1024;

/// The /Contents reservation for a signature by `signer_cert` with `chain`: the certificates
/// themselves, the SignerInfo (attributes, a signature of up to RSA-4096), and a time-stamp token
/// when one is asked for. Each byte costs two hex digits in every later signature's hash, so
/// the reservation is sized from what goes in, not a round large number.
pub fn reservation(signer_cert: &[u8], chain: &[Vec<u8>], timestamp: Option<usize>) -> usize {
    let certs: usize = signer_cert.len() + chain.iter().map(Vec::len).sum::<usize>();
    // SignedData framing, digest algorithms, content type, signing-certificate-v2, message
    // digest, issuer and serial: ~400 bytes; a signature value up to 512 bytes; then margin.
    let signer_info = 1024;
    certs + signer_info + timestamp.unwrap_or(0)
}

/// A signature dictionary with a placeholder byte range and `reserve` zero bytes of /Contents,
/// both filled in once the update is written (`fill_contents`).
fn signature_entries(kind: &str, sub_filter: &str, reserve: usize) -> Vec<(String, Obj)> {
    let placeholder = Obj::Raw(PLACEHOLDER.as_bytes().to_vec());
    let mut contents = Vec::with_capacity(reserve * 2 + 2);
    contents.push(b'<');
    contents.resize(reserve * 2 + 1, b'0');
    contents.push(b'>');
    vec![
        ("Type".into(), name(kind)),
        ("Filter".into(), name("Adobe.PPKLite")),
        ("SubFilter".into(), name(sub_filter)),
        (
            "ByteRange".into(),
            Obj::Array(vec![
                Obj::Int(0),
                placeholder.clone(),
                placeholder.clone(),
                placeholder,
            ]),
        ),
        ("Contents".into(), Obj::Raw(contents)),
    ]
}

/// Adds the drawn appearance's font and form XObject to the update; returns the XObject's id.
fn add_appearance(up: &mut Update<'_>, d: &Drawn) -> u32 {
    let entries = |v: Vec<(&str, Obj)>| -> Vec<(String, Obj)> {
        v.into_iter().map(|(k, o)| (k.to_owned(), o)).collect()
    };
    let file = if d.cff {
        entries(vec![("Subtype", name("CIDFontType0C"))])
    } else {
        entries(vec![("Length1", Obj::Int(d.font_program.len() as i64))])
    };
    let file_id = up.add_stream(file, &d.font_program, true);
    let desc = Obj::Dict(entries(vec![
        ("Type", name("FontDescriptor")),
        ("FontName", name(&d.base_font)),
        ("Flags", Obj::Int(4)),
        (
            "FontBBox",
            Obj::Array(d.bbox.iter().map(|v| Obj::Int(*v as i64)).collect()),
        ),
        ("ItalicAngle", Obj::Int(0)),
        ("Ascent", Obj::Int(d.ascent as i64)),
        ("Descent", Obj::Int(d.descent as i64)),
        ("CapHeight", Obj::Int(d.cap_height as i64)),
        ("StemV", Obj::Int(80)),
        (
            if d.cff { "FontFile3" } else { "FontFile2" },
            Obj::Ref(file_id),
        ),
    ]));
    let desc_id = up.add(&desc);
    let mut widths = Vec::new();
    for (cid, w) in &d.widths {
        widths.push(Obj::Int(*cid as i64));
        widths.push(Obj::Array(vec![Obj::Int(*w as i64)]));
    }
    let mut cid = entries(vec![
        ("Type", name("Font")),
        (
            "Subtype",
            name(if d.cff {
                "CIDFontType0"
            } else {
                "CIDFontType2"
            }),
        ),
        ("BaseFont", name(&d.base_font)),
        (
            "CIDSystemInfo",
            Obj::Dict(entries(vec![
                ("Registry", Obj::Str(b"Adobe".to_vec())),
                ("Ordering", Obj::Str(b"Identity".to_vec())),
                ("Supplement", Obj::Int(0)),
            ])),
        ),
        ("FontDescriptor", Obj::Ref(desc_id)),
        ("DW", Obj::Int(1000)),
        ("W", Obj::Array(widths)),
    ]);
    if !d.cff {
        cid.push(("CIDToGIDMap".into(), name("Identity")));
    }
    let cid_id = up.add(&Obj::Dict(cid));
    let to_unicode = up.add_stream(vec![], &d.to_unicode, true);
    let font_id = up.add(&Obj::Dict(entries(vec![
        ("Type", name("Font")),
        ("Subtype", name("Type0")),
        ("BaseFont", name(&d.base_font)),
        ("Encoding", name("Identity-H")),
        ("DescendantFonts", Obj::Array(vec![Obj::Ref(cid_id)])),
        ("ToUnicode", Obj::Ref(to_unicode)),
    ])));
    let form = entries(vec![
        ("Type", name("XObject")),
        ("Subtype", name("Form")),
        (
            "BBox",
            Obj::Array(vec![
                Obj::Int(0),
                Obj::Int(0),
                Obj::Real(d.width as f64),
                Obj::Real(d.height as f64),
            ]),
        ),
        (
            "Resources",
            Obj::Dict(entries(vec![(
                "Font",
                Obj::Dict(entries(vec![("F1", Obj::Ref(font_id))])),
            )])),
        ),
    ]);
    up.add_stream(form, &d.content, true)
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

fn field_name(d: &read::Dict) -> Option<String> {
    let bytes = d.get(b"T").and_then(Object::as_string)?;
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

/// Where the form lives: its own object, or a dictionary inside the catalog.
enum Form {
    Indirect(u32, read::Dict),
    Direct(read::Dict),
}

fn form(up: &Update<'_>, catalog: &read::Dict) -> PdfResult<Form> {
    match catalog.get(b"AcroForm") {
        Some(Object::Ref(n, _)) => match up.get(*n)? {
            Object::Dict(d) => Ok(Form::Indirect(*n, d)),
            _ => Err(err("malformed AcroForm")),
        },
        Some(Object::Dict(d)) => Ok(Form::Direct(d.clone())),
        _ => Err(err("the document has no form")),
    }
}

/// The top-level signature field called `name`: its object number and dictionary.
fn find_field(
    up: &Update<'_>,
    form: &read::Dict,
    name: &str,
) -> PdfResult<Option<(u32, read::Dict)>> {
    let fields = match form.get(b"Fields") {
        Some(f) => up.resolve(f)?,
        None => return Ok(None),
    };
    for f in fields.as_array().unwrap_or(&[]) {
        let Some(num) = f.as_ref() else { continue };
        let Ok(Object::Dict(dict)) = up.get(num) else {
            continue;
        };
        if field_name(&dict).as_deref() == Some(name) {
            return Ok(Some((num, dict)));
        }
    }
    Ok(None)
}

fn form_dict(f: &Form) -> &read::Dict {
    match f {
        Form::Indirect(_, d) | Form::Direct(d) => d,
    }
}

/// Writes the changed form: its own object, or the catalog entries that hold it.
fn put_form(
    up: &mut Update<'_>,
    f: &Form,
    entries: Vec<(String, Obj)>,
    catalog: &mut Vec<(String, Obj)>,
) {
    match f {
        Form::Indirect(n, _) => up.put(*n, &Obj::Dict(entries)),
        Form::Direct(_) => set(catalog, "AcroForm", Obj::Dict(entries)),
    }
}

/// Signs `input` into the field `opts.field`.
pub fn sign(input: &[u8], opts: &SignOptions<'_>) -> PdfResult<Vec<u8>> {
    sign_digested(input, opts).map(|(pdf, _)| pdf)
}

/// As `sign`, with the signed document's SHA-256, taken in the same pass over its bytes as
/// the signature's own digest (the caller stores the document under it).
pub fn sign_digested(input: &[u8], opts: &SignOptions<'_>) -> PdfResult<(Vec<u8>, [u8; 32])> {
    if opts.reserve == 0 {
        let sized = SignOptions {
            reserve: reservation(
                opts.signer_cert,
                &opts.chain,
                opts.timestamper.map(|_| TIMESTAMP_ALLOWANCE),
            ),
            chain: opts.chain.clone(),
            visible: opts.visible.clone(),
            ..*opts
        };
        return sign_digested(input, &sized);
    }
    let mut up = Update::new(input)?;
    let (catalog_num, catalog) = up.catalog()?;
    let form = form(&up, &catalog)?;
    let (field_num, field) = find_field(&up, form_dict(&form), opts.field)?
        .ok_or_else(|| PdfError::Sign(format!("no signature field `{}`", opts.field)))?;
    if field.name(b"FT") != Some(b"Sig") {
        return Err(err(format!(
            "field `{}` is not a signature field",
            opts.field
        )));
    }
    if field.get(b"V").is_some() {
        return Err(PdfError::Sign(format!(
            "field `{}` is already signed",
            opts.field
        )));
    }

    let mut sig = signature_entries("Sig", "ETSI.CAdES.detached", opts.reserve);
    sig.push(("M".into(), Obj::Str(pdf_time(opts.time).into_bytes())));
    if let Some(r) = opts.reason {
        sig.push(("Reason".into(), text(r)));
    }
    let mut catalog_entries = dict_entries(&catalog)?;
    let mut catalog_changed = false;
    if let Some(p) = opts.certify {
        if !(1..=3).contains(&p) {
            return Err(err("DocMDP permissions must be 1, 2 or 3"));
        }
        if catalog.get(b"Perms").is_some() {
            return Err(err("the document is already certified"));
        }
        let params = Obj::Dict(vec![
            ("Type".into(), name("TransformParams")),
            ("P".into(), Obj::Int(p as i64)),
            ("V".into(), name("1.2")),
        ]);
        let reference = Obj::Dict(vec![
            ("Type".into(), name("SigRef")),
            ("TransformMethod".into(), name("DocMDP")),
            ("TransformParams".into(), params),
        ]);
        sig.push(("Reference".into(), Obj::Array(vec![reference])));
    }
    let sig_num = up.alloc();
    up.put(sig_num, &Obj::Dict(sig));
    if opts.certify.is_some() {
        set(
            &mut catalog_entries,
            "Perms",
            Obj::Dict(vec![("DocMDP".into(), Obj::Ref(sig_num))]),
        );
        catalog_changed = true;
    }

    let appearance = match &opts.visible {
        Some((font, what)) => {
            let num = |o: &Object| match o {
                Object::Int(i) => *i as f32,
                Object::Real(r) => *r as f32,
                _ => 0.0,
            };
            let rect = field.get(b"Rect").and_then(Object::as_array).unwrap_or(&[]);
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
            Some(add_appearance(&mut up, &drawn))
        }
        None => None,
    };
    let mut field_entries = dict_entries(&field)?;
    set(&mut field_entries, "V", Obj::Ref(sig_num));
    if let Some(ap) = appearance {
        set(
            &mut field_entries,
            "AP",
            Obj::Dict(vec![("N".into(), Obj::Ref(ap))]),
        );
    }
    // Print and Locked: the signed widget may not be changed or removed.
    set(&mut field_entries, "F", Obj::Int(132));
    up.put(field_num, &Obj::Dict(field_entries));

    // /SigFlags 3: the document has signatures and is to be changed only by appending.
    let mut form_entries = dict_entries(form_dict(&form))?;
    if get(&form_entries, "SigFlags") != Some(&Obj::Int(3)) {
        set(&mut form_entries, "SigFlags", Obj::Int(3));
        put_form(&mut up, &form, form_entries, &mut catalog_entries);
        catalog_changed |= matches!(form, Form::Direct(_));
    }
    if catalog_changed {
        up.put(catalog_num, &Obj::Dict(catalog_entries));
    }

    let written = up.finish()?;
    let at = written
        .offset(sig_num)
        .ok_or_else(|| err("signature object not written"))?;
    let mut out = written.bytes;
    let digest = fill_signature(&mut out, at, opts)?;
    Ok((out, digest))
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Computes the byte range around the reserved /Contents of the signature object at `sig_at`,
/// signs the covered bytes, and writes the CMS into the reservation.
fn fill_signature(out: &mut [u8], sig_at: usize, opts: &SignOptions<'_>) -> PdfResult<[u8; 32]> {
    fill_contents(out, sig_at, opts.reserve, |digest| {
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

/// Fixes the byte range around the reserved /Contents of the signature object written at
/// `sig_at`, and writes what `contents` makes of the covered bytes' SHA-256 into the reservation.
/// Returns the SHA-256 of the whole finished file: the bytes before the hole are hashed once
/// for both digests.
fn fill_contents(
    out: &mut [u8],
    sig_at: usize,
    reserve: usize,
    contents: impl FnOnce([u8; 32]) -> PdfResult<Vec<u8>>,
) -> PdfResult<[u8; 32]> {
    let lt = find(out, b"/Contents <", sig_at)
        .map(|p| p + 10)
        .ok_or_else(|| err("reserved /Contents not found"))?;
    let hex_start = lt + 1;
    let gt_end = hex_start + reserve * 2 + 1;
    if out.get(gt_end - 1) != Some(&b'>') || out[hex_start..gt_end - 1].iter().any(|&b| b != b'0') {
        return Err(err("reserved /Contents is not a zero hex string"));
    }
    let range = [0usize, lt, gt_end, out.len() - gt_end];
    let needle = format!("{PLACEHOLDER} {PLACEHOLDER} {PLACEHOLDER}");
    let ph = find(out, needle.as_bytes(), sig_at)
        .filter(|&p| p < lt)
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
    let mut whole = h.clone();
    h.update(&out[range[2]..]);
    let digest = h.finish();
    let cms = contents(digest)?;
    if cms.len() > reserve {
        return Err(PdfError::Sign(format!(
            "the signature needs {} bytes but only {reserve} are reserved",
            cms.len()
        )));
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for (i, b) in cms.iter().enumerate() {
        out[hex_start + 2 * i] = HEX[(b >> 4) as usize];
        out[hex_start + 2 * i + 1] = HEX[(b & 15) as usize];
    }
    whole.update(&out[range[1]..]);
    Ok(whole.finish())
}

/// Adds (or extends) the document security store — the certificates and CRLs a verifier needs
/// to validate the signatures later without going online (PAdES B-LT) — as an incremental
/// update. Existing DSS entries are kept.
pub fn add_dss(input: &[u8], certificates: &[Vec<u8>], crls: &[Vec<u8>]) -> PdfResult<Vec<u8>> {
    let mut up = Update::new(input)?;
    let (catalog_num, catalog) = up.catalog()?;
    let mut dss = match catalog.get(b"DSS").map(|d| up.resolve(d)).transpose()? {
        Some(Object::Dict(d)) => dict_entries(&d)?,
        _ => vec![("Type".into(), name("DSS"))],
    };
    for (key, items) in [("Certs", certificates), ("CRLs", crls)] {
        let mut refs = match get(&dss, key) {
            Some(Obj::Array(a)) => a.clone(),
            _ => vec![],
        };
        for item in items {
            refs.push(Obj::Ref(up.add_stream(vec![], item, true)));
        }
        if !refs.is_empty() {
            set(&mut dss, key, Obj::Array(refs));
        }
    }
    let dss_num = up.add(&Obj::Dict(dss));
    let mut catalog_entries = dict_entries(&catalog)?;
    set(&mut catalog_entries, "DSS", Obj::Ref(dss_num));
    up.put(catalog_num, &Obj::Dict(catalog_entries));
    Ok(up.finish()?.bytes)
}

/// The first page's object number (the page tree walked depth-first, bounded).
fn first_page(up: &Update<'_>, catalog: &read::Dict) -> PdfResult<u32> {
    let mut node = catalog
        .get(b"Pages")
        .and_then(Object::as_ref)
        .ok_or_else(|| err("no pages"))?;
    for _ in 0..64 {
        let Object::Dict(d) = up.get(node)? else {
            return Err(err("malformed page tree"));
        };
        match d.get(b"Kids").map(|k| up.resolve(k)).transpose()? {
            Some(Object::Array(kids)) => {
                node = kids
                    .first()
                    .and_then(Object::as_ref)
                    .ok_or_else(|| err("no pages"))?;
            }
            _ => return Ok(node),
        }
    }
    Err(err("page tree too deep"))
}

/// Adds a document time-stamp (PAdES B-LTA): an invisible signature field of type DocTimeStamp
/// whose /Contents is an RFC 3161 token over the whole document so far, as an incremental update.
pub fn add_document_timestamp(
    input: &[u8],
    field: &str,
    timestamper: &cms::Timestamper<'_>,
    reserve: usize,
) -> PdfResult<Vec<u8>> {
    add_document_timestamp_digested(input, field, timestamper, reserve).map(|(pdf, _)| pdf)
}

/// As `add_document_timestamp`, with the finished document's SHA-256 (see `sign_digested`).
pub fn add_document_timestamp_digested(
    input: &[u8],
    field: &str,
    timestamper: &cms::Timestamper<'_>,
    reserve: usize,
) -> PdfResult<(Vec<u8>, [u8; 32])> {
    let mut up = Update::new(input)?;
    let (catalog_num, catalog) = up.catalog()?;
    let form = form(&up, &catalog)?;
    if find_field(&up, form_dict(&form), field)?.is_some() {
        return Err(err(format!("field `{field}` already exists")));
    }
    let page_num = first_page(&up, &catalog)?;
    let sig_num = up.alloc();
    up.put(
        sig_num,
        &Obj::Dict(signature_entries("DocTimeStamp", "ETSI.RFC3161", reserve)),
    );
    let widget = up.add(&Obj::Dict(vec![
        ("Type".into(), name("Annot")),
        ("Subtype".into(), name("Widget")),
        ("FT".into(), name("Sig")),
        ("T".into(), text(field)),
        ("F".into(), Obj::Int(132)),
        ("Rect".into(), Obj::Array(vec![Obj::Int(0); 4])),
        ("P".into(), Obj::Ref(page_num)),
        ("V".into(), Obj::Ref(sig_num)),
    ]));
    let Object::Dict(page) = up.get(page_num)? else {
        return Err(err("malformed page"));
    };
    let mut page_entries = dict_entries(&page)?;
    match page.get(b"Annots") {
        Some(Object::Ref(n, _)) => {
            let n = *n;
            let mut annots = match to_obj(&up.get(n)?)? {
                Obj::Array(a) => a,
                _ => return Err(err("malformed /Annots")),
            };
            annots.push(Obj::Ref(widget));
            up.put(n, &Obj::Array(annots));
        }
        other => {
            let mut annots = match other.map(to_obj).transpose()? {
                Some(Obj::Array(a)) => a,
                _ => vec![],
            };
            annots.push(Obj::Ref(widget));
            set(&mut page_entries, "Annots", Obj::Array(annots));
            up.put(page_num, &Obj::Dict(page_entries));
        }
    }
    let mut form_entries = dict_entries(form_dict(&form))?;
    let mut fields = match get(&form_entries, "Fields") {
        Some(Obj::Array(a)) => a.clone(),
        _ => vec![],
    };
    fields.push(Obj::Ref(widget));
    set(&mut form_entries, "Fields", Obj::Array(fields));
    set(&mut form_entries, "SigFlags", Obj::Int(3));
    let mut catalog_entries = dict_entries(&catalog)?;
    put_form(&mut up, &form, form_entries, &mut catalog_entries);
    if matches!(form, Form::Direct(_)) {
        up.put(catalog_num, &Obj::Dict(catalog_entries));
    }
    let written = up.finish()?;
    let at = written
        .offset(sig_num)
        .ok_or_else(|| err("signature object not written"))?;
    let mut out = written.bytes;
    let digest = fill_contents(&mut out, at, reserve, |digest| {
        timestamper(&digest).map_err(err)
    })?;
    Ok((out, digest))
}
