"""tenancy-runbook: a tenancy migration (per-user to per-tenant rows), declared in a spec
(docs/spec.md), carried out online as a papermill runbook."""

__version__ = "0.1.0"
