"""The shared store: jobs, event logs, uploads and leases in Redis (several replicas).

Replicas that share one Redis URL form one service: any of them can replay any
job's events, continue its upload, and take over its execution when the owner's
lease lapses. Layout (``P`` is the key prefix, default ``summarizer:``)::

    P{jobs}                 sorted set: job id -> created (Unix s); "oldest first"
    P{state}:<state>        sorted set per state: job id -> created (what recovery scans)
    P{job}:<id>             hash: created, updated, state, spec (JSON), received, messages
    P{ev}:<id>              stream: one entry per event, entry id ``<seq>-0``,
                            fields ``t`` (type) and ``b`` (wire JSON)
    P{up}:<id>              list: one element per upload message, b"B"/b"T" + payload
    P{lease}:<id>           string: the owner replica id, with a TTL (``PX``)
    P{cancel}:<id>          string: a client asked (on any replica) to cancel the job
    P{handoff}:<id>         string: the replica that asks the owner for the job (its upload
                            continues there), with a TTL

Exactly-once replay: an event's stream id is derived from its ``seq``
(``<seq>-0``), so replay after ``seq`` is ``XRANGE (<seq>-0 +`` and a repeated
``seq`` is refused by Redis itself (ids must grow). A batch of events is
appended by one Lua script that first checks every ``seq`` against its stream's
last id and only then adds them all: all or none, even across jobs.

Uploads: each message is one list element, appended together with the job's
``received``/``messages`` counters in one ``MULTI``/``EXEC``; a connection that
dies before ``EXEC`` leaves nothing (Redis has no torn record). The upload lives
in Redis memory: a job costs up to ``max_document_bytes`` (default 200 MiB) plus
its event log; a single message is bounded by ``max_frame_bytes`` (default 4
MiB, far below Redis's 512 MB ``proto-max-bulk-len``). See ``docs/deploy.md``.

Leases: ``SET key owner NX PX ttl`` to acquire, compare-and-renew and
compare-and-delete in Lua so only the owner extends or releases its lease.

Durability is Redis's: with ``appendonly yes`` and ``appendfsync everysec`` a
Redis crash loses at most the last second; a Redis *restart* with AOF loses
nothing that was acknowledged.

Threads: redis-py's blocking client with its connection pool is thread-safe;
every method here is. ``redis`` is imported lazily, so the default (SQLite)
install needs no Redis (``pip install 'summarizer[redis]'``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import StoreUnavailable
from .base import EventGap, EventRow, JobRecord, LeaseLost, LogTaken, UploadRecord

__all__ = ["UPLOAD_PAGE", "RedisStore", "StoreUnavailable"]  # StoreUnavailable: from ..errors

UPLOAD_PAGE = 64
"""Upload records fetched per ``LRANGE`` round trip."""

_EVENTS_PAGE = 1000

_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'created', ARGV[2], 'updated', ARGV[2], 'state', ARGV[3],
           'spec', ARGV[4], 'received', 0, 'messages', 0)
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[2], ARGV[1])
redis.call('DEL', KEYS[3], KEYS[4])
return 1
"""

# ARGV: new state, now, state-index key prefix, job id. Moves the id between state indexes.
_SET_STATE = """
local old = redis.call('HGET', KEYS[1], 'state')
if old == false then return 0 end
local created = redis.call('HGET', KEYS[1], 'created')
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated', ARGV[2])
if old ~= ARGV[1] then
  redis.call('ZREM', ARGV[3] .. old, ARGV[4])
  redis.call('ZADD', ARGV[3] .. ARGV[1], created, ARGV[4])
end
return 1
"""

# KEYS: one stream per row; ARGV: seq, type, body per row. Check all (each seq right after the
# previous one of its stream), then add all.
_APPEND = """
local last = {}
for i, key in ipairs(KEYS) do
  local seq = tonumber(ARGV[3 * i - 2])
  local prev = last[key]
  if prev == nil then
    prev = 0
    local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
    if #top > 0 then prev = tonumber(string.match(top[1][1], '^(%d+)')) end
  end
  if seq <= prev then
    return redis.error_reply('DUPSEQ ' .. key .. ' seq ' .. seq .. ' is not after ' .. prev)
  end
  if seq > prev + 1 then
    return redis.error_reply('GAPSEQ ' .. i .. ' ' .. prev)
  end
  last[key] = seq
end
for i, key in ipairs(KEYS) do
  redis.call('XADD', key, ARGV[3 * i - 2] .. '-0', 't', ARGV[3 * i - 1], 'b', ARGV[3 * i])
end
return #KEYS
"""

# KEYS: upload list, job hash, lease; ARGV: owner ('' for none), payload bytes, then the records.
_APPEND_UPLOAD = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return 0
end
for i = 3, #ARGV do
  redis.call('RPUSH', KEYS[1], ARGV[i])
end
redis.call('HINCRBY', KEYS[2], 'received', ARGV[2])
redis.call('HINCRBY', KEYS[2], 'messages', #ARGV - 2)
return 1
"""

_ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if held == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease, handoff request; ARGV: owner, new owner, ttl (ms). Compare-and-set of the lease.
_TRANSFER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[2])
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisStore:
    """Jobs, events, uploads and leases in Redis (implements :class:`~summarizer.store.base.JobStore`).

    Args:
        url: ``redis://HOST:PORT/DB`` (``rediss://`` for TLS, ``unix://`` for a socket).
        prefix: Prefix of every key, so several services can share one Redis.
        socket_timeout_s: Seconds a command may take before it fails
            (default 5 s); also the connect timeout.
        retry_s: Seconds :meth:`append_events` keeps retrying while Redis is
            unreachable (default 120 s): jobs pause, then continue when it returns.

    Raises:
        ImportError: The ``redis`` package is missing (install the ``redis`` extra).
    """

    shared = True
    """Several replicas share this store (see :mod:`summarizer.jobs.lease`)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "summarizer:",
        socket_timeout_s: float = 5.0,
        retry_s: float = 120.0,
    ) -> None:
        import redis

        self.url = url
        self.retry_s = retry_s
        self.prefix = prefix
        # redis-py's annotations mix sync and async result types; the blocking client returns bytes.
        self.r: Any = redis.Redis.from_url(
            url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s
        )
        self._create = self.r.register_script(_CREATE)
        self._set_state = self.r.register_script(_SET_STATE)
        self._append = self.r.register_script(_APPEND)
        self._append_upload = self.r.register_script(_APPEND_UPLOAD)
        self._acquire = self.r.register_script(_ACQUIRE)
        self._release = self.r.register_script(_RELEASE)
        self._transfer = self.r.register_script(_TRANSFER)
        self._closed = False

    # -- keys ------------------------------------------------------------------------------

    def _k(self, kind: str, job_id: str = "") -> str:
        return f"{self.prefix}{{{kind}}}:{job_id}" if job_id else f"{self.prefix}{{{kind}}}"

    def event_key(self, job_id: str) -> str:
        """The job's event stream key (for a live tail with ``XREAD BLOCK``)."""
        return self._k("ev", job_id)

    # -- health --------------------------------------------------------------------------

    def ping(self) -> None:
        """Check that Redis answers.

        Raises:
            StoreUnavailable: It does not (the message names the URL and the cause).
        """
        import redis

        try:
            self.r.ping()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis at {self.url} is unreachable: {exc}") from exc

    def close(self) -> None:
        """Close the connection pool (the data stays in Redis)."""
        if not self._closed:
            self._closed = True
            self.r.close()

    # -- jobs ----------------------------------------------------------------------------------

    def create_job(self, job_id: str, spec: dict[str, Any], state: str) -> None:
        """Insert a new job with an empty upload and event log.

        Raises:
            KeyError: The id exists already.
        """
        keys = [
            self._k("job", job_id),
            self._k("jobs"),
            self._k("ev", job_id),
            self._k("up", job_id),
            self._k("state", state),
        ]
        created = self._create(keys=keys, args=[job_id, repr(time.time()), state, json.dumps(spec)])
        if not created:
            raise KeyError(job_id)

    def set_state(self, job_id: str, state: str) -> None:
        """Record a state change (nothing happens for an unknown job)."""
        self._set_state(
            keys=[self._k("job", job_id)], args=[state, repr(time.time()), self._k("state", ""), job_id]
        )

    def job(self, job_id: str) -> JobRecord | None:
        """The job, or ``None`` if unknown or purged."""
        fields = self.r.hgetall(self._k("job", job_id))
        return None if not fields else _record(job_id, fields)

    def _in_states(self, states: tuple[str, ...]) -> list[JobRecord]:
        """The jobs indexed under ``states`` (one sorted set per state, by creation time)."""
        found: list[tuple[float, str]] = []
        for state in dict.fromkeys(states):
            found += [
                (score, i.decode())
                for i, score in self.r.zrange(self._k("state", state), 0, -1, withscores=True)
            ]
        found.sort()
        pipe = self.r.pipeline(transaction=False)
        for _, job_id in found:
            pipe.hgetall(self._k("job", job_id))
        records = [_record(job_id, f) for (_, job_id), f in zip(found, pipe.execute(), strict=True) if f]
        return [r for r in records if r.state in states]

    def jobs_in_states(self, states: tuple[str, ...]) -> list[JobRecord]:
        """Every job whose state is one of ``states``, oldest first (reads only those states' index)."""
        return self._in_states(states)

    def purge(self, states: tuple[str, ...], older_than: float) -> list[str]:
        """Delete jobs in ``states`` last updated before ``older_than`` (Unix s), with their
        events, upload and lease; returns their ids."""
        expired = [r for r in self._in_states(states) if r.updated < older_than]
        ids = [r.id for r in expired]
        for job_id in ids:
            pipe = self.r.pipeline(transaction=True)
            pipe.delete(
                self._k("job", job_id),
                self._k("ev", job_id),
                self._k("up", job_id),
                self._k("lease", job_id),
                self._k("cancel", job_id),
                self._k("handoff", job_id),
            )
            pipe.zrem(self._k("jobs"), job_id)
            for state in states:
                pipe.zrem(self._k("state", state), job_id)
            pipe.execute()
        return ids

    # -- events ------------------------------------------------------------------------------

    def append_events(self, rows: Sequence[EventRow]) -> None:
        """Commit a batch of events (of any jobs) atomically: all or none.

        Raises:
            redis.ResponseError: A ``seq`` is not after its job's last one (nothing is added).
            EventGap: A job's first ``seq`` is beyond its last stored one + 1: Redis lost
                acknowledged events (nothing is added; the writer repairs the log).
            LogTaken: A ``seq`` is already in its job's log, not from this batch: another
                replica writes the log now (nothing is added).
        """
        if not rows:
            return
        import redis

        args: list[str | int] = []
        for row in rows:
            args += [row.seq, row.type, row.body]
        keys = [self._k("ev", row.job_id) for row in rows]
        deadline = time.monotonic() + self.retry_s
        delay = 0.05
        retried = False
        while True:
            try:
                self._append(keys=keys, args=args)
                return
            except (redis.ConnectionError, redis.TimeoutError):
                # Redis is down or restarting: the job pauses here (its readers wait) until it returns.
                if time.monotonic() + delay > deadline:
                    raise
                retried = True
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            except redis.ResponseError as exc:
                # A retry after a lost reply: the first attempt may have been applied.
                if retried and "DUPSEQ" in str(exc) and self._already_appended(rows):
                    return
                if str(exc).startswith("GAPSEQ"):
                    _, index, last = str(exc).split()
                    raise EventGap(rows[int(index) - 1].job_id, int(last)) from None
                if str(exc).startswith("DUPSEQ"):  # DUPSEQ <key> seq <seq> is not after <last>
                    parts = str(exc).split()
                    key, sent, stored = parts[1], int(parts[3]), int(parts[-1])
                    job_id = next((row.job_id for row in rows if self._k("ev", row.job_id) == key), key)
                    raise LogTaken(job_id, sent, stored) from None
                raise

    def _already_appended(self, rows: Sequence[EventRow]) -> bool:
        """Whether every row is in the log already, with the same body."""
        for row in rows:
            found = self.events(row.job_id, row.seq - 1, 1)
            if not found or found[0].seq != row.seq or found[0].body != row.body:
                return False
        return True

    def events(self, job_id: str, after_seq: int = 0, limit: int | None = None) -> list[EventRow]:
        """The job's events with ``seq > after_seq``, in order, at most ``limit``."""
        key = self._k("ev", job_id)
        out: list[EventRow] = []
        start = f"({after_seq}-0" if after_seq > 0 else "-"
        while limit is None or len(out) < limit:
            count = _EVENTS_PAGE if limit is None else min(_EVENTS_PAGE, limit - len(out))
            entries = self.r.xrange(key, min=start, max="+", count=count)
            for entry_id, fields in entries:
                seq = int(entry_id.split(b"-", 1)[0])
                out.append(EventRow(job_id, seq, fields[b"t"].decode(), fields[b"b"].decode()))
            if len(entries) < count:
                break
            start = f"({out[-1].seq}-0"
        return out

    def last_seq(self, job_id: str) -> int:
        """The highest committed ``seq`` (0 if none)."""
        top = self.r.xrevrange(self._k("ev", job_id), count=1)
        return int(top[0][0].split(b"-", 1)[0]) if top else 0

    # -- uploads --------------------------------------------------------------------------------

    def append_upload(self, job_id: str, record: UploadRecord, *, owner: str | None = None) -> None:
        """Append one upload message and count it, atomically; with ``owner``, only while
        ``owner`` holds the job's lease (checked in the same Lua call: a fenced write).

        Raises:
            LeaseLost: Another replica holds the lease (or none does): nothing is appended.
        """
        self.append_uploads(job_id, (record,), owner=owner)

    def append_uploads(
        self, job_id: str, records: Sequence[UploadRecord], *, owner: str | None = None
    ) -> None:
        """Append upload messages and count them in one Lua call (one round trip): all or none,
        fenced by the lease like :meth:`append_upload`.

        Raises:
            LeaseLost: Another replica holds the lease (or none does): nothing is appended.
        """
        items: list[bytes] = []
        total = 0
        for record in records:
            payload = record.encode("utf-8", "surrogatepass") if isinstance(record, str) else record
            items.append((b"T" if isinstance(record, str) else b"B") + payload)
            total += len(payload)
        keys = [self._k("up", job_id), self._k("job", job_id), self._k("lease", job_id)]
        if not self._append_upload(keys=keys, args=[owner or "", total, *items]):
            assert owner is not None
            raise LeaseLost(job_id, owner)

    def upload_records(self, job_id: str, start: int = 0) -> Iterator[UploadRecord]:
        """The job's upload records from index ``start``, in order, fetched a page at a time."""
        key = self._k("up", job_id)
        index = start
        while True:
            page = self.r.lrange(key, index, index + UPLOAD_PAGE - 1)
            for item in page:
                yield item[1:].decode("utf-8", "surrogatepass") if item[:1] == b"T" else item[1:]
            if len(page) < UPLOAD_PAGE:
                return
            index += len(page)

    def upload_path(self, job_id: str) -> None:
        """``None``: the upload is in Redis, not in a local file."""
        return None

    def truncate_upload(self, job_id: str) -> tuple[int, int]:
        """Returns ``(payload bytes, messages)`` stored; a record is appended whole or not at all,
        so there is never a torn one to drop."""
        received, messages = self.r.hmget(self._k("job", job_id), ["received", "messages"])
        return int(received or 0), int(messages or 0)

    def close_upload(self, job_id: str) -> None:
        """Nothing to release (no file handle per upload)."""

    # -- leases -----------------------------------------------------------------------------------

    def acquire_lease(self, job_id: str, owner: str, ttl_s: float) -> bool:
        """Own ``job_id`` for ``ttl_s`` seconds unless another owner holds an unexpired lease."""
        ms = max(1, int(ttl_s * 1000))
        return bool(self._acquire(keys=[self._k("lease", job_id)], args=[owner, ms]))

    def renew_lease(self, job_id: str, owner: str, ttl_s: float) -> bool:
        """Extend ``owner``'s lease; ``False`` if another owns the job now."""
        return self.acquire_lease(job_id, owner, ttl_s)

    def release_lease(self, job_id: str, owner: str) -> None:
        """Give the job up (only ``owner``'s own lease is deleted)."""
        self._release(keys=[self._k("lease", job_id)], args=[owner])

    def request_cancel(self, job_id: str, ttl_s: float = 3600.0) -> None:
        """Ask whichever replica runs ``job_id`` to cancel it (the request lasts ``ttl_s`` seconds)."""
        self.r.set(self._k("cancel", job_id), b"1", px=max(1, int(ttl_s * 1000)))

    def cancel_requested(self, job_ids: Sequence[str]) -> list[str]:
        """Those of ``job_ids`` a client asked to cancel."""
        pipe = self.r.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.exists(self._k("cancel", job_id))
        return [job_id for job_id, hit in zip(job_ids, pipe.execute(), strict=True) if hit]

    def request_handoff(self, job_id: str, requester: str, ttl_s: float) -> None:
        """Ask the job's owner to hand it (its lease) to ``requester``; the request lasts ``ttl_s``."""
        self.r.set(self._k("handoff", job_id), requester.encode(), px=max(1, int(ttl_s * 1000)))

    def handoff_requests(self, job_ids: Sequence[str]) -> dict[str, str]:
        """Those of ``job_ids`` another replica asked for, with the asking replica."""
        pipe = self.r.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.get(self._k("handoff", job_id))
        return {
            job_id: bytes(who).decode()
            for job_id, who in zip(job_ids, pipe.execute(), strict=True)
            if who is not None
        }

    def transfer_lease(self, job_id: str, owner: str, new_owner: str, ttl_s: float) -> bool:
        """Give ``owner``'s lease of ``job_id`` to ``new_owner`` (atomically; clears the request).

        Returns:
            ``False`` if ``owner`` does not hold the lease (nothing changes).
        """
        ms = max(1, int(ttl_s * 1000))
        keys = [self._k("lease", job_id), self._k("handoff", job_id)]
        return bool(self._transfer(keys=keys, args=[owner, new_owner, ms]))

    def lease_owner(self, job_id: str) -> str | None:
        """Who holds the job's lease now, or ``None``."""
        held = self.r.get(self._k("lease", job_id))
        return None if held is None else bytes(held).decode()


def _record(job_id: str, f: dict[bytes, bytes]) -> JobRecord:
    return JobRecord(
        id=job_id,
        created=float(f[b"created"]),
        updated=float(f[b"updated"]),
        state=f[b"state"].decode(),
        spec=json.loads(f[b"spec"]),
        received=int(f.get(b"received", b"0")),
        messages=int(f.get(b"messages", b"0")),
    )
