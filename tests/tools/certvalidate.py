"""Validate a certificate with pyHanko's certificate validator (an implementation nobody here wrote).

usage: certvalidate.py ROOT.pem LEAF.pem [INTERMEDIATE.pem ...] --usage non_repudiation|time_stamping
Prints the subject as pyHanko shows it and `VALID`, or the error; exits 0 only when valid.
"""
import asyncio
import sys

from asn1crypto import pem, x509
from pyhanko_certvalidator import CertificateValidator, ValidationContext


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return x509.Certificate.load(data)


async def main():
    args = sys.argv[1:]
    usage = "non_repudiation"
    if "--usage" in args:
        i = args.index("--usage")
        usage = args[i + 1]
        del args[i : i + 2]
    root, leaf, *inter = [load(p) for p in args]
    ctx = ValidationContext(trust_roots=[root], other_certs=inter, allow_fetching=False, revocation_mode="soft-fail")
    validator = CertificateValidator(leaf, intermediate_certs=inter, validation_context=ctx)
    print("subject:", leaf.subject.human_friendly)
    try:
        if usage == "time_stamping":
            await validator.async_validate_usage(set(), extended_key_usage={"time_stamping"})
        else:
            await validator.async_validate_usage({usage})
    except Exception as e:  # report, do not crash: the test reads the output
        print("INVALID:", type(e).__name__, e)
        sys.exit(1)
    print("VALID")


asyncio.run(main())
