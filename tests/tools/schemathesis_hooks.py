"""Schemathesis hooks for scripts/api-conformance: the binary request bodies the document
describes (a PDF to verify, an RFC 3161 time-stamp query, an image for the materials library) are
sent as the bytes Schemathesis generates for their `format: binary` schema."""
import json

import schemathesis


@schemathesis.serializer(
    "application/pdf", "application/timestamp-query", "image/jpeg", "image/png"
)
def binary(ctx, value):
    if isinstance(value, (bytes, bytearray)):
        return {"data": bytes(value)}
    data = getattr(value, "data", None)
    if isinstance(data, (bytes, bytearray)):
        return {"data": bytes(data)}
    return {"data": json.dumps(value, default=str).encode()}
