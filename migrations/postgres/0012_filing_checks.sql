-- The reviewer's automated checks (DOMAIN.md, "What a reviewer checks"). At confirmation the
-- contract keeps a snapshot of what its PDF was made from (the contract data, encrypted since it
-- holds ID numbers, with the render time and address), so the checks can compare it with the
-- inventory as it is now and re-render the document to prove its fixed text; the results at
-- submission are kept with the contract. Mirrors migrations/sqlite/0012.

ALTER TABLE contracts ADD COLUMN snapshot TEXT;
ALTER TABLE contracts ADD COLUMN filing_checks TEXT;
