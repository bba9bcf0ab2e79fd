-- The case list's figures (arrears, oldest unpaid due date, last activity,
-- branch) are now written by the code that changes them — the scan, the
-- ledger, the case log, the bills and employers imports — for the scan's
-- time and each employer's zone (`src/case/figures.rs`). The triggers of
-- 0004 computed arrears with CURRENT_DATE in the server's zone, so the list
-- could disagree with the case's own events, and a per-row trigger cost
-- about 55 s of a 60 s first scan of 1M bills.
DROP TRIGGER IF EXISTS cases_list_insert ON cases;
DROP TRIGGER IF EXISTS cases_list_bill_insert ON bills;
DROP TRIGGER IF EXISTS cases_list_bill_update ON bills;
DROP TRIGGER IF EXISTS cases_list_branch_moved ON employers;
DROP TRIGGER IF EXISTS cases_list_event ON case_events;
DROP FUNCTION IF EXISTS cases_list_on_case();
DROP FUNCTION IF EXISTS cases_list_on_bill();
DROP FUNCTION IF EXISTS cases_list_on_branch();
DROP FUNCTION IF EXISTS cases_list_on_event();
DROP FUNCTION IF EXISTS cases_list_refresh(BIGINT);
