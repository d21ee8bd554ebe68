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
    lease_id TEXT COLLATE "C" NOT NULL PRIMARY KEY REFERENCES leases (id),
    plan     JSON   NOT NULL,
    set_us   BIGINT NOT NULL
);

CREATE TABLE spot_prices (
    pool         TEXT   NOT NULL,
    tier         TEXT   NOT NULL,
    from_us      BIGINT NOT NULL,
    price_micros BIGINT NOT NULL CHECK (price_micros >= 0),
    PRIMARY KEY (pool, tier, from_us)
);

CREATE TABLE invoices (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tenant_id    TEXT COLLATE "C" NOT NULL,
    month_us     BIGINT NOT NULL,
    currency     TEXT   NOT NULL,
    state        TEXT   NOT NULL CHECK (state IN ('draft', 'finalized', 'paid', 'void')),
    total_micros BIGINT NOT NULL,
    hash         TEXT   NOT NULL DEFAULT '',
    created_us   BIGINT NOT NULL,
    finalized_us BIGINT,
    paid_us      BIGINT,
    voided_us    BIGINT
);
CREATE UNIQUE INDEX invoices_tenant_month ON invoices (tenant_id, month_us) WHERE state <> 'void';
CREATE INDEX invoices_month ON invoices (month_us, tenant_id);

CREATE TABLE invoice_lines (
    invoice_id        TEXT COLLATE "C" NOT NULL REFERENCES invoices (id),
    seq               INTEGER NOT NULL,
    kind              TEXT    NOT NULL,
    lease_id          TEXT    NOT NULL DEFAULT '',
    description       TEXT    NOT NULL,
    from_us           BIGINT  NOT NULL,
    to_us             BIGINT  NOT NULL,
    quantity          TEXT    NOT NULL,
    unit              TEXT    NOT NULL,
    unit_price_micros BIGINT  NOT NULL,
    per               BIGINT  NOT NULL CHECK (per >= 1),
    amount_micros     BIGINT  NOT NULL,
    PRIMARY KEY (invoice_id, seq)
);

CREATE TABLE credit_notes (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    invoice_id   TEXT COLLATE "C" NOT NULL REFERENCES invoices (id),
    invoice_hash TEXT   NOT NULL,
    tenant_id    TEXT COLLATE "C" NOT NULL,
    month_us     BIGINT NOT NULL,
    currency     TEXT   NOT NULL,
    reason       TEXT   NOT NULL,
    total_micros BIGINT NOT NULL,
    issued_us    BIGINT NOT NULL,
    hash         TEXT   NOT NULL,
    lines        JSON   NOT NULL
);
CREATE INDEX credit_notes_invoice ON credit_notes (invoice_id);

-- +goose StatementBegin
CREATE FUNCTION invoices_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.state <> 'draft' THEN
            RAISE EXCEPTION 'invoice is finalized: it cannot be deleted' USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.state <> 'draft' AND NOT (
        OLD.state = 'finalized' AND NEW.state IN ('paid', 'void')
        AND NEW.id = OLD.id AND NEW.tenant_id = OLD.tenant_id AND NEW.month_us = OLD.month_us
        AND NEW.currency = OLD.currency AND NEW.total_micros = OLD.total_micros AND NEW.hash = OLD.hash
        AND NEW.created_us = OLD.created_us AND NEW.finalized_us IS NOT DISTINCT FROM OLD.finalized_us
        AND (NEW.state <> 'paid' OR (NEW.paid_us IS NOT NULL AND NEW.voided_us IS NULL))
        AND (NEW.state <> 'void' OR (NEW.voided_us IS NOT NULL AND NEW.paid_us IS NULL))) THEN
        RAISE EXCEPTION 'invoice is finalized: it cannot change (only finalized -> paid or void)' USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER invoices_frozen BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_frozen();

-- +goose StatementBegin
CREATE FUNCTION invoice_lines_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND (SELECT state FROM invoices WHERE id = OLD.invoice_id) <> 'draft' THEN
        RAISE EXCEPTION 'invoice is finalized: its lines cannot change' USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND (SELECT state FROM invoices WHERE id = NEW.invoice_id) <> 'draft' THEN
        RAISE EXCEPTION 'invoice is finalized: its lines cannot change' USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER invoice_lines_frozen BEFORE INSERT OR UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION invoice_lines_frozen();

-- +goose StatementBegin
CREATE FUNCTION billing_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'billing records are append-only: credit notes never change, invoices are never truncated' USING ERRCODE = 'restrict_violation';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER credit_notes_append_only BEFORE UPDATE OR DELETE ON credit_notes
    FOR EACH ROW EXECUTE FUNCTION billing_append_only();
CREATE TRIGGER invoices_no_truncate BEFORE TRUNCATE ON invoices
    FOR EACH STATEMENT EXECUTE FUNCTION billing_append_only();

-- +goose Down
DROP TABLE credit_notes;
DROP TABLE invoice_lines;
DROP TABLE invoices;
DROP FUNCTION billing_append_only();
DROP FUNCTION invoice_lines_frozen();
DROP FUNCTION invoices_frozen();
DROP TABLE spot_prices;
DROP TABLE lease_plans;
