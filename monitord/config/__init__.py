"""Loading and validating monitord's YAML config into an immutable Inventory.

load_inventory is imported on first use: the SNMP modules import this package's schema, and
the inventory imports the SNMP modules.
"""

from typing import TYPE_CHECKING, Any

from monitord.config.errors import ConfigError

if TYPE_CHECKING:
    from monitord.config.inventory import load_inventory

__all__ = ["ConfigError", "load_inventory"]


def __getattr__(name: str) -> Any:
    if name == "load_inventory":
        from monitord.config.inventory import load_inventory  # noqa: PLC0415
        return load_inventory
    raise AttributeError(name)
