"""The audit trail (issue 7.8): AuditEvents in the IHE BALP shape, append-only."""
