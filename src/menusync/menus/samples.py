"""The demo menu (a bilingual Middle Eastern restaurant) and a generator of large menus.

``sample_menu()`` is what ``menusync serve --demo`` seeds and what adapters' golden payloads are
built from; ``generate_menu(n)`` makes menus of thousands of items for benchmarks and limits.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from menusync.menus.canonical import CanonicalMenu

_IMG = "https://cdn.menusync.example/demo/{}.jpg"

# (category id, English, Arabic, [(item id, English, Arabic, price AED, calories, groups)])
_CATALOG: list[tuple[str, str, str, list[tuple[str, str, str, str, int, list[str]]]]] = [
    ("cold-mezze", "Cold Mezze", "مقبلات باردة", [
        ("hummus", "Hummus", "حمص", "22.00", 280, []),
        ("hummus-beiruti", "Hummus Beiruti", "حمص بيروتي", "24.00", 300, []),
        ("moutabal", "Moutabal", "متبل", "22.00", 210, []),
        ("baba-ghanoush", "Baba Ghanoush", "بابا غنوج", "22.00", 190, []),
        ("muhammara", "Muhammara", "محمرة", "24.00", 260, []),
        ("labneh", "Labneh with Garlic", "لبنة بالثوم", "20.00", 230, []),
        ("warak-enab", "Stuffed Vine Leaves", "ورق عنب", "26.00", 250, []),
        ("tabbouleh", "Tabbouleh", "تبولة", "24.00", 150, []),
        ("fattoush", "Fattoush", "فتوش", "24.00", 180, ["dressing"]),
        ("shanklish", "Shanklish", "شنكليش", "26.00", 240, []),
    ]),
    ("hot-mezze", "Hot Mezze", "مقبلات ساخنة", [
        ("falafel", "Falafel (6 pcs)", "فلافل ٦ قطع", "18.00", 330, ["dip"]),
        ("kibbeh", "Fried Kibbeh (4 pcs)", "كبة مقلية", "28.00", 420, ["dip"]),
        ("sambousek-cheese", "Cheese Sambousek", "سمبوسك جبنة", "24.00", 360, []),
        ("sambousek-meat", "Meat Sambousek", "سمبوسك لحمة", "26.00", 390, []),
        ("batata-harra", "Batata Harra", "بطاطا حرة", "20.00", 310, []),
        ("halloumi", "Grilled Halloumi", "حلوم مشوي", "30.00", 340, []),
        ("sujuk", "Sujuk", "سجق", "30.00", 410, []),
        ("foul", "Foul Medames", "فول مدمس", "18.00", 290, []),
        ("arayes", "Arayes", "عرايس", "32.00", 480, ["dip"]),
        ("chicken-liver", "Chicken Liver with Pomegranate", "قوانص دجاج بدبس الرمان", "28.00", 270, []),
    ]),
    ("grills", "Grills", "مشاوي", [
        ("shish-tawook", "Shish Tawook", "شيش طاووق", "48.00", 520, ["side", "grill-sauce"]),
        ("kebab-halabi", "Kebab Halabi", "كباب حلبي", "52.00", 610, ["side", "grill-sauce"]),
        ("lamb-chops", "Lamb Chops", "ريش غنم", "78.00", 680, ["doneness", "side"]),
        ("mixed-grill", "Mixed Grill", "مشاوي مشكلة", "95.00", 950, ["side", "grill-sauce"]),
        ("shish-kebab", "Lamb Shish Kebab", "لحم مشوي", "62.00", 640, ["doneness", "side"]),
        ("kafta", "Kafta", "كفتة", "46.00", 580, ["side"]),
        ("grilled-chicken", "Half Grilled Chicken", "نصف دجاجة مشوية", "44.00", 620, ["side", "grill-sauce"]),
        ("grilled-hammour", "Grilled Hammour", "هامور مشوي", "88.00", 450, ["side"]),
    ]),
    ("shawarma", "Shawarma", "شاورما", [
        ("shawarma-chicken", "Chicken Shawarma Wrap", "ساندويش شاورما دجاج", "16.00", 450, ["bread", "extras"]),
        ("shawarma-meat", "Meat Shawarma Wrap", "ساندويش شاورما لحم", "19.00", 490, ["bread", "extras"]),
        ("shawarma-plate-chicken", "Chicken Shawarma Plate", "صحن شاورما دجاج", "38.00", 780, ["side"]),
        ("shawarma-plate-meat", "Meat Shawarma Plate", "صحن شاورما لحم", "42.00", 820, ["side"]),
        ("arabic-shawarma", "Arabic Shawarma Platter", "شاورما عربي", "36.00", 860, ["extras"]),
        ("falafel-wrap", "Falafel Wrap", "ساندويش فلافل", "12.00", 390, ["bread", "extras"]),
    ]),
    ("manakish", "Manakish", "مناقيش", [
        ("manakish-zaatar", "Zaatar Manakish", "منقوشة زعتر", "12.00", 380, ["manakish-size"]),
        ("manakish-cheese", "Cheese Manakish", "منقوشة جبنة", "16.00", 460, ["manakish-size"]),
        ("manakish-mix", "Zaatar and Cheese", "منقوشة مشكلة", "15.00", 430, ["manakish-size"]),
        ("lahm-bi-ajeen", "Lahm bi Ajeen", "لحم بعجين", "18.00", 470, ["manakish-size"]),
        ("spinach-fatayer", "Spinach Fatayer", "فطاير سبانخ", "14.00", 300, []),
    ]),
    ("mains", "Mains", "أطباق رئيسية", [
        ("mansaf", "Mansaf", "منسف", "85.00", 1100, []),
        ("kabsa-chicken", "Chicken Kabsa", "كبسة دجاج", "55.00", 980, ["rice"]),
        ("kabsa-lamb", "Lamb Kabsa", "كبسة لحم", "75.00", 1150, ["rice"]),
        ("maqluba", "Maqluba", "مقلوبة", "58.00", 900, []),
        ("musakhan", "Musakhan", "مسخن", "52.00", 870, []),
        ("fatteh", "Hummus Fatteh", "فتة حمص", "32.00", 560, []),
        ("mloukhieh", "Mloukhieh with Chicken", "ملوخية بالدجاج", "48.00", 640, ["rice"]),
    ]),
    ("desserts", "Desserts", "حلويات", [
        ("kunafa", "Kunafa", "كنافة", "28.00", 520, ["kunafa-type"]),
        ("baklava", "Baklava (6 pcs)", "بقلاوة", "24.00", 480, []),
        ("umm-ali", "Umm Ali", "أم علي", "26.00", 560, []),
        ("muhallabia", "Muhallabia", "مهلبية", "18.00", 290, []),
        ("maamoul", "Maamoul (4 pcs)", "معمول", "20.00", 360, []),
        ("halawet-el-jibn", "Halawet el Jibn", "حلاوة الجبن", "26.00", 430, []),
    ]),
    ("drinks", "Drinks", "مشروبات", [
        ("ayran", "Ayran", "عيران", "9.00", 90, []),
        ("jallab", "Jallab", "جلاب", "14.00", 210, []),
        ("lemon-mint", "Lemon Mint", "ليمون بالنعناع", "16.00", 140, ["drink-size"]),
        ("tamarind", "Tamarind Juice", "تمر هندي", "14.00", 160, ["drink-size"]),
        ("arabic-coffee", "Arabic Coffee", "قهوة عربية", "12.00", 10, []),
        ("karak", "Karak Tea", "شاي كرك", "8.00", 120, []),
        ("water", "Mineral Water", "مياه معدنية", "4.00", 0, []),
        ("soft-drink", "Soft Drink", "مشروب غازي", "7.00", 140, ["soft-drink-flavour"]),
    ]),
]  # fmt: skip

# (group id, English, Arabic, min, max, [(option id, English, Arabic, price, nested groups)])
_GROUPS: list[tuple[str, str, str, int, int, list[tuple[str, str, str, str, list[str]]]]] = [
    ("dressing", "Dressing", "الصلصة", 1, 1, [
        ("dressing-pomegranate", "Pomegranate molasses", "دبس الرمان", "0", []),
        ("dressing-lemon", "Lemon and olive oil", "ليمون وزيت زيتون", "0", []),
    ]),
    ("dip", "Dip", "غموس", 0, 2, [
        ("dip-tahini", "Tahini", "طحينة", "0", []),
        ("dip-garlic", "Garlic sauce", "ثومية", "2.00", []),
        ("dip-chili", "Chili sauce", "شطة", "1.00", []),
    ]),
    ("side", "Choose your side", "اختر الطبق الجانبي", 1, 1, [
        ("side-fries", "Fries", "بطاطا مقلية", "0", ["fries-seasoning"]),
        ("side-rice", "Vermicelli rice", "رز بالشعيرية", "0", []),
        ("side-salad", "Garden salad", "سلطة خضراء", "0", []),
    ]),
    ("fries-seasoning", "Fries seasoning", "تتبيلة البطاطا", 1, 1, [
        ("seasoning-plain", "Plain", "سادة", "0", []),
        ("seasoning-spicy", "Spicy", "حارة", "1.00", []),
    ]),
    ("grill-sauce", "Extra sauce", "صلصة إضافية", 0, 2, [
        ("sauce-toum", "Toum", "ثوم", "2.00", []),
        ("sauce-harissa", "Harissa", "هريسة", "2.00", []),
    ]),
    ("doneness", "Doneness", "درجة الاستواء", 1, 1, [
        ("doneness-medium", "Medium", "متوسط", "0", []),
        ("doneness-well", "Well done", "مستوي جيداً", "0", []),
    ]),
    ("bread", "Bread", "الخبز", 1, 1, [
        ("bread-saj", "Saj bread", "خبز صاج", "0", []),
        ("bread-arabic", "Arabic bread", "خبز عربي", "0", []),
        ("bread-samoon", "Samoon", "صمون", "1.00", []),
    ]),
    ("extras", "Extras", "إضافات", 0, 3, [
        ("extra-cheese", "Extra cheese", "جبنة إضافية", "3.00", []),
        ("extra-pickles", "Extra pickles", "مخلل إضافي", "1.00", []),
        ("extra-fries-inside", "Fries inside", "بطاطا داخل الساندويش", "2.00", []),
    ]),
    ("manakish-size", "Size", "الحجم", 1, 1, [
        ("manakish-regular", "Regular", "عادي", "0", []),
        ("manakish-large", "Large", "كبير", "5.00", []),
    ]),
    ("rice", "Rice", "الرز", 1, 1, [
        ("rice-white", "White rice", "رز أبيض", "0", []),
        ("rice-bukhari", "Bukhari rice", "رز بخاري", "4.00", []),
    ]),
    ("kunafa-type", "Kunafa style", "نوع الكنافة", 1, 1, [
        ("kunafa-naameh", "Naameh", "ناعمة", "0", []),
        ("kunafa-khishneh", "Khishneh", "خشنة", "0", []),
    ]),
    ("drink-size", "Size", "الحجم", 1, 1, [
        ("drink-regular", "Regular", "عادي", "0", []),
        ("drink-large", "Large", "كبير", "4.00", []),
    ]),
    ("soft-drink-flavour", "Flavour", "النكهة", 1, 1, [
        ("flavour-cola", "Cola", "كولا", "0", []),
        ("flavour-lemon", "Lemon soda", "ليمون", "0", []),
        ("flavour-orange", "Orange soda", "برتقال", "0", []),
    ]),
]  # fmt: skip

_ALLERGENS = {
    "hummus": ["sesame"], "moutabal": ["sesame"], "labneh": ["milk"], "falafel": ["sesame"],
    "kibbeh": ["gluten"], "sambousek-cheese": ["gluten", "milk"], "sambousek-meat": ["gluten"],
    "halloumi": ["milk"], "manakish-zaatar": ["gluten", "sesame"], "manakish-cheese": ["gluten", "milk"],
    "manakish-mix": ["gluten", "milk", "sesame"], "kunafa": ["gluten", "milk", "nuts"],
    "baklava": ["gluten", "nuts"], "umm-ali": ["gluten", "milk", "nuts"], "muhallabia": ["milk"],
    "maamoul": ["gluten", "nuts"], "ayran": ["milk"], "fatteh": ["gluten", "sesame", "milk"],
}  # fmt: skip


def _text(en: str, ar: str) -> dict[str, str]:
    return {"en": en, "ar": ar}


def sample_document() -> dict[str, Any]:
    """The demo menu as a JSON document (camelCase), as a client would send it."""
    categories: list[dict[str, Any]] = []
    items: list[dict[str, Any]] = []
    for category_id, en, ar, entries in _CATALOG:
        categories.append(
            {
                "id": category_id,
                "name": _text(en, ar),
                "itemIds": [entry[0] for entry in entries],
                "sortOrder": len(categories),
            }
        )
        for item_id, item_en, item_ar, price, calories, item_groups in entries:
            item: dict[str, Any] = {
                "id": item_id,
                "name": _text(item_en, item_ar),
                "description": _text(f"Freshly made {item_en.lower()}.", f"{item_ar} طازج."),
                "price": price,
                "sku": f"SKU-{item_id.upper()}",
                "image": {"url": _IMG.format(item_id)},
                "calories": calories,
                "modifierGroupIds": item_groups,
                "allergens": _ALLERGENS.get(item_id, []),
                "preparationTimeMinutes": 15 if category_id in ("grills", "mains") else 8,
                "sortOrder": len(items),
            }
            if category_id == "grills":
                item["tags"] = ["grill"]
            items.append(item)
    # A platform-specific price and a Careem-only special.
    items[[i["id"] for i in items].index("mixed-grill")]["platformOverrides"] = {
        "deliveroo": {"price": "99.00"},
        "talabat": {"price": "97.00"},
    }
    groups: list[dict[str, Any]] = []
    options: list[dict[str, Any]] = []
    for group_id, group_en, group_ar, minimum, maximum, choices in _GROUPS:
        groups.append(
            {
                "id": group_id,
                "name": _text(group_en, group_ar),
                "minSelections": minimum,
                "maxSelections": maximum,
                "optionIds": [choice[0] for choice in choices],
                "sortOrder": len(groups),
            }
        )
        for option_id, option_en, option_ar, option_price, nested in choices:
            options.append(
                {
                    "id": option_id,
                    "name": _text(option_en, option_ar),
                    "price": option_price,
                    "modifierGroupIds": nested,
                }
            )
    weekdays = ["monday", "tuesday", "wednesday", "thursday", "sunday"]
    return {
        "name": _text("Beit Zaatar - Main Menu", "بيت الزعتر - القائمة الرئيسية"),
        "description": _text(
            "Levantine and Gulf home cooking, grilled over charcoal.",
            "مطبخ شامي وخليجي منزلي، مشوي على الفحم.",
        ),
        "currency": "AED",
        "taxRate": "5",
        "pricesIncludeTax": True,
        "image": {"url": _IMG.format("cover")},
        "schedule": [
            {"days": weekdays, "ranges": [{"start": "10:00", "end": "23:30"}]},
            # Weekend nights run past midnight.
            {"days": ["friday", "saturday"], "ranges": [{"start": "10:00", "end": "02:00"}]},
        ],
        "categories": categories,
        "items": items,
        "modifierGroups": groups,
        "modifierOptions": options,
    }


def sample_menu() -> CanonicalMenu:
    """The demo menu: Beit Zaatar, a bilingual (en/ar) Middle Eastern restaurant in AED."""
    return CanonicalMenu.model_validate(sample_document())


def generate_menu(items: int, seed: int = 0, currency: str = "AED") -> CanonicalMenu:
    """A valid menu with ``items`` items (for benchmarks and platform limits).

    Items are spread over categories of 50, every third item has a required single-choice size
    group and every fifth an optional extras group; names are bilingual.
    """
    if items < 1:
        raise ValueError("a menu needs at least one item")
    rng = random.Random(seed)
    decimals = 3 if currency in ("KWD", "BHD", "OMR", "JOD") else 2
    quantum = Decimal(1).scaleb(-decimals)
    category_size = 50
    document: dict[str, Any] = {
        "name": _text(f"Generated menu ({items} items)", f"قائمة مولدة ({items} صنف)"),
        "currency": currency,
        "taxRate": "5",
        "image": {"url": _IMG.format("cover")},
        "categories": [],
        "items": [],
        "modifierGroups": [
            {
                "id": "size",
                "name": _text("Size", "الحجم"),
                "minSelections": 1,
                "maxSelections": 1,
                "optionIds": ["size-regular", "size-large"],
            },
            {
                "id": "extras",
                "name": _text("Extras", "إضافات"),
                "minSelections": 0,
                "maxSelections": 2,
                "optionIds": ["extra-cheese", "extra-sauce", "extra-onion"],
            },
        ],
        "modifierOptions": [
            {"id": "size-regular", "name": _text("Regular", "عادي"), "price": "0"},
            {"id": "size-large", "name": _text("Large", "كبير"), "price": "5"},
            {"id": "extra-cheese", "name": _text("Cheese", "جبنة"), "price": "3"},
            {"id": "extra-sauce", "name": _text("Sauce", "صلصة"), "price": "1"},
            {"id": "extra-onion", "name": _text("Onion", "بصل"), "price": "1"},
        ],
    }
    for index in range(items):
        category_index = index // category_size
        if index % category_size == 0:
            document["categories"].append(
                {
                    "id": f"cat-{category_index:04d}",
                    "name": _text(f"Category {category_index + 1}", f"فئة {category_index + 1}"),
                    "itemIds": [],
                }
            )
        item_id = f"item-{index:06d}"
        document["categories"][-1]["itemIds"].append(item_id)
        price = (Decimal(rng.randint(500, 15000)) / 100).quantize(quantum)
        groups = (["size"] if index % 3 == 0 else []) + (["extras"] if index % 5 == 0 else [])
        document["items"].append(
            {
                "id": item_id,
                "name": _text(f"Dish number {index + 1}", f"طبق رقم {index + 1}"),
                "price": str(price),
                "sku": f"GEN-{index:06d}",
                "modifierGroupIds": groups,
            }
        )
    return CanonicalMenu.model_validate(document)
