-- After a CONCURRENTLY statement: the session's setting back to its default.
RESET {setting}
