-- The case list filtered by stage, in each of its sort orders: without these
-- a common stage (tens of thousands of cases) was read whole and sorted for
-- every page.
CREATE INDEX cases_list_stage_arrears ON cases (stage, arrears_minor, id);
CREATE INDEX cases_list_stage_oldest_due ON cases (stage, oldest_due_date, id);
CREATE INDEX cases_list_stage_activity ON cases (stage, last_activity_at, id);
