"""Variables from records of another dataset chosen by a condition on both (admiral's
derive_vars_joined), and the single-dose records it often reads (create_single_dose_dataset).

    LDOSEDTM: the last dose on or before the AE start     join_where "EXSTDTM <= ASTDTM", mode last
    DOSEON:   the dose whose interval holds the AE start  join_where "EXSTDTM <= ASTDTM and ..."
"""
from __future__ import annotations

import re
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .. import dates as sdtm_dates

DAY = np.timedelta64(1, "D")
_PER_DAY = {"QD": 1, "EVERY DAY": 1, "BID": 2, "TID": 3, "QID": 4}
_EVERY = {"ONCE": 0, "QOD": 2, "QW": 7, "EVERY WEEK": 7, "Q2W": 14, "Q3W": 21, "Q4W": 28}


def interval_days(frequency: str) -> tuple[int, int] | None:
    """(doses per dosing day, days between dosing days; 0: a single dose) of a CDISC FREQ term."""
    f = str(frequency).strip().upper()
    if f in _PER_DAY:
        return _PER_DAY[f], 1
    if f in _EVERY:
        return 1, _EVERY[f]
    m = re.fullmatch(r"Q(\d+)([DW])", f)
    if m:
        return 1, int(m.group(1)) * (7 if m.group(2) == "W" else 1)
    return None


FREQUENCIES = sorted(_PER_DAY) + sorted(_EVERY) + ["Q<n>D", "Q<n>W"]


def create_single_dose_dataset(ex: pd.DataFrame, frequency: str, start: str, end: str) -> pd.DataFrame:
    """One record per dose (admiral create_single_dose_dataset) of exposure records with a dosing
    frequency and full start and end dates (ISO 8601 --DTC): `<start>`'s and `<end>`'s date columns
    (EXSTDTC → EXSTDT, EXENDTC → EXENDT) hold each dose's day, and the --DTM ones its midnight
    (as the template's as_datetime()). Records whose dates are partial or missing are left out, as
    admiral's filter(!is.na(EXSTDT), !is.na(EXENDT)); an unknown frequency raises ValueError."""
    st = sdtm_dates.dtc_date(ex[start])
    en = sdtm_dates.dtc_date(ex[end])
    keep = st.notna() & en.notna()
    src, st, en = ex[keep.to_numpy()], st[keep], en[keep]
    freq = src[frequency].astype(str).str.strip().str.upper()
    table = {f: interval_days(f) for f in freq.unique()}
    unknown = sorted(f for f, v in table.items() if v is None)
    if unknown:
        raise ValueError(f"single_dose: dosing frequency {', '.join(map(repr, unknown))} of {frequency} is "
                         f"not one of {', '.join(FREQUENCIES)}")
    per_day = freq.map({f: v[0] for f, v in table.items()}).to_numpy(dtype=np.int64)
    every = freq.map({f: v[1] for f, v in table.items()}).to_numpy(dtype=np.int64)
    span = ((en - st).to_numpy() // DAY).astype(np.int64)
    if (span < 0).any():
        bad = src[span < 0].iloc[0]
        raise ValueError(f"single_dose: {end} {bad[end]} is before {start} {bad[start]}")
    days = np.where(every == 0, 1, span // np.maximum(every, 1) + 1)
    count = days * per_day
    rows = np.repeat(np.arange(len(src)), count)
    within = np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)
    offset = (within // np.repeat(per_day, count)) * np.repeat(every, count)
    day = st.to_numpy()[rows] + offset * DAY
    out = src.iloc[rows].reset_index(drop=True)
    for name in (start, end):
        base = name[:-3] if name.endswith("DTC") else name
        out[base + "DT"] = day
        out[base + "DTM"] = day
    return out


def single_dose_columns(start: str, end: str) -> list[str]:
    """The columns create_single_dose_dataset adds."""
    return [(n[:-3] if n.endswith("DTC") else n) + s for n in (start, end) for s in ("DT", "DTM")]


def derive_vars_joined(
    df: pd.DataFrame,
    other: pd.DataFrame,
    by: Sequence[str],
    new_vars: Mapping[str, str],
    join_mask: Callable[[pd.DataFrame], np.ndarray] | None = None,
    order: Sequence[str] | None = None,
    mode: str | None = None,
) -> pd.DataFrame:
    """`df` with `new_vars` ({NEW: column of other}) from the record of `other` of the same `by`
    group that meets `join_mask` (a function of the joined pairs: each pair has the columns of both,
    the other's named NAME.join where `df` has NAME) and is first/last by `order`. Without `order`,
    two records meeting it for one record of `df` raise ValueError (admiral's check)."""
    left_cols = [c for c in df.columns if c not in by]
    right = other.rename(columns={c: f"{c}.join" for c in other.columns if c in left_cols})
    pairs = df.assign(__row=np.arange(len(df))).merge(right, on=list(by), how="inner")
    if join_mask is not None and len(pairs):
        pairs = pairs[join_mask(pairs)]
    if order:
        cols = [f"{c}.join" if c in left_cols else c for c in order]
        pairs = pairs.sort_values(["__row"] + cols, kind="stable", na_position="last")
        pairs = pairs.drop_duplicates("__row", keep="first" if (mode or "first") == "first" else "last")
    elif pairs["__row"].duplicated().any():
        row = int(pairs.loc[pairs["__row"].duplicated(), "__row"].iloc[0])
        key = ", ".join(f"{b}={df[b].iloc[row]}" for b in by)
        raise ValueError(f"{int((pairs['__row'] == row).sum())} records meet the join condition for the "
                         f"record {row + 1} ({key}); give `order` and `mode` to choose one")
    picked = pairs.set_index("__row")
    out = df.copy()
    for new, col in new_vars.items():
        source = f"{col}.join" if col in left_cols else col
        out[new] = picked[source].reindex(np.arange(len(df))).to_numpy()
    return out


def derive_vars_extreme_event(
    df: pd.DataFrame,
    events: Sequence[tuple[pd.DataFrame, Mapping[str, pd.Series], pd.Series | None]],
    by: Sequence[str],
    order: Sequence[str] = ("event",),
    mode: str = "first",
) -> pd.DataFrame:
    """`df` with the values set by the first/last event per `by` group (admiral's
    derive_vars_extreme_event): each event is (its records, {NEW: value per record}, its date per
    record or None); the events are ranked by `order`, a list of "event" (their position in the
    list) and "date"; missing dates sort last."""
    names = list(dict.fromkeys(n for _, values, _ in events for n in values))
    frames = []
    for number, (records, values, when) in enumerate(events, start=1):
        part = pd.DataFrame({b: records[b].to_numpy() for b in by})
        part["event"] = number
        part["date"] = pd.NaT if when is None else pd.to_datetime(pd.Series(when).to_numpy())
        part["__pos"] = np.arange(len(part))
        for n in names:
            part[n] = pd.Series(values[n]).to_numpy() if n in values else None
        frames.append(part)
    allv = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(by) + names)
    allv = allv.sort_values(list(by) + list(order) + ["__pos"], kind="stable", na_position="last")
    picked = allv.drop_duplicates(list(by), keep="first" if mode == "first" else "last")
    clash = [n for n in names if n in df.columns]
    if clash:
        raise ValueError(f"{', '.join(clash)} already exist in the dataset")
    out = df.merge(picked[list(by) + names], on=list(by), how="left")
    out.index = df.index
    return out
