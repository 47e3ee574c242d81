"""Target state: hysteresis, topology, events, their history and their delivery."""
