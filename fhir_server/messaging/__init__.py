"""L3 messaging services: the HL7 v2 message log (no HL7 library here; the hl7v2 door parses)."""
