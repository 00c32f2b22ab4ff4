from __future__ import annotations

import uuid
from typing import Any

from menusync.core.errors import Conflict, NotFound, ValidationFailed


class SyncNotFound(NotFound):
    code = "sync_not_found"

    def __init__(self, sync_id: uuid.UUID) -> None:
        super().__init__(f"Sync {sync_id} not found", details={"syncId": str(sync_id)})


class BatchNotFound(NotFound):
    code = "batch_not_found"

    def __init__(self, batch_id: uuid.UUID) -> None:
        super().__init__(f"Batch {batch_id} not found", details={"batchId": str(batch_id)})


class SyncAlreadyFinished(Conflict):
    code = "sync_already_finished"

    def __init__(self, sync_id: uuid.UUID, status: str) -> None:
        super().__init__(
            f"Sync {sync_id} is already {status}",
            details={"syncId": str(sync_id), "status": status},
        )


class ConnectionDisabled(Conflict):
    code = "connection_disabled"


class MenuRejectedByPlatform(ValidationFailed):
    """The menu breaks the platform's rules: refused before any call (400, as the contract says)."""

    code = "platform_validation_failed"

    def __init__(self, platform: str, issues: list[dict[str, Any]]) -> None:
        super().__init__(
            f"{platform} would reject this menu: {len(issues)} issue(s)",
            issues,
            status_code=400,
            details={"platformType": platform},
        )


class ConfigurationInvalid(ValidationFailed):
    code = "configuration_invalid"
