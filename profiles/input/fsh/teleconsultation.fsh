// CN: remote consultation and remote diagnosis (China, Remote Medical Services Management Norms, 2018).

Profile: TeleconsultationServiceRequest
Parent: ServiceRequest
Id: teleconsultation-servicerequest
Title: "Teleconsultation request (CN invitation)"
Description: "CN-3.3.1: the invitation of a remote consultation or remote diagnosis states its reason (reasonCode), purpose (consultation-purpose), time arrangement (occurrence), patient record summary (supportingInfo), the specialty (performerType) and professional title (requested-professional-title) of the physician wanted, the requesting physician (requester) and, in direct mode, the invited institution (performer; CN-1.1, CN-1.2: an Organization; absent while a platform matches one). CN-2.2a: the physician accompanying the patient may be named (accompanying-physician)."
* extension contains
    ConsultationPurpose named purpose 1..1 and
    RequestedProfessionalTitle named requestedTitle 1..1 and
    AccompanyingPhysician named accompanyingPhysician 0..*
* code 1..1
* code from $vs-teleconsultation-type (required)
* code ^short = "Remote consultation or remote diagnosis (CN-3.3, CN-3.4)"
* subject only Reference(Patient)
* occurrence[x] 1..1
* occurrence[x] only dateTime or Period
* occurrence[x] ^short = "Time arrangement (CN-3.3.1, CN-3.3.4)"
* requester 1..1
* requester only Reference(PractitionerRole)
* requester ^short = "Requesting physician of the inviting institution"
* performer 0..1
* performer only Reference(Organization)
* performer ^short = "Invited institution (direct mode); absent while a platform matches one"
* performerType 1..1
* performerType from $vs-diagnostic-subject (required)
* performerType ^short = "Specialty (diagnostic subject) of the physician wanted"
* reasonCode 1..*
* reasonCode ^short = "Reason for the consultation"
* supportingInfo 1..*
* supportingInfo ^short = "Patient record summary"
* priority from $vs-telemedicine-priority (required)
* obeys tc-sr-1

Invariant: tc-sr-1
Description: "CN-3.3.1: a time arrangement given as a period states when it starts"
Expression: "occurrencePeriod.exists() implies occurrencePeriod.start.exists()"
Severity: #error

Profile: TeleconsultationTask
Parent: Task
Id: teleconsultation-task
Title: "Teleconsultation task"
Description: "CN-1.1, CN-3.3.2: who carries out a teleconsultation request and in which state. Owned by the invited institution (direct mode) or the platform (unassigned until matched); the invited party accepts, or refuses with a coded reason from refusal-reason (tc-task-1); an accepted task has an owner (tc-task-2)."
* basedOn 1..*
* basedOn only Reference(ServiceRequest)
* basedOn ^short = "The teleconsultation request (teleconsultation-servicerequest)"
* focus only Reference(ServiceRequest)
* for 1..1
* for only Reference(Patient)
* requester 1..1
* requester only Reference(Organization or PractitionerRole)
* owner only Reference(Organization or PractitionerRole)
* owner ^short = "Invited institution, platform, or the assigned physician"
* statusReason from $vs-refusal-reason (extensible)
* statusReason ^short = "Why the task was refused (required when rejected, tc-task-1)"
* restriction.period.end ^short = "Response deadline (CN-3.3.2)"
* obeys tc-task-1 and tc-task-2

Invariant: tc-task-1
Description: "CN-3.3.2: a refused (rejected) invitation carries a coded reason from the refusal-reason code system"
Expression: "status = 'rejected' implies statusReason.coding.where(system = 'https://telemedicine.example.org/fhir/CodeSystem/refusal-reason').exists()"
Severity: #error

Invariant: tc-task-2
Description: "CN-3.3.2: an accepted, running or completed task names who carries it out (owner)"
Expression: "(status = 'accepted' or status = 'in-progress' or status = 'completed') implies owner.exists()"
Severity: #error

Profile: TelemedicineConsent
Parent: Consent
Id: telemedicine-consent
Title: "Telemedicine informed consent"
Description: "CN-3.2, CN-4.3.7, RO-15e, RO-27, RO-42: the patient's written informed consent to the remote service (or to teleradiology and image transfer), obtained by the inviting institution / beneficiary before the service. Category from consent-category; the signer is the patient or a related person, who then gives the reason for the proxy (tm-consent-1)."
* extension contains ConsentProxyReason named proxyReason 0..1
* category from $vs-consent-category (required)
* category ^short = "Which telemedicine service is consented to"
* patient 1..1
* patient only Reference(Patient)
* dateTime 1..1
* performer 1..*
* performer only Reference(Patient or RelatedPerson)
* performer ^short = "Who signed: the patient, or a guardian / close relative"
* organization 1..*
* organization only Reference(Organization)
* organization ^short = "The institution that obtained the consent"
* source[x] 1..1
* source[x] ^short = "The written (signed) consent"
* obeys tm-consent-1

Invariant: tm-consent-1
Description: "CN-3.2: a consent signed by a related person (proxy) records why the patient did not sign (consent-proxy-reason)"
Expression: "performer.where(reference.matches('(^|/)RelatedPerson/')).exists() implies extension('https://telemedicine.example.org/fhir/StructureDefinition/consent-proxy-reason').exists()"
Severity: #error
