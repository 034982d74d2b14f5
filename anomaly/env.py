"""The one place that reads the process environment.

Every helper refuses a value it cannot parse instead of guessing, so a typo in
a deployment shows up as a start-up error naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class EnvError(ValueError):
    """A configuration variable holds a value we refuse to interpret."""


class Env:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        return default if value is None else value

    def bool(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise EnvError(f"{name}={value!r}: expected one of true/false/1/0/yes/no/on/off")

    def int(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise EnvError(f"{name}={value!r}: expected an integer") from None
        self._check_range(name, number, minimum, maximum)
        return number

    def float(
        self,
        name: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise EnvError(f"{name}={value!r}: expected a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise EnvError(f"{name}={value!r}: expected a finite number")
        self._check_range(name, number, minimum, maximum)
        return number

    def list(self, name: str, default: list[str]) -> list[str]:
        value = self.raw(name)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value is None:
            return default
        if value not in choices:
            raise EnvError(f"{name}={value!r}: expected one of {', '.join(choices)}")
        return value

    def path(self, name: str, default: Path) -> Path:
        value = self.raw(name)
        return default if value is None else Path(value).expanduser().resolve()

    @staticmethod
    def _check_range(
        name: str, number: float, minimum: float | None, maximum: float | None
    ) -> None:
        if minimum is not None and number < minimum:
            raise EnvError(f"{name}={number}: must be at least {minimum}")
        if maximum is not None and number > maximum:
            raise EnvError(f"{name}={number}: must be at most {maximum}")


env = Env()
