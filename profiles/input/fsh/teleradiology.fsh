// RO: teleradiology (Romania, Specific norms for the organisation and operation of teleradiology).

Profile: TeleradiologyServiceRequest
Parent: ServiceRequest
Id: teleradiology-servicerequest
Title: "Teleradiology request"
Description: "RO-2, RO-4, RO-12, RO-15b, RO-39, RO-44: the request for a teleradiology reading: its coded purpose (radiology-purpose, RO-4), the modality of the examination (code, DCM codes), the reason (reasonCode) and clinical question (clinical-question, RO-39), the requesting physician (requester, RO-15b) and the physician responsible for the examination (exam-responsible-physician, RO-44). Nuclear and hybrid modalities (NM, PT, ST) only for a second opinion (tr-sr-1, RO-12)."
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
Description: "RO-12: nuclear medicine and hybrid examinations (DCM NM, PT, ST: modality-nuclear-hybrid) are reported by teleradiology only for a second opinion"
Expression: "extension('https://telemedicine.example.org/fhir/StructureDefinition/radiology-purpose').valueCodeableConcept.coding.where(system = 'https://telemedicine.example.org/fhir/CodeSystem/teleradiology-purpose' and code = 'second-opinion').exists() or code.coding.where(system = 'http://dicom.nema.org/resources/ontology/DCM' and (code = 'NM' or code = 'PT' or code = 'ST')).empty()"
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
Expression: "(status = 'in-progress' or status = 'completed') implies owner.where(reference.matches('(^|/)PractitionerRole/')).exists()"
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
Expression: "value.exists() implies value.matches('^urn:oid:[0-2]([.](0|[1-9][0-9]*))+$')"
Severity: #error
