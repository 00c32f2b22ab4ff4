"""The canonical menu: the sample is valid; each rule fails with its exact path; JSON round-trips."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from menusync.menus.canonical import CURRENCY_MINOR_UNITS, CanonicalMenu, check_menu
from menusync.menus.samples import generate_menu, sample_document, sample_menu


def _issues(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (issue.path, issue.code) for issue in check_menu(CanonicalMenu.model_validate(document))
    ]


def _minimal() -> dict[str, Any]:
    return {
        "name": {"en": "Menu"},
        "currency": "AED",
        "categories": [{"id": "c1", "name": {"en": "Mains"}, "itemIds": ["i1", "i2"]}],
        "items": [
            {"id": "i1", "name": {"en": "Falafel"}, "price": "10.50", "modifierGroupIds": ["g1"]},
            {"id": "i2", "name": {"en": "Hummus"}, "price": "12"},
        ],
        "modifierGroups": [
            {
                "id": "g1",
                "name": {"en": "Sauce"},
                "minSelections": 1,
                "maxSelections": 1,
                "optionIds": ["o1", "o2"],
            }
        ],
        "modifierOptions": [
            {"id": "o1", "name": {"en": "Tahini"}},
            {"id": "o2", "name": {"en": "Garlic"}, "price": "1.00"},
        ],
    }


def test_sample_menu_is_valid_and_realistic() -> None:
    menu = sample_menu()

    assert check_menu(menu) == []
    assert len(menu.items) >= 60
    assert all(set(item.name) == {"en", "ar"} for item in menu.items)
    assert menu.modifier_groups
    assert menu.modifier_options


def test_large_generated_menu_is_valid() -> None:
    menu = generate_menu(5000, seed=7)

    assert len(menu.items) == 5000
    assert check_menu(menu) == []


def test_minimal_menu_is_valid() -> None:
    assert _issues(_minimal()) == []


def test_duplicate_ids_across_entities() -> None:
    document = _minimal()
    document["modifierOptions"][1]["id"] = "i2"
    document["modifierGroups"][0]["optionIds"] = ["o1", "i2"]

    assert ("modifierOptions[1].id", "duplicate_id") in _issues(document)


def test_unknown_item_in_category() -> None:
    document = _minimal()
    document["categories"][0]["itemIds"].append("ghost")

    assert ("categories[0].itemIds[2]", "unknown_reference") in _issues(document)


def test_unknown_modifier_group_on_item() -> None:
    document = _minimal()
    document["items"][1]["modifierGroupIds"] = ["nope"]

    assert ("items[1].modifierGroupIds[0]", "unknown_reference") in _issues(document)


def test_unknown_option_in_group() -> None:
    document = _minimal()
    document["modifierGroups"][0]["optionIds"].append("o9")

    assert ("modifierGroups[0].optionIds[2]", "unknown_reference") in _issues(document)


def test_min_greater_than_max() -> None:
    document = _minimal()
    document["modifierGroups"][0].update(minSelections=2, maxSelections=1)

    assert ("modifierGroups[0].minSelections", "min_greater_than_max") in _issues(document)


def test_min_exceeds_number_of_options() -> None:
    document = _minimal()
    document["modifierGroups"][0].update(minSelections=3, maxSelections=3)

    assert ("modifierGroups[0].minSelections", "min_exceeds_options") in _issues(document)


def test_negative_price_is_refused_when_parsing() -> None:
    document = _minimal()
    document["items"][0]["price"] = "-1"

    with pytest.raises(ValidationError) as caught:
        CanonicalMenu.model_validate(document)
    assert caught.value.errors()[0]["loc"] == ("items", 0, "price")


def test_price_with_more_decimals_than_the_currency() -> None:
    document = _minimal()
    document["items"][0]["price"] = "10.555"

    assert ("items[0].price", "price_precision") in _issues(document)


def test_three_decimals_are_fine_in_kuwaiti_dinar() -> None:
    document = _minimal()
    document["currency"] = "KWD"
    document["items"][0]["price"] = "1.250"

    assert _issues(document) == []


def test_empty_category() -> None:
    document = _minimal()
    document["categories"].append({"id": "c2", "name": {"en": "Empty"}, "itemIds": []})

    assert ("categories[1].itemIds", "empty_category") in _issues(document)


def test_parent_category_with_items_only_in_its_sub_category_is_not_empty() -> None:
    document = _minimal()
    document["categories"] = [
        {"id": "c0", "name": {"en": "Food"}},
        {"id": "c1", "name": {"en": "Mains"}, "parentId": "c0", "itemIds": ["i1", "i2"]},
    ]

    assert _issues(document) == []


def test_sub_categories_nest_one_level_only() -> None:
    document = _minimal()
    document["categories"] = [
        {"id": "c0", "name": {"en": "Food"}},
        {"id": "c1", "name": {"en": "Mains"}, "parentId": "c0"},
        {"id": "c2", "name": {"en": "Grills"}, "parentId": "c1", "itemIds": ["i1", "i2"]},
    ]

    assert ("categories[2].parentId", "nesting_too_deep") in _issues(document)


def test_dangling_option() -> None:
    document = _minimal()
    document["modifierOptions"].append({"id": "o3", "name": {"en": "Orphan"}})

    assert ("modifierOptions[2]", "dangling_option") in _issues(document)


def test_dangling_item() -> None:
    document = _minimal()
    document["items"].append({"id": "i3", "name": {"en": "Lost"}, "price": "1"})

    assert ("items[2]", "dangling_item") in _issues(document)


def test_modifiers_nest_at_most_two_levels() -> None:
    document = _minimal()
    document["modifierOptions"][0]["modifierGroupIds"] = ["g2"]
    document["modifierGroups"] += [
        {"id": "g2", "name": {"en": "Level 2"}, "optionIds": ["o3"]},
        {"id": "g3", "name": {"en": "Level 3"}, "optionIds": ["o4"]},
    ]
    document["modifierOptions"] += [
        {"id": "o3", "name": {"en": "Deep"}, "modifierGroupIds": ["g3"]},
        {"id": "o4", "name": {"en": "Deeper"}},
    ]

    assert ("items[0].modifierGroupIds[0]", "nesting_too_deep") in _issues(document)


def test_two_levels_of_modifiers_are_fine() -> None:
    document = _minimal()
    document["modifierOptions"][0]["modifierGroupIds"] = ["g2"]
    document["modifierGroups"].append({"id": "g2", "name": {"en": "Level 2"}, "optionIds": ["o3"]})
    document["modifierOptions"].append({"id": "o3", "name": {"en": "Deep"}})

    assert _issues(document) == []


def test_overlapping_schedule_ranges() -> None:
    document = _minimal()
    document["schedule"] = [
        {"days": ["monday"], "ranges": [{"start": "10:00", "end": "15:00"}]},
        {"days": ["monday", "tuesday"], "ranges": [{"start": "14:00", "end": "22:00"}]},
    ]

    assert ("schedule[1].ranges[0]", "overlapping_schedule") in _issues(document)


def test_past_midnight_range_overlapping_the_next_morning() -> None:
    document = _minimal()
    document["schedule"] = [
        {"days": ["sunday"], "ranges": [{"start": "20:00", "end": "02:00"}]},
        {"days": ["monday"], "ranges": [{"start": "01:00", "end": "10:00"}]},
    ]

    assert ("schedule[1].ranges[0]", "overlapping_schedule") in _issues(document)


def test_past_midnight_ranges_are_allowed() -> None:
    document = _minimal()
    document["schedule"] = [
        {"days": ["friday", "saturday"], "ranges": [{"start": "18:00", "end": "02:00"}]},
        {"days": ["saturday"], "ranges": [{"start": "10:00", "end": "16:00"}]},
    ]

    assert _issues(document) == []


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (lambda d: d.update(name={}), ("name",)),
        (lambda d: d["items"][0].update(name={"en": "  "}), ("items", 0, "name")),
        (lambda d: d["items"][0].update(name={"english": "x"}), ("items", 0, "name")),
        (lambda d: d.update(currency="XYZ"), ("currency",)),
        (lambda d: d["items"][0].update(image={"url": "not a url"}), ("items", 0, "image", "url")),
        (lambda d: d["items"][0].update(colour="red"), ("items", 0, "colour")),
        (
            lambda d: d.update(
                schedule=[{"days": ["monday"], "ranges": [{"start": "25:00", "end": "10:00"}]}]
            ),
            ("schedule", 0, "ranges", 0, "start"),
        ),
    ],
)
def test_shape_errors_carry_field_paths(mutate: Any, loc: tuple[object, ...]) -> None:
    document = _minimal()
    mutate(document)

    with pytest.raises(ValidationError) as caught:
        CanonicalMenu.model_validate(document)
    assert loc in [error["loc"] for error in caught.value.errors()]


def test_content_hash_changes_with_content_only() -> None:
    first = sample_menu()
    same = CanonicalMenu.model_validate(sample_document())
    changed_doc = sample_document()
    changed_doc["items"][0]["price"] = "23.00"

    assert first.content_hash() == same.content_hash()
    assert first.content_hash() != CanonicalMenu.model_validate(changed_doc).content_hash()


_texts = st.dictionaries(
    st.sampled_from(["en", "ar", "fr"]),
    st.text(min_size=1, max_size=20).filter(lambda text: text.strip() != ""),
    min_size=1,
)


@st.composite
def menus(draw: st.DrawFn) -> dict[str, Any]:
    currency = draw(st.sampled_from(sorted(CURRENCY_MINOR_UNITS)))
    places = CURRENCY_MINOR_UNITS[currency]
    prices = st.decimals(
        min_value=0, max_value=10_000, places=places, allow_nan=False, allow_infinity=False
    )
    count = draw(st.integers(min_value=1, max_value=8))
    items = [
        {
            "id": f"i{index}",
            "name": draw(_texts),
            "price": str(draw(prices)),
            "calories": draw(st.none() | st.integers(min_value=0, max_value=3000)),
            "tags": draw(st.lists(st.sampled_from(["vegan", "spicy", "new"]), unique=True)),
        }
        for index in range(count)
    ]
    return {
        "name": draw(_texts),
        "currency": currency,
        "categories": [
            {"id": "c", "name": draw(_texts), "itemIds": [item["id"] for item in items]}
        ],
        "items": items,
    }


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(menus())
def test_generated_menus_round_trip_through_json(document: dict[str, Any]) -> None:
    menu = CanonicalMenu.model_validate(copy.deepcopy(document))

    again = CanonicalMenu.model_validate_json(menu.model_dump_json(by_alias=True))

    assert again == menu
    assert again.content_hash() == menu.content_hash()
    assert all(isinstance(item.price, Decimal) for item in again.items)
