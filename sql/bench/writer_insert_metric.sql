-- Benchmark writer (the new application version): a MetricDaily row with its workspaceId.
INSERT INTO "MetricDaily" ("id", "connectionId", "date", "metric", "value", "workspaceId")
VALUES (%(id)s, %(connection)s, DATE '2040-01-01' + %(n)s, 'bench', 1, %(workspace)s)
