"""A Kedro session store that gives every run of a project its own save version.

Kedro uses a session's id, a timestamp to the millisecond, as the save version of every
versioned dataset the run writes. Two ``kedro run`` processes of one project started in the
same millisecond would share it, and the second to save a dataset would fail ("must not exist
if versioning is enabled"). This store claims each id under an exclusive lock on
``<project>/.kedro_save_version``, which holds the last id claimed: an id not after it becomes
that id plus one millisecond. Ids stay Kedro timestamps, so "latest" still means newest.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from kedro.framework.session.store import BaseSessionStore
from kedro.io.core import VERSION_FORMAT

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; ids are Kedro's own
    fcntl = None

CLAIM_FILE = ".kedro_save_version"


def next_version(version: str) -> str:
    """The Kedro timestamp one millisecond after ``version``."""
    later = datetime.strptime(version, VERSION_FORMAT) + timedelta(milliseconds=1)
    stamp = later.strftime(VERSION_FORMAT)
    return stamp[:-4] + stamp[-1:]  # milliseconds, as kedro.io.core.generate_timestamp


def claim_version(project: Path, version: str) -> str:
    """``version``, or the next free one after the last id claimed in ``project``; recorded."""
    if fcntl is None:
        return version
    with open(project / CLAIM_FILE, "a+") as claims:
        fcntl.flock(claims, fcntl.LOCK_EX)
        claims.seek(0)
        last = claims.read().strip()
        if last and version <= last:  # same-format timestamps order as strings
            version = next_version(last)
        claims.seek(0)
        claims.truncate()
        claims.write(version)
        claims.flush()
        os.fsync(claims.fileno())
    return version


class UniqueVersionStore(BaseSessionStore):
    """Kedro's ephemeral session store whose ``session_id`` (the run's save version) no other
    session of the project has. Kedro passes ``path=<project>/sessions``."""

    def __init__(self, path: str, session_id: str):
        self._unique_id = claim_version(Path(path).parent, session_id)
        super().__init__(path, self._unique_id)

    def __setitem__(self, key, value) -> None:
        if key == "session_id":  # KedroSession.create stores its own timestamp here
            value = self._unique_id
        super().__setitem__(key, value)
