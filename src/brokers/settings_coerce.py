"""Coercion of broker settings read from any config object (pure: no import of ``src.app``).

A present setting is never silently replaced by its default: what is unambiguous is converted
(``"4002"`` → 4002, ``"2.5"`` → 2.5, ``1``/``"true"``/``"yes"`` → True …), anything else raises
:class:`ConfigError` naming the attribute and the value. Only a MISSING attribute falls back to
the default — and so does a ``unittest.mock`` Mock value: the seeds' tests pass
``MagicMock(spec=Config)``, whose unset attributes answer a MagicMock, i.e. "not set".
"""

from __future__ import annotations

import math
from typing import Any, Final

TRUE_WORDS: Final = frozenset({"1", "true", "yes"})
FALSE_WORDS: Final = frozenset({"0", "false", "no"})
_MISSING: Final = object()


class ConfigError(ValueError):
    """A setting is missing, malformed or invalid (the message names it)."""


def is_unset(value: Any) -> bool:
    """True for a ``unittest.mock`` Mock (an unset attribute of a ``MagicMock(spec=Config)``)."""
    from unittest import mock  # lazily: only a test double can be one

    return isinstance(value, mock.NonCallableMock)


def _refuse(attr: str, value: Any, kind: str) -> ConfigError:
    return ConfigError(f"setting {attr}: expected {kind}, got {type(value).__name__} {value!r}")


def to_bool(attr: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise _refuse(attr, value, "a bool (true/false, yes/no, 1/0)")


def to_int(attr: str, value: Any) -> int:
    if isinstance(value, bool):
        raise _refuse(attr, value, "an int")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _refuse(attr, value, "an int")


def to_float(attr: str, value: Any) -> float:
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise _refuse(attr, value, "a finite number")
    return number


def to_str(attr: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _refuse(attr, value, "a string")


def coerce(attr: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type of ``default`` (``None`` default: an optional int)."""
    if default is None:
        return None if value is None else to_int(attr, value)
    if isinstance(default, bool):
        return to_bool(attr, value)
    if isinstance(default, int):
        return to_int(attr, value)
    if isinstance(default, float):
        return to_float(attr, value)
    if isinstance(default, str):
        return to_str(attr, value)
    if isinstance(default, tuple):
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise _refuse(attr, value, "a list of strings")
    return value


def read(config: object, attr: str, default: Any) -> Any:
    """``config.<attr>`` coerced to ``default``'s type; ``default`` only when it is missing.

    Missing means: no such attribute, or a ``unittest.mock`` Mock value (an unset attribute of
    a ``MagicMock(spec=Config)``). A present value of the wrong kind raises ``ConfigError``.
    """
    try:
        value = getattr(config, attr, _MISSING)
    except AttributeError:
        value = _MISSING
    except Exception as exc:  # noqa: BLE001 - present but unreadable: never the default
        raise ConfigError(f"setting {attr}: cannot be read: {exc}") from exc
    if value is _MISSING or is_unset(value):
        return default
    return coerce(attr, value, default)
