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

    Numeric columns: missing values ("", "?", "NA", ...) become the column's median.
    Other columns: one-hot, in place, when they have at most 50 distinct values.
    """
    blocks, names, notes = [], [], []
    for name, values in zip(header, columns):
        try:
            x = _as_float(values)
        except ValueError:
            x = None
        if x is not None:
            miss = np.isnan(x)
            if miss.all():
                raise TableError(f"{source}: column {name!r} has no values")
            if miss.any():
                x[miss] = np.median(x[~miss])
                notes.append(f"column {name!r}: {int(miss.sum())} missing values set to the median")
            if not np.isfinite(x).all():
                row = int(np.nonzero(~np.isfinite(x))[0][0]) + 1
                raise TableError(f"{source}: column {name!r} has an infinite value (row {row})")
            blocks.append(x[:, None])
            names.append(name)
            continue
        levels = sorted({v for v in values if v.lower() not in MISSING})
        if len(levels) > MAX_LEVELS:
            raise TableError(f"{source}: column {name!r} is not numeric and has {len(levels)} "
                             f"distinct values; it cannot be one-hot encoded (at most {MAX_LEVELS})")
        onehot = np.array([[v == lv for lv in levels] for v in values], dtype=float)
        blocks.append(onehot.reshape(len(values), len(levels)))
        names += [f"{name}={lv}" for lv in levels]
        notes.append(f"column {name!r}: categorical, one-hot encoded into {len(levels)} columns")
    X = np.hstack(blocks) if blocks else np.zeros((len(columns[0]) if columns else 0, 0))
    return X, names, notes


class TableEncoder:
    """The command line's table encoder: what :func:`encode_columns` does, with the
    medians, means, standard deviations and category levels learned in ``fit`` and
    kept as plain data (so a model file can hold them as JSON). Output: standardised
    columns as a strip ``(n, 1, 1, f)``, float32."""

    def __init__(self):
        pass

    def get_params(self, deep=False):
        return {}

    def fit_transform(self, header, columns):
        self.columns_ = list(header)
        self.spec_ = []
        for name, values in zip(header, columns):
            try:
                x = _as_float(values)
            except ValueError:
                levels = sorted({v for v in values if v.lower() not in MISSING})
                if len(levels) > MAX_LEVELS:
                    raise TableError(f"column {name!r} is not numeric and has {len(levels)} "
                                     f"distinct values; it cannot be one-hot encoded") from None
                self.spec_.append({"name": name, "levels": levels})
                continue
            if np.isnan(x).all():
                raise TableError(f"column {name!r} has no values")
            med = float(np.nanmedian(x))
            x = np.where(np.isnan(x), med, x)
            self.spec_.append({"name": name, "median": med, "mean": float(x.mean()),
                               "std": float(x.std()) or 1.0})
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
