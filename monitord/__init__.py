"""monitord: a network and data-center monitoring daemon for SPBE infrastructure."""

__version__ = "0.1.0"
