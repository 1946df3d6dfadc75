"""pyHanko on the same files and keys as our criterion benchmarks (target/bench/, written by
`cargo bench --bench verify`): the median time to sign the signed 20-page contract into its next
field with a P-256 key, and to validate the one-signature file against our root, in-process
(no interpreter start-up counted). Run by scripts/bench."""

import statistics
import sys
import time
from io import BytesIO

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.keys import load_cert_from_pemder
from pyhanko_certvalidator import ValidationContext

d = sys.argv[1] if len(sys.argv) > 1 else "target/bench"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30

signed = open(f"{d}/one-signature.pdf", "rb").read()
signer = signers.SimpleSigner.load(
    f"{d}/signer-key.pem", f"{d}/signer.pem", ca_chain_files=(f"{d}/chain.pem",), key_passphrase=None
)
meta = signers.PdfSignatureMetadata(field_name="buyer-2", subfilter=SigSeedSubFilter.PADES)


def sign_once():
    w = IncrementalPdfFileWriter(BytesIO(signed))
    return signers.sign_pdf(w, meta, signer=signer).getvalue()


root = load_cert_from_pemder(f"{d}/root.pem")


def validate_once():
    vc = ValidationContext(trust_roots=[root])
    r = PdfFileReader(BytesIO(signed))
    status = validate_pdf_signature(r.embedded_signatures[0], vc)
    assert status.intact and status.valid, status.summary()


def median_ms(f):
    f()  # warm-up
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        f()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


print(f"pyhanko sign P-256 (signed 20-page contract): median {median_ms(sign_once):.2f} ms")
print(f"pyhanko validate one signature: median {median_ms(validate_once):.2f} ms")
