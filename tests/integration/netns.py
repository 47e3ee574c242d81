"""Test hosts in network namespaces: moved to monitord.lab.netns (the province lab uses them
too); re-exported here for the tests that import them from this module."""

from monitord.lab.netns import KabupatenLink, TestHost, run

__all__ = ["KabupatenLink", "TestHost", "run"]
