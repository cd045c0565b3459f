"""Markdown reference pages of connector types, generated from their declarations.

``render_type_markdown(cls)`` documents one type (configuration, access rights,
periodic jobs, endpoints); ``render_index_markdown(types)`` lists types by
category and links each to ``markdown_filename(cls)``. Both are pure functions of
the classes: the caller (``passerelle docs OUTDIR``) decides where pages go.
Everything comes from :mod:`passerelle.description`, like the instance page and
the OpenAPI document.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from itertools import groupby
from typing import Any

from passerelle.connectors import Connector
from passerelle.description import endpoint_description, schema_tree, sorted_specs, type_description

__all__ = ["SLUG_PLACEHOLDER", "markdown_filename", "render_index_markdown", "render_type_markdown"]

SLUG_PLACEHOLDER = "<slug>"
"""Stands for an instance's slug in the paths and example URLs of a type's page."""


def markdown_filename(cls: type[Connector]) -> str:
    """The file name the index links a type's page to."""
    return f"{cls.slug}.md"


# -- Markdown escaping ----------------------------------------------------------------


def text(value: Any) -> str:
    """Prose from a declaration, shown as typed (no Markdown nor HTML interpreted)."""
    result = str(value)
    result = result.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for char in "\\`*_[]":
        result = result.replace(char, "\\" + char)
    return result


def cell(value: Any) -> str:
    """Prose inside a table cell: one line, pipes escaped."""
    lines = [line.strip() for line in text(value).splitlines() if line.strip()]
    return "<br>".join(lines).replace("|", "\\|")


def code(value: Any, *, in_table: bool = False) -> str:
    """A code span holding ``value`` exactly."""
    content = str(value).replace("\n", " ")
    fence = "`"
    while fence in content:
        fence += "`"
    padded = f" {content} " if content.startswith("`") or content.endswith("`") or fence != "`" else content
    span = f"{fence}{padded}{fence}"
    return span.replace("|", "\\|") if in_table else span


def show(value: Any) -> str:
    """A value as it is written in JSON (strings quoted), or in a query string for booleans."""
    return json.dumps(value, ensure_ascii=False, default=str)


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


# -- pages --------------------------------------------------------------------------


def render_type_markdown(cls: type[Connector]) -> str:
    """The reference page of a connector type, in Markdown."""
    described = type_description(cls)
    out: list[str] = [f"# {text(cls.title)}", ""]
    out += [f"Type {code(cls.slug)} · category: {text(cls.category)}", ""]
    if cls.description:
        out += [text(cls.description), ""]
    base = f"/{cls.slug}/{SLUG_PLACEHOLDER}/"
    out += [
        f"An instance of this type answers at {code(base + '<endpoint>/')}, "
        f"where {code(SLUG_PLACEHOLDER)} is the instance's slug.",
        "",
    ]
    out += configuration_section(described)
    out += permissions_section(cls)
    out += jobs_section(described)
    out += endpoints_section(cls, base)
    return "\n".join(out).rstrip() + "\n"


def configuration_section(described: dict[str, Any]) -> list[str]:
    out = ["## Configuration", ""]
    tree = schema_tree(described["config_schema"])
    fields = tree["children"] if tree else []
    if not fields:
        return [*out, "This type needs no configuration.", ""]
    properties = described["config_schema"].get("properties", {})
    secrets = set(described["secret_fields"])
    rows = []
    for field in fields:
        raw = properties.get(field["name"], {})
        notes = [n for n in field["notes"] if not n.startswith("default ")]
        description = cell(field["description"])
        if notes:
            description += (" " if description else "") + cell(f"({'; '.join(notes)})")
        rows.append(
            [
                code(field["name"], in_table=True),
                cell(field["type"]),
                "required" if field["required"] else "optional",
                code(show(raw["default"]), in_table=True) if "default" in raw else "",
                "**secret**" if field["name"] in secrets else "",
                description,
            ]
        )
    out += table(["Field", "Type", "Required", "Default", "Secret", "Description"], rows)
    out.append("")
    if secrets:
        out += ["Secret fields are write-only: never returned by the admin API nor exported in clear.", ""]
    return out


def permissions_section(cls: type[Connector]) -> list[str]:
    out = ["## Access rights", ""]
    specs = sorted_specs(cls)
    by_perm: dict[str, list[str]] = {}
    for spec in specs:
        by_perm.setdefault(spec.perm, [])
        if spec.name not in by_perm[spec.perm]:
            by_perm[spec.perm].append(spec.name)
    permissions = [p for p in cls.permissions() if p in by_perm]
    if not permissions and "public" not in by_perm:
        return [*out, "This type has no endpoint.", ""]
    for perm in permissions:
        names = ", ".join(code(n) for n in by_perm[perm])
        out.append(f"- {code(perm)}: needed by {names}")
    if "public" in by_perm:
        names = ", ".join(code(n) for n in by_perm["public"])
        out.append(f"- **public** (no access right needed): {names}")
    out.append("")
    return out


def jobs_section(described: dict[str, Any]) -> list[str]:
    jobs = described["periodic_jobs"]
    if not jobs:
        return []
    rows = [[code(j["method"], in_table=True), duration(j["seconds"]), cell(j["description"])] for j in jobs]
    return ["## Periodic jobs", "", *table(["Job", "Every", "Description"], rows), ""]


def endpoints_section(cls: type[Connector], base: str) -> list[str]:
    endpoints = [endpoint_description(spec, base) for spec in sorted_specs(cls)]
    out = ["## Endpoints", ""]
    if not endpoints:
        return [*out, "This type has no documented endpoint.", ""]
    summary = [
        [
            ", ".join(e["methods"]),
            code(base + e["path"], in_table=True),
            "**public**" if e["public"] else code(e["perm"], in_table=True),
            cell(e["description"]),
        ]
        for e in endpoints
    ]
    out += [*table(["Methods", "Path", "Permission", "Description"], summary), ""]
    for category, group in groupby(endpoints, key=lambda e: e["display_category"]):
        out += [f"### {text(category or 'General')}", ""]
        for e in group:
            out += endpoint_section(e, base)
    return out


def endpoint_section(e: dict[str, Any], base: str) -> list[str]:
    out = [f"#### {' '.join(e['methods'])} {code(base + e['path'])}", ""]
    if e["description"]:
        out += [text(e["description"]), ""]
    if e["public"]:
        facts = ["- Permission: **public** (no access right needed)"]
    else:
        facts = [f"- Permission: {code(e['perm'])}"]
    if e["cache_duration"]:
        facts.append(f"- Cached for {e['cache_duration']} s")
    if e["raw"]:
        facts.append("- Raw answer (no envelope): the returned JSON is sent as is")
    if e["datasource"]:
        facts.append('- Data source: answers `{"data": [{"id": ..., "text": ...}]}`')
    if e["extra_parameters"]:
        facts.append("- Accepts any other query parameter")
    out += [*facts, ""]
    if e["long_description"]:
        out += [text(e["long_description"]), ""]
    if e["parameters"]:
        rows = [
            [
                code(p["name"], in_table=True),
                p["in"],
                "required" if p["required"] else "optional",
                cell(p["type"] + (f" ({'; '.join(p['constraints'])})" if p["constraints"] else "")),
                cell(p["description"]),
                code(query_text(p["example"]), in_table=True) if p["example"] is not None else "",
                code(query_text(p["default"]), in_table=True) if not p["required"] and p["default"] is not None else "",
            ]
            for p in e["parameters"]
        ]
        out += ["Parameters:", ""]
        out += [*table(["Name", "In", "Required", "Type", "Description", "Example", "Default"], rows), ""]
    tree = e["body_tree"]
    if tree is not None:
        heading = f"JSON body: {text(tree['type'])}"
        if tree["description"]:
            heading += f", {text(tree['description'])}"
        if tree["notes"]:
            heading += f" ({text('; '.join(tree['notes']))})"
        out += [heading, ""]
        if tree["children"]:
            out += [*schema_lines(tree["children"], 0), ""]
        out += ["```json", json.dumps(e["body_schema"], indent=2, ensure_ascii=False), "```", ""]
    if e["response_schema"] is not None:
        out += ["Schema of `data` in the answer:", ""]
        out += ["```json", json.dumps(e["response_schema"], indent=2, ensure_ascii=False), "```", ""]
    if e.get("example_url"):
        out += [f"Example: {code(e['methods'][0] + ' ' + e['example_url'])}", ""]
    return out


def query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else show(value)


def schema_lines(nodes: list[dict[str, Any]], depth: int) -> list[str]:
    lines = []
    for node in nodes:
        line = f"{'  ' * depth}- {code(node['name'])} ({text(node['type'])}, "
        line += "required)" if node["required"] else "optional)"
        if node["description"]:
            line += f": {text(node['description'])}"
        if node["notes"]:
            line += f" ({text('; '.join(node['notes']))})"
        lines.append(line)
        lines += schema_lines(node["children"], depth + 1)
    return lines


def render_index_markdown(types: Mapping[str, type[Connector]] | Iterable[type[Connector]]) -> str:
    """An index page of connector types by category, linking to each type's page."""
    classes = list(types.values()) if isinstance(types, Mapping) else list(types)
    out = ["# Connector types", ""]
    if not classes:
        return "\n".join([*out, "No connector type is installed."]) + "\n"
    out += [f"{len(classes)} connector type{'s' if len(classes) > 1 else ''}, by category.", ""]
    ordered = sorted(classes, key=lambda c: (c.category, c.title, c.slug))
    for category, group in groupby(ordered, key=lambda c: c.category):
        out += [f"## {text(category)}", ""]
        rows = [
            [
                f"[{cell(cls.title)}]({markdown_filename(cls)})",
                code(cls.slug, in_table=True),
                str(len(sorted_specs(cls))),
                cell(cls.description),
            ]
            for cls in group
        ]
        out += [*table(["Type", "Slug", "Endpoints", "Description"], rows), ""]
    return "\n".join(out).rstrip() + "\n"
