"""A connector type's or instance's documentation as plain data.

The instance page (HTML and JSON), the admin API's type list and the OpenAPI
document are all rendered from these dictionaries, so they cannot disagree.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from passerelle.connectors import Connector, EndpointSpec, secret_fields
from passerelle.parameters import ParamSpec


def param_description(param: ParamSpec, location: str) -> dict[str, Any]:
    return {
        "name": param.query_name,
        "in": location,
        "required": param.required,
        "type": param.type_label(),
        "description": param.description,
        "example": param.example,
        "default": param.default,
        "schema": param.json_schema,
    }


def endpoint_path(spec: EndpointSpec) -> str:
    """The endpoint's path template after the instance, e.g. ``query/{name}/``."""
    if spec.pattern is None:
        return f"{spec.name}/"
    if spec.example_pattern is not None:
        return f"{spec.name}/{spec.example_pattern}"
    return f"{spec.name}/{{rest}}"


def endpoint_description(spec: EndpointSpec, instance_url: str | None = None) -> dict[str, Any]:
    description: dict[str, Any] = {
        "name": spec.name,
        "path": endpoint_path(spec),
        "methods": list(spec.methods),
        "perm": spec.perm,
        "description": spec.description,
        "long_description": spec.long_description,
        "display_category": spec.display_category,
        "display_order": spec.display_order,
        "cache_duration": spec.cache_duration,
        "raw": spec.raw,
        "datasource": spec.datasource,
        "parameters": [param_description(p, "path") for p in spec.path_params]
        + [param_description(p, "query") for p in spec.query_params],
        "body_schema": spec.body_schema,
        "response_schema": spec.response_schema,
    }
    if instance_url is not None:
        description["example_url"] = example_url(spec, instance_url)
    return description


def example_url(spec: EndpointSpec, instance_url: str) -> str | None:
    """A URL calling the endpoint with its example values; None when the path has
    groups without examples (nothing sensible to click on)."""
    if spec.pattern is not None and spec.example_pattern is None:
        return None
    if any(p.example is None for p in spec.path_params):
        return None
    url = f"{instance_url.rstrip('/')}/{spec.name}/" + spec.example_rest()
    query = spec.example_query()
    return f"{url}?{urlencode(query)}" if query else url


def sorted_specs(cls: type[Connector]) -> list[EndpointSpec]:
    specs = [s for variants in cls.endpoints.values() for s in variants if s.show]
    return sorted(specs, key=lambda s: (s.display_category, s.display_order, s.name, s.pattern is not None))


def type_description(cls: type[Connector]) -> dict[str, Any]:
    return {
        "slug": cls.slug,
        "title": cls.title,
        "category": cls.category,
        "description": cls.description,
        "config_schema": cls.Config.model_json_schema(),
        "secret_fields": secret_fields(cls.Config),
        "permissions": cls.permissions(),
        "periodic_jobs": [
            {"method": job.method_name, "seconds": job.seconds, "description": job.description}
            for job in cls.periodic_jobs
        ],
        "endpoints": [endpoint_description(s) for s in sorted_specs(cls)],
    }


def instance_description(connector: Connector, instance_url: str) -> dict[str, Any]:
    cls = type(connector)
    info = connector.instance
    return {
        "type": info.type,
        "slug": info.slug,
        "title": info.title,
        "description": info.description,
        "type_title": cls.title,
        "category": cls.category,
        "type_description": cls.description,
        "url": instance_url,
        "endpoints": [endpoint_description(s, instance_url) for s in sorted_specs(cls)],
    }
