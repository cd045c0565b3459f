"""Linking connectors: the standard ``link``, ``unlink`` and ``links`` endpoints.

A connector whose business application knows citizens by an account of its own
(a family number, a library card…) subclasses :class:`LinkingConnector`, declares
the body that proves ownership of an account (``LinkProof``, a pydantic model)
and checks it against the application::

    class FamilyProof(BaseModel):
        family_id: str = Field(description="Family number, on the invoices.")
        birth_date: date = Field(description="Birth date of one of the adults.")

    class Family(LinkingConnector):
        LinkProof = FamilyProof

        async def verify_ownership(self, body: FamilyProof, ctx: Context) -> tuple[str, dict[str, Any]]:
            family = await self.fetch_family(body.family_id)          # raise APIError when it does not match
            return body.family_id, {"text": family.label}

        @endpoint(description="The citizen's family.")
        async def family(self, ctx: Context) -> dict[str, Any]:
            link = await self.links.resolve(ctx.name_id)              # NotLinked when there is none
            ...

It gets, all taking the citizen from ``?NameID=`` (a 400 naming ``NameID`` without it):

- ``link`` (POST, body ``LinkProof``): ``verify_ownership`` then create or update
  the link; answers ``{"err": 0, "data": {"created": bool, "link": {...}}}``;
- ``unlink`` (POST or DELETE): ``{"err": 0, "data": {"deleted": true}}``, or
  ``NotLinked`` when there was no link;
- ``links`` (GET): this NameID's links on the instance, as ``link_view`` shows them.

The proof is never stored, logged nor returned: only the external id and the
``extra`` metadata ``verify_ownership`` returns are kept.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel

from passerelle.connectors import Connector, Context, endpoint
from passerelle.envelope import NotLinked
from passerelle.links import LinkRecord, require_name_id

__all__ = ["LinkingConnector", "actor_of"]

CATEGORY = "Account link"
NAME_ID_NOTE = (
    "The citizen is given by Publik's `NameID` query parameter (added by w.c.s. and Combo); "
    "without it the call is refused with a 400."
)


def actor_of(ctx: Context) -> str:
    """Who acts, as the audit trail records it."""
    return f"apiuser:{ctx.apiuser}" if ctx.apiuser else "anonymous"


def _link_endpoint(proof: type[BaseModel]) -> Any:
    """The ``link`` endpoint of a type, declared with that type's proof model as its body."""

    async def link(self: LinkingConnector, body: BaseModel, ctx: Context) -> dict[str, Any]:
        return await self.link_account(body, ctx)

    return endpoint(
        methods=["post"],
        body=proof,
        description="Link an account of the application to the citizen's NameID.",
        long_description="The body proves that the citizen owns the account; it is checked against the "
        "application, never stored nor logged. Linking again replaces the linked account. " + NAME_ID_NOTE,
        display_category=CATEGORY,
        display_order=1,
    )(link)


class LinkingConnector(Connector, ABC):
    """Base class of connectors linking a citizen's NameID to an account of their application."""

    LinkProof: ClassVar[type[BaseModel]]
    """The JSON body of ``link``: what proves ownership of an account (never stored)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        proof = getattr(cls, "LinkProof", None)
        if not (isinstance(proof, type) and issubclass(proof, BaseModel)):
            raise TypeError(f"{cls.__qualname__}: a LinkingConnector declares LinkProof, a pydantic model")
        if "link" not in vars(cls):
            cls.link = _link_endpoint(proof)  # type: ignore[attr-defined]
        super().__init_subclass__(**kwargs)

    @abstractmethod
    async def verify_ownership(self, body: Any, ctx: Context) -> tuple[str, dict[str, Any]]:
        """Check the proof (a ``LinkProof``) against the application; return the external
        id and small public metadata to keep with the link (``{"text": "Famille Martin"}``).
        Raise ``APIError`` when it does not match, with a message that does not say which
        part was wrong."""

    def link_view(self, record: LinkRecord) -> dict[str, Any]:
        """How ``link`` and ``links`` show a link. Override to hide or mask the external
        id when it is itself sensitive (a card number, say)."""
        return {
            "id": record.external_id,
            "text": str(record.extra.get("text") or record.external_id),
            "extra": record.extra,
            "created": record.created,
            "last_verified": record.last_verified,
        }

    async def link_account(self, body: Any, ctx: Context) -> dict[str, Any]:
        """What the ``link`` endpoint does (for connectors overriding ``link``)."""
        name_id = require_name_id(ctx.name_id)
        external_id, extra = await self.verify_ownership(body, ctx)
        created = await self.links.link(name_id, external_id, extra=extra, actor=actor_of(ctx))
        record = await self.links.resolve(name_id)
        return {"created": created, "link": self.link_view(record)}

    @endpoint(
        methods=["post", "delete"],
        description="Unlink the account linked to the citizen's NameID.",
        long_description="Answers the NotLinked error when no account is linked. " + NAME_ID_NOTE,
        display_category=CATEGORY,
        display_order=2,
    )
    async def unlink(self, ctx: Context) -> dict[str, Any]:
        if not await self.links.unlink(require_name_id(ctx.name_id), actor=actor_of(ctx)):
            raise NotLinked("no account is linked to this NameID")
        return {"deleted": True}

    @endpoint(
        name="links",
        description="The accounts linked to the citizen's NameID on this instance.",
        long_description=NAME_ID_NOTE,
        display_category=CATEGORY,
        display_order=3,
    )
    async def list_links(self, ctx: Context) -> list[dict[str, Any]]:
        return [self.link_view(record) for record in await self.links.list(require_name_id(ctx.name_id))]
