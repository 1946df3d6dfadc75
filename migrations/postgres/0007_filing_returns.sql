-- A returned filing keeps the reviewer's reasons (all of them, at once) on the contract until
-- the developer makes a new version. Mirrors migrations/sqlite/0007.

ALTER TABLE contracts ADD COLUMN returned_reasons TEXT;
