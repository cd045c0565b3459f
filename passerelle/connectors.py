"""Connector types, their endpoints and periodic jobs.

A connector type is a subclass of :class:`Connector` registered under the entry
point group ``passerelle.connectors``. It declares:

- ``slug``: the first URL segment (``/<slug>/<instance>/<endpoint>``);
- ``title``, ``category``, ``description``: shown in docs and the admin API;
- ``Config``: a pydantic model of the instance configuration. Fields carry
  descriptions; secrets are ``SecretStr`` (never returned nor exported in clear);
- endpoints: async methods decorated with :func:`endpoint`;
- periodic jobs: async methods decorated with :func:`periodic`;
- ``check_status()``: the availability check (raise to say "down").

An *instance* is a stored row (type, slug, title, description, config); the hub
builds one connector object per instance, keeps it in memory and replaces it when
the row changes.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from multidict import MultiDictProxy
from pydantic import BaseModel, ConfigDict, SecretStr

from passerelle.http import HttpClient, HttpConfig, HttpOptions, options_from_config
from passerelle.links import Links
from passerelle.parameters import ParamSpec, SignatureSpec, spec_from_signature
from passerelle.records import Records
from passerelle.resourcelogs import ResourceLogger

if TYPE_CHECKING:
    from aiohttp import web
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from passerelle.instances import InstanceRegistry
    from passerelle.resourcelogs import ResourceLogWriter
    from passerelle.settings import Settings

__all__ = [
    "PUBLIC",
    "Connector",
    "Context",
    "EmptyConfig",
    "EndpointSpec",
    "HttpConfig",
    "InstanceInfo",
    "PeriodicJob",
    "endpoint",
    "periodic",
    "secret_fields",
]

PUBLIC = "public"
"""``perm=PUBLIC`` makes an endpoint callable without any access right."""

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class EmptyConfig(BaseModel):
    """Configuration of a connector type that needs none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class InstanceInfo:
    """The stored identity of a connector instance."""

    id: int
    type: str
    slug: str
    title: str
    description: str = ""


@dataclass
class Context:
    """What an endpoint may know about the call, injected when a parameter is
    annotated with this type. Connectors never see the raw HTTP request."""

    method: str
    path: str
    query: MultiDictProxy[str]
    headers: Any
    remote: str | None
    request_id: str
    apiuser: str | None = None
    raw_request: web.Request | None = field(default=None, repr=False)

    @property
    def name_id(self) -> str | None:
        """The citizen's pseudonymous identifier (Publik's ``NameID``), if given."""
        return self.query.get("NameID") or None


@dataclass
class EndpointSpec:
    """Everything the framework needs to route, validate, document and cache a call."""

    name: str
    method_name: str
    methods: tuple[str, ...]
    perm: str
    description: str
    long_description: str
    pattern: re.Pattern[str] | None
    example_pattern: str | None
    signature: SignatureSpec
    body_model: type[BaseModel] | None
    body_schema: dict[str, Any] | None
    cache_duration: int
    display_category: str
    display_order: int
    raw: bool
    datasource: bool
    response_schema: dict[str, Any] | None
    show: bool

    @property
    def query_params(self) -> list[ParamSpec]:
        return self.signature.query

    @property
    def path_params(self) -> list[ParamSpec]:
        return self.signature.path

    @property
    def is_public(self) -> bool:
        return self.perm == PUBLIC


def endpoint(
    func: F | None = None,
    *,
    name: str | None = None,
    methods: tuple[str, ...] | list[str] = ("GET",),
    perm: str = "can_access",
    description: str = "",
    long_description: str = "",
    pattern: str | None = None,
    example_pattern: str | None = None,
    body: type[BaseModel] | dict[str, Any] | None = None,
    cache_duration: int = 0,
    display_category: str = "",
    display_order: int = 0,
    raw: bool = False,
    datasource: bool = False,
    response_schema: dict[str, Any] | None = None,
    show: bool = True,
) -> Any:
    """Declare an async method as an HTTP endpoint of its connector.

    ``name`` defaults to the method name and may contain ``-``. ``pattern`` is a
    regular expression matched against the rest of the path; its named groups
    become arguments. ``body`` is a pydantic model or a JSON Schema for the JSON
    body of POST/PUT/PATCH calls, passed as the ``body`` argument. ``raw`` sends
    the returned object as JSON without the ``{"err": 0}`` envelope.
    """

    def decorate(f: F) -> F:
        verbs = tuple(m.upper() for m in methods)
        unknown = set(verbs) - set(HTTP_METHODS)
        if unknown:
            raise TypeError(f"{f.__qualname__}: unknown HTTP methods {sorted(unknown)}")
        if body is not None and not set(verbs) & {"POST", "PUT", "PATCH"}:
            raise TypeError(f"{f.__qualname__}: a body needs POST, PUT or PATCH among the methods")
        compiled = re.compile(pattern) if pattern else None
        body_model = body if isinstance(body, type) and issubclass(body, BaseModel) else None
        body_schema = body_model.model_json_schema() if body_model else body
        declaration = dict(
            name=name or f.__name__,
            methods=verbs,
            perm=perm,
            description=description or (f.__doc__ or "").strip().split("\n")[0],
            long_description=long_description,
            pattern=compiled,
            example_pattern=example_pattern,
            body_model=body_model,
            body_schema=body_schema,
            cache_duration=cache_duration,
            display_category=display_category,
            display_order=display_order,
            raw=raw,
            datasource=datasource,
            response_schema=response_schema,
            show=show,
        )
        f.__passerelle_endpoint__ = declaration  # type: ignore[attr-defined]
        return f

    return decorate(func) if func is not None else decorate


@dataclass(frozen=True)
class PeriodicJob:
    method_name: str
    seconds: int
    description: str


def periodic(*, seconds: int, description: str = "") -> Callable[[F], F]:
    """Declare an async method (no arguments) to run every ``seconds`` on each instance."""
    if seconds <= 0:
        raise ValueError("periodic jobs need a positive interval")

    def decorate(f: F) -> F:
        f.__passerelle_periodic__ = PeriodicJob(f.__name__, seconds, description or (f.__doc__ or "").strip())  # type: ignore[attr-defined]
        return f

    return decorate


class Connector:
    """Base class of every connector type (see the module docstring)."""

    slug: ClassVar[str]
    title: ClassVar[str]
    category: ClassVar[str] = "Miscellaneous"
    description: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel]] = EmptyConfig

    # Filled by __init_subclass__ from the decorated methods.
    endpoints: ClassVar[dict[str, list[EndpointSpec]]] = {}
    periodic_jobs: ClassVar[tuple[PeriodicJob, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        endpoints: dict[str, list[EndpointSpec]] = {}
        jobs: dict[str, PeriodicJob] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                declaration = getattr(value, "__passerelle_endpoint__", None)
                if declaration is not None:
                    spec = _build_spec(attr, value, declaration)
                    # An override in a subclass replaces the declaration of the same method.
                    for specs in endpoints.values():
                        specs[:] = [s for s in specs if s.method_name != attr]
                    endpoints.setdefault(spec.name, []).append(spec)
                job = getattr(value, "__passerelle_periodic__", None)
                if job is not None:
                    jobs[attr] = job
        # Patterned variants are tried before the bare one, longest pattern first.
        cls.endpoints = {
            name: sorted(specs, key=lambda s: -len(s.pattern.pattern) if s.pattern else 0)
            for name, specs in endpoints.items()
            if specs
        }
        cls.periodic_jobs = tuple(jobs.values())

    def __init__(self, instance: InstanceInfo, config: BaseModel, settings: Settings) -> None:
        self.instance = instance
        self.config = config
        self.settings = settings
        self._http: HttpClient | None = None
        # Given by the instance registry; connectors reach the database through
        # the services below (``links``), not directly.
        self._sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self._links: Links | None = None
        self._records: Records | None = None
        # Given by the instance registry too: the other instances, for call_instance().
        self._registry: InstanceRegistry | None = None
        # Also given by the registry, and kept current on every reload: where resource
        # log rows go, and the instance's own level ('' : the hub's RESOURCE_LOG_LEVEL).
        self._resource_logs: ResourceLogWriter | None = None
        self._log_level = ""
        self._logger: ResourceLogger | None = None

    @property
    def http(self) -> HttpClient:
        """This instance's outbound HTTP client (created on first use, closed with the instance)."""
        if self._http is None:
            self._http = HttpClient(f"{self.instance.type}/{self.instance.slug}", self.http_options())
        return self._http

    @property
    def links(self) -> Links:
        """This instance's NameID links (:mod:`passerelle.links`): ``link``, ``unlink``,
        ``resolve`` (raises ``NotLinked``), ``list``, ``verify``."""
        if self._links is None:
            if self._sessionmaker is None:
                raise RuntimeError(f"{self!r} has no database: only instances built by the hub have links")
            self._links = Links(self._sessionmaker, self.instance)
        return self._links

    @property
    def records(self) -> Records:
        """This instance's durable records (:mod:`passerelle.records`): small JSON values
        kept across restarts and shared by the hub's processes, ``get``, ``put``,
        ``put_many``, ``delete``, ``count``, with an optional ``ttl``."""
        if self._records is None:
            if self._sessionmaker is None:
                raise RuntimeError(f"{self!r} has no database: only instances built by the hub have records")
            self._records = Records(self._sessionmaker, self.instance.id)
        return self._records

    @property
    def logger(self) -> ResourceLogger:
        """This instance's resource logger: ``self.logger.info("message", key=value)``
        writes a line on stdout and, at or above the instance's log level, a row of its
        resource logs (admin API), redacted (:mod:`passerelle.resourcelogs`)."""
        if self._logger is None:
            self._logger = ResourceLogger(self)
        return self._logger

    def http_options(self) -> HttpOptions:
        """The options of ``self.http``: the defaults, with the per-instance overrides of
        the Config's ``http`` field (:class:`~passerelle.http.HttpConfig`) and its
        ``http_password`` / ``http_bearer_token`` secrets when it has them. Override to
        set your own defaults: ``options_from_config(self.config, HttpOptions(...))``
        keeps the instance's overrides on top (docs/outbound-calls.md)."""
        return options_from_config(self.config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.instance.type}/{self.instance.slug}>"

    @classmethod
    def type_slug(cls) -> str:
        return cls.slug

    @classmethod
    def permissions(cls) -> list[str]:
        """Codenames of the access rights this type's endpoints ask for."""
        return sorted({s.perm for specs in cls.endpoints.values() for s in specs if s.perm != PUBLIC})

    @property
    def files_dir(self) -> Path:
        """Where this instance's uploaded files live (created on demand)."""
        return self.settings.data_dir / "files" / self.instance.type / self.instance.slug

    async def start(self) -> None:
        """Called once the instance is built, before it serves requests."""

    async def close(self) -> None:
        """Called when the instance is replaced, deleted, or the hub stops."""

    async def check_status(self) -> None:
        """Raise an exception when the business application is unavailable."""

    def status_details(self) -> dict[str, Any]:
        """What the admin API shows of the instance's own state, under ``status.details``
        (an index being built and its progress, the last import…): JSON values, cheap to
        compute, never a secret. Empty by default."""
        return {}

    async def call_instance(self, target: str, endpoint: str, /, **params: str | int | float) -> Any:
        """Call ``endpoint`` of the instance ``target`` ("type/slug") of this hub, in process, with
        query parameters ``params``; returns its ``data`` (or a raw endpoint's answer). The target's
        errors propagate. See :mod:`passerelle.instancecalls`."""
        from passerelle.instancecalls import call_instance  # it imports the dispatcher, which imports this module

        if self._registry is None:
            raise RuntimeError(f"{self!r} is not in a hub: only instances built by the hub can call others")
        return await call_instance(self._registry, self, target, endpoint, params)

    async def add_job(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        natural_id: str | None = None,
        after: float | datetime | None = None,
        max_attempts: int | None = None,
    ) -> int:
        """Queue ``await self.<method>(**params)`` to run once, in a job runner, with retries;
        return the job's id. ``params`` are JSON values. With a ``natural_id``, a job of this
        instance and method still pending or running with it is not queued again (its id is
        returned). ``after``: seconds from now or a datetime. ``max_attempts``: default
        ``JOB_MAX_ATTEMPTS``. The method may raise ``RetryLater`` to be run later. See docs/jobs.md."""
        from passerelle.jobs.queue import enqueue  # the jobs package imports this module

        if self._sessionmaker is None:
            raise RuntimeError(f"{self!r} has no database: only instances built by the hub can queue jobs")
        return await enqueue(
            self._sessionmaker,
            self,
            method,
            params if params is not None else {},
            natural_id=natural_id,
            after=after,
            max_attempts=max_attempts,
        )


def _build_spec(method_name: str, func: Callable[..., Any], declaration: dict[str, Any]) -> EndpointSpec:
    pattern = declaration["pattern"]
    path_names = set(pattern.groupindex) if pattern else set()
    signature = spec_from_signature(
        func, path_names=path_names, context_type=Context, has_body=declaration["body_schema"] is not None
    )
    return EndpointSpec(method_name=method_name, signature=signature, **declaration)


def secret_fields(model: type[BaseModel]) -> list[str]:
    """Names of a configuration model's secret fields (typed ``SecretStr``)."""
    names = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        args = getattr(annotation, "__args__", ())
        if annotation is SecretStr or SecretStr in args:
            names.append(name)
    return names
