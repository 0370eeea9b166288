"""Prices of the LLM models seen in the store, from genai-prices (offline data), kept in the `llm_prices` table.

DuckDB cannot call genai-prices from SQL and the store must stay readable by the plain `duckdb` CLI, so the hub
writes each (provider, model) pair's per-token rates into `llm_prices` and the `llm_calls` view multiplies the raw
token counts by them at query time. Nothing priced is stored on a span: upgrading genai-prices re-prices every
call at the next hub start.

The rates are read from `calc_price` itself, by probing it with one token of each kind, never from its data
structures: `input_per_mtok` is what one uncached input token costs, `cache_read_per_mtok` what one of the input
tokens costs when it was read from the cache, and so on, so the view's linear formula gives what `calc_price`
gives for the same usage (tests/test_llm_store.py checks it per call). A model with tiered prices (all tokens of
a call cost more once its input passes a threshold, e.g. 200k tokens) gets one row per tier, `min_input_tokens`
being the threshold, probed just above it. Prices that depend on the request's time of day or service tier are
taken as they stand when the hub prices the pair (once per hub start, and when a new model appears).

It must never fail ingest or lose tokens: a model genai-prices does not know, or any error while pricing, leaves a
row with NULL rates (the pair is "unpriced", never $0) and a note saying why; the tokens stay on the spans.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from obsdash_instrumenters.safety import fault

log = logging.getLogger(__name__)

MTOK = Decimal(1_000_000)
PROVIDER_ALIASES = {"x_ai": "x-ai"}
"""GenAI semantic-convention provider names that genai-prices spells differently (the others it matches)."""

PAIRS_SQL = (
    "SELECT DISTINCT coalesce(gen_ai_provider, ''), gen_ai_model FROM spans WHERE gen_ai_model IS NOT NULL"
)


@dataclass(frozen=True)
class PriceRow:
    """One row of `llm_prices`: a pair's rates from `min_input_tokens` up (NULL rates: unpriced)."""

    provider: str
    model: str
    min_input_tokens: int = 0
    input_per_mtok: float | None = None
    output_per_mtok: float | None = None
    cache_read_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None
    per_call_usd: float | None = None
    price_model: str | None = None
    source_version: str | None = None
    note: str | None = None

    def values(self, now: datetime) -> list[Any]:
        """The row's values in `llm_prices` column order."""
        return [
            self.provider,
            self.model,
            self.min_input_tokens,
            self.input_per_mtok,
            self.output_per_mtok,
            self.cache_read_per_mtok,
            self.cache_write_per_mtok,
            self.per_call_usd,
            self.price_model,
            self.source_version,
            now,
            self.note,
        ]


def price_rows(provider: str, model: str) -> list[PriceRow]:
    """The rows of `llm_prices` for one pair: one per price tier, or one unpriced row saying why."""
    try:
        import genai_prices  # 190 ms: only a hub that has seen an LLM call pays it
    except ImportError:
        return [PriceRow(provider, model, note="genai-prices is not installed")]
    version = genai_prices.__version__
    provider_id = PROVIDER_ALIASES.get(provider, provider) or None

    def total(**usage: int) -> Decimal:
        calc = genai_prices.calc_price(genai_prices.Usage(**usage), model_ref=model, provider_id=provider_id)
        return calc.total_price

    try:
        found = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=1), model_ref=model, provider_id=provider_id
        )
    except LookupError:
        return [PriceRow(provider, model, source_version=version, note=f"unknown to genai-prices {version}")]
    try:
        fee = total()  # a per-request price, if the model has one
        rows = []
        for start in [0, *tier_starts(found.model_price)]:
            n = start + 1  # a tier applies when the call's input tokens exceed its start
            inputs = total(input_tokens=n)
            per_input = (inputs - fee) / n
            rows.append(
                PriceRow(
                    provider,
                    model,
                    min_input_tokens=start,
                    input_per_mtok=float(per_input * MTOK),
                    output_per_mtok=float((total(input_tokens=n, output_tokens=1) - inputs) * MTOK),
                    cache_read_per_mtok=float(
                        (total(input_tokens=n, cache_read_tokens=1) - fee - (n - 1) * per_input) * MTOK
                    ),
                    cache_write_per_mtok=float(
                        (total(input_tokens=n, cache_write_tokens=1) - fee - (n - 1) * per_input) * MTOK
                    ),
                    per_call_usd=float(fee),
                    price_model=found.model.id,
                    source_version=version,
                )
            )
        return rows
    except Exception as exc:  # a price genai-prices cannot compute for plain tokens: say so, stay unpriced
        return [PriceRow(provider, model, source_version=version, note=f"{type(exc).__name__}: {exc}")]


def tier_starts(model_price: Any) -> list[int]:
    """The input-token thresholds of a model's tiered prices (none for flat prices)."""
    from genai_prices.types import TieredPrices

    return sorted(
        {
            tier.start
            for value in vars(model_price).values()
            if isinstance(value, TieredPrices)
            for tier in value.tiers
        }
    )


class Pricer:
    """Keeps `llm_prices` covering every (provider, model) pair in `spans`. Used by the hub, under its write
    lock, after each ingest; never raises."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._rows_seen: int | None = None
        """Spans already looked at (ingest only appends, so newer spans have row ids from here on); None before
        the first pass, which re-prices everything."""
        self._known: set[tuple[str, str]] = set()
        self._last_error: str | None = None

    def update(self, spans_added: bool) -> None:
        """Price what is new: everything on the first call, else the pairs of spans added since the last one."""
        try:
            fault("pricing")  # R2: tests/reliability/test_faults.py
            if self._rows_seen is None:
                self._reprice_all()
            elif spans_added:
                self._price_new()
        except Exception as exc:
            if self._rows_seen is None:
                self._rows_seen = 0  # try everything again when spans arrive, not on every sync
            if str(exc) != self._last_error:  # once per kind of failure, not once a second; one line
                log.warning(
                    "obsdash: pricing LLM calls failed (%s: %s); they stay unpriced", type(exc).__name__, exc
                )
                log.debug("pricing failure", exc_info=True)
            self._last_error = str(exc)

    def _span_count(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM spans").fetchone()
        return int(row[0]) if row else 0

    def _reprice_all(self) -> None:
        rows_seen = self._span_count()
        pairs = {(p, m) for p, m in self.conn.execute(PAIRS_SQL).fetchall()}
        rows = [row for provider, model in sorted(pairs) for row in price_rows(provider, model)]
        self._write(rows, replace=True)
        self._known = pairs
        self._rows_seen = rows_seen

    def _price_new(self) -> None:
        assert self._rows_seen is not None
        rows_seen = self._span_count()
        pairs = {
            (p, m) for p, m in self.conn.execute(PAIRS_SQL + " AND rowid >= ?", [self._rows_seen]).fetchall()
        }
        new = sorted(pairs - self._known)
        if new:
            self._write(
                [row for provider, model in new for row in price_rows(provider, model)], replace=False
            )
            self._known.update(new)
        self._rows_seen = rows_seen

    def _write(self, rows: list[PriceRow], replace: bool) -> None:
        """Replace the rows of the pairs in `rows`; with replace=True, make `rows` the whole table."""
        now = datetime.now(UTC).replace(tzinfo=None)
        for row in rows:
            if row.note:
                log.info("obsdash: %s %s is unpriced: %s", row.provider or "?", row.model, row.note)
        self.conn.execute("BEGIN TRANSACTION")
        try:
            if replace:
                self.conn.execute("DELETE FROM llm_prices")
            for provider, model in {(r.provider, r.model) for r in rows}:
                self.conn.execute(
                    "DELETE FROM llm_prices WHERE provider = ? AND model = ?", [provider, model]
                )
            if rows:
                self.conn.executemany(
                    "INSERT INTO llm_prices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [row.values(now) for row in rows],
                )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
