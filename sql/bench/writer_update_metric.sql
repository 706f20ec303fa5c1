-- Benchmark writer: an update of an existing MetricDaily row (row lock, as the app takes one).
UPDATE "MetricDaily" SET "value" = "value" + 1 WHERE "id" = %(id)s
