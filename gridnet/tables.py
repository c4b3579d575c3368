"""Reading a CSV table for the command line: numbers, categories, missing values.

The locality check tests the order of the columns, so the encoding keeps it: a
categorical column becomes its one-hot columns in its own place.
"""
from __future__ import annotations

import csv
import os

import numpy as np

__all__ = ["read_table", "encode_columns", "TableEncoder", "TableError", "MISSING"]

MISSING = {"", "?", "na", "n/a", "nan", "null", "none"}
MAX_LEVELS = 50


class TableError(ValueError):
    """A table that cannot be read or encoded; the message names the file and column."""


def read_table(path, *, delimiter=None, encoding="utf-8"):
    """CSV/TSV with a header -> (column names, list of columns of stripped strings)."""
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise TableError(f"{name}: no such file")
    if delimiter is None:
        delimiter = "\t" if name.endswith((".tsv", ".tab")) else ","
    try:
        with open(name, newline="", encoding=encoding, errors="strict") as fh:
            rows = list(csv.reader(fh, delimiter=delimiter))
    except UnicodeDecodeError as exc:
        raise TableError(f"{name}: not readable as {encoding} ({exc.reason} at byte {exc.start}); "
                         "pass --encoding") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise TableError(f"{name}: needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise TableError(f"{name}, line {i}: {len(r)} fields; the header has {len(header)}")
    columns = [[r[j].strip() for r in rows[1:]] for j in range(len(header))]
    return header, columns


def _as_float(values):
    out = np.empty(len(values))
    for i, v in enumerate(values):
        if v.lower() in MISSING:
            out[i] = np.nan
        else:
            out[i] = float(v)
    return out


def encode_columns(header, columns, *, source="table"):
    """Columns of strings -> (X (n, f) float64, names of the f encoded columns, notes).

    Numeric columns: missing values ("", "?", "NA", ...) become the column's median,
    then the column is standardised. Other columns: one-hot, in place, when they have
    at most 50 distinct values. (:class:`TableEncoder` fitted on the table.)
    """
    encoder = TableEncoder()
    try:
        X = encoder.fit_transform(header, columns)
    except TableError as exc:
        raise TableError(f"{source}: {exc}") from None
    return X[:, 0, 0, :].astype(np.float64), encoder.feature_names_, encoder.notes_


class TableEncoder:
    """Encodes a table of strings column by column, in place: numeric columns have
    missing values set to the median and are standardised; other columns are one-hot
    encoded (at most 50 levels). What it learns in ``fit_transform`` (medians, means,
    standard deviations, levels) is plain data, so a model file can hold it as JSON.
    Output: a strip ``(n, 1, 1, f)``, float32."""

    def __init__(self):
        pass

    def get_params(self, deep=False):
        return {}

    def fit_transform(self, header, columns):
        self.columns_ = list(header)
        self.spec_, self.notes_, self.feature_names_ = [], [], []
        for name, values in zip(header, columns):
            try:
                x = _as_float(values)
            except ValueError:
                levels = sorted({v for v in values if v.lower() not in MISSING})
                if len(levels) > MAX_LEVELS:
                    raise TableError(f"column {name!r} is not numeric and has {len(levels)} "
                                     f"distinct values; it cannot be one-hot encoded "
                                     f"(at most {MAX_LEVELS})") from None
                self.spec_.append({"name": name, "levels": levels})
                self.feature_names_ += [f"{name}={lv}" for lv in levels]
                self.notes_.append(f"column {name!r}: categorical, one-hot encoded into "
                                   f"{len(levels)} columns")
                continue
            miss = np.isnan(x)
            if miss.all():
                raise TableError(f"column {name!r} has no values")
            if np.isinf(x).any():
                row = int(np.nonzero(np.isinf(x))[0][0]) + 1
                raise TableError(f"column {name!r} has an infinite value (row {row})")
            med = float(np.median(x[~miss]))
            if miss.any():
                self.notes_.append(f"column {name!r}: {int(miss.sum())} missing values set to the median")
            x = np.where(miss, med, x)
            self.spec_.append({"name": name, "median": med, "mean": float(x.mean()),
                               "std": float(x.std()) or 1.0})
            self.feature_names_.append(name)
        return self.transform(header, columns)

    def transform(self, header, columns):
        index = {h: i for i, h in enumerate(header)}
        blocks = []
        for s in self.spec_:
            if s["name"] not in index:
                raise TableError(f"the table has no column {s['name']!r}, which the model was trained on")
            values = columns[index[s["name"]]]
            if "levels" in s:
                blocks.append(np.array([[v == lv for lv in s["levels"]] for v in values], float)
                              .reshape(len(values), len(s["levels"])))
                continue
            try:
                x = _as_float(values)
            except ValueError as exc:
                raise TableError(f"column {s['name']!r}: {exc}") from None
            x = np.where(np.isnan(x), s["median"], x)
            blocks.append(((x - s["mean"]) / s["std"])[:, None])
        X = np.hstack(blocks).astype(np.float32)
        return X[:, None, None, :]
