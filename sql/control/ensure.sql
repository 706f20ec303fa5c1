-- Where a running backfill and the operator meet (control.py): the backfill reports its
-- progress, `tenancy-runbook control` leaves commands for it, and the backfill records what it
-- applied and each time it waited for the database's health. Created only when absent; kept
-- after the run (the record of what was done to it). Runs after control/ensure_lock, in its
-- transaction.

{include common/runbook_schema}

-- One row per run and table, rewritten about once a second while the backfill runs.
CREATE TABLE IF NOT EXISTS tenancy_runbook.progress (
    run_id      text NOT NULL,
    "table"     text NOT NULL,
    host        text NOT NULL,            -- where the backfill runs
    pid         integer NOT NULL,         -- its process there (the notebook's kernel)
    started_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    rows_total  bigint,
    rows_done   bigint,
    rows_per_s  double precision,
    batch_size  integer,
    workers     integer,
    state       text NOT NULL,            -- running | paused | waiting for replica | ... | done
    PRIMARY KEY (run_id, "table")
);

-- Commands for a run: addressed to the session holding the runbook's lock when sent
-- (lock_pid, lock_since), so a run that ends before obeying one leaves nothing a later run obeys.
CREATE TABLE IF NOT EXISTS tenancy_runbook.commands (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    run_id      text NOT NULL,            -- as the lock holder's label names it
    lock_pid    integer NOT NULL,
    lock_since  timestamptz NOT NULL,
    action      text NOT NULL CHECK (action IN ('pause', 'resume', 'abort', 'set')),
    name        text,                     -- set: the parameter
    value       text,                     -- set: its value, as typed
    by_user     text NOT NULL,            -- session_user (and current_user when it differs)
    by_host     text NOT NULL,            -- the sender's host name (and its address as the server saw it)
    seen_at     timestamptz               -- when the backfill took it
);

-- What a run did that its evidence must show: a command applied ('control'), a wait for the
-- database's health ('throttle').
CREATE TABLE IF NOT EXISTS tenancy_runbook.events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      text NOT NULL,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind        text NOT NULL,
    "table"     text,
    detail      jsonb NOT NULL DEFAULT '{}',
    seconds     double precision
);
CREATE INDEX IF NOT EXISTS events_run_id_idx ON tenancy_runbook.events (run_id, id);
