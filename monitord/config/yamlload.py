"""YAML loading that keeps line numbers and rejects duplicate keys.

PyYAML silently lets a repeated key override the first one; for an inventory that means a
device silently disappearing, so duplicates are an error here.

Whatever the text, loading ends quickly with data or a ConfigError naming a line (found by
fuzzing, issue 9): nesting deeper than MAX_DEPTH is refused before PyYAML's recursive composer
runs out of stack; aliases may not expand the document past ALIAS_EXPANSION times its written
size (a "billion laughs" file of a few kB would otherwise make validation walk billions of
nodes), nor refer to a node that contains them; and a value its tag cannot hold (`!!int abc`,
a date like 2025-13-45) is an error at its line, not a ValueError from the constructor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import yaml

from monitord.config.errors import ConfigError

# A key path into the document: mapping keys and sequence indexes.
KeyPath = tuple[str | int, ...]

MAX_DEPTH = 64  # nesting levels; the deepest path the schema has is about 12
ALIAS_EXPANSION = 10  # aliases may make a document this many times its written size ...
MIN_EXPANSION_BUDGET = 100_000  # ... or this many nodes, whichever is more


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that records the line of every node, refuses duplicate mapping keys and
    bounds nesting and alias expansion."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._written = 0  # nodes in the text
        self._expanded = 0  # nodes once every alias is replaced by what it refers to
        self._sizes: dict[int, int] = {}  # id(node) -> its expanded size, once complete
        self._open_anchors: set[str] = set()  # anchors of the nodes being composed

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open_anchors:
                raise _composer_error(f"alias *{event.anchor} refers to a node that contains it",
                                      event)
            node = super().compose_node(parent, index)
            self._expanded += self._size(node) if node is not None else 1
            budget = max(ALIAS_EXPANSION * self._written, MIN_EXPANSION_BUDGET)
            if self._expanded > budget:
                raise _composer_error(f"aliases expand this document past {budget} nodes (it "
                                      f"has {self._written} as written): refused as an alias "
                                      "bomb", event)
            return node
        if self._depth >= MAX_DEPTH:
            raise _composer_error(f"nested more than {MAX_DEPTH} levels deep", event)
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open_anchors.add(anchor)
        self._depth += 1
        self._written += 1
        self._expanded += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            self._open_anchors.discard(anchor or "")

    def _size(self, root: yaml.Node) -> int:
        """Nodes under `root` with aliases expanded, memoised; iterative, as alias chains
        can be far deeper than the text's nesting."""
        stack = [root]
        while stack:
            node = stack[-1]
            if id(node) in self._sizes:
                stack.pop()
                continue
            children = _children(node)
            missing = [c for c in children if id(c) not in self._sizes]
            if missing:
                stack.extend(missing)
                continue
            self._sizes[id(node)] = 1 + sum(self._sizes[id(c)] for c in children)
            stack.pop()
        return self._sizes[id(root)]

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception:
            # PyYAML's constructors raise ValueError for `!!float x` or 2025-13-45, IndexError
            # for `!!int ''`, AttributeError for `!!timestamp x`, ... The value is not quoted
            # back: it may be a secret written with the wrong tag.
            kind = node.tag.rsplit(":", 1)[-1]
            raise yaml.constructor.ConstructorError(
                None, None, f"this value is not a valid {kind}", node.start_mark) from None


def _composer_error(problem: str, event: yaml.Event) -> yaml.composer.ComposerError:
    return yaml.composer.ComposerError(None, None, problem, cast(yaml.Mark, event.start_mark))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


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
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(source, [f"{where}invalid YAML: {exc.problem}"]) from exc
    except yaml.reader.ReaderError as exc:  # a control character: no mark, only a position
        before = text[:exc.position]
        where = f"line {before.count(chr(10)) + 1}, column {len(before.rsplit(chr(10), 1)[-1]) + 1}"
        raise ConfigError(source, [f"{where}: invalid YAML: character #x{exc.character:04x} "
                                   f"is not allowed ({exc.reason})"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"invalid YAML: {exc}"]) from exc
    return LoadedYaml(source, data, root)
