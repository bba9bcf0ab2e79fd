-- The case list's figures (arrears, oldest unpaid due date, last activity,
-- branch) are now written by the code that changes them — the scan, the
-- ledger, the case log, the bills and employers imports — for the scan's
-- time and each employer's zone (`src/case/figures.rs`). The triggers of
-- 0004 computed arrears with the database clock in UTC, so the list could
-- disagree with the case's own events, and they cost most of a first scan.
DROP TRIGGER IF EXISTS cases_list_insert;
DROP TRIGGER IF EXISTS cases_list_bill_insert;
DROP TRIGGER IF EXISTS cases_list_bill_update;
DROP TRIGGER IF EXISTS cases_list_branch_moved;
DROP TRIGGER IF EXISTS cases_list_event;
