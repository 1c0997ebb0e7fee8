"""batch and transaction Bundles (http://hl7.org/fhir/R4/http.html#transaction).

``entries`` reads the Bundle into entries, ``dispatch`` maps each entry's request to an
interaction of the interaction table, ``references`` resolves fullUrls and conditional
references, ``plan`` resolves each write's identity, ``processor`` runs a transaction (one unit of
work) or a batch (one per entry), and ``response`` builds the response Bundle.
"""
