"""A linking connector over a fake "family" back-end, for the link registry's tests."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from passerelle import APIError, Context, LinkingConnector, endpoint

# The business application: family number -> the adult's last name and birth date.
FAMILIES: dict[str, dict[str, Any]] = {
    "F001": {"last_name": "Martin", "birth_date": date(1980, 5, 17), "children": ["Léa", "Hugo"]},
    "F002": {"last_name": "Bernard", "birth_date": date(1975, 11, 2), "children": ["Inès"]},
    "F003": {"last_name": "Petit", "birth_date": date(1990, 1, 30), "children": []},
}


class FamilyProof(BaseModel):
    model_config = ConfigDict(extra="forbid")
    family_id: str = Field(min_length=1, description="Family number, printed on the invoices.")
    last_name: str = Field(min_length=1, description="Last name of one of the adults.")
    birth_date: date = Field(description="Birth date of that adult.")


class FamilySample(LinkingConnector):
    slug = "family-sample"
    title = "Family sample"
    category = "Tests"
    description = "Links a citizen to a family of an in-memory back-end."
    LinkProof = FamilyProof

    async def verify_ownership(self, body: FamilyProof, ctx: Context) -> tuple[str, dict[str, Any]]:
        family = FAMILIES.get(body.family_id)
        if (
            family is None
            or family["last_name"].casefold() != body.last_name.casefold()
            or family["birth_date"] != body.birth_date
        ):
            # One message whatever part is wrong: no oracle for guessing.
            raise APIError("no family matches these details")
        return body.family_id, {"text": f"Famille {family['last_name']}"}

    @endpoint(description="The family linked to the citizen's NameID.")
    async def family(self, ctx: Context) -> dict[str, Any]:
        link = await self.links.resolve(ctx.name_id)
        family = FAMILIES[link.external_id]
        return {"id": link.external_id, "last_name": family["last_name"], "children": family["children"]}
