"""Every connector: its name, semantic version, feature flag and whether it is set up.

A connector is *on* when its flag (``WARDEN_CONNECTORS__<NAME>__ENABLED``, on by default)
is on and its settings are there. ``status``, ``/readyz`` and ``doctor`` show this table;
``create_app`` starts only what is on, and holds the queued work of a connector switched off
(it waits in the outbox, nothing is dropped) until the flag is on again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import connectors.jsm
import connectors.policy
import connectors.sentinel
import connectors.servicenow
import graph
from core.errors import DeliveryError, Outcome
from core.settings import Settings
from core.store.cmdb import CMDB_JOB
from core.store.deployments import DEPLOYMENTS_JOB
from core.store.evidence import EVIDENCE_FILE_JOB, EVIDENCE_LIST_JOB
from core.store.evidence_audit import AUDIT_MIRROR_JOB
from core.store.evidence_outcomes import ITSM_EVIDENCE_JOB
from core.store.links import ITSM_CREATE_JOB, ITSM_OUTCOME_JOB, LINK_NOTE_JOB
from core.store.outbox import Job
from core.store.posture import POLICY_ATTEST_JOB
from core.triage import TRIAGE_JOB
from core.worker import Handler

HELD_WAIT = 300.0  # seconds between looks; once the flag is on, held jobs run within this
Name = Literal["sentinel", "policy", "servicenow", "jsm", "defender", "sharepoint"]


@dataclass(frozen=True)
class Connector:
    """What Warden knows of one connector without starting it."""

    name: Name
    title: str
    version: str
    configured: Callable[[Settings], bool]
    setup: str  # what to set for it to be configured, for messages and doctor
    jobs: frozenset[str]  # the outbox job kinds it delivers; held while it is switched off

    @property
    def flag(self) -> str:
        """The environment variable of its feature flag."""
        return f"WARDEN_CONNECTORS__{self.name.upper()}__ENABLED"


CONNECTORS: tuple[Connector, ...] = (
    Connector(
        "sentinel",
        "Microsoft Sentinel",
        connectors.sentinel.__version__,
        lambda s: bool(s.sentinel_workspaces or s.azure_client_id or s.webhook_secrets),
        "WARDEN_SENTINEL_WORKSPACES (poll) or WARDEN_SENTINEL_WEBHOOK_SECRETS (webhook)",
        frozenset({TRIAGE_JOB, LINK_NOTE_JOB, CMDB_JOB, DEPLOYMENTS_JOB}),
    ),
    Connector(
        "policy",
        "Azure Policy",
        connectors.policy.__version__,
        lambda s: bool(s.policy_scopes and s.requirements_file),
        "WARDEN_POLICY_SCOPES and WARDEN_REQUIREMENTS_FILE",
        frozenset({POLICY_ATTEST_JOB}),
    ),
    Connector(
        "servicenow",
        "ServiceNow",
        connectors.servicenow.__version__,
        lambda s: s.servicenow.enabled,
        "WARDEN_SERVICENOW__INSTANCE_URL and its credentials",
        frozenset({ITSM_OUTCOME_JOB, ITSM_CREATE_JOB, ITSM_EVIDENCE_JOB, CMDB_JOB}),
    ),
    Connector(
        "jsm",
        "Jira Service Management",
        connectors.jsm.__version__,
        lambda s: s.jsm.enabled,
        "WARDEN_JSM__BASE_URL and its credentials",
        frozenset({ITSM_OUTCOME_JOB, ITSM_CREATE_JOB}),
    ),
    Connector(
        "defender",
        "Microsoft Defender XDR",
        graph.DEFENDER_VERSION,
        lambda s: s.defender.enabled and s.sentinel_connected,
        "WARDEN_DEFENDER__ENABLED=true and Warden's Azure app identity (AZURE_CLIENT_ID)",
        frozenset({TRIAGE_JOB}),
    ),
    Connector(
        "sharepoint",
        "SharePoint (Microsoft Graph)",
        graph.__version__,
        lambda s: bool(s.sharepoint_site),
        "WARDEN_SHAREPOINT_SITE",
        frozenset({AUDIT_MIRROR_JOB, EVIDENCE_FILE_JOB, EVIDENCE_LIST_JOB}),
    ),
)
BY_NAME = {connector.name: connector for connector in CONNECTORS}


def enabled(settings: Settings, name: Name) -> bool:
    """The connector's feature flag (on unless switched off)."""
    flag: bool = getattr(settings.connectors, name).enabled
    return flag


def is_on(settings: Settings, name: Name) -> bool:
    """True when the connector may run: its flag is on and it is set up."""
    return enabled(settings, name) and BY_NAME[name].configured(settings)


def state(settings: Settings, name: Name) -> str:
    """``on``, ``off`` (flag switched off) or ``not configured``, for people."""
    if not enabled(settings, name):
        return "off"
    return "on" if BY_NAME[name].configured(settings) else "not configured"


def snapshot(settings: Settings) -> dict[str, dict[str, str]]:
    """Every connector's version, state and flag, as ``/readyz`` and ``status`` show them."""
    return {
        c.name: {
            "title": c.title,
            "version": c.version,
            "state": state(settings, c.name),
            "flag": c.flag,
        }
        for c in CONNECTORS
    }


def off_messages(settings: Settings) -> dict[str, str]:
    """What a command of each switched-off connector answers, by connector name."""
    return {
        c.name: f"The {c.title} connector is switched off here. An operator turns it on with "
        f"{c.flag}=true."
        for c in CONNECTORS
        if not enabled(settings, c.name)
    }


def held_jobs(settings: Settings) -> dict[str, Handler]:
    """Handlers keeping the jobs of every switched-off connector waiting, by job kind.

    A kind that a switched-on connector also delivers (ServiceNow and JSM share the ITSM
    jobs, Sentinel and Defender XDR the triage job) is not held: that connector's handler
    takes it, and holds the jobs meant for the one switched off (``wiring.defender``).
    """
    running = {kind for c in CONNECTORS if is_on(settings, c.name) for kind in c.jobs}
    return {
        kind: held(c.name)
        for c in CONNECTORS
        if not enabled(settings, c.name)
        for kind in c.jobs
        if kind not in running
    }


def held(name: Name) -> Handler:
    """A handler that keeps a switched-off connector's jobs waiting in the outbox, unspent."""
    connector = BY_NAME[name]

    async def wait(job: Job) -> None:
        raise DeliveryError(
            f"the {connector.title} connector is switched off ({connector.flag}=false): "
            f"the {job.kind} job waits until it is on",
            outcome=Outcome.RETRY,
            retry_after=HELD_WAIT,
            attempted=False,
        )

    return wait
