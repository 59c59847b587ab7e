"""The MongoDB adapter of ``TelemetryStore``, chosen by ``STOREKEEPER_TELEMETRY_URL=mongodb://…``.

Two collections in the URL's database (default ``storekeeper``): ``telemetry_readings`` with
``_id: {s: sensor, t: timestamp}`` (so a reading inserted twice is stored once) and
``telemetry_minutes`` with ``_id: {s: sensor, m: epoch minute}`` and count/sum/min/max. Writes
are not part of the SQL transaction: if that transaction fails after the readings went in, the
transport's retry finds them stored (``duplicate``) and the aggregates are not counted twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import MongoClient, UpdateOne
from pymongo.errors import BulkWriteError
from sqlalchemy.orm import Session

from storekeeper.telemetry.store import Bucket, Key, StoredReading, bucket_start, minute_rows

_DUPLICATE_KEY = 11000


class MongoStore:
    """Readings and minute aggregates in MongoDB."""

    def __init__(self, url: str, *, prefix: str = "telemetry") -> None:
        self._client: MongoClient[dict[str, Any]] = MongoClient(url, tz_aware=True, tzinfo=UTC)
        database = self._client.get_default_database("storekeeper")
        self.readings = database[f"{prefix}_readings"]
        self.minutes = database[f"{prefix}_minutes"]
        # Series and counts read one sensor's range; the retention sweep deletes by time across
        # sensors. (The unique index on the whole ``_id`` serves neither.)
        self.readings.create_index([("_id.s", 1), ("_id.t", 1)])
        self.readings.create_index("_id.t")
        self.minutes.create_index([("_id.s", 1), ("_id.m", 1)])
        self.minutes.create_index("_id.m")

    def add(self, session: Session, readings: Sequence[StoredReading]) -> set[Key]:
        if not readings:
            return set()
        documents = [
            {"_id": {"s": r.sensor, "t": r.ts}, **r.document(), "received_at": datetime.now(UTC)}
            for r in readings
        ]
        failed: set[int] = set()
        try:
            self.readings.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != _DUPLICATE_KEY for error in errors):
                raise
            failed = {int(error["index"]) for error in errors}
        fresh = [r for index, r in enumerate(readings) if index not in failed]
        rows = minute_rows(fresh)
        if rows:
            self.minutes.bulk_write(
                [
                    UpdateOne(
                        {"_id": {"s": row.sensor, "m": row.minute}},
                        {
                            "$inc": {"count": row.count, "sum": row.temp_sum},
                            "$min": {"min": row.temp_min},
                            "$max": {"max": row.temp_max},
                        },
                        upsert=True,
                    )
                    for row in rows
                ],
                ordered=False,
            )
        return {r.key for r in fresh}

    def series(
        self, session: Session, *, sensor: str, start_minute: int, end_minute: int, bucket: int
    ) -> list[Bucket]:
        pipeline: list[dict[str, Any]] = [
            {"$match": {"_id.s": sensor, "_id.m": {"$gte": start_minute, "$lt": end_minute}}},
            {
                "$group": {
                    "_id": {
                        "$floor": {"$divide": [{"$subtract": ["$_id.m", start_minute]}, bucket]}
                    },
                    "min": {"$min": "$min"},
                    "max": {"$max": "$max"},
                    "sum": {"$sum": "$sum"},
                    "count": {"$sum": "$count"},
                }
            },
            {"$sort": {"_id": 1}},
        ]
        return [
            Bucket(
                start=bucket_start(start_minute + int(doc["_id"]) * bucket),
                min=float(doc["min"]),
                max=float(doc["max"]),
                avg=float(doc["sum"]) / int(doc["count"]),
                count=int(doc["count"]),
            )
            for doc in self.minutes.aggregate(pipeline)
        ]

    def raw(self, session: Session, *, sensor: str, start: datetime, end: datetime) -> int:
        return int(
            self.readings.count_documents({"_id.s": sensor, "_id.t": {"$gte": start, "$lt": end}})
        )

    def sweep(
        self, session: Session, *, raw_before: datetime, minutes_before: int
    ) -> tuple[int, int]:
        raw = self.readings.delete_many({"_id.t": {"$lt": raw_before}})
        minutes = self.minutes.delete_many({"_id.m": {"$lt": minutes_before}})
        return raw.deleted_count, minutes.deleted_count

    def close(self) -> None:
        """Close the client's connection pool."""
        self._client.close()
