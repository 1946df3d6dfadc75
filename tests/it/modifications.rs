//! What may change after a signature, judged beside pyHanko on files built here: a later signer
//! that creates its own signature field while signing (as Acrobat and pyHanko do when no empty
//! field is prepared), and updates that change what an existing field shows while otherwise
//! looking like signing or form filling.

use crate::verify::Chain;
use lopdf::{Dictionary, Document, IncrementalDocument, Object, ObjectId, Stream};
use std::process::Command;
use virtual_window::pdf::sign::{SignOptions, sign};
use virtual_window::pdf::verify::{Changes, Options, Report, Verdict, verify};
use virtual_window::pki::KeyAlgorithm;
use virtual_window::pki::ca::Subject;

const SCRIPT: &str = "tests/tools/pyhanko_sign.py";

/// pyHanko's judgement of one signature.
#[derive(Debug)]
#[allow(dead_code)] // `modifications` is shown in failure messages.
struct Judged {
    field: String,
    modifications: String,
    accepted: bool,
}

/// A signer known to the chain's root, as PEM files pyHanko can read.
struct PemSigner {
    dir: tempfile::TempDir,
}

impl PemSigner {
    fn new(chain: &Chain) -> PemSigner {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = chain.issue(
            "people-ca",
            "event",
            &Subject::Person {
                name: "王芳".into(),
                pseudonym: "PSN-PYHANKO".into(),
            },
            KeyAlgorithm::EcdsaP256,
        );
        let p = dir.path();
        std::fs::write(
            p.join("key.pem"),
            key.pkey().private_key_to_pem_pkcs8().unwrap(),
        )
        .unwrap();
        std::fs::write(p.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(
            p.join("chain.pem"),
            chain.h.authority("people-ca").unwrap().cert_pem(),
        )
        .unwrap();
        std::fs::write(p.join("root.pem"), chain.root_pem()).unwrap();
        PemSigner { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    /// pyHanko signs `doc` in field `field`, creating it (visible at `rect` on the first page, or
    /// invisible) in the same revision.
    fn sign_new_field(
        &self,
        python: &str,
        doc: &[u8],
        field: &str,
        rect: Option<&str>,
        force: bool,
    ) -> Vec<u8> {
        let (input, output) = (self.path("in.pdf"), self.path("out.pdf"));
        std::fs::write(&input, doc).unwrap();
        let mut c = Command::new(python);
        c.arg(SCRIPT).args(["sign", &input, &output]).args([
            self.path("key.pem"),
            self.path("cert.pem"),
            self.path("chain.pem"),
        ]);
        c.arg(field);
        if let Some(r) = rect {
            c.args(["--box", r]);
        }
        if force {
            c.args(["--force", "1"]);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out = std::fs::read(&output).unwrap();
        assert!(
            out.starts_with(doc),
            "pyHanko appends an incremental update"
        );
        out
    }

    fn judge(&self, python: &str, doc: &[u8]) -> Vec<Judged> {
        let file = self.path("judged.pdf");
        std::fs::write(&file, doc).unwrap();
        let o = Command::new(python)
            .arg(SCRIPT)
            .args(["validate", &self.path("root.pem"), &file])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                Judged {
                    field: cols[0].to_owned(),
                    modifications: cols[cols.len() - 2].to_owned(),
                    accepted: cols[cols.len() - 1] == "ACCEPTED",
                }
            })
            .collect()
    }
}

fn check(doc: &[u8], opts: &Options) -> Report {
    verify(doc, opts).expect("a readable PDF")
}

fn codes(r: &Report) -> Vec<&'static str> {
    r.signatures
        .iter()
        .flat_map(|s| s.problems.iter())
        .map(|p| p.code)
        .collect()
}

/// Applies `f` to an incremental update of `doc` made with lopdf (another writer than ours).
fn update(doc: &[u8], f: impl FnOnce(&Document, &mut IncrementalDocument)) -> Vec<u8> {
    let d = Document::load_mem(doc).unwrap();
    let mut inc = IncrementalDocument::create_from(doc.to_vec(), d.clone());
    f(&d, &mut inc);
    let mut out = Vec::new();
    inc.save_to(&mut out).unwrap();
    assert!(out.starts_with(doc));
    out
}

fn first_page(d: &Document) -> ObjectId {
    *d.get_pages().values().next().unwrap()
}

/// The widget (merged field) named `name`.
fn widget_named(d: &Document, name: &str) -> ObjectId {
    d.objects
        .iter()
        .find(|(_, o)| {
            o.as_dict()
                .ok()
                .and_then(|d| d.get(b"T").ok())
                .and_then(|t| t.as_str().ok())
                == Some(name.as_bytes())
        })
        .map(|(id, _)| *id)
        .unwrap_or_else(|| panic!("no field {name}"))
}

/// A form XObject painting a box of one colour (`r g b`).
fn box_stream(rgb: &str) -> Stream {
    let content = format!("{rgb} rg 0 0 240 30 re f").into_bytes();
    let mut s = Stream::new(
        Dictionary::from_iter(vec![
            ("Type", Object::Name(b"XObject".to_vec())),
            ("Subtype", Object::Name(b"Form".to_vec())),
            (
                "BBox",
                Object::Array(vec![0.into(), 0.into(), 240.into(), 30.into()]),
            ),
        ]),
        content,
    );
    s.dict
        .set("Length", Object::Integer(s.content.len() as i64));
    s
}

/// Adds `widget` to the first page's /Annots and to the catalog's direct AcroForm /Fields.
fn attach(d: &Document, inc: &mut IncrementalDocument, widget: ObjectId) {
    let page = first_page(d);
    inc.opt_clone_object_to_new_document(page).unwrap();
    let p = inc.new_document.get_dictionary_mut(page).unwrap();
    let mut annots = p
        .get(b"Annots")
        .and_then(Object::as_array)
        .cloned()
        .unwrap_or_default();
    annots.push(Object::Reference(widget));
    p.set("Annots", Object::Array(annots));
    let catalog = d.trailer.get(b"Root").unwrap().as_reference().unwrap();
    inc.opt_clone_object_to_new_document(catalog).unwrap();
    let c = inc.new_document.get_dictionary_mut(catalog).unwrap();
    let Ok(Object::Dictionary(form)) = c.get_mut(b"AcroForm") else {
        panic!("no direct AcroForm");
    };
    let mut fields = form.get(b"Fields").unwrap().as_array().unwrap().clone();
    fields.push(Object::Reference(widget));
    form.set("Fields", Object::Array(fields));
}

/// A new widget of field type `ft` named `name` on the first page, attached to page and form.
fn add_widget(
    d: &Document,
    inc: &mut IncrementalDocument,
    name: &str,
    ft: &str,
    extra: Vec<(&str, Object)>,
) -> ObjectId {
    let mut w = Dictionary::new();
    w.set("Type", Object::Name(b"Annot".to_vec()));
    w.set("Subtype", Object::Name(b"Widget".to_vec()));
    w.set("FT", Object::Name(ft.as_bytes().to_vec()));
    w.set("T", Object::string_literal(name));
    w.set("F", Object::Integer(4));
    w.set(
        "Rect",
        Object::Array(vec![60.into(), 60.into(), 300.into(), 90.into()]),
    );
    w.set("P", Object::Reference(first_page(d)));
    for (k, v) in extra {
        w.set(k, v);
    }
    let id = inc.new_document.add_object(Object::Dictionary(w));
    attach(d, inc, id);
    id
}

/// Our signer fills `field` (keeping whatever appearance the widget has).
fn sign_field(chain: &Chain, doc: &[u8], field: &str) -> Vec<u8> {
    let (cert, key) = chain.issue(
        "people-ca",
        "event",
        &Subject::Person {
            name: "赵敏".into(),
            pseudonym: format!("PSN-{field}"),
        },
        KeyAlgorithm::EcdsaP256,
    );
    sign(
        doc,
        &SignOptions {
            field,
            signer_cert: &cert.der,
            chain: vec![chain.h.authority("people-ca").unwrap().cert_der.clone()],
            key: &key,
            time: chain.now,
            reason: None,
            reserve: 8192,
            timestamper: None,
            certify: None,
            visible: None,
        },
    )
    .unwrap()
}

/// pyHanko's and our judgement of the first signature agree, and are `accepted`.
fn both_judge(
    signer: &PemSigner,
    python: &str,
    opts: &Options,
    doc: &[u8],
    case: &str,
    accepted: bool,
) -> Report {
    let ours = check(doc, opts);
    let theirs = signer.judge(python, doc);
    let first = &theirs[0];
    assert_eq!(
        first.accepted,
        accepted,
        "{case}: pyHanko judged {first:?} (the test expects it to {})",
        if accepted { "accept" } else { "refuse" }
    );
    assert_eq!(first.field, ours.signatures[0].field, "{case}");
    let changes = ours.signatures[0].changes_after;
    if accepted {
        assert_eq!(changes, Changes::Permitted, "{case}: {ours:#?}");
        assert_eq!(ours.verdict, Verdict::Valid, "{case}: {ours:#?}");
    } else {
        assert_eq!(changes, Changes::Disallowed, "{case}: {ours:#?}");
        assert_eq!(ours.verdict, Verdict::Invalid, "{case}");
    }
    ours
}

/// A later signer creates its own field while signing: a permitted change after an approval
/// signature (visible or not) and, after a certification with P=2 or P=3, for an invisible field
/// (pyHanko refuses a new visible field there: it could paint over certified content); never
/// under P=1. pyHanko judges every case the same way.
#[test]
fn a_field_created_by_its_own_signature_is_judged_as_pyhanko_does() {
    let (Some(python), Some(_)) = (crate::pki::pyhanko_python(), crate::pdf::signing::pyhanko())
    else {
        return;
    };
    let visible = Some("100,100,300,160");
    for (certify, field_visible, accepted) in [
        (None, true, true),
        (None, false, true),
        (Some(2), false, true),
        (Some(3), false, true),
        (Some(2), true, false),
        (Some(3), true, false),
        (Some(1), false, false),
        (Some(1), true, false),
    ] {
        let case = format!("certify {certify:?}, new field visible: {field_visible}");
        let chain = Chain::build_with(KeyAlgorithm::EcdsaP256, certify).unwrap();
        let signer = PemSigner::new(&chain);
        let signed = signer.sign_new_field(
            &python,
            chain.step("buyer-1"),
            "Extra",
            if field_visible { visible } else { None },
            certify == Some(1),
        );
        let r = both_judge(&signer, &python, &chain.options(), &signed, &case, accepted);
        assert_eq!(r.signatures.len(), 2, "{case}");
        assert_eq!(r.signatures[1].field, "Extra");
        if !accepted {
            assert!(
                codes(&r).contains(&"signature_field_added"),
                "{case}: {r:#?}"
            );
        }
        if certify.is_none() && field_visible {
            // The two new-field files pyHanko accepts, signed again in a prepared field: still
            // accepted (a later signature over a file with a created field).
            let again = sign_field(&chain, &signed, "buyer-2");
            let r = check(&again, &chain.options());
            assert_eq!(r.verdict, Verdict::Valid, "{r:#?}");

            // A signature field added later than its own signature: a new visible field whose
            // value is the signature made in the revision before.
            let late = update(&signed, |d, inc| {
                let sig = d
                    .get_dictionary(widget_named(d, "Extra"))
                    .unwrap()
                    .get(b"V")
                    .unwrap()
                    .clone();
                add_widget(d, inc, "Late", "Sig", vec![("V", sig)]);
            });
            let r = check(&late, &chain.options());
            assert_eq!(r.verdict, Verdict::Invalid);
            for s in &r.signatures {
                assert_eq!(s.changes_after, Changes::Disallowed, "{}: {r:#?}", s.field);
            }
            assert!(codes(&r).contains(&"signature_field_added"), "{r:#?}");
        }
    }
}

/// After an approval signature: an unsigned new signature widget and a new widget that is not a
/// signature field are disallowed changes (they could carry any appearance nobody signed).
#[test]
fn new_widgets_without_their_signature_are_disallowed() {
    let chain = Chain::build_with(KeyAlgorithm::EcdsaP256, None).unwrap();
    let opts = chain.options();
    let base = chain.step("buyer-1");
    let appearance = |inc: &mut IncrementalDocument| {
        let ap = inc
            .new_document
            .add_object(Object::Stream(box_stream("1 0 0")));
        Object::Dictionary(Dictionary::from_iter(vec![("N", Object::Reference(ap))]))
    };
    let unsigned = update(base, |d, inc| {
        let ap = appearance(inc);
        add_widget(d, inc, "Blank", "Sig", vec![("AP", ap)]);
    });
    let text = update(base, |d, inc| {
        let ap = appearance(inc);
        add_widget(
            d,
            inc,
            "Note",
            "Tx",
            vec![("AP", ap), ("V", Object::string_literal("paid"))],
        );
    });
    for (case, doc) in [
        ("unsigned signature widget", unsigned),
        ("text widget", text),
    ] {
        let r = check(&doc, &opts);
        assert_eq!(r.verdict, Verdict::Invalid, "{case}");
        assert_eq!(r.signatures[0].changes_after, Changes::Disallowed, "{case}");
        let c = codes(&r);
        assert!(
            c.contains(&"annotation_added") && c.contains(&"form_changed"),
            "{case}: {c:?}"
        );
    }
}

/// A contract with a text field (its appearance an indirect /AP dictionary → a blue box), added
/// before buyer-1 signs (approval, not certified); returns the signed file and the objects.
struct WithTextField {
    chain: Chain,
    signed: Vec<u8>,
    widget: ObjectId,
    ap_dict: ObjectId,
    ap_stream: ObjectId,
}

impl WithTextField {
    fn build() -> WithTextField {
        let chain = Chain::build_with(KeyAlgorithm::EcdsaP256, None).unwrap();
        let mut ids = (Default::default(), Default::default(), Default::default());
        let with_field = update(chain.step("contract"), |d, inc| {
            let stream = inc
                .new_document
                .add_object(Object::Stream(box_stream("0 0 1")));
            let ap = inc
                .new_document
                .add_object(Object::Dictionary(Dictionary::from_iter(vec![(
                    "N",
                    Object::Reference(stream),
                )])));
            let w = add_widget(
                d,
                inc,
                "remark",
                "Tx",
                vec![
                    ("AP", Object::Reference(ap)),
                    ("V", Object::string_literal("none")),
                    ("DA", Object::string_literal("/Helv 10 Tf 0 g")),
                ],
            );
            ids = (w, ap, stream);
        });
        let signed = sign_field(&chain, &with_field, "buyer-1");
        WithTextField {
            chain,
            signed,
            widget: ids.0,
            ap_dict: ids.1,
            ap_stream: ids.2,
        }
    }
}

/// An update that changes what an existing field shows is a disallowed change, whether it
/// rewrites the widget's /AP, the indirect /AP dictionary or the appearance stream, and whether
/// the rewritten object is also reached from the trailer's /Info, from validation data (DSS) or
/// from a new signature's appearance; filling in the field (a new value with its new appearance,
/// in one revision) stays permitted. pyHanko judges each the same way, except that it lets a
/// text field's appearance change without its value.
#[test]
fn a_changed_appearance_of_an_existing_field_is_judged_as_pyhanko_does() {
    let (Some(python), Some(_)) = (crate::pki::pyhanko_python(), crate::pdf::signing::pyhanko())
    else {
        return;
    };
    let t = WithTextField::build();
    let opts = t.chain.options();
    let signer = PemSigner::new(&t.chain);
    let base = check(&t.signed, &opts);
    assert_eq!(base.verdict, Verdict::Valid, "{base:#?}");
    let (widget, ap_dict, ap_stream) = (t.widget, t.ap_dict, t.ap_stream);
    let red = || Object::Stream(box_stream("1 0 0"));

    // Filling in the field: value and appearance together, in one revision.
    let filled = update(&t.signed, |_, inc| {
        let s = inc.new_document.add_object(red());
        inc.opt_clone_object_to_new_document(widget).unwrap();
        let w = inc.new_document.get_dictionary_mut(widget).unwrap();
        w.set("V", Object::string_literal("paid in full"));
        w.set(
            "AP",
            Object::Dictionary(Dictionary::from_iter(vec![("N", Object::Reference(s))])),
        );
    });
    both_judge(&signer, &python, &opts, &filled, "form filled", true);

    // The value first, its appearance in a later revision.
    let value_only = update(&t.signed, |_, inc| {
        inc.opt_clone_object_to_new_document(widget).unwrap();
        let w = inc.new_document.get_dictionary_mut(widget).unwrap();
        w.set("V", Object::string_literal("paid in full"));
    });
    let later_ap = update(&value_only, |_, inc| {
        inc.new_document.objects.insert(ap_stream, red());
    });

    let direct = update(&t.signed, |_, inc| {
        let s = inc.new_document.add_object(red());
        inc.opt_clone_object_to_new_document(widget).unwrap();
        let w = inc.new_document.get_dictionary_mut(widget).unwrap();
        w.set(
            "AP",
            Object::Dictionary(Dictionary::from_iter(vec![("N", Object::Reference(s))])),
        );
    });

    // pyHanko refuses these too.
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "indirect /AP dictionary rewritten, reached from a new DSS",
            update(&t.signed, |d, inc| {
                let s = inc.new_document.add_object(red());
                inc.new_document.objects.insert(
                    ap_dict,
                    Object::Dictionary(Dictionary::from_iter(vec![("N", Object::Reference(s))])),
                );
                let dss = inc
                    .new_document
                    .add_object(Object::Dictionary(Dictionary::from_iter(vec![(
                        "Certs",
                        Object::Array(vec![Object::Reference(ap_dict)]),
                    )])));
                let catalog = d.trailer.get(b"Root").unwrap().as_reference().unwrap();
                inc.opt_clone_object_to_new_document(catalog).unwrap();
                inc.new_document
                    .get_dictionary_mut(catalog)
                    .unwrap()
                    .set("DSS", Object::Reference(dss));
            }),
        ),
        (
            "appearance stream rewritten, reached from the trailer's /Info",
            update(&t.signed, |_, inc| {
                inc.new_document.objects.insert(ap_stream, red());
                inc.new_document
                    .trailer
                    .set("Info", Object::Reference(ap_stream));
            }),
        ),
        (
            "the signed signature widget's /AP replaced",
            update(&t.signed, |d, inc| {
                let s = inc.new_document.add_object(red());
                let w = widget_named(d, "buyer-1");
                inc.opt_clone_object_to_new_document(w).unwrap();
                let w = inc.new_document.get_dictionary_mut(w).unwrap();
                w.set(
                    "AP",
                    Object::Dictionary(Dictionary::from_iter(vec![("N", Object::Reference(s))])),
                );
            }),
        ),
        (
            "an empty signature widget's /AP replaced, not signed",
            update(&t.signed, |d, inc| {
                let s = inc.new_document.add_object(red());
                let w = widget_named(d, "buyer-2");
                inc.opt_clone_object_to_new_document(w).unwrap();
                let w = inc.new_document.get_dictionary_mut(w).unwrap();
                w.set(
                    "AP",
                    Object::Dictionary(Dictionary::from_iter(vec![("N", Object::Reference(s))])),
                );
            }),
        ),
        (
            "the signed signature's appearance rewritten, reached from /Info",
            update(&t.signed, |d, inc| {
                let ap = d
                    .get_dictionary(widget_named(d, "buyer-1"))
                    .unwrap()
                    .get(b"AP")
                    .unwrap()
                    .as_dict()
                    .unwrap()
                    .get(b"N")
                    .unwrap()
                    .as_reference()
                    .unwrap();
                inc.new_document.objects.insert(ap, red());
                inc.new_document.trailer.set("Info", Object::Reference(ap));
            }),
        ),
    ];
    for (case, doc) in &cases {
        let r = both_judge(&signer, &python, &opts, doc, case, false);
        assert!(codes(&r).contains(&"appearance_changed"), "{case}: {r:#?}");
    }

    // Stricter than pyHanko, which takes a text field's new appearance as form filling even when
    // the value did not change with it (docs/verification.md): a reader shows the appearance, so
    // it would show what nobody entered.
    for (case, doc) in [
        ("text widget /AP replaced, value unchanged", &direct),
        ("the text appearance a revision after the value", &later_ap),
    ] {
        let r = check(doc, &opts);
        let theirs = signer.judge(&python, doc);
        assert_eq!(r.verdict, Verdict::Invalid, "{case} (pyHanko: {theirs:?})");
        assert_eq!(r.signatures[0].changes_after, Changes::Disallowed, "{case}");
        assert!(codes(&r).contains(&"appearance_changed"), "{case}: {r:#?}");
    }

    // Looking like signing: a new invisible signature field whose appearance draws the text
    // field's rewritten stream, signed in the next revision. pyHanko accepts both the empty field
    // and the text field's new appearance; here each is a disallowed change.
    let prepared = update(&t.signed, |d, inc| {
        inc.new_document.objects.insert(ap_stream, red());
        let mut ap = box_stream("1 1 1");
        ap.dict.set(
            "Resources",
            Object::Dictionary(Dictionary::from_iter(vec![(
                "XObject",
                Object::Dictionary(Dictionary::from_iter(vec![(
                    "Fx",
                    Object::Reference(ap_stream),
                )])),
            )])),
        );
        let y = inc.new_document.add_object(Object::Stream(ap));
        add_widget(
            d,
            inc,
            "witness",
            "Sig",
            vec![
                (
                    "AP",
                    Object::Dictionary(Dictionary::from_iter(vec![("N", Object::Reference(y))])),
                ),
                (
                    "Rect",
                    Object::Array(vec![0.into(), 0.into(), 0.into(), 0.into()]),
                ),
            ],
        );
    });
    let witnessed = sign_field(&t.chain, &prepared, "witness");
    let r = check(&witnessed, &opts);
    let theirs = signer.judge(&python, &witnessed);
    assert_eq!(r.verdict, Verdict::Invalid, "pyHanko: {theirs:?}");
    assert_eq!(r.signatures[0].changes_after, Changes::Disallowed);
    let c = codes(&r);
    assert!(
        c.contains(&"appearance_changed") && c.contains(&"signature_field_added"),
        "{c:?}"
    );
}
