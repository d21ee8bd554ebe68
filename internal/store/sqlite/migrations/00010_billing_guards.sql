-- More guards for finalized invoices and credit notes: INSERT OR REPLACE
-- deletes the row it replaces without firing delete triggers (SQLite's
-- recursive_triggers is off), so a replacement of a finalized invoice or
-- of any credit note is refused before it happens.

-- +goose Up
-- +goose StatementBegin
CREATE TRIGGER invoices_no_replace BEFORE INSERT ON invoices
WHEN EXISTS (SELECT 1 FROM invoices WHERE id = NEW.id AND state <> 'draft')
BEGIN
    SELECT RAISE(ABORT, 'invoice is finalized: it cannot be replaced');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER credit_notes_no_replace BEFORE INSERT ON credit_notes
WHEN EXISTS (SELECT 1 FROM credit_notes WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'credit notes cannot change');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER credit_notes_no_replace;
DROP TRIGGER invoices_no_replace;
