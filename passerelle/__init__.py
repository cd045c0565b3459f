"""An async integration hub for French municipalities, wire-compatible with Publik's Passerelle.

The public surface for connector authors::

    from passerelle import Connector, endpoint, periodic, Param, Context, PUBLIC, APIError

and, for connectors linking a citizen's NameID to an account, ``LinkingConnector``
and its ``NotLinked`` error; for outbound calls, ``HttpConfig`` (per-instance overrides
of ``self.http``) and ``run_sync`` (synchronous libraries in the bounded thread pool).
"""

from passerelle.connectors import PUBLIC, Connector, Context, EmptyConfig, InstanceInfo, endpoint, periodic
from passerelle.envelope import (
    APIError,
    HubError,
    NotFound,
    NotLinked,
    PermissionDenied,
    Result,
    UpstreamError,
    UpstreamUnavailable,
    WrongParameter,
)
from passerelle.http import HttpConfig
from passerelle.jobs import RetryLater
from passerelle.linking import LinkingConnector
from passerelle.parameters import Param
from passerelle.threads import run_sync

__version__ = "0.1.0"

__all__ = [
    "PUBLIC",
    "APIError",
    "Connector",
    "Context",
    "EmptyConfig",
    "HttpConfig",
    "HubError",
    "InstanceInfo",
    "LinkingConnector",
    "NotFound",
    "NotLinked",
    "Param",
    "PermissionDenied",
    "Result",
    "RetryLater",
    "UpstreamError",
    "UpstreamUnavailable",
    "WrongParameter",
    "endpoint",
    "periodic",
    "run_sync",
]
