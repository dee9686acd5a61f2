"""The plan file (YAML, README "Tariffs"): its model, its validation, and the rows it makes.

Validation collects every mistake of the file, one line each naming the plan (its name, else its
position), the field and the YAML line, e.g. ``plan "fixed-2026" (line 6): import_eur_per_kwh.t1: must be
a number between -10 and 10``; then the mistakes between plans (two plans with one name, two plans of one
device from one date). A file with any mistake makes no rows.

The YAML is read with PyYAML's safe loader, dates left as text (its implicit timestamps would turn
``2026-13-01`` into an exception without a line) and aliases refused (no expansion bombs); the file is
bounded in size and plans.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from p1_contracts.patterns import DEVICE_ID_PATTERN, is_device_id
from p1_contracts.zones import names as zone_names
from p1_tariffs.numbers import FEE_BOUND, PRICE_BOUND, amount
from p1_tariffs.operators import GRID_OPERATORS, GridOperator
from p1_tariffs.rules import EVERY_DEVICE, TariffPlan, starts_at

MAX_FILE_BYTES: Final = 1 << 20
MAX_PLANS: Final = 1000
MAX_DEVICES: Final = 1000
MAX_DEPTH: Final = 8  # plans → plan → price → t1 is 4
# tariff_plans' CHECK on name (migration 0010), restated: a test holds them equal.
NAME_RE: Final = re.compile(r"[0-9A-Za-z][0-9A-Za-z._ -]{0,63}")
DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
FIRST_DATE: Final = date(2000, 1, 2)  # its 00:00 is inside the stored range in every zone
LAST_DATE: Final = date(2099, 12, 30)
DYNAMIC: Final = "dynamic"
T = TypeVar("T")
PRICE_FORMS: Final = "a number, {t1: …, t2: …}, dynamic or {dynamic: true, markup: …}"


class PlanFileError(Exception):
    """The file is not a valid plan file; ``problems`` has one line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _price(value: Any) -> Decimal:
    return amount(value, -PRICE_BOUND, PRICE_BOUND)


def _fee(value: Any) -> Decimal:
    return amount(value, 0, FEE_BOUND)


def _vat(value: Any) -> Decimal:
    return amount(value, 0, 1)


def _name(value: Any) -> str:
    if not isinstance(value, str) or NAME_RE.fullmatch(value) is None:
        raise PydanticCustomError(
            "name",
            "must be 1 to 64 letters, digits, '.', '_', '-' or spaces, starting with a letter or digit",
        )
    return value


def _device(value: Any) -> str:
    if not isinstance(value, str) or not (value == EVERY_DEVICE or is_device_id(value)):
        raise PydanticCustomError(
            "device", 'must be a device id (pattern {pattern}) or "*"', {"pattern": DEVICE_ID_PATTERN}
        )
    return value


def _valid_from(value: Any) -> date:
    problem = PydanticCustomError(
        "valid_from", f"must be a local date YYYY-MM-DD from {FIRST_DATE} to {LAST_DATE}"
    )
    if not isinstance(value, str) or DATE_RE.fullmatch(value) is None:
        raise problem
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise problem from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise problem
    return day


@cache
def _zones() -> frozenset[str]:
    return zone_names()


def _tz(value: Any) -> str:
    if not isinstance(value, str) or value not in _zones():
        raise PydanticCustomError(
            "tz", "must be an IANA time zone of the pinned tzdata, e.g. Europe/Brussels"
        )
    return value


def _currency(value: Any) -> str:
    if not isinstance(value, str) or re.fullmatch(r"[A-Z]{3}", value) is None:
        raise PydanticCustomError("currency", "must be a currency code of three capital letters, e.g. EUR")
    return value


def _operator(value: Any) -> str:
    if value not in GRID_OPERATORS:
        raise PydanticCustomError("grid_operator", "must be one of " + ", ".join(GRID_OPERATORS))
    return str(value)


def _price_form(value: Any) -> Any:
    """One number (both registers), ``dynamic``, or a mapping for the model's fields."""
    if value == DYNAMIC:
        return {"dynamic": True}
    if isinstance(value, dict):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        _price(value)  # a wrong number is one mistake of the field, not one per register
        return {"t1": value, "t2": value}
    raise PydanticCustomError("price_form", f"must be {PRICE_FORMS}")


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise PydanticCustomError("flag", "must be true or false")
    return value


def _optional(check: Callable[[Any], T]) -> Callable[[Any], T | None]:
    """``check``, with None (the field given empty, or left out) passed as is: the validator stays
    outside the union, so a wrong value is one mistake, not one per member of ``X | None``."""
    return lambda value: None if value is None else check(value)


Price = Annotated[Decimal, BeforeValidator(_price)]
OptionalPrice = Annotated[Decimal | None, BeforeValidator(_optional(_price))]
Fee = Annotated[Decimal, BeforeValidator(_fee)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceForm(_Strict):
    """A direction's price per kWh, excl. VAT: per register (t1 day, t2 night), or dynamic (the market
    price plus ``markup``)."""

    t1: OptionalPrice = None
    t2: OptionalPrice = None
    dynamic: Annotated[bool, BeforeValidator(_flag)] = False
    markup: Price = Decimal(0)

    @model_validator(mode="after")
    def _one_form(self) -> "PriceForm":
        if self.dynamic and (self.t1 is not None or self.t2 is not None):
            raise PydanticCustomError("price_form", "dynamic takes no t1/t2 (only a markup)")
        if not self.dynamic and (self.t1 is None or self.t2 is None):
            raise PydanticCustomError("price_form", "needs both t1 and t2 (or one number, or dynamic)")
        if not self.dynamic and self.markup != 0:
            raise PydanticCustomError("price_form", "a markup goes with dynamic only")
        return self


class PlanSpec(_Strict):
    """One plan of the file, as written (``devices`` may be several: one row each)."""

    name: Annotated[str, BeforeValidator(_name)]
    devices: Annotated[
        list[Annotated[str, BeforeValidator(_device)]], Field(min_length=1, max_length=MAX_DEVICES)
    ]
    valid_from: Annotated[date, BeforeValidator(_valid_from)]
    tz: Annotated[str, BeforeValidator(_tz)]
    import_eur_per_kwh: Annotated[PriceForm, BeforeValidator(_price_form)]
    export_eur_per_kwh: Annotated[PriceForm, BeforeValidator(_price_form)]
    fixed_eur_per_month: Fee = Decimal(0)
    capacity_eur_per_kw_year: Annotated[Decimal | None, BeforeValidator(_optional(_fee))] = None
    grid_operator: Annotated[GridOperator | None, BeforeValidator(_optional(_operator))] = None
    vat: Annotated[Decimal, BeforeValidator(_vat)]
    currency: Annotated[str, BeforeValidator(_currency)] = "EUR"

    @model_validator(mode="after")
    def _consistent(self) -> "PlanSpec":
        if self.capacity_eur_per_kw_year is not None and self.grid_operator is not None:
            raise PydanticCustomError("capacity", "give capacity_eur_per_kw_year or grid_operator, not both")
        if EVERY_DEVICE in self.devices and len(self.devices) > 1:
            raise PydanticCustomError("devices", 'devices: "*" (every device) stands alone')
        if len(set(self.devices)) != len(self.devices):
            raise PydanticCustomError("devices", "devices: a device is named twice")
        return self

    def rows(self) -> list[TariffPlan]:
        start = starts_at(self.valid_from, self.tz)
        imp, exp = self.import_eur_per_kwh, self.export_eur_per_kwh
        return [
            TariffPlan(
                name=self.name,
                device_id=device,
                valid_from=self.valid_from,
                tz=self.tz,
                starts_at=start,
                import_t1=imp.t1,
                import_t2=imp.t2,
                import_dynamic=imp.dynamic,
                import_markup=imp.markup,
                export_t1=exp.t1,
                export_t2=exp.t2,
                export_dynamic=exp.dynamic,
                export_markup=exp.markup,
                fixed_eur_per_month=self.fixed_eur_per_month,
                capacity_eur_per_kw_year=self.capacity_eur_per_kw_year,
                grid_operator=self.grid_operator,
                vat=self.vat,
                currency=self.currency,
            )
            for device in self.devices
        ]


@dataclass(frozen=True)
class PlanFile:
    """A valid plan file: its plans, and the rows of tariff_plans they make."""

    plans: list[PlanSpec]

    def rows(self) -> list[TariffPlan]:
        return [row for plan in self.plans for row in plan.rows()]


class _Loader(yaml.SafeLoader):
    """The safe loader without implicit timestamps: a date stays the text it was (validated here)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_plan_file(path: Path) -> PlanFile:
    """The plan file at ``path``; raises PlanFileError (every mistake) or OSError."""
    with path.open("rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise PlanFileError([f"the file is larger than {MAX_FILE_BYTES} bytes"])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PlanFileError(["the file is not UTF-8 text"]) from None
    return parse_plan_file(text)


def parse_plan_file(text: str) -> PlanFile:
    """The plan file of ``text``; raises PlanFileError naming every mistake."""
    root, data = _yaml(text)
    if not isinstance(data, dict) or not isinstance(data.get("plans"), list) or not data["plans"]:
        raise PlanFileError(["the file must be a mapping with a non-empty list `plans:`"])
    problems = [f"line {_line(n)}: unknown top-level field {k!r}" for k, n in _keys(root) if k != "plans"]
    items: list[Any] = data["plans"]
    if len(items) > MAX_PLANS:
        raise PlanFileError([f"more than {MAX_PLANS} plans"])
    plan_nodes = _value_node(root, "plans")
    plans: list[PlanSpec] = []
    for i, item in enumerate(items):
        node = plan_nodes.value[i] if isinstance(plan_nodes, yaml.SequenceNode) else None
        label = _label(i, item)
        try:
            plans.append(PlanSpec.model_validate(item))
        except ValidationError as exc:
            problems.extend(_describe(label, node, exc))
        problems.extend(f"{label} (line {_line(n)}): {k}: given twice" for k, n in _twice(node))
    if problems:
        raise PlanFileError(problems)
    problems = _across(plans, plan_nodes)
    if problems:
        raise PlanFileError(problems)
    return PlanFile(plans)


def _yaml(text: str) -> tuple[yaml.Node | None, Any]:
    try:
        _check_events(text)
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise PlanFileError([f"{where}not valid YAML: {exc.problem or exc.context}"]) from None
    except yaml.YAMLError as exc:  # a reader error (a control character) and the like
        raise PlanFileError([f"not valid YAML ({type(exc).__name__})"]) from None
    return root, data


def _check_events(text: str) -> None:
    """No aliases (expansion bombs) and no deep nesting (PyYAML composes recursively): checked on the
    parser's events, before anything is built."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            raise PlanFileError(["YAML aliases (*name) are not accepted in a plan file"])
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 0
                raise PlanFileError([f"line {line}: nested more than {MAX_DEPTH} levels deep"])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _label(i: int, item: Any) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    if isinstance(name, str) and NAME_RE.fullmatch(name):
        return f'plan "{name}"'
    return f"plan #{i + 1}"


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 0


def _keys(node: yaml.Node | None) -> Iterator[tuple[str, yaml.Node]]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                yield str(key.value), value


def _twice(node: yaml.Node | None) -> Iterator[tuple[str, yaml.Node]]:
    """The keys a mapping gives more than once (YAML would keep the last silently)."""
    seen: set[str] = set()
    for key, value in _keys(node):
        if key in seen:
            yield key, value
        seen.add(key)


def _value_node(node: yaml.Node | None, key: str | int) -> yaml.Node | None:
    if isinstance(key, int):
        return node.value[key] if isinstance(node, yaml.SequenceNode) and key < len(node.value) else None
    found = [value for k, value in _keys(node) if k == key]
    return found[-1] if found else None


def _describe(label: str, node: yaml.Node | None, exc: ValidationError) -> Iterator[str]:
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(err["loc"])
        field = ".".join(str(part) if isinstance(part, str) else f"[{part}]" for part in loc)
        field = field.replace(".[", "[")
        deepest = node
        for part in loc:
            deeper = _value_node(deepest, part)
            if deeper is None:
                break
            deepest = deeper
        yield f"{label} (line {_line(deepest)}): {field + ': ' if field else ''}{_message(err)}"


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a mapping of fields"
    if kind in ("list_type",):
        return "must be a list"
    if kind in ("too_short",):
        return "must not be empty"
    if kind in ("too_long",):
        return f"at most {MAX_DEVICES} entries"
    return str(err["msg"])


def _across(plans: list[PlanSpec], nodes: yaml.Node | None) -> list[str]:
    """The mistakes between plans: one name twice; one device with two plans from one date (the table's
    key), or starting at one instant (dates in zones 24 h apart): which would be in force?"""
    problems: list[str] = []
    by_name: dict[str, int] = {}
    by_date: dict[tuple[str, date], int] = {}
    by_instant: dict[tuple[str, datetime], int] = {}
    for i, plan in enumerate(plans):
        line = _line(_value_node(nodes, i))
        if plan.name in by_name:
            problems.append(
                f'plan "{plan.name}" (line {line}): name: the same name as the plan at line '
                f"{_line(_value_node(nodes, by_name[plan.name]))}"
            )
        by_name.setdefault(plan.name, i)
        start = starts_at(plan.valid_from, plan.tz)
        for device in plan.devices:
            j = by_date.get((device, plan.valid_from), by_instant.get((device, start)))
            if j is not None:
                problems.append(
                    f'plan "{plan.name}" (line {line}): valid_from: device {device} has plan '
                    f'"{plans[j].name}" (line {_line(_value_node(nodes, j))}) from {plan.valid_from} '
                    f"({start:%Y-%m-%d %H:%M} UTC) too"
                )
            by_date.setdefault((device, plan.valid_from), i)
            by_instant.setdefault((device, start), i)
    return problems
