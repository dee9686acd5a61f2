"""A HomeWizard P1 meter simulator (``p1-edge simulate``): API v1 and v2, profiles and faults."""
