// Institutions and practitioners (CN-1.2, CN-2.1, CN-2.2b, RO-15a, RO-21.1).

Profile: TelemedicineOrganization
Parent: Organization
Id: telemedicine-organization
Title: "Telemedicine institution"
Description: "CN-1.2, CN-2.1, RO-21.2: an institution taking part in telemedicine (inviting / invited institution, beneficiary / provider, platform), identified, named, with contact details, and with the diagnostic and treatment subjects it is approved for (approved-diagnostic-subject, bound to diagnostic-subject)."
* extension contains ApprovedDiagnosticSubject named approvedSubject 0..*
* identifier 1..*
* name 1..1
* telecom 1..*
* telecom ^short = "Contact details (RO-21.2)"

Profile: TelemedicinePractitionerRole
Parent: PractitionerRole
Id: telemedicine-practitionerrole
Title: "Telemedicine practitioner role"
Description: "CN-2.2b, CN-3.3.1, RO-15a, RO-29: a physician acting for an institution: the specialty (medical-specialty, or for CN a diagnostic-subject code; tm-pr-1), the professional title held (practitioner-professional-title) and the period of the role (period with a start, required)."
* extension contains PractitionerProfessionalTitle named professionalTitle 0..1
* practitioner 1..1
* practitioner only Reference(Practitioner)
* organization 1..1
* organization only Reference(Organization)
* specialty 1..*
* specialty from $vs-medical-specialty (extensible)
* specialty ^short = "Specialty: medical-specialty, or a CN diagnostic subject (diagnostic-subject)"
* obeys tm-pr-1
* period 1..1
* period.start 1..1

Profile: TelemedicinePractitioner
Parent: Practitioner
Id: telemedicine-practitioner
Title: "Telemedicine practitioner"
Description: "CN-2.2b, RO-21.1: a physician with at least one qualification (licence) whose period states since when it holds, from which the years of independent clinical work are counted (at least 3 for an invited physician)."
* extension contains PractitionerProfessionalTitle named professionalTitle 0..1
* identifier 1..*
* name 1..*
* qualification 1..*
* qualification.period 1..1
* qualification.period.start 1..1

Invariant: tm-pr-1
Description: "CN-2.1, CN-2.2b, RO-15a: every specialty is coded from medical-specialty or from the CN diagnostic-subject catalogue"
Expression: "specialty.all(coding.where(system = 'https://telemedicine.example.org/fhir/CodeSystem/medical-specialty' or system = 'https://telemedicine.example.org/fhir/CodeSystem/diagnostic-subject').exists())"
Severity: #error
