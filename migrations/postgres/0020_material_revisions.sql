-- A revision of a signed PDF is the revision before it with an incremental update appended
-- (PAdES never rewrites the bytes it signed). Such a row keeps only the appended bytes and names
-- the stored document they follow; the whole is put together on reading and checked against
-- its SHA-256. `size` stays the size of the whole document.
ALTER TABLE materials ADD COLUMN base_sha256 TEXT REFERENCES materials (sha256);
