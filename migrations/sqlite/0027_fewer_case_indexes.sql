-- Every case the scan opens is written into each index of `cases`; with 20
-- of them that was most of a first scan's time. `cases_status` is the
-- prefix of `cases_list_status`. The stage-and-sort indexes saved little:
-- with `cases_list_stage` a stage filter reads its cases and sorts them
-- (tens of milliseconds for 50,000 cases, measured with
-- `wa-smile-bench caselist`), while the branch-and-sort indexes stay because
-- an officer's branch list is the page opened most.
DROP INDEX IF EXISTS cases_status;
DROP INDEX IF EXISTS cases_list_stage_arrears;
DROP INDEX IF EXISTS cases_list_stage_oldest_due;
DROP INDEX IF EXISTS cases_list_stage_activity;
