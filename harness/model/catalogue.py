"""The catalogue as the layers below checks see it: the `[checks]` keys checks own and the rules they add, and the
backends a profile may name with the `[engine]` keys and tables each owns. Every check's own keys are declared
next to the check (`Option`); the core `[checks]` keys every run needs are CheckSettings' fields.

The composition root (the CLI, the pytest plugin) loads the checks and the backends and hands this down
(harness.checks.registry `catalogue()`), so reading a profile loads no check, no engine and no renderer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Option(Generic[T]):
    """A `[checks]` key a check owns, declared next to the check (its spec's `options`); CheckSettings' fields are
    only the core keys every run needs. A check reads its value with `of`, typed by the default."""

    key: str
    type: Any  # bool, int, float, str, or a form of them config reads (`tuple[int, ...]`, `float | None`)
    default: T
    help: str = ""
    problem: Callable[[Any], str | None] | None = None  # what is wrong with a value, or None
    # In report.json's `checks` table whether set or not (at its default when unset): the keys reports have always
    # recorded. Off: recorded only when the profile sets it.
    recorded: bool = False

    def of(self, checks: Any) -> T:
        """The value in a profile's CheckSettings: the profile's, else this default."""
        found: T = checks.get(self.key, self.default)
        return found


# A check's own rule over the whole `[checks]` table: (CheckSettings, where) -> None, raising UserError naming the
# key. Typed loosely: the settings module imports this one.
Validator = Callable[[Any, str], None]
# A check's own rule over the whole profile (its keys against the engine's): (Profile, where), like a Validator.
ProfileRule = Callable[[Any, str], None]


class BackendTable(Protocol):
    """A backend's own `[engine.<name>]` table, a frozen dataclass the backend's package defines: config builds
    it key by key from its annotations (unknown keys and wrong types name the file), then `validate` applies its
    rules. Built with no arguments it is the backend's defaults."""

    def validate(self, where: str) -> None:
        """Raises UserError naming the key (`where` is the table's dotted name)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """As report.json records it (secrets redacted); for a hashed table, also what the hash covers."""
        ...


@dataclass(frozen=True)
class BackendRules:
    """What reading and validating a profile needs to know of one backend (its spec: harness.backends.spec)."""

    name: str
    flat_keys: tuple[str, ...] = ()  # `[engine]` keys it owns, flat where profiles have always set them
    settings: type[BackendTable] | None = None  # the type of its `[engine.<name>]` table; None: it has none
    hashed_table: bool = False  # the table decides what is read, so it is in the engine settings hash
    local_models: bool = True  # it runs models in the harness's own processes (a parity reference must)

    @property
    def table(self) -> str | None:
        """Its `[engine]` sub-table's key: the backend's name, when it has one."""
        return self.name if self.settings is not None else None


@dataclass(frozen=True)
class Catalogue:
    """What reading and validating a profile needs to know of the checks."""

    options: Mapping[str, Option[Any]] = field(default_factory=dict)  # by key: the keys beyond CheckSettings' fields
    validators: tuple[Validator, ...] = ()  # in check run order
    profile_rules: tuple[ProfileRule, ...] = ()  # in check run order, after every table's own rules
    names: tuple[str, ...] = ()  # every check, in run order
    backends: Mapping[str, BackendRules] = field(default_factory=dict)  # by name, in registration order

    def default_tables(self) -> dict[str, BackendTable]:
        """Every backend's own table at its defaults: what a profile that sets none of them holds."""
        return {name: rules.settings() for name, rules in self.backends.items() if rules.settings is not None}

    def recorded(self) -> dict[str, Any]:
        """The options report.json always records, at their defaults: what a profile holds before its own keys."""
        return {key: option.default for key, option in self.options.items() if option.recorded}

    def defaults(self) -> dict[str, Any]:
        """Each option's default: what CheckSettings.get answers for a key the profile leaves unset."""
        return {key: option.default for key, option in self.options.items()}
