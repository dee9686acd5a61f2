"""Clients for the HomeWizard P1 meter's local API (v1 and v2) and the mapping to the contract."""
