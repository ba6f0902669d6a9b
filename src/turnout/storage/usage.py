"""Spend and traffic per API key, summed from the ledger (``turnout keys usage``).

Costs stay labelled: ``recorded_cost_usd`` prices tokens the upstreams reported;
``estimated_cost_usd`` prices tokens turnout counted itself; ``unpriced`` counts requests that
used tokens on a model with no known price (their cost is unknown, not $0).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from turnout.storage.base import LedgerRow

__all__ = ["KeyUsage", "usage_from_rows", "usage_from_sql", "usage_sql"]


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """Totals of one key over a time window.

    Attributes:
        key_id: The key (``"admin"`` for the admin key, ``None`` for anonymous calls).
        requests: Rows in the window.
        ok: Answered requests.
        failed: Admitted requests that got no (complete) answer.
        rejected: Requests refused before any upstream call.
        input_tokens: Prompt tokens, cached included.
        output_tokens: Generated tokens, reasoning included.
        recorded_cost_usd: USD from tokens the upstreams reported.
        estimated_cost_usd: USD from tokens turnout counted (the upstream reported none).
        unpriced: Requests with tokens on an unpriced model.
    """

    key_id: str | None
    requests: int
    ok: int
    failed: int
    rejected: int
    input_tokens: int
    output_tokens: int
    recorded_cost_usd: float
    estimated_cost_usd: float
    unpriced: int

    @property
    def cost_usd(self) -> float:
        """Recorded plus estimated USD (unpriced requests excluded)."""
        return self.recorded_cost_usd + self.estimated_cost_usd


def usage_sql(table: str, placeholder: str) -> str:
    """The aggregation over ``table`` for rows started at or after the one parameter."""
    return f"""
SELECT key_id,
       COUNT(*),
       SUM(CASE WHEN status = 'ok' THEN 1 ELSE 0 END),
       SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END),
       SUM(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END),
       COALESCE(SUM(input_tokens), 0),
       COALESCE(SUM(output_tokens), 0),
       COALESCE(SUM(CASE WHEN cost_estimated = 0 THEN cost_usd END), 0),
       COALESCE(SUM(CASE WHEN cost_estimated = 1 THEN cost_usd END), 0),
       SUM(CASE WHEN cost_usd IS NULL AND input_tokens IS NOT NULL
                 AND input_tokens + output_tokens > 0 THEN 1 ELSE 0 END)
FROM {table}
WHERE started_at >= {placeholder}
GROUP BY key_id
"""


def usage_from_sql(rows: Iterable[Sequence[Any]]) -> list[KeyUsage]:
    """:class:`KeyUsage` objects from the rows of :func:`usage_sql`, anonymous last."""
    usages = [
        KeyUsage(
            key_id=r[0],
            requests=int(r[1]),
            ok=int(r[2]),
            failed=int(r[3]),
            rejected=int(r[4]),
            input_tokens=int(r[5]),
            output_tokens=int(r[6]),
            recorded_cost_usd=float(r[7]),
            estimated_cost_usd=float(r[8]),
            unpriced=int(r[9]),
        )
        for r in rows
    ]
    return sorted(usages, key=lambda u: (u.key_id is None, u.key_id or ""))


def usage_from_rows(rows: Iterable[LedgerRow], since: float) -> list[KeyUsage]:
    """The same totals computed in Python (for the in-memory ledger)."""
    totals: dict[str | None, list[Any]] = {}
    for row in rows:
        if row.started_at < since:
            continue
        t = totals.setdefault(row.key_id, [row.key_id, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0])
        t[1] += 1
        t[{"ok": 2, "failed": 3, "rejected": 4}[row.status]] += 1
        if row.usage is not None:
            t[5] += row.usage.input_tokens
            t[6] += row.usage.output_tokens
            if row.cost_usd is None and row.usage.total_tokens > 0:
                t[9] += 1
        if row.cost_usd is not None:
            t[8 if row.cost_estimated else 7] += row.cost_usd
    return usage_from_sql(totals.values())
