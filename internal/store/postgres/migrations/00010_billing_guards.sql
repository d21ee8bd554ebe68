-- More guards: TRUNCATE of invoice lines and credit notes is refused too
-- (row triggers do not see it).

-- +goose Up
CREATE TRIGGER invoice_lines_no_truncate BEFORE TRUNCATE ON invoice_lines
    FOR EACH STATEMENT EXECUTE FUNCTION billing_append_only();
CREATE TRIGGER credit_notes_no_truncate BEFORE TRUNCATE ON credit_notes
    FOR EACH STATEMENT EXECUTE FUNCTION billing_append_only();

-- +goose Down
DROP TRIGGER credit_notes_no_truncate ON credit_notes;
DROP TRIGGER invoice_lines_no_truncate ON invoice_lines;
