"""Calls from one instance to an endpoint of another, in process: a GIS connector geocodes an
address through the hub's ``base-adresse`` instance rather than knowing a geocoder itself.

``await self.call_instance("base-adresse/ville", "search", q="12 rue carnot gap")`` finds the
instance in the registry, selects the endpoint as an HTTP call would, validates the
parameters with the endpoint's own rules (a ``WrongParameter`` names the one at fault), and
returns what the endpoint returned: the ``data`` of an enveloped answer, the answer itself for
a raw endpoint. Errors of the called endpoint propagate as they are (``UpstreamUnavailable``…).

No access right is checked: the administrator who configured the calling instance chose the
target, and the call never leaves the process. The called endpoint sees a ``Context`` whose
``apiuser`` is ``instance:<type>/<slug>`` of the caller. Responses are not cached here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from multidict import MultiDict, MultiDictProxy

from passerelle.connectors import Context
from passerelle.envelope import NotFound, Result
from passerelle.requestid import current_request_id

if TYPE_CHECKING:
    from passerelle.connectors import Connector
    from passerelle.instances import InstanceRegistry

__all__ = ["call_instance"]


async def call_instance(
    registry: InstanceRegistry,
    caller: Connector,
    target: str,
    endpoint: str,
    params: Mapping[str, str | int | float],
    *,
    path: str = "",
) -> Any:
    from passerelle.dispatch import convert_path, read_query, select_endpoint

    type_slug, _, slug = target.partition("/")
    if not type_slug or not slug:
        raise NotFound(f"'{target}' is not an instance: write it type/slug, e.g. base-adresse/ville")
    connector = registry.lookup(type_slug, slug)
    spec, groups = select_endpoint(connector, endpoint, path, "GET")
    query = MultiDictProxy(MultiDict({key: str(value) for key, value in params.items()}))
    arguments = read_query(spec, query)
    if groups or spec.path_params:
        arguments.update(convert_path(spec, groups))
    if spec.signature.body_arg is not None:
        arguments[spec.signature.body_arg] = None
    if spec.signature.context_arg is not None:
        arguments[spec.signature.context_arg] = Context(
            method="GET",
            path=f"/{type_slug}/{slug}/{endpoint}/{path}",
            query=query,
            headers={},
            remote=None,
            request_id=current_request_id() or "",
            apiuser=f"instance:{caller.instance.type}/{caller.instance.slug}",
        )
    result = await getattr(connector, spec.method_name)(**arguments)
    if isinstance(result, Result):
        return result.data
    return result
