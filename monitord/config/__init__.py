"""Loading and validating monitord's YAML config into an immutable Inventory."""

from monitord.config.errors import ConfigError
from monitord.config.inventory import load_inventory

__all__ = ["ConfigError", "load_inventory"]
