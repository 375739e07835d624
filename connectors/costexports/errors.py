"""Blob storage's errors and a corrupt partition, as Warden's typed errors.

The storage SDK raises ``azure.core.exceptions`` errors whose ``error_code`` is the service's
(``ContainerNotFound``, ``BlobNotFound``, ``AuthenticationFailed``…); ``storage_error`` keeps
that code and the status for the operator. A partition Warden cannot read (bad gzip, missing
columns, a cost that is not a number) is a ``CorruptPartition``: it is quarantined with the
reason, never retried until its blob changes.
"""

from __future__ import annotations

from azure.core.exceptions import AzureError, HttpResponseError

from core.errors import WardenError


class CostExportsError(WardenError):
    """Reading the exports failed; the message names the storage error code."""

    user_message = "The cost exports could not be read from blob storage."


class CorruptPartition(WardenError):
    """A partition's content is not a readable cost export; the message says why."""

    user_message = "A cost export partition is corrupt and was quarantined."


def storage_error(exc: AzureError, what: str) -> CostExportsError:
    """The typed error for a storage call on ``what`` that failed with ``exc``."""
    if isinstance(exc, HttpResponseError):
        code = getattr(exc, "error_code", None) or exc.reason or "error"
        return CostExportsError(f"blob storage refused {what}: {exc.status_code} {code}")
    return CostExportsError(f"blob storage unreachable reading {what}: {type(exc).__name__}")
