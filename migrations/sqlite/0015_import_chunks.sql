-- A staged record now holds a chunk of a run's rows (a JSON array of them)
-- rather than one row: staging a million rows is then a few hundred small
-- writes instead of a million inserts and a million deletes. `row_count`
-- is how many rows the record holds; 0 marks a record staged before this
-- migration, which holds one row (not in an array) and is applied alone.
ALTER TABLE import_staged ADD COLUMN row_count INTEGER NOT NULL DEFAULT 0;
