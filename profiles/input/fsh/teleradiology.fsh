// RO: teleradiology (Romania, Specific norms for the organisation and operation of teleradiology).

Profile: TeleradiologyServiceRequest
Parent: ServiceRequest
Id: teleradiology-servicerequest
Title: "Teleradiology request"
Description: "RO-2, RO-4, RO-12, RO-15b, RO-39, RO-44: the request for a teleradiology reading: its coded purpose (radiology-purpose, RO-4), the modality of the examination (code, DCM codes), the reason (reasonCode) and clinical question (clinical-question, RO-39), the requesting physician (requester, RO-15b) and the physician responsible for the examination (exam-responsible-physician, RO-44). Nuclear and hybrid modalities (NM, PT) only for a second opinion (tr-sr-1, RO-12)."
* extension contains
    RadiologyPurpose named purpose 1..1 and
    ClinicalQuestion named clinicalQuestion 1..* and
    ExamResponsiblePhysician named examResponsiblePhysician 1..1
* code 1..1
* code from $vs-teleradiology-modality (required)
* code ^short = "Modality of the examination to report (DCM)"
* subject only Reference(Patient)
* requester 1..1
* requester only Reference(PractitionerRole)
* requester ^short = "Requesting physician (medic solicitant, RO-15b)"
* performer only Reference(Organization or PractitionerRole)
* performer ^short = "Teleradiology provider, or the radiologist"
* reasonCode 1..*
* reasonCode ^short = "Reason for the examination (RO-39)"
* priority from $vs-telemedicine-priority (required)
* priority ^short = "Urgency of the report (RO-13, RO-20)"
* obeys tr-sr-1

Invariant: tr-sr-1
Description: "RO-12: nuclear medicine and hybrid examinations (DCM NM, PT) are reported by teleradiology only for a second opinion"
Expression: "extension('https://telemedicine.example.org/fhir/StructureDefinition/radiology-purpose').valueCodeableConcept.coding.where(system = 'https://telemedicine.example.org/fhir/CodeSystem/teleradiology-purpose' and code = 'second-opinion').exists() or code.coding.where(system = 'http://dicom.nema.org/resources/ontology/DCM' and (code = 'NM' or code = 'PT')).empty()"
Severity: #error

Profile: TeleradiologyTask
Parent: Task
Id: teleradiology-task
Title: "Teleradiology task"
Description: "RO-2, RO-3, RO-8, RO-13.3, RO-30.2, RO-41d, RO-43.2: the reading of a teleradiology request by a provider and its radiologist. A radiologist must accept the task (nobody is obliged, RO-8); a refusal carries a coded reason from refusal-reason (tr-task-1, RO-30.2, RO-43.2); a task in progress or completed is owned by the radiologist's PractitionerRole (tr-task-2)."
* basedOn 1..*
* basedOn only Reference(ServiceRequest)
* basedOn ^short = "The teleradiology request (teleradiology-servicerequest)"
* focus only Reference(ServiceRequest or ImagingStudy)
* for 1..1
* for only Reference(Patient)
* requester 1..1
* requester only Reference(Organization or PractitionerRole)
* owner only Reference(Organization or PractitionerRole)
* owner ^short = "Provider institution, then the radiologist who accepted"
* statusReason from $vs-refusal-reason (extensible)
* statusReason ^short = "Why the reading was refused (required when rejected, tr-task-1)"
* obeys tr-task-1 and tr-task-2

Invariant: tr-task-1
Description: "RO-30.2, RO-43.2: a refused (rejected) reading carries a coded reason from the refusal-reason code system"
Expression: "status = 'rejected' implies statusReason.coding.where(system = 'https://telemedicine.example.org/fhir/CodeSystem/refusal-reason').exists()"
Severity: #error

Invariant: tr-task-2
Description: "RO-8, RO-13.3: a reading in progress or completed is owned by the radiologist (a PractitionerRole) who accepted it"
Expression: "(status = 'in-progress' or status = 'completed') implies owner.reference.matches('(^|/)PractitionerRole/')"
Severity: #error

Profile: TeleradiologyImagingStudy
Parent: ImagingStudy
Id: teleradiology-imagingstudy
Title: "Teleradiology imaging study"
Description: "RO-2, RO-12, RO-23: the DICOM study sent for a teleradiology reading: its Study Instance UID (identifier with system urn:dicom:uid and a urn:oid: value, tr-is-1), modalities from teleradiology-modality (DCM codes), the request it answers (basedOn) and the patient (subject)."
* identifier ^slicing.discriminator.type = #value
* identifier ^slicing.discriminator.path = "system"
* identifier ^slicing.rules = #open
* identifier ^slicing.description = "The Study Instance UID, by system"
* identifier contains studyInstanceUid 1..1
* identifier[studyInstanceUid].system 1..1
* identifier[studyInstanceUid].system = "urn:dicom:uid" (exactly)
* identifier[studyInstanceUid].value 1..1
* identifier[studyInstanceUid] obeys tr-is-1
* identifier[studyInstanceUid] ^short = "Study Instance UID (0020,000D) as urn:oid:"
* modality 1..*
* modality from $vs-teleradiology-modality (required)
* series.modality from $vs-teleradiology-modality (required)
* subject only Reference(Patient)
* basedOn 1..*
* basedOn only Reference(ServiceRequest)
* basedOn ^short = "The teleradiology request"

Invariant: tr-is-1
Description: "RO-23: the Study Instance UID is a DICOM UID written as urn:oid: (digits and dots, no leading zeros)"
Expression: "value.matches('^urn:oid:[0-2]([.](0|[1-9][0-9]*))+$')"
Severity: #error

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

Profile: ReceiptConfirmation
Parent: Communication
Id: receipt-confirmation
Title: "Receipt confirmation of a report"
Description: "RO-19: the beneficiary's electronic confirmation that it received the result (the report): a completed notification about the DiagnosticReport, from the beneficiary to the provider, with the time it was sent."
* category 1..*
* category ^slicing.discriminator.type = #pattern
* category ^slicing.discriminator.path = "$this"
* category ^slicing.rules = #open
* category contains notification 1..1
* category[notification] = $communication-category#notification
* status = #completed
* subject only Reference(Patient)
* about 1..*
* about only Reference(DiagnosticReport)
* about ^short = "The report whose receipt is confirmed"
* inResponseTo only Reference(Communication)
* sent 1..1
* sent ^short = "When receipt was confirmed"
* sender 1..1
* sender only Reference(Organization or PractitionerRole)
* sender ^short = "The beneficiary (or its staff) confirming receipt"
* recipient 1..*
* recipient only Reference(Organization or PractitionerRole)
* recipient ^short = "The provider that sent the result"

Profile: UrgentFindingAlert
Parent: Communication
Id: urgent-finding-alert
Title: "Urgent finding alert"
Description: "RO-20: the alert to the beneficiary that a report holds findings needing urgent attention: an alert about the DiagnosticReport, with an urgent priority (tr-alert-1), what was found (payload), to the beneficiary; once sent it says when (tr-alert-2)."
* category 1..*
* category ^slicing.discriminator.type = #pattern
* category ^slicing.discriminator.path = "$this"
* category ^slicing.rules = #open
* category contains alert 1..1
* category[alert] = $communication-category#alert
* priority 1..1
* subject 1..1
* subject only Reference(Patient)
* about 1..*
* about only Reference(DiagnosticReport)
* sender 1..1
* sender only Reference(Organization or PractitionerRole)
* recipient 1..*
* recipient only Reference(Organization or PractitionerRole)
* payload 1..*
* payload ^short = "The urgent finding"
* obeys tr-alert-1 and tr-alert-2

Invariant: tr-alert-1
Description: "RO-20: an urgent-finding alert has priority urgent, asap or stat"
Expression: "priority = 'urgent' or priority = 'asap' or priority = 'stat'"
Severity: #error

Invariant: tr-alert-2
Description: "RO-20: a completed alert says when it was sent"
Expression: "status = 'completed' implies sent.exists()"
Severity: #error
