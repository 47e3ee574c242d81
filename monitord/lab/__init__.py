"""The province lab: a small province of network namespaces on this machine that monitord
probes for real, for the tests and for `monitord lab` (the demo; see the README).

topology (the layout and address plan), network (namespaces, veths, routes), agents (snmpsim),
broker (mosquitto), inventory (the lab's monitord config), province (ProvinceLab, tying them
together), demo and summary (`monitord lab`), faults, echo_responder and bad_agent (the
fault injectors), netns (single test hosts), process and scrape (child processes, /metrics).
"""
