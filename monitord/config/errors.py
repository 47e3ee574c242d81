"""Configuration errors that name the file, the key path and, when known, the line."""

from __future__ import annotations


class ConfigError(Exception):
    """A problem with one config file. `problems` holds one line per problem found."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return f"{self.source}: {self.problems[0]}"
        lines = "\n".join(f"  {self.source}: {p}" for p in self.problems)
        return f"{self.source}: {len(self.problems)} problems:\n{lines}"
