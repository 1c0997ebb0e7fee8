// Messages between the parties about a report (RO-19 receipt confirmation, RO-20 urgent findings).

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
Expression: "priority.where($this = 'urgent' or $this = 'asap' or $this = 'stat').exists()"
Severity: #error

Invariant: tr-alert-2
Description: "RO-20: a completed alert says when it was sent"
Expression: "status = 'completed' implies sent.exists()"
Severity: #error
