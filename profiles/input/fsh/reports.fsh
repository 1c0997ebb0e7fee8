// Reports and their signatures: the RO radiology report (RO-15a, RO-15b, RO-18, RO-21.2) and the
// signature of any opinion or radiology report (CN-3.3.3).

Profile: TeleradiologyReport
Parent: DiagnosticReport
Id: teleradiology-report
Title: "Teleradiology report"
Description: "RO-15a, RO-15b, RO-18, RO-21.2, RO-29, CN-3.3.3: the radiology report: the interpreter (resultsInterpreter, a PractitionerRole) and the interpreter's specialty (interpreter-specialty, radiology or nuclear medicine, RO-15a), the request and so the requesting physician (basedOn, RO-15b), the beneficiary (report-beneficiary) and the provider (performer, RO-21.2). A released report (final, amended, corrected, appended) is issued with a conclusion or rendered form (tr-rep-1); an addendum points at the initial report and its radiologist (tr-rep-2, tr-rep-3, RO-18)."
* extension contains
    InterpreterSpecialty named interpreterSpecialty 1..1 and
    ReportBeneficiary named beneficiary 1..1 and
    AddendumTo named addendumTo 0..1 and
    InitialReportInterpreter named initialReportInterpreter 0..1
* basedOn 1..*
* basedOn only Reference(ServiceRequest)
* basedOn ^short = "The request, naming the requesting physician (RO-15b)"
* category ^slicing.discriminator.type = #pattern
* category ^slicing.discriminator.path = "$this"
* category ^slicing.rules = #open
* category ^slicing.description = "Radiology category"
* category contains radiology 1..1
* category[radiology] = $v2-0074#RAD
* subject 1..1
* subject only Reference(Patient)
* performer 1..1
* performer only Reference(Organization)
* performer ^short = "The teleradiology provider (furnizor, RO-21.2)"
* resultsInterpreter 1..*
* resultsInterpreter only Reference(PractitionerRole)
* resultsInterpreter ^short = "The radiologist who reported (RO-15a, RO-29)"
* imagingStudy 1..*
* obeys tr-rep-1 and tr-rep-2 and tr-rep-3

Invariant: tr-rep-1
Description: "CN-3.3.3, RO-18: a released report (final, amended, corrected, appended) has its issue time and a conclusion or a rendered form"
Expression: "(status = 'final' or status = 'amended' or status = 'corrected' or status = 'appended') implies (issued.exists() and (conclusion.exists() or presentedForm.exists()))"
Severity: #error

Invariant: tr-rep-2
Description: "RO-18: an appended report is an addendum and points at the initial report (addendum-to)"
Expression: "status = 'appended' implies extension('https://telemedicine.example.org/fhir/StructureDefinition/addendum-to').exists()"
Severity: #error

Invariant: tr-rep-3
Description: "RO-18, RO-21.2: an addendum is appended, amended or corrected, and names the radiologist of the initial report (initial-report-interpreter)"
Expression: "extension('https://telemedicine.example.org/fhir/StructureDefinition/addendum-to').exists() implies ((status = 'appended' or status = 'amended' or status = 'corrected') and extension('https://telemedicine.example.org/fhir/StructureDefinition/initial-report-interpreter').exists())"
Severity: #error

Profile: SignedReportProvenance
Parent: Provenance
Id: signed-report-provenance
Title: "Signature of a report"
Description: "CN-3.3.3, RO-15a, RO-18: the signature of an opinion or radiology report by the physician who wrote it: targets the report (DiagnosticReport), carries at least one author's signature with its data (sig-prov-1), made by one of the agents (sig-prov-2). Signed reports are immutable."
* target only Reference(DiagnosticReport)
* target ^short = "The signed report (a version-specific reference is recommended)"
* agent.who only Reference(Practitioner or PractitionerRole or Organization)
* signature 1..*
* signature.who only Reference(Practitioner or PractitionerRole)
* signature.data 1..1
* signature.sigFormat 1..1
* obeys sig-prov-1 and sig-prov-2

Invariant: sig-prov-1
Description: "CN-3.3.3: one signature is the author's signature (urn:iso-astm:E1762-95:2013#1.2.840.10065.1.12.1.1)"
Expression: "signature.where(type.where(system = 'urn:iso-astm:E1762-95:2013' and code = '1.2.840.10065.1.12.1.1').exists()).exists()"
Severity: #error

Invariant: sig-prov-2
Description: "CN-3.3.3: every signer is one of the provenance agents"
Expression: "signature.who.reference.subsetOf(agent.who.reference)"
Severity: #error
