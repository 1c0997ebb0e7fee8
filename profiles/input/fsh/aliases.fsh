// Canonical URLs of the server's terminology (terminology/, one JSON file per resource) and of
// the external code systems the profiles use.
Alias: $base = https://telemedicine.example.org/fhir
Alias: $vs-teleconsultation-type = https://telemedicine.example.org/fhir/ValueSet/teleconsultation-type
Alias: $vs-teleconsultation-purpose = https://telemedicine.example.org/fhir/ValueSet/teleconsultation-purpose
Alias: $vs-refusal-reason = https://telemedicine.example.org/fhir/ValueSet/refusal-reason
Alias: $vs-teleradiology-purpose = https://telemedicine.example.org/fhir/ValueSet/teleradiology-purpose
Alias: $vs-professional-title = https://telemedicine.example.org/fhir/ValueSet/professional-title
Alias: $vs-diagnostic-subject = https://telemedicine.example.org/fhir/ValueSet/diagnostic-subject
Alias: $vs-medical-specialty = https://telemedicine.example.org/fhir/ValueSet/medical-specialty
Alias: $vs-radiology-specialty = https://telemedicine.example.org/fhir/ValueSet/radiology-specialty
Alias: $vs-consent-category = https://telemedicine.example.org/fhir/ValueSet/consent-category
Alias: $vs-teleradiology-modality = https://telemedicine.example.org/fhir/ValueSet/teleradiology-modality
Alias: $vs-telemedicine-priority = https://telemedicine.example.org/fhir/ValueSet/telemedicine-priority

Alias: $cs-refusal-reason = https://telemedicine.example.org/fhir/CodeSystem/refusal-reason
Alias: $cs-teleradiology-purpose = https://telemedicine.example.org/fhir/CodeSystem/teleradiology-purpose
Alias: $DCM = http://dicom.nema.org/resources/ontology/DCM
Alias: $v2-0074 = http://terminology.hl7.org/CodeSystem/v2-0074
Alias: $communication-category = http://terminology.hl7.org/CodeSystem/communication-category
Alias: $signature-type = urn:iso-astm:E1762-95:2013
