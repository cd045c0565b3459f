"""An async integration hub for French municipalities, wire-compatible with Publik's Passerelle.

The public surface for connector authors::

    from passerelle import Connector, endpoint, periodic, Param, Context, PUBLIC, APIError

and, for connectors linking a citizen's NameID to an account, ``LinkingConnector``
and its ``NotLinked`` error.
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
from passerelle.jobs import RetryLater
from passerelle.linking import LinkingConnector
from passerelle.parameters import Param

__version__ = "0.1.0"

__all__ = [
    "PUBLIC",
    "APIError",
    "Connector",
    "Context",
    "EmptyConfig",
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
]
