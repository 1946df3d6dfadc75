-- Cancelling a filed contract: who asked, why, and the other party's verified consent (or a court
-- document) before a reviewer may approve. Mirrors migrations/sqlite/0010.

ALTER TABLE contracts ADD COLUMN cancellation TEXT;
