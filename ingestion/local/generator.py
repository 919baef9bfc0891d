"""Deterministic generator of nested `customer_activity` documents with a planted churn signal.

Each document is generated from its own `random.Random((seed, index))`, so document *i* is the
same whatever N is and generation can be split across processes. The churn label is drawn from
`churn_probability(doc)`, a known logistic function of the document's own fields, so model quality
can be compared with the best achievable (Bayes-optimal) score.
"""

from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterator

from bson import ObjectId

STATES = (
    "AK AL AR AZ CA CO CT DC DE FL GA HI IA ID IL IN KS KY LA MA MD ME MI MN MO MS MT NC ND NE NH "
    "NJ NM NV NY OH OK OR PA RI SC SD TN TX UT VA VT WA WI WV WY"
).split()
AREA_CODES = (408, 415, 510)
SERVICE_CALL_REASONS = ("billing", "coverage", "device", "plan_change", "outage", "other")
SERVICE_CALL_CHANNELS = ("phone", "chat", "store")

# Tariffs of the original data set: charge = minutes x rate per period.
RATES = {"day": 0.17, "evening": 0.085, "night": 0.045, "international": 0.27}

FIRST_RECORD_DATE = date(2019, 1, 1)
RECORD_DATE_SPAN_DAYS = (date(2021, 12, 31) - FIRST_RECORD_DATE).days + 1
_EPOCH_2019 = int(datetime(2019, 1, 1, tzinfo=timezone.utc).timestamp())


@dataclass(frozen=True)
class ChurnSignal:
    """Coefficients of the planted churn logit; documented so tests and models can rely on them."""

    intercept: float = -3.6
    per_service_call: float = 0.75
    intl_plan: float = 1.9
    vmail_plan: float = -0.9
    per_day_minute_over_200: float = 0.03
    per_intl_minute_over_12: float = 0.12


SIGNAL = ChurnSignal()


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def churn_probability(doc: dict[str, Any]) -> float:
    """True probability that the customer in `doc` churns, computed from the nested fields."""
    plans = doc["plans"]
    usage = doc["usage"]
    logit = (
        SIGNAL.intercept
        + SIGNAL.per_service_call * len(doc["service_calls"])
        + SIGNAL.intl_plan * plans["international"]["enrolled"]
        + SIGNAL.vmail_plan * plans["voice_mail"]["enrolled"]
        + SIGNAL.per_day_minute_over_200 * max(usage["day"]["minutes"] - 200.0, 0.0)
        + SIGNAL.per_intl_minute_over_12 * max(usage["international"]["minutes"] - 12.0, 0.0)
    )
    return _sigmoid(logit)


def document_id(seed: int, index: int) -> ObjectId:
    """A stable ObjectId: timestamp part grows with the index, so `_id` order is insertion order."""
    return ObjectId(struct.pack(">IHIH", _EPOCH_2019 + index, seed & 0xFFFF, index >> 16, index & 0xFFFF))


def phone_number(index: int) -> str:
    """Unique 8-character phone per index (7919 is coprime with 10**7, so this is a bijection)."""
    n = (index * 7919 + 3_824_657) % 10_000_000
    return f"{n // 10_000:03d}-{n % 10_000:04d}"


def _period(rng: random.Random, name: str, mean_minutes: float, mean_calls: int) -> dict[str, Any]:
    minutes = round(max(rng.gauss(mean_minutes, mean_minutes * 0.27), 0.0), 1)
    calls = max(int(rng.gauss(mean_calls, mean_calls * 0.2)), 0)
    return {"minutes": minutes, "calls": calls, "charge": round(minutes * RATES[name], 2)}


def generate_document(index: int, seed: int = 42) -> dict[str, Any]:
    """The nested document number `index` for `seed` (pure function of both)."""
    rng = random.Random(seed * 1_000_003 + index)
    record_date = FIRST_RECORD_DATE + timedelta(days=rng.randrange(RECORD_DATE_SPAN_DAYS))
    record_dt = datetime(record_date.year, record_date.month, record_date.day, tzinfo=timezone.utc)
    account_length = rng.randint(1, 243)
    intl = rng.random() < 0.1
    vmail = rng.random() < 0.28
    usage = {
        "day": _period(rng, "day", 180.0, 100),
        "evening": _period(rng, "evening", 200.0, 100),
        "night": _period(rng, "night", 200.0, 100),
        "international": _period(rng, "international", 10.0, 4),
    }
    n_calls = min(int(rng.expovariate(0.65)), 9)
    opened = sorted(rng.randrange(account_length * 86_400) for _ in range(n_calls))
    start = record_dt - timedelta(days=account_length)
    service_calls = [
        {
            "opened_at": start + timedelta(seconds=s),
            "reason": rng.choice(SERVICE_CALL_REASONS),
            "channel": rng.choice(SERVICE_CALL_CHANNELS),
            "resolved": rng.random() < 0.8,
        }
        for s in opened
    ]
    doc: dict[str, Any] = {
        "_id": document_id(seed, index),
        "customer": {
            "state": rng.choice(STATES),
            "area_code": rng.choice(AREA_CODES),
            "phone": phone_number(index),
            "account_length_days": account_length,
        },
        "plans": {
            "international": {"enrolled": intl},
            "voice_mail": {"enrolled": vmail, "messages": rng.randint(5, 50) if vmail else 0},
        },
        "usage": usage,
        "billing": {"total_charge": round(sum(p["charge"] for p in usage.values()), 2), "currency": "USD"},
        "service_calls": service_calls,
        "record_date": record_dt,
        "updated_at": record_dt + timedelta(hours=rng.randrange(24), seconds=rng.randrange(3600)),
    }
    doc["churned"] = rng.random() < churn_probability(doc)
    return doc


def generate_documents(count: int, seed: int = 42, start: int = 0) -> Iterator[dict[str, Any]]:
    """Documents `start` .. `start + count - 1` for `seed`."""
    for index in range(start, start + count):
        yield generate_document(index, seed)
