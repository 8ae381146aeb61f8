"""The hospital's other systems: patient administration over HL7 v2 ADT (MLLP) and FHIR
R4, and merges of patient records (docs/interop.md).

Last in the order of the apps: a merge moves threads (chat), photos (media), review
cases and holds (compliance, retention) to the surviving record.
"""
