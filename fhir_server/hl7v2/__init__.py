"""HL7 v2 door: MLLP listener, ACKs, inbound worker and outbound results (python-hl7 only here)."""
