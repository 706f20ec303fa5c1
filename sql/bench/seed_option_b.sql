-- The seed review's "Option B" (../shared/seeds/000_59a402c91ca198a4.txt), verbatim: count the
-- NULLs, then SET NOT NULL on the four tables in one transaction (each a full-table scan under
-- ACCESS EXCLUSIVE).
DO $$
DECLARE
  connection_nulls INTEGER;
  metric_nulls INTEGER;
  insight_nulls INTEGER;
  chat_nulls INTEGER;
BEGIN
  -- Count NULLs
  SELECT COUNT(*) INTO connection_nulls FROM "Connection" WHERE "workspaceId" IS NULL;
  SELECT COUNT(*) INTO metric_nulls FROM "MetricDaily" WHERE "workspaceId" IS NULL;
  SELECT COUNT(*) INTO insight_nulls FROM "Insight" WHERE "workspaceId" IS NULL;
  SELECT COUNT(*) INTO chat_nulls FROM "ChatMessage" WHERE "workspaceId" IS NULL;

  -- Fail if any NULLs exist
  IF connection_nulls > 0 OR metric_nulls > 0 OR insight_nulls > 0 OR chat_nulls > 0 THEN
    RAISE EXCEPTION 'Cannot enforce NOT NULL: NULL values found. Connection: %, MetricDaily: %, Insight: %, ChatMessage: %. Run backfill script first.',
      connection_nulls, metric_nulls, insight_nulls, chat_nulls;
  END IF;

  -- Enforce NOT NULL
  ALTER TABLE "Connection"
  ALTER COLUMN "workspaceId" SET NOT NULL;

  ALTER TABLE "MetricDaily"
  ALTER COLUMN "workspaceId" SET NOT NULL;

  ALTER TABLE "Insight"
  ALTER COLUMN "workspaceId" SET NOT NULL;

  ALTER TABLE "ChatMessage"
  ALTER COLUMN "workspaceId" SET NOT NULL;

  RAISE NOTICE 'Successfully enforced NOT NULL on all Data Hub workspaceId columns.';
END $$;
