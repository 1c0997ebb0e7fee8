"""ORM^O01 / OMI^O23 → FHIR: segment maps after the HL7 v2-to-FHIR IG, tables as data."""
