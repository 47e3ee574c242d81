"""YAML loading that keeps line numbers and rejects duplicate keys.

PyYAML silently lets a repeated key override the first one; for an inventory that means a
device silently disappearing, so duplicates are an error here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitord.config.errors import ConfigError

# A key path into the document: mapping keys and sequence indexes.
KeyPath = tuple[str | int, ...]


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that records the line of every node and refuses duplicate mapping keys."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value, not a list or mapping", key_node.start_mark
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first at line {seen[key]})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


class LoadedYaml:
    """A parsed document plus a way to find the line of any key path in it."""

    def __init__(self, source: str, data: Any, root: yaml.Node | None) -> None:
        self.source = source
        self.data = data
        self._root = root

    def line_of(self, path: KeyPath) -> int | None:
        """1-based line of the deepest node along `path` that exists."""
        node = self._root
        line = node.start_mark.line + 1 if node is not None else None
        for part in path:
            child: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                for key_node, value_node in node.value:
                    if key_node.value == part:
                        child = value_node
                        line = key_node.start_mark.line + 1
                        break
            elif (isinstance(node, yaml.SequenceNode) and isinstance(part, int)
                  and 0 <= part < len(node.value)):
                child = node.value[part]
                line = child.start_mark.line + 1
            if child is None:
                break
            node = child
        return line


def load_yaml(path: str | Path) -> LoadedYaml:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [f"cannot read file: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [f"not UTF-8 text: {exc.reason} at byte {exc.start}"]) from exc
    try:
        loader = _StrictLoader(text)
        try:
            root = loader.get_single_node()  # parsed once: the nodes give both data and lines
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(source, [f"{where}invalid YAML: {exc.problem}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"invalid YAML: {exc}"]) from exc
    return LoadedYaml(source, data, root)
