"""FHIR R4 interoperability server for telemedicine.

Layers (imports point down only, see docs/architecture.md):
L5 composition (cli, settings, bootstrap) > L4 ingress (api) > L3 services (interactions) >
L2 ports and adapters (storage, events) > L1 engines (validation) > L0 core.
"""

__version__ = "0.1.0"
