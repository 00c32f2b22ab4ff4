"""The canonical menu: one platform-neutral description of what a restaurant sells.

Every adapter translates *from* this model; nothing here knows a platform's format. The model is
flat with id references, like the platforms' own formats, which keeps references checkable and
error paths precise:

- ``categories`` hold ``itemIds``; a category may have a ``parentId`` (one level of sub-categories);
- ``items`` hold ``modifierGroupIds``; a group holds ``optionIds``; an option may itself hold
  ``modifierGroupIds`` (nested customisation), at most two levels below an item;
- every id is unique across the whole menu (categories, items, groups and options share one space,
  as Delivery Hero requires and as keeps references unambiguous).

Money is ``Decimal`` in major units of the menu's ``currency``; a price may not have more decimals
than the currency's minor units (3 for KWD, BHD, OMR, JOD; 2 for AED, SAR, GBP...).

Parsing (pydantic) checks shapes; ``check_menu`` checks the rules that span the document
(references, uniqueness, schedules, precision) and returns every issue with its exact path.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import time
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel

# ISO 4217 minor units of the currencies the platforms serve (and a few common others).
CURRENCY_MINOR_UNITS: dict[str, int] = {
    "AED": 2, "SAR": 2, "QAR": 2, "EGP": 2, "GBP": 2, "EUR": 2, "USD": 2, "LBP": 2,
    "SGD": 2, "AUD": 2, "HKD": 2, "PKR": 2, "TRY": 2, "IRR": 2, "MAD": 2, "INR": 2,
    "KWD": 3, "BHD": 3, "OMR": 3, "JOD": 3, "IQD": 3, "TND": 3, "LYD": 3,
    "JPY": 0, "KRW": 0,
}  # fmt: skip

_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}$"

EntityId = Annotated[str, StringConstraints(pattern=_ID)]
NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


def _check_localized(value: dict[str, str]) -> dict[str, str]:
    if not value:
        raise ValueError("at least one language is required")
    for lang, text in value.items():
        if not _LANG.match(lang):
            raise ValueError(f"{lang!r} is not a language code (e.g. 'en', 'ar', 'en-GB')")
        if not text.strip():
            raise ValueError(f"the {lang!r} text is blank")
    return value


LocalizedText = Annotated[dict[str, str], AfterValidator(_check_localized)]
"""Text by language code, e.g. ``{"en": "Hummus", "ar": "حمص"}``; at least one language."""

Money = Annotated[Decimal, Field(ge=0, max_digits=14, allow_inf_nan=False)]


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @property
    def iso_index(self) -> int:
        """0 = Monday ... 6 = Sunday (ISO order)."""
        return list(Weekday).index(self)


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        ser_json_inf_nan="null",
    )


class Image(_Model):
    url: AnyHttpUrl
    alt: LocalizedText | None = None


LocalTime = Annotated[
    time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?$",
            "description": "Local time of the store, HH:MM",
        }
    ),
]


class TimeRange(_Model):
    """``start``-``end`` local time; an ``end`` before ``start`` runs past midnight."""

    start: LocalTime
    end: LocalTime

    @field_validator("start", "end")
    @classmethod
    def _minutes_only(cls, value: time) -> time:
        if value.second or value.microsecond:
            raise ValueError("times are whole minutes (HH:MM)")
        if value.tzinfo is not None:
            raise ValueError("times are local to the store (no time zone)")
        return value

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def minutes(self) -> tuple[int, int]:
        start = self.start.hour * 60 + self.start.minute
        end = self.end.hour * 60 + self.end.minute
        if end <= start:
            end += 24 * 60
        return start, end


class ScheduleRule(_Model):
    """On these weekdays, during these ranges."""

    days: Annotated[list[Weekday], Field(min_length=1)]
    ranges: Annotated[list[TimeRange], Field(min_length=1)]


class PlatformOverride(_Model):
    """What differs on one platform: its own price, visibility or name."""

    price: Money | None = None
    is_visible: bool | None = None
    name: LocalizedText | None = None
    description: LocalizedText | None = None


PlatformKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,31}$")]


class Category(_Model):
    id: EntityId
    name: LocalizedText
    description: LocalizedText | None = None
    parent_id: EntityId | None = None
    """Set on a sub-category: the id of its parent (one level only)."""
    item_ids: list[EntityId] = Field(default_factory=list)
    image: Image | None = None
    sort_order: int = 0


class Item(_Model):
    id: EntityId
    name: LocalizedText
    description: LocalizedText | None = None
    price: Money
    sku: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    """The restaurant's own code (PLU) for the item."""
    image: Image | None = None
    modifier_group_ids: list[EntityId] = Field(default_factory=list)
    tax_rate: Annotated[Decimal, Field(ge=0, le=100)] | None = None
    """Percent; falls back to the menu's ``taxRate``."""
    allergens: list[NonBlank] = Field(default_factory=list)
    calories: Annotated[int, Field(ge=0, le=20_000)] | None = None
    tags: list[NonBlank] = Field(default_factory=list)
    preparation_time_minutes: Annotated[int, Field(ge=0, le=240)] | None = None
    contains_alcohol: bool = False
    is_available: bool = True
    schedule: list[ScheduleRule] = Field(default_factory=list)
    sort_order: int = 0
    platform_overrides: dict[PlatformKey, PlatformOverride] = Field(default_factory=dict)


class ModifierOption(_Model):
    id: EntityId
    name: LocalizedText
    price: Money = Decimal(0)
    """Added to the item's price when chosen."""
    sku: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    is_available: bool = True
    is_default: bool = False
    calories: Annotated[int, Field(ge=0, le=20_000)] | None = None
    modifier_group_ids: list[EntityId] = Field(default_factory=list)
    """Nested groups offered once this option is chosen."""
    sort_order: int = 0
    platform_overrides: dict[PlatformKey, PlatformOverride] = Field(default_factory=dict)


class ModifierGroup(_Model):
    id: EntityId
    name: LocalizedText
    description: LocalizedText | None = None
    min_selections: Annotated[int, Field(ge=0, le=100)] = 0
    max_selections: Annotated[int, Field(ge=1, le=100)] = 1
    option_ids: Annotated[list[EntityId], Field(min_length=1)]
    allow_repeats: bool = False
    sort_order: int = 0


class CanonicalMenu(_Model):
    """A whole menu, as the restaurant describes it."""

    name: LocalizedText
    description: LocalizedText | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    tax_rate: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(0)
    """Default tax rate in percent for items that set none."""
    prices_include_tax: bool = True
    image: Image | None = None
    """Cover image (Deliveroo requires one per mealtime)."""
    schedule: list[ScheduleRule] = Field(default_factory=list)
    """When the menu is served; empty means always."""
    categories: Annotated[list[Category], Field(min_length=1)]
    items: Annotated[list[Item], Field(min_length=1)]
    modifier_groups: list[ModifierGroup] = Field(default_factory=list)
    modifier_options: list[ModifierOption] = Field(default_factory=list)

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in CURRENCY_MINOR_UNITS:
            known = ", ".join(sorted(CURRENCY_MINOR_UNITS))
            raise ValueError(f"unsupported currency {value!r}; supported: {known}")
        return value

    @property
    def minor_units(self) -> int:
        return CURRENCY_MINOR_UNITS[self.currency]

    def item(self, item_id: str) -> Item | None:
        return self._index()[0].get(item_id)

    def group(self, group_id: str) -> ModifierGroup | None:
        return self._index()[1].get(group_id)

    def option(self, option_id: str) -> ModifierOption | None:
        return self._index()[2].get(option_id)

    def _index(
        self,
    ) -> tuple[dict[str, Item], dict[str, ModifierGroup], dict[str, ModifierOption]]:
        return self._lookup

    @cached_property
    def _lookup(
        self,
    ) -> tuple[dict[str, Item], dict[str, ModifierGroup], dict[str, ModifierOption]]:
        return (
            {item.id: item for item in self.items},
            {group.id: group for group in self.modifier_groups},
            {option.id: option for option in self.modifier_options},
        )

    def to_document(self) -> dict[str, Any]:
        """The JSON-ready document (camelCase, decimals as strings), as stored."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def content_hash(self) -> str:
        return content_hash(self.to_document())


def content_hash(document: dict[str, Any]) -> str:
    """A stable hash of a JSON document (sorted keys, compact separators)."""
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


class MenuIssue(_Model):
    """One broken rule: where (a path into the document) and what."""

    path: str
    message: str
    code: str


def check_menu(menu: CanonicalMenu) -> list[MenuIssue]:
    """Every rule that spans the document; an empty list means the menu is consistent."""
    return list(_issues(menu))


def _issues(menu: CanonicalMenu) -> Iterator[MenuIssue]:
    seen: dict[str, str] = {}
    collections: list[tuple[str, list[Any]]] = [
        ("categories", list(menu.categories)),
        ("items", list(menu.items)),
        ("modifierGroups", list(menu.modifier_groups)),
        ("modifierOptions", list(menu.modifier_options)),
    ]
    for name, entities in collections:
        for index, entity in enumerate(entities):
            path = f"{name}[{index}].id"
            if entity.id in seen:
                yield MenuIssue(
                    path=path,
                    message=f"id {entity.id!r} is already used at {seen[entity.id]}",
                    code="duplicate_id",
                )
            else:
                seen[entity.id] = path

    categories = {c.id: c for c in menu.categories}
    items, groups, options = menu._index()

    for index, category in enumerate(menu.categories):
        path = f"categories[{index}]"
        if category.parent_id is not None:
            parent = categories.get(category.parent_id)
            if parent is None:
                yield MenuIssue(
                    path=f"{path}.parentId",
                    message=f"unknown category {category.parent_id!r}",
                    code="unknown_reference",
                )
            elif parent.parent_id is not None:
                yield MenuIssue(
                    path=f"{path}.parentId",
                    message="sub-categories may not have sub-categories (one level only)",
                    code="nesting_too_deep",
                )
            elif parent.id == category.id:
                yield MenuIssue(
                    path=f"{path}.parentId",
                    message="a category cannot be its own parent",
                    code="cycle",
                )
        for ref_index, item_id in enumerate(category.item_ids):
            if item_id not in items:
                yield MenuIssue(
                    path=f"{path}.itemIds[{ref_index}]",
                    message=f"unknown item {item_id!r}",
                    code="unknown_reference",
                )
        has_children = any(c.parent_id == category.id and c.item_ids for c in menu.categories)
        if not category.item_ids and not has_children:
            yield MenuIssue(
                path=f"{path}.itemIds", message="category has no items", code="empty_category"
            )

    in_category = {item_id for c in menu.categories for item_id in c.item_ids}
    quantum = Decimal(1).scaleb(-menu.minor_units)
    for index, item in enumerate(menu.items):
        path = f"items[{index}]"
        if item.id not in in_category:
            yield MenuIssue(path=path, message="item is in no category", code="dangling_item")
        yield from _price_issues(item.price, quantum, f"{path}.price", menu.currency)
        for platform, override in item.platform_overrides.items():
            if override.price is not None:
                yield from _price_issues(
                    override.price,
                    quantum,
                    f"{path}.platformOverrides.{platform}.price",
                    menu.currency,
                )
        for ref_index, group_id in enumerate(item.modifier_group_ids):
            if group_id not in groups:
                yield MenuIssue(
                    path=f"{path}.modifierGroupIds[{ref_index}]",
                    message=f"unknown modifier group {group_id!r}",
                    code="unknown_reference",
                )
        yield from _schedule_issues(item.schedule, f"{path}.schedule")

    used_options: set[str] = set()
    for index, group in enumerate(menu.modifier_groups):
        path = f"modifierGroups[{index}]"
        if group.min_selections > group.max_selections:
            yield MenuIssue(
                path=f"{path}.minSelections",
                message=f"minSelections ({group.min_selections}) is greater than maxSelections "
                f"({group.max_selections})",
                code="min_greater_than_max",
            )
        if not group.allow_repeats and group.min_selections > len(group.option_ids):
            yield MenuIssue(
                path=f"{path}.minSelections",
                message=f"minSelections ({group.min_selections}) exceeds the number of options "
                f"({len(group.option_ids)})",
                code="min_exceeds_options",
            )
        for ref_index, option_id in enumerate(group.option_ids):
            used_options.add(option_id)
            if option_id not in options:
                yield MenuIssue(
                    path=f"{path}.optionIds[{ref_index}]",
                    message=f"unknown modifier option {option_id!r}",
                    code="unknown_reference",
                )

    for index, option in enumerate(menu.modifier_options):
        path = f"modifierOptions[{index}]"
        if option.id not in used_options:
            yield MenuIssue(
                path=path, message="option is in no modifier group", code="dangling_option"
            )
        yield from _price_issues(option.price, quantum, f"{path}.price", menu.currency)
        for ref_index, group_id in enumerate(option.modifier_group_ids):
            if group_id not in groups:
                yield MenuIssue(
                    path=f"{path}.modifierGroupIds[{ref_index}]",
                    message=f"unknown modifier group {group_id!r}",
                    code="unknown_reference",
                )

    # Nesting: item -> group -> option -> group -> option, and no deeper (no cycles either).
    for index, item in enumerate(menu.items):
        for ref_index, group_id in enumerate(item.modifier_group_ids):
            depth = _group_depth(group_id, groups, options, set())
            if depth > 2:
                yield MenuIssue(
                    path=f"items[{index}].modifierGroupIds[{ref_index}]",
                    message=f"modifier groups nest {depth} levels deep under this item; at most 2",
                    code="nesting_too_deep",
                )

    yield from _schedule_issues(menu.schedule, "schedule")


def _group_depth(
    group_id: str,
    groups: dict[str, ModifierGroup],
    options: dict[str, ModifierOption],
    trail: set[str],
) -> int:
    group = groups.get(group_id)
    if group is None:
        return 1
    if group_id in trail:
        return 99  # a cycle is infinitely deep
    deepest = 0
    for option_id in group.option_ids:
        option = options.get(option_id)
        if option is None:
            continue
        for nested in option.modifier_group_ids:
            deepest = max(deepest, _group_depth(nested, groups, options, trail | {group_id}))
    return 1 + deepest


def _price_issues(
    price: Decimal, quantum: Decimal, path: str, currency: str
) -> Iterator[MenuIssue]:
    if price != price.quantize(quantum):
        places = -quantum.as_tuple().exponent  # type: ignore[operator]
        yield MenuIssue(
            path=path,
            message=f"{price} has more decimals than {currency} allows ({places})",
            code="price_precision",
        )


def _schedule_issues(rules: list[ScheduleRule], path: str) -> Iterator[MenuIssue]:
    """Ranges may cross midnight, but no two ranges may cover the same minute of the week."""
    week = 7 * 24 * 60
    taken: list[tuple[int, int, str]] = []
    for rule_index, rule in enumerate(rules):
        for range_index, time_range in enumerate(rule.ranges):
            range_path = f"{path}[{rule_index}].ranges[{range_index}]"
            if time_range.start == time_range.end:
                yield MenuIssue(
                    path=range_path, message="start and end are the same time", code="empty_range"
                )
                continue
            start, end = time_range.minutes()
            for day in rule.days:
                offset = day.iso_index * 24 * 60
                spans = [(offset + start, offset + end)]
                if offset + end > week:  # Sunday night into Monday morning
                    spans = [(offset + start, week), (0, offset + end - week)]
                for lo, hi in spans:
                    for other_lo, other_hi, other_path in taken:
                        if lo < other_hi and other_lo < hi:
                            yield MenuIssue(
                                path=range_path,
                                message=f"overlaps {other_path} on {day.value}",
                                code="overlapping_schedule",
                            )
                            break
                    taken.append((lo, hi, range_path))
