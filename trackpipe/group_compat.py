"""A consumer group that survives a commit during a rebalance on the embedded broker.

Measured here (noida-db 0.2.3, aiokafka 0.14.0): when a member joins a group whose members commit
offsets (Faust commits every few seconds and on every revoke), a commit sent with the generation that
is being replaced is answered IllegalGeneration / UnknownMemberId.  aiokafka then forgets its member
id and joins again as a *new* member -- but noida-db keeps waiting for the old member id to rejoin,
so the group never completes its rebalance: the joining member stays unassigned and the others
rejoin every session timeout, for minutes (three plain aiokafka consumers with auto-commit: the
second never got a partition in 150 s).  Rejoining under the same member id completes it (the second
and third were assigned 1.3 s and 1.2 s after they started).

`install()` makes a commit's IllegalGeneration / UnknownMemberId ask for a rejoin that keeps the
member id.  Against a real Kafka that is safe: a broker that no longer knows the member answers the
JoinGroup with UNKNOWN_MEMBER_ID, and aiokafka's join handler then resets the id as before (one extra
round trip).  Written for aiokafka 0.14.0 (pinned); refuses to patch another shape.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from typing import Any

from aiokafka.consumer import group_coordinator as _gc

log = logging.getLogger("trackpipe.kafka")

_MARK = "_trackpipe_keep_member"
#: set in the task handling a commit's answer only (a heartbeat or join task resets as before)
_committing: contextvars.ContextVar[bool] = contextvars.ContextVar("trackpipe_committing", default=False)


def install() -> bool:
    coordinator = _gc.GroupCoordinator
    if getattr(coordinator.reset_generation, _MARK, False):
        return True
    commit = getattr(coordinator, "_do_commit_offsets", None)
    if commit is None or not inspect.iscoroutinefunction(commit) or "reset_generation" not in inspect.getsource(commit):
        log.warning("aiokafka GroupCoordinator not as expected: commit errors keep their default handling")
        return False
    reset = coordinator.reset_generation

    async def do_commit_offsets(self: Any, *args: Any, **kwargs: Any) -> Any:
        token = _committing.set(True)
        try:
            return await commit(self, *args, **kwargs)
        finally:
            _committing.reset(token)

    def reset_generation(self: Any) -> None:
        if _committing.get():
            self.request_rejoin()  # rejoin as the member the coordinator is waiting for
            return
        reset(self)

    setattr(reset_generation, _MARK, True)
    coordinator._do_commit_offsets = do_commit_offsets  # type: ignore[method-assign]
    coordinator.reset_generation = reset_generation  # type: ignore[method-assign]
    return True
