"""Add the rows of a reference run for some priors and its first N test images into a run's store.

Used for reports/reference/score-*: the problems (A, y) of test image i depend only on (seed,
dataset, measurement, m, noise, split) and i, not on the prior or the number of images, so the
first 64 images of the 300-image paper-preset reference are the same problems. Then rebuild:

    python -m csbench compare --config reports/reference/score-mnist.toml --out reports/reference/score-mnist
    python reports/reference/score-merge.py reports/reference/score-mnist reports/reference/mnist vae,dcgan,tv,lasso-wavelet 64
    python -m csbench report reports/reference/score-mnist
"""
import json, sqlite3, sys
out, ref, priors, n = sys.argv[1], sys.argv[2], sys.argv[3].split(","), int(sys.argv[4])
db = sqlite3.connect(f"{out}/results.sqlite")
db.execute("ATTACH DATABASE ? AS ref", (f"file:{ref}/results.sqlite?mode=ro",))
q = ",".join("?" * len(priors))
cols = lambda t, s: [r[1] for r in db.execute(f"PRAGMA {s}.table_info({t})")]
with db:
    for table, where in (("tasks", ""), ("results", " AND instance < ?"), ("reconstructions", " AND instance < ?")):
        common = [c for c in cols(table, "main") if c in cols(table, "ref")]
        c = ",".join(common)
        args = priors + ([n] if where else [])
        db.execute(f"INSERT OR REPLACE INTO main.{table} ({c}) SELECT {c} FROM ref.{table} WHERE prior IN ({q}){where}", args)
    if "tuning" in [r[0] for r in db.execute("SELECT name FROM ref.sqlite_master")]:
        db.execute(f"INSERT OR REPLACE INTO main.tuning SELECT * FROM ref.tuning WHERE prior IN ({q})", priors)
    config = json.loads(db.execute("SELECT value FROM main.meta WHERE key='config'").fetchone()[0])
    config["priors"] = list(dict.fromkeys(config["priors"] + priors))
    config["merged_from"] = {"run": ref, "priors": priors, "instances": f"0..{n - 1}"}
    db.execute("UPDATE main.meta SET value=? WHERE key='config'", (json.dumps(config),))
print(db.execute("SELECT prior, count(*) FROM results GROUP BY prior").fetchall())
