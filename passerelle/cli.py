"""The ``passerelle`` command: serve, migrate, import/export, instances, citizen, types, check, docs.

Settings come from ``PASSERELLE_*`` environment variables or ``--config FILE``.
Errors are one line a person can act on, never a traceback.

Connector packages add their own commands through the ``passerelle.commands`` entry
point group (``name = "package.module:click_command"``); :func:`open_instance` gives
such a command the connector of a stored instance (docs/writing-a-connector.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from passerelle.configfile import ConfigFileError, dump_document, read_document
from passerelle.settings import Settings


class CliError(click.ClickException):
    """An error shown as one line, exit status 1."""


def load_settings(ctx: click.Context) -> Settings:
    if "settings" not in ctx.obj:
        try:
            ctx.obj["settings"] = Settings.load(ctx.obj.get("config_file"))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)
            )
            raise CliError(f"invalid settings: {problems}") from None
        except ValueError as exc:
            raise CliError(str(exc)) from None
    settings: Settings = ctx.obj["settings"]
    return settings


def connector_types(settings: Settings) -> dict[str, Any]:
    from passerelle.plugins import PluginError, discover_types

    try:
        return discover_types(settings.load_plugins)
    except PluginError as exc:
        raise CliError(str(exc)) from None


async def _open_database(settings: Settings, *, migrate: bool) -> Any:
    from passerelle.storage import make_engine
    from passerelle.storage.migrate import head_revision, is_up_to_date, upgrade

    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    try:
        up_to_date = await is_up_to_date(engine)
    except Exception as exc:
        await engine.dispose()
        raise CliError(f"cannot reach the database: {type(exc).__name__}: {exc}") from None
    if not up_to_date:
        if migrate:
            await upgrade(engine)
        else:
            await engine.dispose()
            raise CliError(
                f"the database is not migrated to this version (revision {head_revision()}): run `passerelle migrate`"
            )
    return engine


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def use_uvloop() -> None:
    """Long-running commands (serve, worker) run on uvloop when it is installed (a dependency
    on Linux): a cheaper event loop shortens the queues that form when many slow upstream
    answers come back together (bench/slow_upstream)."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def freeze_startup_objects(app: Any) -> None:
    """Move everything built at start-up (modules, instances, schemas) out of the garbage
    collector's reach: otherwise each full collection walks them all, a pause of about
    100 ms under load that every request in flight waits for (bench/slow_upstream)."""
    import gc

    gc.freeze()


def secret_box(settings: Settings) -> Any:
    """The key of stored secrets (passerelle.secrets), or a one-line error saying what to set."""
    from passerelle.secrets import SecretBox, SecretKeyError

    try:
        return SecretBox.from_settings(settings)
    except SecretKeyError as exc:
        raise CliError(str(exc)) from None


async def _with_manager(settings: Settings, action: Any, *, migrate: bool = False, secrets: bool = False) -> Any:
    """``secrets``: the action writes secrets, so it needs their key."""
    from passerelle.management import Manager
    from passerelle.storage import make_sessionmaker

    box = secret_box(settings) if secrets else None
    engine = await _open_database(settings, migrate=migrate or settings.should_auto_migrate)
    try:
        return await action(Manager(make_sessionmaker(engine), connector_types(settings), box))
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def open_instance(ctx: click.Context, instance: str) -> AsyncIterator[Any]:
    """The connector of the stored instance ``type/slug``, built as the hub builds it (secrets
    decrypted, records, links and jobs reachable) but not started; closed on exit. For the
    commands of connector packages."""
    from passerelle.instances import BrokenInstance, build_connector, shutdown
    from passerelle.management import Manager
    from passerelle.storage import make_sessionmaker

    settings = load_settings(ctx)
    type_slug, slug = split_instance(instance)
    types = connector_types(settings)
    if type_slug not in types:
        raise CliError(f"unknown connector type '{type_slug}'")
    box = secret_box(settings)
    engine = await _open_database(settings, migrate=settings.should_auto_migrate)
    try:
        sessionmaker = make_sessionmaker(engine)
        row = await Manager(sessionmaker, types, box).get_instance(type_slug, slug)
        if row is None:
            raise CliError(f"no {type_slug} instance named '{slug}'")
        try:
            connector = build_connector(types[type_slug], row, settings, box, sessionmaker)
        except BrokenInstance as exc:
            raise CliError(f"{type_slug}/{slug}: {exc.reason}") from None
        try:
            yield connector
        finally:
            await shutdown(connector)
    finally:
        await engine.dispose()


def split_instance(value: str) -> tuple[str, str]:
    type_slug, sep, slug = value.strip("/").partition("/")
    if not sep or not slug:
        raise click.BadParameter("expected TYPE/SLUG, e.g. csvdatasource/musees")
    return type_slug, slug


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Settings file (YAML or JSON); PASSERELLE_* environment variables override it.",
)
@click.version_option(package_name="passerelle-hub")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None) -> None:
    """Passerelle hub: one JSON API in front of a municipality's business applications."""
    ctx.ensure_object(dict)
    ctx.obj["config_file"] = config_file


@main.command()
@click.option("--host", help="Address to listen on (default: setting HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default: setting PORT, 8000).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the hub over HTTP."""
    from aiohttp import web

    from passerelle.app import create_app
    from passerelle.logs import configure_logging

    settings = load_settings(ctx)
    configure_logging(settings.log_level, settings.log_format)
    secret_box(settings)  # refuse to start without the key of stored secrets
    engine = run(_open_database(settings, migrate=settings.should_auto_migrate))
    run(engine.dispose())
    app = create_app(settings, types=connector_types(settings))
    app.on_startup.append(freeze_startup_objects)  # after the lifecycle has loaded the instances
    host = host or settings.host
    port = port if port is not None else settings.port
    use_uvloop()
    # On SIGTERM: stop accepting, let requests in flight finish within the grace, then stop the
    # services (jobs still running are released for another process).
    web.run_app(
        app, host=host, port=port, access_log=None, print=lambda _: None, shutdown_timeout=settings.shutdown_grace
    )


@main.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run queued jobs (and periodic jobs, unless RUN_PERIODIC_JOBS is off) without serving HTTP.

    SIGTERM or SIGINT stops it: running jobs get SHUTDOWN_GRACE seconds, then are
    released to be run again. Run `serve` with RUN_JOBS off when workers run the jobs.
    """
    from passerelle.jobs.worker import run_worker
    from passerelle.logs import configure_logging

    settings = load_settings(ctx)
    configure_logging(settings.log_level, settings.log_format)
    secret_box(settings)  # refuse to start without the key of stored secrets
    engine = run(_open_database(settings, migrate=settings.should_auto_migrate))
    run(engine.dispose())
    use_uvloop()
    run(run_worker(settings, connector_types(settings)))


@main.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Bring the database schema up to date."""
    from passerelle.storage.migrate import head_revision

    settings = load_settings(ctx)

    async def action() -> None:
        engine = await _open_database(settings, migrate=True)
        await engine.dispose()

    run(action())
    click.echo(f"database at revision {head_revision()}")


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check everything against the database, change nothing.")
@click.pass_context
def import_(ctx: click.Context, file: Path, dry_run: bool) -> None:
    """Create or update API users and instances from FILE (JSON or YAML), all or nothing."""
    settings = load_settings(ctx)
    try:
        document = read_document(file)
    except ConfigFileError as exc:
        raise CliError(str(exc)) from None

    async def action(manager: Any) -> Any:
        return await manager.import_document(document, base_dir=file.parent.resolve(), dry_run=dry_run)

    try:
        report = run(_with_manager(settings, action, secrets=True))
    except ConfigFileError as exc:
        raise CliError(f"{file}: {exc} (nothing was imported)") from None
    prefix = "would be " if dry_run else ""
    for what in ("created", "updated"):
        for item in report[what]:
            click.echo(f"{prefix}{what}: {item}")
    if not dry_run:
        click.echo(f"imported {file}")


@main.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--secrets",
    type=click.Choice(["env", "omit"]),
    default="env",
    show_default=True,
    help='Write secrets as {"$env": VAR} references, or leave them out. Never in clear.',
)
@click.option("--format", "fmt", type=click.Choice(["json", "yaml"]), help="Default: from FILE's extension, else JSON.")
@click.pass_context
def export(ctx: click.Context, file: Path | None, secrets: str, fmt: str | None) -> None:
    """Write API users and instances to FILE (or standard output)."""
    settings = load_settings(ctx)

    async def action(manager: Any) -> Any:
        return await manager.export_document(secrets=secrets)

    document = run(_with_manager(settings, action))
    yaml_format = fmt == "yaml" or (fmt is None and file is not None and file.suffix in (".yaml", ".yml"))
    text = dump_document(document, yaml_format=yaml_format)
    if file is None:
        click.echo(text, nl=False)
    else:
        file.write_text(text, encoding="utf-8")
        click.echo(f"exported {len(document['instances'])} instances and {len(document['apiusers'])} API users")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def check(ctx: click.Context, file: Path) -> None:
    """Validate a configuration FILE without importing it (no database needed)."""
    from passerelle.management import check_document

    settings = load_settings(ctx)
    try:
        check_document(read_document(file), connector_types(settings), base_dir=file.parent.resolve())
    except ConfigFileError as exc:
        raise CliError(f"{file}: {exc}") from None
    click.echo(f"{file}: valid")


@main.group()
def instances() -> None:
    """List, show and delete connector instances."""


@instances.command("list")
@click.pass_context
def instances_list(ctx: click.Context) -> None:
    """List instances as TYPE/SLUG and title."""
    settings = load_settings(ctx)

    async def action(manager: Any) -> Any:
        return await manager.list_instances()

    rows = run(_with_manager(settings, action))
    for row in rows:
        click.echo(f"{row.type}/{row.slug}\t{row.title}")
    if not rows:
        click.echo("no instance", err=True)


@instances.command("show")
@click.argument("instance")
@click.pass_context
def instances_show(ctx: click.Context, instance: str) -> None:
    """Show one instance (TYPE/SLUG) as JSON, without its secrets."""
    settings = load_settings(ctx)
    type_slug, slug = split_instance(instance)

    async def action(manager: Any) -> Any:
        row = await manager.get_instance(type_slug, slug)
        return None if row is None else manager.export_instance(row, "env")

    data = run(_with_manager(settings, action))
    if data is None:
        raise CliError(f"no {type_slug} instance named '{slug}'")
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@instances.command("delete")
@click.argument("instance")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def instances_delete(ctx: click.Context, instance: str, yes: bool) -> None:
    """Delete one instance (TYPE/SLUG) and its access rights."""
    settings = load_settings(ctx)
    type_slug, slug = split_instance(instance)
    if not yes:
        click.confirm(f"delete {type_slug}/{slug}?", abort=True)

    async def action(manager: Any) -> Any:
        return await manager.delete_instance(type_slug, slug)

    if not run(_with_manager(settings, action)):
        raise CliError(f"no {type_slug} instance named '{slug}'")
    click.echo(f"deleted {type_slug}/{slug}")


@main.group()
def citizen() -> None:
    """A citizen's rights of access and erasure, by NameID."""


async def _with_citizens(settings: Settings, action: Any) -> Any:
    from passerelle.cache import ResponseCache
    from passerelle.citizens import Citizens
    from passerelle.storage import make_sessionmaker

    engine = await _open_database(settings, migrate=settings.should_auto_migrate)
    citizens = Citizens(make_sessionmaker(engine))
    # A shared (Redis) cache outlives the hub processes: its answers are part of the citizen's
    # data. An in-memory cache lives and dies with each process, out of this command's reach.
    cache = ResponseCache.from_settings(settings) if settings.cache_url else None
    if cache is not None:
        cache.register_citizen_store(citizens)
    try:
        return await action(citizens)
    finally:
        if cache is not None:
            await cache.close()
        await engine.dispose()


def _require_name_id(name_id: str) -> str:
    if not name_id.strip():
        raise CliError("NAMEID is empty")
    return name_id


@citizen.command("show")
@click.argument("name_id", metavar="NAMEID")
@click.pass_context
def citizen_show(ctx: click.Context, name_id: str) -> None:
    """Show as JSON everything the hub holds about NAMEID, on every instance."""
    from passerelle.envelope import dumps

    settings = load_settings(ctx)
    name_id = _require_name_id(name_id)

    async def action(citizens: Any) -> Any:
        return await citizens.show(name_id)

    found = json.loads(dumps(run(_with_citizens(settings, action))))
    click.echo(json.dumps(found, indent=2, ensure_ascii=False))


@citizen.command("erase")
@click.argument("name_id", metavar="NAMEID")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def citizen_erase(ctx: click.Context, name_id: str, yes: bool) -> None:
    """Erase everything the hub holds about NAMEID (the erasure is audited without it)."""
    settings = load_settings(ctx)
    name_id = _require_name_id(name_id)
    if not yes:

        async def count(citizens: Any) -> Any:
            return await citizens.show(name_id)

        found = run(_with_citizens(settings, count))
        held = ", ".join(f"{len(v)} {k}" for k, v in found.items() if isinstance(v, list)) or "nothing listed"
        click.confirm(f"erase everything about this NameID ({held})?", abort=True)

    async def action(citizens: Any) -> Any:
        return await citizens.erase(name_id, actor="cli")

    erasure = run(_with_citizens(settings, action))
    summary = ", ".join(f"{name}: {removed}" for name, removed in erasure.removed.items())
    if not erasure.complete:
        raise CliError(f"erasure incomplete: {', '.join(erasure.failed)} failed (removed {summary}); erase again")
    click.echo(f"erased ({summary})")


@main.command()
@click.pass_context
def types(ctx: click.Context) -> None:
    """List installed connector types."""
    for slug, cls in connector_types(load_settings(ctx)).items():
        click.echo(f"{slug}\t{cls.title}\t({cls.__module__})")


@main.command()
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--distribution",
    help="Only the types registered by this installed distribution (e.g. passerelle-hub for the built-in ones).",
)
@click.pass_context
def docs(ctx: click.Context, outdir: Path, distribution: str | None) -> None:
    """Write a Markdown reference page per connector type into OUTDIR."""
    from passerelle.docgen import markdown_filename, render_index_markdown, render_type_markdown
    from passerelle.plugins import types_of_distribution

    found = connector_types(load_settings(ctx))
    if distribution is not None:
        wanted = types_of_distribution(distribution)
        found = {slug: cls for slug, cls in found.items() if slug in wanted}
    outdir.mkdir(parents=True, exist_ok=True)
    for cls in found.values():
        (outdir / markdown_filename(cls)).write_text(render_type_markdown(cls), encoding="utf-8")
    (outdir / "README.md").write_text(render_index_markdown(found), encoding="utf-8")
    click.echo(f"wrote {len(found)} connector reference pages to {outdir}")


@main.group("secrets")
def secrets_group() -> None:
    """Keys of stored secrets and admin tokens."""


@secrets_group.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new random key for PASSERELLE_SECRET_KEY."""
    from passerelle.secrets import generate_key

    click.echo(generate_key())


@secrets_group.command("rekey")
@click.option(
    "--old-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the previous key (e.g. DATA_DIR/secret.key); default: PASSERELLE_OLD_SECRET_KEY.",
)
@click.option("--dry-run", is_flag=True, help="Check that every secret can be decrypted, change nothing.")
@click.pass_context
def secrets_rekey(ctx: click.Context, old_key_file: Path | None, dry_run: bool) -> None:
    """Re-encrypt every stored secret with the current key (PASSERELLE_SECRET_KEY).

    Secrets encrypted with the old key (--old-key-file, or the PASSERELLE_OLD_SECRET_KEY
    environment variable) or with the current one are re-encrypted; plaintext secrets
    of earlier versions are encrypted. All or nothing.
    """
    import os

    from passerelle.secrets import SecretBox, SecretDecryptError, SecretKeyError, key_from_file, rekey
    from passerelle.storage import make_sessionmaker

    settings = load_settings(ctx)
    box = secret_box(settings)
    old_boxes = []
    try:
        if old_key_file is not None:
            old_boxes.append(SecretBox(key_from_file(old_key_file)))
        elif os.environ.get("PASSERELLE_OLD_SECRET_KEY"):
            old_boxes.append(SecretBox(os.environ["PASSERELLE_OLD_SECRET_KEY"]))
    except SecretKeyError as exc:
        raise CliError(str(exc)) from None

    async def action() -> Any:
        engine = await _open_database(settings, migrate=settings.should_auto_migrate)
        try:
            return await rekey(make_sessionmaker(engine), connector_types(settings), box, old_boxes, dry_run=dry_run)
        finally:
            await engine.dispose()

    try:
        report = run(action())
    except SecretDecryptError as exc:
        raise CliError(f"{exc} (nothing was changed)") from None
    click.echo(report.summary(dry_run))


@secrets_group.command("hash-token")
@click.option("--token", prompt=True, hide_input=True, help="The admin token (asked when not given).")
def secrets_hash_token(token: str) -> None:
    """Print the form of an admin token to put in PASSERELLE_ADMIN_TOKENS instead of the token."""
    from passerelle.admin.auth import hash_token

    click.echo(hash_token(token))


@main.command("settings")
def settings_help() -> None:
    """List the settings, their environment variables and defaults."""
    for name, info in Settings.model_fields.items():
        default = info.get_default(call_default_factory=True)
        if hasattr(default, "get_secret_value"):
            default = "(secret)"
        click.echo(f"PASSERELLE_{name.upper()}  (default: {default!s})\n    {info.description}")


COMMANDS_GROUP = "passerelle.commands"


def add_plugin_commands(group: click.Group) -> None:
    """Add the commands of installed connector packages; a broken one is reported and skipped."""
    for ep in entry_points(group=COMMANDS_GROUP):
        if ep.name in group.commands:
            click.echo(f"warning: command '{ep.name}' of {ep.value} is already a command: skipped", err=True)
            continue
        try:
            command = ep.load()
        except Exception as exc:
            click.echo(f"warning: command '{ep.name}' ({ep.value}) cannot be loaded: {exc!r}", err=True)
            continue
        if not isinstance(command, click.Command):
            click.echo(f"warning: {ep.value} is not a click command: skipped", err=True)
            continue
        group.add_command(command, ep.name)


add_plugin_commands(main)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
