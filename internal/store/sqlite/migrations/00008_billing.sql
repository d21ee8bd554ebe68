-- Billing. lease_plans holds each lease's price plan (JSON of
-- billing.Plan). spot_prices is each pool's spot price per notice tier
-- from an instant on (micro-units per GPU-hour), recorded when it
-- changes: spot is billed at the price in effect while it held capacity.
-- invoices and invoice_lines: one invoice per tenant and month (one not
-- void); amounts in micro-units of the invoice's currency. A finalized
-- invoice never changes: the triggers below refuse any change to it or
-- its lines but the moves to paid or void, whatever the client. Credit
-- notes correct finalized invoices and are append-only.

-- +goose Up
CREATE TABLE lease_plans (
    lease_id TEXT    NOT NULL PRIMARY KEY REFERENCES leases (id),
    plan     TEXT    NOT NULL CHECK (json_valid(plan)),
    set_us   INTEGER NOT NULL
) STRICT;

CREATE TABLE spot_prices (
    pool         TEXT    NOT NULL,
    tier         TEXT    NOT NULL,
    from_us      INTEGER NOT NULL,
    price_micros INTEGER NOT NULL CHECK (price_micros >= 0),
    PRIMARY KEY (pool, tier, from_us)
) STRICT;

CREATE TABLE invoices (
    id           TEXT    NOT NULL PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    month_us     INTEGER NOT NULL,
    currency     TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('draft', 'finalized', 'paid', 'void')),
    total_micros INTEGER NOT NULL,
    hash         TEXT    NOT NULL DEFAULT '',
    created_us   INTEGER NOT NULL,
    finalized_us INTEGER,
    paid_us      INTEGER,
    voided_us    INTEGER
) STRICT;
CREATE UNIQUE INDEX invoices_tenant_month ON invoices (tenant_id, month_us) WHERE state <> 'void';
CREATE INDEX invoices_month ON invoices (month_us, tenant_id);

CREATE TABLE invoice_lines (
    invoice_id        TEXT    NOT NULL REFERENCES invoices (id),
    seq               INTEGER NOT NULL,
    kind              TEXT    NOT NULL,
    lease_id          TEXT    NOT NULL DEFAULT '',
    description       TEXT    NOT NULL,
    from_us           INTEGER NOT NULL,
    to_us             INTEGER NOT NULL,
    quantity          TEXT    NOT NULL,
    unit              TEXT    NOT NULL,
    unit_price_micros INTEGER NOT NULL,
    per               INTEGER NOT NULL CHECK (per >= 1),
    amount_micros     INTEGER NOT NULL,
    PRIMARY KEY (invoice_id, seq)
) STRICT;

CREATE TABLE credit_notes (
    id           TEXT    NOT NULL PRIMARY KEY,
    invoice_id   TEXT    NOT NULL REFERENCES invoices (id),
    invoice_hash TEXT    NOT NULL,
    tenant_id    TEXT    NOT NULL,
    month_us     INTEGER NOT NULL,
    currency     TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    total_micros INTEGER NOT NULL,
    issued_us    INTEGER NOT NULL,
    hash         TEXT    NOT NULL,
    lines        TEXT    NOT NULL CHECK (json_valid(lines))
) STRICT;
CREATE INDEX credit_notes_invoice ON credit_notes (invoice_id);

-- +goose StatementBegin
CREATE TRIGGER invoices_frozen BEFORE UPDATE ON invoices
WHEN OLD.state <> 'draft' AND NOT (
    OLD.state = 'finalized' AND NEW.state IN ('paid', 'void')
    AND NEW.id = OLD.id AND NEW.tenant_id = OLD.tenant_id AND NEW.month_us = OLD.month_us
    AND NEW.currency = OLD.currency AND NEW.total_micros = OLD.total_micros AND NEW.hash = OLD.hash
    AND NEW.created_us = OLD.created_us AND NEW.finalized_us IS OLD.finalized_us
    AND (NEW.state <> 'paid' OR (NEW.paid_us IS NOT NULL AND NEW.voided_us IS NULL))
    AND (NEW.state <> 'void' OR (NEW.voided_us IS NOT NULL AND NEW.paid_us IS NULL)))
BEGIN
    SELECT RAISE(ABORT, 'invoice is finalized: it cannot change (only finalized -> paid or void)');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER invoices_no_delete BEFORE DELETE ON invoices
WHEN OLD.state <> 'draft'
BEGIN
    SELECT RAISE(ABORT, 'invoice is finalized: it cannot be deleted');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER invoice_lines_frozen_insert BEFORE INSERT ON invoice_lines
WHEN (SELECT state FROM invoices WHERE id = NEW.invoice_id) <> 'draft'
BEGIN
    SELECT RAISE(ABORT, 'invoice is finalized: its lines cannot change');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER invoice_lines_frozen_update BEFORE UPDATE ON invoice_lines
WHEN (SELECT state FROM invoices WHERE id = OLD.invoice_id) <> 'draft'
  OR (SELECT state FROM invoices WHERE id = NEW.invoice_id) <> 'draft'
BEGIN
    SELECT RAISE(ABORT, 'invoice is finalized: its lines cannot change');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER invoice_lines_frozen_delete BEFORE DELETE ON invoice_lines
WHEN (SELECT state FROM invoices WHERE id = OLD.invoice_id) <> 'draft'
BEGIN
    SELECT RAISE(ABORT, 'invoice is finalized: its lines cannot change');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER credit_notes_append_only_update BEFORE UPDATE ON credit_notes
BEGIN
    SELECT RAISE(ABORT, 'credit notes cannot change');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER credit_notes_append_only_delete BEFORE DELETE ON credit_notes
BEGIN
    SELECT RAISE(ABORT, 'credit notes cannot change');
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE credit_notes;
DROP TABLE invoice_lines;
DROP TABLE invoices;
DROP TABLE spot_prices;
DROP TABLE lease_plans;
