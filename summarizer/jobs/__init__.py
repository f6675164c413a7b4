"""Jobs: one document's upload, its pipeline run and its durable event log.

One idea per module:

* :mod:`~summarizer.jobs.upload`: :class:`Upload` (feed, commit, ack when consumed, end, stream);
* :mod:`~summarizer.jobs.eventlog`: :class:`EventLog` (stamp ``seq``, serialize once, batched
  writes off the event loop, replay then tail) and its :class:`EventWriter` thread;
* :mod:`~summarizer.jobs.job`: :class:`Job` lifecycle, :class:`JobSpec`, :class:`JobState`;
* :mod:`~summarizer.jobs.manager`: :class:`JobManager` (limits, lookup, recovery, lifetimes,
  supervised background tasks).

What a recovered job may skip lives beside the pipeline, in :mod:`summarizer.recovery`.
The package knows nothing about WebSockets.
"""

from __future__ import annotations

from .eventlog import EventLog, EventWriter, StoredEvent
from .job import FINISHED_STATES, Job, JobLimits, JobSpec, JobState, new_job_id
from .manager import JobManager
from .upload import Upload, UploadState

__all__ = [
    "FINISHED_STATES",
    "EventLog",
    "EventWriter",
    "Job",
    "JobLimits",
    "JobManager",
    "JobSpec",
    "JobState",
    "StoredEvent",
    "Upload",
    "UploadState",
    "new_job_id",
]
