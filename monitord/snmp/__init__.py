"""SNMP polling: BER codec, transport, sessions, walker, modules and the device poller."""
