"""Settings of ServiceNow and Jira Service Management together (``WARDEN_ITSM__<FIELD>``).

Both systems can be connected at once; links and their outcomes go to the system each
record lives in. ``default`` says where *new* records go: *Create change* on an incident
card and a budget card's *Open change*.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from core.itsm import ItsmSystem


class ItsmSettings(BaseModel):
    """Where new ITSM records are created when both systems are connected."""

    default: ItsmSystem | None = Field(
        None,
        description="Where *Create change* and a budget's *Open change* create records: "
        "`servicenow` or `jsm` (empty: ServiceNow when it is connected, else JSM). It must "
        "name a configured system.",
    )

    def problems(self, *, servicenow: bool, jsm: bool) -> list[str]:
        """What is wrong, naming the variable: a default system that is not configured."""
        configured = {ItsmSystem.SERVICENOW: servicenow, ItsmSystem.JSM: jsm}
        if self.default is None or configured[self.default]:
            return []
        needs = {
            ItsmSystem.SERVICENOW: "WARDEN_SERVICENOW__INSTANCE_URL",
            ItsmSystem.JSM: "WARDEN_JSM__BASE_URL",
        }[self.default]
        return [
            f"WARDEN_ITSM__DEFAULT: {self.default.value} is not configured "
            f"(set {needs} and its credentials, or choose the other system)"
        ]
