"""A tiny Entra ID directory for the ARM sandbox: users and their (transitive) groups.

It answers Graph ``checkMemberGroups`` and ``manager``, fills in the owner of an incident
assigned by ``objectId`` (as Sentinel does), and names comment authors.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DirectoryUser:
    """A user: object id, display name, user principal name, mail, group ids, manager."""

    object_id: str
    display_name: str
    user_principal_name: str
    mail: str | None = None
    groups: set[str] = field(default_factory=set)
    manager: str | None = None

    def owner_info(self) -> dict[str, Any]:
        """Return the Sentinel ``IncidentOwnerInfo`` for this user."""
        return {
            "objectId": self.object_id,
            "email": self.mail or self.user_principal_name,
            "userPrincipalName": self.user_principal_name,
            "assignedTo": self.display_name,
            "ownerType": "User",
        }

    def client_info(self) -> dict[str, Any]:
        """Return the Sentinel ``ClientInfo`` (comment author) for this user."""
        return {
            "objectId": self.object_id,
            "email": self.mail or self.user_principal_name,
            "userPrincipalName": self.user_principal_name,
            "name": self.display_name,
        }

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form used by the control API."""
        return {
            "id": self.object_id,
            "displayName": self.display_name,
            "userPrincipalName": self.user_principal_name,
            "mail": self.mail,
            "groupIds": sorted(self.groups),
            "managerId": self.manager,
        }

    def graph_json(self) -> dict[str, Any]:
        """Return the Graph ``microsoft.graph.user`` form (as a directory object)."""
        return {
            "@odata.type": "#microsoft.graph.user",
            "id": self.object_id,
            "displayName": self.display_name,
            "userPrincipalName": self.user_principal_name,
            "mail": self.mail,
        }


def default_users() -> list[DirectoryUser]:
    """Return the users of the official examples and of Warden's tests."""
    return [
        DirectoryUser(
            "2046feea-040d-4a46-9e2b-91c2941bfa70",
            "john doe",
            "john@contoso.com",
            "john.doe@contoso.com",
        ),
        DirectoryUser(
            "9a5c5a1e-5a4b-4a0e-8d34-2a1a2b3c4d5e",
            "Adele Vance",
            "adele.vance@contoso.com",
            "adele.vance@contoso.com",
        ),
    ]


class Directory:
    """Users by object id, also found by user principal name (case-insensitive)."""

    def __init__(self, users: Iterable[DirectoryUser] = ()) -> None:
        """Start with ``users``."""
        self._users: dict[str, DirectoryUser] = {}
        for user in users:
            self.add(user)

    def add(self, user: DirectoryUser) -> DirectoryUser:
        """Add or replace a user and return it."""
        self._users[user.object_id.lower()] = user
        return user

    def add_user(
        self,
        display_name: str,
        user_principal_name: str,
        *,
        object_id: str | None = None,
        mail: str | None = None,
        groups: Iterable[str] = (),
    ) -> DirectoryUser:
        """Create a user (a new object id unless given) and return it."""
        user = DirectoryUser(
            object_id or str(uuid.uuid4()), display_name, user_principal_name, mail, set(groups)
        )
        return self.add(user)

    def find(self, key: str) -> DirectoryUser | None:
        """Return the user with this object id or user principal name, or None."""
        found = self._users.get(key.lower())
        if found is not None:
            return found
        wanted = key.lower()
        return next(
            (u for u in self._users.values() if u.user_principal_name.lower() == wanted), None
        )

    def set_groups(self, key: str, group_ids: Iterable[str]) -> DirectoryUser:
        """Replace a user's group memberships (creating a bare user for an unknown id)."""
        user = self.find(key)
        if user is None:
            user = self.add(DirectoryUser(key, key, f"{key}@contoso.com"))
        user.groups = set(group_ids)
        return user

    def set_manager(self, key: str, manager: str | None) -> DirectoryUser:
        """Make ``manager`` (object id or UPN of a user here; None: nobody) the manager of
        the user ``key``; KeyError names an unknown user."""
        user = self.find(key)
        boss = None if manager is None else self.find(manager)
        if user is None or (manager is not None and boss is None):
            raise KeyError(manager if user is not None else key)
        user.manager = None if boss is None else boss.object_id
        return user

    def manager_of(self, user: DirectoryUser) -> DirectoryUser | None:
        """Return the user's manager, or None."""
        return None if user.manager is None else self.find(user.manager)

    def check_member_groups(self, user: DirectoryUser, group_ids: Iterable[str]) -> list[str]:
        """Return those of ``group_ids`` the user is a member of, in the order asked."""
        member_of = {group.lower() for group in user.groups}
        return [group for group in group_ids if group.lower() in member_of]

    def users(self) -> list[DirectoryUser]:
        """Return every user."""
        return list(self._users.values())
