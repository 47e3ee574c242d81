"""Value types shared by the config schemas: durations and secrets."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds from 30, 1.5, "30s", "500ms", "2m", "1h" or "400d"."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 500ms, 2m)")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an integer of hundreds of digits
            seconds = math.inf
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 500ms, 2m)")
    # NaN compares false with everything, so it would pass every bound checked later.
    if not math.isfinite(seconds):
        raise ValueError("a duration must be a finite number of seconds")
    if seconds <= 0:
        raise ValueError(f"{value!r} must be greater than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _file_path(value: str) -> str:
    if "\x00" in value:  # the OS refuses such a path with ValueError, not OSError
        raise ValueError("a file path cannot contain a NUL character")
    return value


FilePath = Annotated[str, AfterValidator(_file_path)]


def _secret(value: object) -> object:
    """A secret is a string or {env: NAME} or {file: PATH}. Errors never echo the value."""
    if isinstance(value, str):
        return {"inline": value}
    if isinstance(value, dict):
        return value
    raise ValueError("must be a string, {env: VARIABLE} or {file: PATH}")


class SecretSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    inline: str | None = None
    env: str | None = None
    file: FilePath | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretSpec:
        if sum(x is not None for x in (self.inline, self.env, self.file)) != 1:
            raise ValueError("give exactly one of a string, env or file")
        return self


Secret = Annotated[SecretSpec, BeforeValidator(_secret)]
