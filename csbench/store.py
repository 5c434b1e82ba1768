"""ResultStore: an embedded SQLite database, one row per (task, instance).

Each task is written in one transaction (its rows, a few reconstructions, its tuning scores and
its `tasks` row with the fingerprint of what produced it), so a crash loses at most the task in
flight and a rerun skips finished tasks whose fingerprint still matches.
"""
from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from csbench.errors import CsbenchError

RESULT_COLUMNS = ["dataset", "measurement", "prior", "m", "noise", "seed", "instance", "mse", "psnr",
                  "ssim", "seconds", "status", "error", "kind", "params", "m_requested"]  # results.csv order
TASK_KEY = ["dataset", "measurement", "prior", "m", "noise", "seed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    dataset TEXT, measurement TEXT, prior TEXT, m INTEGER, noise REAL, seed INTEGER,
    status TEXT NOT NULL, seconds REAL, finished TEXT DEFAULT CURRENT_TIMESTAMP, fingerprint TEXT,
    PRIMARY KEY (dataset, measurement, prior, m, noise, seed));
CREATE TABLE IF NOT EXISTS tuning (
    dataset TEXT, measurement TEXT, prior TEXT, m INTEGER, noise REAL, seed INTEGER,
    params TEXT, score REAL, chosen INTEGER,
    PRIMARY KEY (dataset, measurement, prior, m, noise, seed, params));
CREATE TABLE IF NOT EXISTS results (
    dataset TEXT, measurement TEXT, prior TEXT, kind TEXT, m INTEGER, noise REAL, seed INTEGER,
    instance INTEGER, mse REAL, psnr REAL, ssim REAL, seconds REAL, status TEXT, error TEXT,
    params TEXT, m_requested INTEGER,
    PRIMARY KEY (dataset, measurement, prior, m_requested, noise, seed, instance));
CREATE TABLE IF NOT EXISTS reconstructions (
    dataset TEXT, measurement TEXT, prior TEXT, m INTEGER, noise REAL, seed INTEGER,
    instance INTEGER, shape TEXT NOT NULL, pixels BLOB NOT NULL,
    PRIMARY KEY (dataset, measurement, prior, m, noise, seed, instance));
CREATE TABLE IF NOT EXISTS experiments (name TEXT PRIMARY KEY, table_json TEXT NOT NULL, fingerprint TEXT);
"""


def _task_key(values) -> tuple:
    """A task key (dataset, measurement, prior, m, noise, seed) with its numbers typed."""
    dataset, measurement, prior, m, noise, seed = values
    return dataset, measurement, prior, int(m), float(noise), int(seed)


def _quantise(image: np.ndarray) -> bytes:
    """A [0, 1] image as uint8 bytes (for reconstruction grids; 1/255 is below what eyes see)."""
    return (np.clip(np.nan_to_num(image), 0.0, 1.0) * 255).round().astype(np.uint8).tobytes()


class ResultStore:
    """SQLite store at `path` (created on first use)."""

    def __init__(self, path: str | Path, read_only: bool = False):
        """Open (or create) the store; `read_only` opens an existing one without changing a byte
        (`csbench report`), so a committed reference stays as it was."""
        self.path = Path(path)
        try:
            if read_only:
                self.conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
                self.conn.execute("SELECT name FROM sqlite_master").fetchall()  # a damaged file fails here
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path)
            self.conn.executescript(_SCHEMA)
            for table in ("tasks", "experiments"):  # a store from before fingerprints: all is rerun
                if "fingerprint" not in self._columns(table):
                    with self.conn:
                        self.conn.execute(f"ALTER TABLE {table} ADD COLUMN fingerprint TEXT")
        except (OSError, sqlite3.Error) as exc:
            raise CsbenchError(f"cannot use {self.path} as a result store: {exc}") from None

    def close(self) -> None:
        self.conn.close()

    # -- writing ----------------------------------------------------------------------------------
    def set_meta(self, **items: object) -> None:
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                  [(k, json.dumps(v)) for k, v in items.items()])

    def write_task(self, key: dict, status: str, seconds: float, rows: list[dict],
                   reconstructions: dict[int, np.ndarray] | None = None, fingerprint: str = "",
                   tuning: list[dict] | None = None) -> None:
        """Rows of one task, its reconstructions, its tuning scores ({params, score, chosen}) and
        its `tasks` row, in one transaction that first removes what an earlier run stored."""
        values = tuple(key[k] for k in TASK_KEY)
        with self.conn:
            for table in ("tasks", "reconstructions", "tuning", "results"):
                columns = [("m_requested" if k == "m" and table == "results" else k) for k in TASK_KEY]
                self.conn.execute(f"DELETE FROM {table} WHERE {' AND '.join(f'{c} = ?' for c in columns)}", values)
            self.conn.executemany(
                f"INSERT INTO results ({', '.join(RESULT_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(RESULT_COLUMNS))})",
                [tuple(row.get(c) for c in RESULT_COLUMNS) for row in rows])
            for instance, image in (reconstructions or {}).items():
                self.conn.execute(
                    "INSERT INTO reconstructions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*values, instance, json.dumps(list(image.shape)), _quantise(image)))
            self.conn.executemany(
                "INSERT INTO tuning VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*values, json.dumps(point["params"], sort_keys=True, default=str),
                  point["score"] if math.isfinite(point["score"]) else None, int(point["chosen"]))
                 for point in tuning or []])
            self.conn.execute("INSERT INTO tasks (dataset, measurement, prior, m, noise, seed, status, "
                              "seconds, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              (*values, status, seconds, fingerprint))

    def copy_from(self, source: ResultStore, keys: list[tuple], experiments: list[str], reconstructions: int) -> None:
        """Tasks and experiments of another run's store into this one, replacing what this store holds
        for them, in one transaction from one snapshot of the source: each task's `tasks` row (status,
        seconds, finish time, fingerprint), result rows, tuning scores and first `reconstructions`
        reconstructions; each experiment's table and fingerprint. The meta key `reused` records what
        was copied from where and the source's sessions (`reused` reads it back)."""
        tables = ("tasks", "reconstructions", "tuning", "results", "experiments")
        columns = {table: self._ordered_columns(table) for table in tables}
        for table in tables:
            if missing := set(columns[table]) - source._columns(table):
                raise CsbenchError(f"{source.path} was written by another csbench version (its {table} "
                                   f"table lacks {', '.join(sorted(missing))}); its results cannot be reused")

        def copy(table: str, where: str, values: tuple, only: str = "") -> None:
            """Replace this store's rows of `table` matching `where` by the source's (those also matching `only`)."""
            listed = ", ".join(columns[table])
            rows = source.conn.execute(f"SELECT {listed} FROM {table} WHERE {where} {only}", values).fetchall()
            self.conn.execute(f"DELETE FROM {table} WHERE {where}", values)
            marks = ", ".join("?" * len(columns[table]))
            self.conn.executemany(f"INSERT INTO {table} ({listed}) VALUES ({marks})", rows)

        source.conn.execute("BEGIN")   # every table read from the same state of the source
        try:
            with self.conn:
                for key in keys:
                    for table in tables[:4]:
                        names = ["m_requested" if c == "m" and table == "results" else c for c in TASK_KEY]
                        only = f"AND instance < {int(reconstructions)}" if table == "reconstructions" else ""
                        copy(table, " AND ".join(f"{c} = ?" for c in names), key, only)
                for name in experiments:
                    copy("experiments", "name = ?", (name,))
                stamps, prints = self._task_stamps(), self.experiment_fingerprints()
                entry = {"from": str(source.path.parent), "sessions": source.sessions(),
                         "tasks": [[*key, stamps[tuple(key)]] for key in keys if tuple(key) in stamps],
                         "experiments": [[name, prints[name]] for name in experiments if name in prints]}
                self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('reused', ?)",
                                  (json.dumps(self.meta().get("reused", []) + [entry]),))
        finally:
            source.conn.rollback()

    def reused(self) -> list[dict]:
        """What `copy_from` copied, per source, as far as this store still holds it as copied (a task
        recomputed here since has another finish time, an experiment another fingerprint):
        {"from": directory, "sessions": its sessions, "tasks": [task key], "experiments": [name]}."""
        stamps, prints = self._task_stamps(), self.experiment_fingerprints()
        entries = []
        for entry in self.meta().get("reused", []):
            tasks = [_task_key(task[:-1]) for task in entry["tasks"] if stamps.get(_task_key(task[:-1])) == task[-1]]
            experiments = [name for name, fingerprint in entry["experiments"] if prints.get(name) == fingerprint]
            if tasks or experiments:
                entries.append({**entry, "tasks": tasks, "experiments": experiments})
        return entries

    def write_truth(self, dataset: str, images: np.ndarray) -> None:
        """The first test images, stored as prior `truth` (m = 0) for reconstruction grids."""
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO reconstructions VALUES (?, '', 'truth', 0, 0, 0, ?, ?, ?)",
                [(dataset, i, json.dumps(list(img.shape)), _quantise(img)) for i, img in enumerate(images)])

    def write_experiment(self, name: str, table: pd.DataFrame, fingerprint: str = "") -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO experiments (name, table_json, fingerprint) VALUES (?, ?, ?)",
                              (name, table.to_json(orient="split", index=False), fingerprint))

    # -- reading ----------------------------------------------------------------------------------
    def finished(self) -> dict[tuple, str]:
        """{task key (dataset, measurement, prior, m, noise, seed): fingerprint} of the tasks that
        need no rerun (status ok or skipped); failed tasks are absent, so they are retried."""
        fingerprint = "fingerprint" if "fingerprint" in self._columns("tasks") else "''"  # read-only old store
        rows = self.conn.execute(f"SELECT {', '.join(TASK_KEY)}, {fingerprint} FROM tasks "
                                 "WHERE status IN ('ok', 'skipped')").fetchall()
        return {_task_key(row[:-1]): row[-1] or "" for row in rows}

    def task_seconds(self) -> dict[tuple, float | None]:
        """{task key: seconds it took} of every stored task, failed ones included."""
        return self._per_task("seconds")

    def _task_stamps(self) -> dict[tuple, str]:
        """{task key: when it finished} of every stored task."""
        return self._per_task("finished")

    def _per_task(self, column: str) -> dict[tuple, object]:
        rows = self.conn.execute(f"SELECT {', '.join(TASK_KEY)}, {column} FROM tasks").fetchall()
        return {_task_key(row[:-1]): row[-1] for row in rows}

    def experiment_fingerprints(self) -> dict[str, str]:
        """{experiment name: fingerprint} of the stored experiments ("" if stored without one)."""
        fingerprint = "fingerprint" if "fingerprint" in self._columns("experiments") else "''"
        return {name: fp or "" for name, fp in self.conn.execute(f"SELECT name, {fingerprint} FROM experiments")}

    def _ordered_columns(self, table: str) -> list[str]:
        return [row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")]

    def _columns(self, table: str) -> set[str]:
        return set(self._ordered_columns(table))

    def meta(self) -> dict:
        return {k: json.loads(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}

    def sessions(self) -> list[dict]:
        """The machines that worked on this run, in order: environment, device, tasks and
        experiments each one completed (no `tasks` key: it was interrupted). A store written
        before sessions were recorded holds one `environment`, credited with all the work."""
        meta = self.meta()
        if "sessions" in meta or "environment" not in meta:
            return meta.get("sessions", [])
        return [{**meta["environment"], "device": meta.get("config", {}).get("device", "cpu"),
                 "tasks": len(self.finished()), "experiments": sorted(self.experiments())}]

    def results(self) -> pd.DataFrame:
        frame = pd.read_sql_query(f"SELECT {', '.join(RESULT_COLUMNS)} FROM results", self.conn)
        return frame.sort_values(["dataset", "measurement", "prior", "noise", "m", "seed",
                                  "instance"], kind="stable").reset_index(drop=True)

    def tuning(self) -> pd.DataFrame:
        """Validation score (mean MSE; NaN where the grid point failed) of every tuning-grid point,
        with `params` as JSON text and `chosen` as bool; empty for stores written before it."""
        if not self._has_table("tuning"):
            return pd.DataFrame(columns=[*TASK_KEY, "params", "score", "chosen"])
        frame = pd.read_sql_query(f"SELECT {', '.join(TASK_KEY)}, params, score, chosen FROM tuning", self.conn)
        frame["chosen"] = frame["chosen"].astype(bool)
        return frame

    def _has_table(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                 (name,)).fetchone() is not None

    def reconstructions(self) -> pd.DataFrame:
        """One row per stored reconstruction with an `image` column of float arrays in [0, 1]."""
        frame = pd.read_sql_query("SELECT * FROM reconstructions", self.conn)
        frame["image"] = [np.frombuffer(blob, dtype=np.uint8).reshape(json.loads(shape)) / 255.0
                          for blob, shape in zip(frame.pop("pixels"), frame.pop("shape"))]
        return frame

    def experiments(self) -> dict[str, pd.DataFrame]:
        from io import StringIO
        return {name: pd.read_json(StringIO(table), orient="split")
                for name, table in self.conn.execute("SELECT name, table_json FROM experiments")}
