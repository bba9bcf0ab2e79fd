-- Why automated reminders wait for an officer (a dispute, a complaint, an
-- instalment or officer request, a promise beyond the horizon). Set from the
-- employer's reply or an officer's dispute; cleared by an officer's resume or
-- recorded promise.
ALTER TABLE cases ADD COLUMN officer_hold TEXT;
