"""ICMP echo probing around one shared socket per address family."""
