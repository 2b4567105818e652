"""The firmware catalog: which printer needs which file, and whether its firmware is loaded."""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from supervisor.core.devices import device_id_fields

# Beside the code, not through importlib.resources (1.7 ms and its imports at every start).
CATALOG_PATH: Final = Path(__file__).resolve().parent.parent / "firmware" / "catalog.toml"
#: A PRODUCT glob: vid/pid/bcdDevice in lowercase hex without leading zeros; bcdDevice may be *.
_HEX: Final = r"(?:0|[1-9a-f][0-9a-f]*)"
PRODUCT_GLOB: Final = re.compile(rf"{_HEX}/{_HEX}/(?:\*|{_HEX})")
_FIELDS: Final = ("product", "model", "file", "reason")


class CatalogError(ValueError):
    """The catalog text is not valid; the message names the entry and the problem."""


@dataclass(frozen=True)
class FirmwareEntry:
    """One printer model that needs firmware after every power-on, and why."""

    product: str  # PRODUCT glob, e.g. "3f0/4117/*"
    model: str  # the USB product string, e.g. "HP LaserJet 1018"
    file: str  # the firmware file name, looked up in firmware_dirs, e.g. "sihp1018.dl"
    reason: str

    def matches(self, product: str) -> bool:
        return fnmatch.fnmatchcase(product, self.product)


def parse_catalog(text: str) -> tuple[FirmwareEntry, ...]:
    """The `[[firmware]]` entries of a catalog in TOML, validated; CatalogError names the entry."""
    import tomllib  # noqa: PLC0415 (at the first plug, not at every start: 0.5 MiB on a router)

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"firmware catalog: {exc}") from None
    unknown = sorted(set(data) - {"firmware"})
    if unknown:
        raise CatalogError(f"firmware catalog: unknown key {unknown[0]!r} (only [[firmware]])")
    raw = data.get("firmware", [])
    if not isinstance(raw, list):
        raise CatalogError("firmware catalog: 'firmware' must be an array of tables [[firmware]]")
    entries = tuple(_entry(index, item) for index, item in enumerate(raw, start=1))
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries, start=1):
        if entry.product in seen:
            raise CatalogError(f"firmware entry {index} ({entry.model}): product "
                               f"{entry.product!r} already listed by entry {seen[entry.product]}")
        seen[entry.product] = index
    return entries


def _entry(index: int, item: object) -> FirmwareEntry:
    if not isinstance(item, dict):
        raise CatalogError(f"firmware entry {index}: must be a table [[firmware]]")
    label = f"firmware entry {index}"
    if isinstance(item.get("model"), str):
        label += f" ({item['model']})"
    unknown = sorted(set(item) - set(_FIELDS))
    if unknown:
        raise CatalogError(f"{label}: unknown key {unknown[0]!r}")
    values: dict[str, str] = {}
    for key in _FIELDS:
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            raise CatalogError(f"{label}: {key!r} must be a non-empty string")
        values[key] = value.strip()
    if not PRODUCT_GLOB.fullmatch(values["product"]):
        raise CatalogError(f"{label}: product {values['product']!r} must look like "
                           "'3f0/4117/*' (lowercase hex, no leading zeros)")
    if "/" in values["file"] or values["file"] in (".", ".."):
        raise CatalogError(f"{label}: file {values['file']!r} must be a plain file name")
    return FirmwareEntry(**values)


@functools.cache
def load_catalog() -> tuple[FirmwareEntry, ...]:
    """The catalog shipped in the package (supervisor/firmware/catalog.toml)."""
    text = CATALOG_PATH.read_text(encoding="utf-8")
    return parse_catalog(text)


def entry_for(product: str, catalog: tuple[FirmwareEntry, ...]) -> FirmwareEntry | None:
    """The first catalog entry whose product glob matches `product` (e.g. "3f0/4117/100")."""
    return next((entry for entry in catalog if entry.matches(product)), None)


def firmware_for(setting: str, product: str | None,
                 catalog: Sequence[FirmwareEntry]) -> str | None:
    """The firmware file a printer gets: none → None; auto → the catalog's (a printer known
    only by its node has no PRODUCT: none); else the setting."""
    if setting == "none":
        return None
    if setting == "auto":
        if product is None:
            return None
        entry = entry_for(product, tuple(catalog))
        return entry.file if entry is not None else None
    return setting


def firmware_loaded(device_id: str | None) -> bool | None:
    """Does the IEEE-1284 ID report running firmware (FWVER)? None when there is no ID."""
    if device_id is None or not device_id.strip():
        return None
    return bool(device_id_fields(device_id).get("FWVER"))
