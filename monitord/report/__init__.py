"""SPBE availability reports from the event history: per device, site, kabupaten, role and
province, with incidents, root causes and maintenance. Definitions: README.md here."""
