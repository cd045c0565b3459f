"""``passerelle base-adresse …``: the embedded index of an instance, from the command line.

    passerelle base-adresse build-index base-adresse/ville [--force]
    passerelle base-adresse index-status base-adresse/ville

``build-index`` does what the periodic job does (download changed URL sources, index again
when a source changed, or always with ``--force``), with a progress bar; a hub serving the
instance picks the new index up within seconds. Registered through the
``passerelle.commands`` entry point, like a third-party package's command would be.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from passerelle.cli import CliError, open_instance


@click.group("base-adresse")
def base_adresse() -> None:
    """The embedded address index of base-adresse instances."""


@base_adresse.command("build-index")
@click.argument("instance")
@click.option("--force", is_flag=True, help="Index again even if no source changed.")
@click.pass_context
def build_index(ctx: click.Context, instance: str, force: bool) -> None:
    """Index the sources of INSTANCE (type/slug) if they changed."""

    async def action() -> dict[str, Any]:
        async with open_instance(ctx, instance) as connector:
            if not connector.config.local_enabled:
                raise CliError(f"{instance} has no embedded index (no sources, or 'local' not in backends)")
            with click.progressbar(length=100, label="indexing", show_pos=False, file=None) as bar:
                shown = [0]

                def progress(state: dict[str, Any]) -> None:
                    percent = int(state.get("percent", 0))
                    bar.update(max(0, percent - shown[0]))
                    shown[0] = max(shown[0], percent)

                connector.local.on_progress = progress
                built = await connector.local.refresh(force=force)
            status = connector.local.status()
            status["built_now"] = built
            return status

    status = asyncio.run(action())
    if status["last_error"]:
        raise CliError(status["last_error"])
    if status["built_now"]:
        click.echo(f"{status['addresses']:,} house numbers indexed ({status['version']})")
    else:
        click.echo(f"no source changed: the index ({status['addresses']:,} house numbers) is current")


@base_adresse.command("index-status")
@click.argument("instance")
@click.pass_context
def index_status(ctx: click.Context, instance: str) -> None:
    """Show the state of INSTANCE's index (as JSON)."""

    async def action() -> dict[str, Any]:
        async with open_instance(ctx, instance) as connector:
            await connector.local.load()
            return connector.status_details()

    click.echo(json.dumps(asyncio.run(action()), indent=2, ensure_ascii=False))
