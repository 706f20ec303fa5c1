"""tenancy-runbook: the Data Hub multi-tenancy migration as a papermill runbook."""

__version__ = "0.1.0"

# The four tables that gain a workspaceId, in backfill (dependency) order.
TENANT_TABLES = ("Connection", "MetricDaily", "Insight", "ChatMessage")
# Every table the migration reads or writes.
DATAHUB_TABLES = ("Workspace", "User", "WorkspaceMember") + TENANT_TABLES
