-- The record of writes made outside the runner: a writing stage (10, 20, 40, 60) run alone
-- (JupyterLab, plain papermill) with confirm=True says here who ran it, when, which stage and
-- what it changed, before its first write (interactive.py). The next run's manifest lists them.
-- Created only when absent; kept. Runs after control/ensure_lock (interactive.ENSURE_KEY), in
-- its transaction.

{include common/runbook_schema}

CREATE TABLE IF NOT EXISTS tenancy_runbook.interactive_writes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),   -- before the stage's first write
    ended_at    timestamptz,              -- its writes done (NULL: it stopped before, or still runs)
    stage       text NOT NULL,            -- the notebook's stem, e.g. 10_add_workspace_columns
    run_id      text NOT NULL,            -- the notebook's ad-hoc run id (as the runbook's lock names it)
    db_user     text NOT NULL,            -- session_user (and current_user when it differs)
    os_user     text,                     -- the kernel's OS user (NULL: it has no name)
    host        text NOT NULL,            -- the kernel's host name (and its address as the server saw it)
    pid         integer NOT NULL,         -- the kernel's process there
    changed     jsonb                     -- what it changed, in short (set when its writes are done)
);
CREATE INDEX IF NOT EXISTS interactive_writes_at_idx ON tenancy_runbook.interactive_writes (at);
