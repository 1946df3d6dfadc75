"""Sign a PDF with pyHanko (an implementation nobody here wrote), as Acrobat and pyHanko do by
default when no empty field is prepared: the new signature field, its widget on the page and its
signed value in one revision. Also validates, printing pyHanko's judgement per signature.

usage:
  pyhanko_sign.py sign IN OUT KEY CERT CHAIN FIELD [--box X1,Y1,X2,Y2] [--certify P] [--force 1]
  pyhanko_sign.py validate ROOT FILE
sign: FIELD is created on the first page at --box (visible) or invisibly when it does not exist;
--force 1 signs even where a certification forbids it (to build files a verifier must refuse).
validate: one line per signature, `FIELD INTACT|BROKEN TRUSTED|UNTRUSTED MODIFICATIONS VERDICT`,
VERDICT being ACCEPTED when pyHanko's bottom line for that signature is good (intact, trusted,
and the later modifications allowed by its DocMDP level), else REJECTED.
"""
import sys

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from asn1crypto import pem, x509


def sign(args):
    src, out, key, cert, chain, field = args[:6]
    rest = args[6:]
    box = None
    certify = None
    while rest:
        opt, val, rest = rest[0], rest[1], rest[2:]
        if opt == "--box":
            box = tuple(float(v) for v in val.split(","))
        elif opt == "--certify":
            certify = int(val)
        elif opt == "--force":
            signers.PdfSigner._enforce_certification_constraints = lambda *a, **k: None
    signer = signers.SimpleSigner.load(key, cert, ca_chain_files=(chain,))
    meta = signers.PdfSignatureMetadata(
        field_name=field,
        subfilter=fields.SigSeedSubFilter.PADES,
        certify=certify is not None,
        docmdp_permissions=fields.MDPPerm(certify) if certify else fields.MDPPerm.FILL_FORMS,
    )
    spec = fields.SigFieldSpec(sig_field_name=field, on_page=0, box=box) if box else None
    with open(src, "rb") as f:
        w = IncrementalPdfFileWriter(f, strict=False)
        with open(out, "wb") as o:
            signers.sign_pdf(w, meta, signer=signer, new_field_spec=spec, output=o)


def load_cert(path):
    with open(path, "rb") as f:
        data = f.read()
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return x509.Certificate.load(data)


def validate(args):
    root, path = args
    with open(path, "rb") as f:
        r = PdfFileReader(f, strict=False)
        for emb in r.embedded_signatures:
            ctx = ValidationContext(trust_roots=[load_cert(root)], allow_fetching=False)
            st = validate_pdf_signature(emb, ctx, skip_diff=False)
            mods = st.modification_level.name if st.modification_level is not None else "NONE"
            print(
                emb.field_name,
                "INTACT" if st.intact and st.valid else "BROKEN",
                "TRUSTED" if st.trusted else "UNTRUSTED",
                mods,
                "ACCEPTED" if st.bottom_line else "REJECTED",
            )


if __name__ == "__main__":
    {"sign": sign, "validate": validate}[sys.argv[1]](sys.argv[2:])
