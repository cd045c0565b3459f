"""Discovery of connector types through the ``passerelle.connectors`` entry points.

Built-in types are found exactly like third-party ones: each is an entry point
``<slug> = "package.module:Class"`` in its distribution's metadata.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, distribution, entry_points

import structlog

from passerelle.connectors import Connector

ENTRY_POINT_GROUP = "passerelle.connectors"
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")  # a URL segment
logger = structlog.get_logger("passerelle.plugins")


class PluginError(Exception):
    """A connector type cannot be loaded or is declared wrongly."""


def check_connector_type(cls: object, origin: str) -> type[Connector]:
    if not isinstance(cls, type) or not issubclass(cls, Connector):
        raise PluginError(f"{origin}: {cls!r} is not a subclass of passerelle.connectors.Connector")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise PluginError(f"{origin}: connector type {cls.__qualname__} does not implement {missing}")
    for attribute in ("slug", "title"):
        if not isinstance(getattr(cls, attribute, None), str) or not getattr(cls, attribute):
            raise PluginError(f"{origin}: connector type {cls.__qualname__} must set '{attribute}'")
    if not SLUG.match(cls.slug):
        raise PluginError(f"{origin}: slug {cls.slug!r} must be lower-case ASCII letters, digits, '-' or '_'")
    return cls


def register_types(types: Iterable[type[Connector]], origin: str = "code") -> dict[str, type[Connector]]:
    registered: dict[str, type[Connector]] = {}
    for cls in types:
        check_connector_type(cls, origin)
        if cls.slug in registered and registered[cls.slug] is not cls:
            raise PluginError(
                f"two connector types claim the slug {cls.slug!r}: "
                f"{registered[cls.slug].__module__}.{registered[cls.slug].__qualname__} "
                f"and {cls.__module__}.{cls.__qualname__}"
            )
        registered[cls.slug] = cls
    return registered


def discover_types(allow: list[str] | None = None) -> dict[str, type[Connector]]:
    """Load every installed connector type (or only the slugs in ``allow``).

    A plugin that fails to import or is declared wrongly is logged and skipped: one
    bad third-party upgrade must not take every other service down. Two types
    claiming one slug stop the hub, since either could end up answering.
    """
    loaded: list[type[Connector]] = []
    found: set[str] = set()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.add(ep.name)
        if allow is not None and ep.name not in allow:
            continue
        origin = f"entry point {ep.name!r} ({ep.value})"
        try:
            cls = check_connector_type(ep.load(), origin)
            if cls.slug != ep.name:
                raise PluginError(f"{origin}: the entry point name must be the type slug {cls.slug!r}")
        except Exception as exc:
            logger.error("connector type failed to load", entry_point=ep.name, error=repr(exc))
            continue
        loaded.append(cls)
    for name in sorted(set(allow or ()) - found):
        logger.warning("no installed connector type has this slug", allowed=name)
    return dict(sorted(register_types(loaded, "entry points").items()))


def types_of_distribution(name: str) -> set[str]:
    """Slugs of the connector types an installed distribution registers."""
    try:
        found = distribution(name)
    except PackageNotFoundError:
        raise PluginError(f"no installed distribution named {name!r}") from None
    return {ep.name for ep in found.entry_points if ep.group == ENTRY_POINT_GROUP}
