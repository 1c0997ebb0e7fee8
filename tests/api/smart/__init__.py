"""SMART App Launch conformance: Inferno's SMART checks and the security checklist, in pytest."""
