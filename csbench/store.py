"""ResultStore: an embedded SQLite database, one row per (task, instance).

Each task is written in one transaction (its rows, a few reconstructions, and its `tasks`
row), so a crash loses at most the task in flight and a rerun skips finished tasks.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

RESULT_COLUMNS = ["dataset", "measurement", "prior", "m", "noise", "seed", "instance", "mse", "psnr",
                  "ssim", "seconds", "status", "error", "kind", "params", "m_requested"]  # results.csv order
TASK_KEY = ["dataset", "measurement", "prior", "m", "noise", "seed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    dataset TEXT, measurement TEXT, prior TEXT, m INTEGER, noise REAL, seed INTEGER,
    status TEXT NOT NULL, seconds REAL, finished TEXT DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (dataset, measurement, prior, m, noise, seed));
CREATE TABLE IF NOT EXISTS results (
    dataset TEXT, measurement TEXT, prior TEXT, kind TEXT, m INTEGER, noise REAL, seed INTEGER,
    instance INTEGER, mse REAL, psnr REAL, ssim REAL, seconds REAL, status TEXT, error TEXT,
    params TEXT, m_requested INTEGER,
    PRIMARY KEY (dataset, measurement, prior, m_requested, noise, seed, instance));
CREATE TABLE IF NOT EXISTS reconstructions (
    dataset TEXT, measurement TEXT, prior TEXT, m INTEGER, noise REAL, seed INTEGER,
    instance INTEGER, shape TEXT NOT NULL, pixels BLOB NOT NULL,
    PRIMARY KEY (dataset, measurement, prior, m, noise, seed, instance));
CREATE TABLE IF NOT EXISTS experiments (name TEXT PRIMARY KEY, table_json TEXT NOT NULL);
"""


def _quantise(image: np.ndarray) -> bytes:
    """A [0, 1] image as uint8 bytes (for reconstruction grids; 1/255 is below what eyes see)."""
    return (np.clip(np.nan_to_num(image), 0.0, 1.0) * 255).round().astype(np.uint8).tobytes()


class ResultStore:
    """SQLite store at `path` (created on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path)
        self.conn.executescript(_SCHEMA)

    def close(self) -> None:
        self.conn.close()

    # -- writing ----------------------------------------------------------------------------------
    def set_meta(self, **items: object) -> None:
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                  [(k, json.dumps(v)) for k, v in items.items()])

    def write_task(self, key: dict, status: str, seconds: float, rows: list[dict],
                   reconstructions: dict[int, np.ndarray] | None = None) -> None:
        """Rows of one task, its reconstructions and its `tasks` row, in one transaction."""
        with self.conn:
            self.conn.executemany(
                f"INSERT OR REPLACE INTO results ({', '.join(RESULT_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(RESULT_COLUMNS))})",
                [tuple(row.get(c) for c in RESULT_COLUMNS) for row in rows])
            for instance, image in (reconstructions or {}).items():
                self.conn.execute(
                    "INSERT OR REPLACE INTO reconstructions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*(key[k] for k in TASK_KEY), instance, json.dumps(list(image.shape)),
                     _quantise(image)))
            self.conn.execute("INSERT OR REPLACE INTO tasks (dataset, measurement, prior, m, noise, "
                              "seed, status, seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              (*(key[k] for k in TASK_KEY), status, seconds))

    def write_truth(self, dataset: str, images: np.ndarray) -> None:
        """The first test images, stored as prior `truth` (m = 0) for reconstruction grids."""
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO reconstructions VALUES (?, '', 'truth', 0, 0, 0, ?, ?, ?)",
                [(dataset, i, json.dumps(list(img.shape)), _quantise(img)) for i, img in enumerate(images)])

    def write_experiment(self, name: str, table: pd.DataFrame) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO experiments VALUES (?, ?)",
                              (name, table.to_json(orient="split", index=False)))

    # -- reading ----------------------------------------------------------------------------------
    def finished(self) -> set[tuple]:
        """Keys (dataset, measurement, prior, m, noise, seed) of tasks already done."""
        rows = self.conn.execute(f"SELECT {', '.join(TASK_KEY)} FROM tasks").fetchall()
        return {(d, ms, p, int(m), float(s), int(sd)) for d, ms, p, m, s, sd in rows}

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
