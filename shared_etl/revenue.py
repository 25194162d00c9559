"""Contract §2 rule 8 and §3: amounts as exact integer cents, converted to US cents half-even.

No floating point anywhere: amounts are parsed from their digits and every product stays
inside int64 by splitting the cents (up to 10^14) into millions and a remainder.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shared_etl.contract import RATE_MICRO

_AMOUNT = r"^(?P<units>[0-9]{1,12})(?:\.(?P<fraction>[0-9]{1,2}))?$"
_MICRO = 1_000_000


def parse_amount_cents(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Return (matches `\\d{1,12}(\\.\\d{1,2})?`, amount in cents) for trimmed text."""
    parts = pc.extract_regex(text, _AMOUNT)
    matched = parts.is_valid().to_numpy(zero_copy_only=False)
    units = pc.cast(pc.struct_field(parts, "units"), pa.int64())
    fraction = pc.cast(
        pc.utf8_rpad(pc.struct_field(parts, "fraction"), width=2, padding="0"), pa.int64()
    )
    cents = pc.add(pc.multiply(units, 100), fraction).fill_null(0)
    return matched, cents.to_numpy(zero_copy_only=False)


def usd_cents(amount_cents: np.ndarray, currency: pa.Array) -> np.ndarray:
    """round_half_even(amount_cents * rate_micro / 1_000_000) per record; 0 for unknown currency."""
    rates = np.array(list(RATE_MICRO.values()), dtype=np.int64)
    index = pc.index_in(currency, value_set=pa.array(list(RATE_MICRO)))
    known = index.is_valid().to_numpy(zero_copy_only=False)
    rate = np.where(known, rates[index.fill_null(0).to_numpy(zero_copy_only=False)], 0)
    millions, remainder = np.divmod(amount_cents, _MICRO)
    quotient, rest = np.divmod(remainder * rate, _MICRO)
    truncated = millions * rate + quotient
    round_up = (rest > _MICRO // 2) | ((rest == _MICRO // 2) & (truncated % 2 == 1))
    return truncated + round_up
