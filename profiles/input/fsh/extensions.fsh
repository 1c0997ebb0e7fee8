// Extensions of the telemedicine profiles. Each names the rule it records.

Extension: ConsultationPurpose
Id: consultation-purpose
Title: "Teleconsultation purpose"
Description: "CN-3.3.1: the purpose of a remote consultation or remote diagnosis invitation (what the inviting institution wants from the invited one)."
Context: ServiceRequest
* value[x] 1..1
* value[x] only CodeableConcept
* value[x] from $vs-teleconsultation-purpose (required)

Extension: RequestedProfessionalTitle
Id: requested-professional-title
Title: "Professional title of the physician wanted"
Description: "CN-3.3.1: the professional title (e.g. chief physician) the inviting institution wants the invited physician to hold."
Context: ServiceRequest
* value[x] 1..1
* value[x] only CodeableConcept
* value[x] from $vs-professional-title (required)

Extension: AccompanyingPhysician
Id: accompanying-physician
Title: "Physician accompanying the patient"
Description: "CN-2.2a: the physician of the inviting institution who stays with the patient during the remote session (at a primary-level institution an assistant physician or village doctor may)."
Context: ServiceRequest
* value[x] 1..1
* value[x] only Reference(PractitionerRole)

Extension: PractitionerProfessionalTitle
Id: practitioner-professional-title
Title: "Professional title held"
Description: "CN-2.2b, CN-3.3.1: the professional title a practitioner holds, matched against the title an invitation asks for."
Context: PractitionerRole, Practitioner
* value[x] 1..1
* value[x] only CodeableConcept
* value[x] from $vs-professional-title (required)

Extension: RadiologyPurpose
Id: radiology-purpose
Title: "Teleradiology purpose"
Description: "RO-4: why images are sent: primary interpretation, re-interpretation for a second opinion, or tele-expertise between radiologists. RO-12 restricts the modalities allowed per purpose."
Context: ServiceRequest
* value[x] 1..1
* value[x] only CodeableConcept
* value[x] from $vs-teleradiology-purpose (required)

Extension: ClinicalQuestion
Id: clinical-question
Title: "Clinical question"
Description: "RO-39: the question the requesting side asks the radiologist, in clear words without abbreviations or acronyms."
Context: ServiceRequest
* value[x] 1..1
* value[x] only string

Extension: ExamResponsiblePhysician
Id: exam-responsible-physician
Title: "Physician responsible for the examination"
Description: "RO-44: the physician of the beneficiary responsible for the examination itself (indication, contrast, dose)."
Context: ServiceRequest
* value[x] 1..1
* value[x] only Reference(PractitionerRole)

Extension: InterpreterSpecialty
Id: interpreter-specialty
Title: "Specialty of the reporting radiologist"
Description: "RO-15a, RO-29, RO-31: the report shows that the physician who reported is a radiology/medical-imaging or nuclear-medicine specialist."
Context: DiagnosticReport
* value[x] 1..1
* value[x] only CodeableConcept
* value[x] from $vs-radiology-specialty (required)

Extension: ReportBeneficiary
Id: report-beneficiary
Title: "Beneficiary institution"
Description: "RO-21.2: the beneficiary (the institution where the patient and the examination are) named on the report."
Context: DiagnosticReport
* value[x] 1..1
* value[x] only Reference(Organization)

Extension: AddendumTo
Id: addendum-to
Title: "Addendum to"
Description: "RO-18, RO-21.2: on an addendum, the initial report it changes; the initial report stays unchanged and retrievable (a version-specific reference is recommended)."
Context: DiagnosticReport
* value[x] 1..1
* value[x] only Reference(DiagnosticReport)

Extension: InitialReportInterpreter
Id: initial-report-interpreter
Title: "Radiologist of the initial report"
Description: "RO-21.2: on an addendum, the radiologist who wrote the initial report."
Context: DiagnosticReport
* value[x] 1..1
* value[x] only Reference(PractitionerRole)

Extension: ConsentProxyReason
Id: consent-proxy-reason
Title: "Reason consent was given by a proxy"
Description: "CN-3.2: why the consent was signed by a guardian or close relative instead of the patient (e.g. telling the patient is unsuitable)."
Context: Consent
* value[x] 1..1
* value[x] only CodeableConcept

Extension: ApprovedDiagnosticSubject
Id: approved-diagnostic-subject
Title: "Approved diagnostic and treatment subject"
Description: "CN-2.1: a diagnostic and treatment subject the institution is approved for; matching and acceptance only for institutions whose subjects cover the requested one."
Context: Organization
* value[x] 1..1
* value[x] only CodeableConcept
* value[x] from $vs-diagnostic-subject (required)
