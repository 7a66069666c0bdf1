"""`loom drift` against Evidently and scipy (docs/monitoring.md).

Generated tables with known drift, mixed column types (floats, integers with many and few
values, text categories, two-valued columns, missing values and infinities), small references
(K-S, chi-square, Z-test) and large ones (Wasserstein, Jensen-Shannon), and the methods a user
can name. Loom's per-column method, score and verdict, and the dataset verdict, must equal
Evidently 0.7.23's (run from its own venv: it needs pandas < 3) within 1e-6, and scipy's where
scipy computes the statistic itself.
"""

from __future__ import annotations

import json
import math
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from scipy.spatial import distance

import loomproc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
EVIDENTLY_PYTHON = os.environ.get("LOOM_EVIDENTLY_PYTHON", os.path.join(ROOT, ".venv-evidently", "bin", "python"))
NAMES = {"ks": "K-S p_value", "chisquare": "chi-square p_value", "z": "Z-test p_value", "wasserstein": "Wasserstein distance (normed)",
         "jensenshannon": "Jensen-Shannon distance", "psi": "PSI", "kl_div": "Kullback-Leibler divergence", "hellinger": "Hellinger distance",
         "anderson": "Anderson-Darling p_value", "cramer_von_mises": "Cramer-von-Mises p_value"}


def tables(n_ref: int, n_cur: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def side(n: int, shift: float) -> pd.DataFrame:
        f_norm = rng.normal(shift, 1, n)
        f_same = rng.normal(0, 1, n)
        f_nan = rng.exponential(1 + shift, n)
        f_nan[rng.random(n) < 0.1] = np.nan
        f_nan[rng.random(n) < 0.01] = np.inf
        return pd.DataFrame({
            "f_norm": f_norm,
            "f_same": f_same,
            "f_nan": f_nan,
            "i_many": rng.integers(0, 60 + int(10 * shift), n),
            "i_few": rng.choice([0, 1, 2, 3], n, p=[0.4, 0.3, 0.2, 0.1] if shift == 0 else [0.25, 0.25, 0.25, 0.25]),
            "i_two": rng.choice([0, 1], n, p=[0.5, 0.5]),
            "f_few": rng.choice([0.5, 1.5, 2.5, 3.5], n),
            "f_two": rng.choice([1.25, 7.5], n, p=[0.3, 0.7] if shift == 0 else [0.5, 0.5]),
            "s_cat": rng.choice(["basic", "plus", "pro"], n, p=[0.6, 0.3, 0.1] if shift == 0 else [0.3, 0.3, 0.4]),
            "s_bin": rng.choice(["no", "yes"], n, p=[0.5, 0.5]),
        })

    return side(n_ref, 0.0), side(n_cur, 0.6)


def loom_drift(tmp: str, ref: pd.DataFrame, cur: pd.DataFrame, *args: str) -> dict:
    rp, cp, out = os.path.join(tmp, "ref.csv"), os.path.join(tmp, "cur.csv"), os.path.join(tmp, "drift.json")
    ref.to_csv(rp, index=False)
    cur.to_csv(cp, index=False)
    p = subprocess.run([loomproc.loom_bin(), "drift", "--reference", rp, "--current", cp, "--json", out, *args],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "columns drifted" in p.stdout
    with open(out) as f:
        return json.load(f)


def evidently(tmp: str, num: str | None = None, cat: str | None = None) -> dict:
    assert os.path.exists(EVIDENTLY_PYTHON), f"the Evidently venv is missing: {EVIDENTLY_PYTHON} (scripts/test makes it)"
    p = subprocess.run([EVIDENTLY_PYTHON, os.path.join(HERE, "support", "evidently_drift.py"), os.path.join(tmp, "ref.csv"),
                        os.path.join(tmp, "cur.csv"), num or "-", cat or "-"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def verdict(method: str, score: float, threshold: float) -> bool:
    if method in ("ks", "cramer_von_mises"):
        return score <= threshold
    if method in ("chisquare", "z", "anderson"):
        return score < threshold
    return score >= threshold


def same(loom: dict, theirs: dict, expect_methods: dict[str, str] | None = None) -> None:
    columns = {c["name"]: c for c in loom["columns"]}
    assert set(columns) == set(theirs["columns"]), (sorted(columns), sorted(theirs["columns"]))
    for name, t in theirs["columns"].items():
        c = columns[name]
        # Evidently names a default method by its display name, one it was given by that name.
        assert t["method"] in (NAMES[c["method"]], c["method"]), (name, c["method"], t["method"])
        if expect_methods and name in expect_methods:
            assert c["method"] == expect_methods[name], (name, c["method"])
        assert math.isclose(c["threshold"], t["threshold"]), name
        assert c["score"] is not None and abs(c["score"] - t["score"]) <= 1e-6, (name, c["method"], c["score"], t["score"])
        assert c["drifted"] == verdict(c["method"], t["score"], t["threshold"]), (name, c["score"], t["score"])
    assert loom["number_of_drifted_columns"] == theirs["drifted_count"]
    assert abs(loom["share_drifted"] - theirs["share"]) < 1e-12
    assert loom["dataset_drifted"] == (theirs["share"] >= 0.5)


@pytest.fixture()
def tmp(tmp_path):
    return str(tmp_path)


def test_small_reference_defaults_match_evidently_and_scipy(tmp):
    ref, cur = tables(600, 800, seed=1)
    loom = loom_drift(tmp, ref, cur)
    same(loom, evidently(tmp), {"f_norm": "ks", "f_same": "ks", "f_nan": "ks", "i_many": "ks", "i_few": "chisquare", "i_two": "z",
                               "f_few": "chisquare", "f_two": "z", "s_cat": "chisquare", "s_bin": "z"})
    columns = {c["name"]: c for c in loom["columns"]}
    # scipy itself, on the cleaned columns.
    for name in ["f_norm", "f_same", "f_nan", "i_many"]:
        a = ref[name].replace([np.inf, -np.inf], np.nan).dropna()
        b = cur[name].replace([np.inf, -np.inf], np.nan).dropna()
        assert abs(columns[name]["score"] - scipy.stats.ks_2samp(a, b).pvalue) <= 1e-6, name
    assert columns["f_norm"]["drifted"] and not columns["f_same"]["drifted"] and columns["s_cat"]["drifted"]
    assert columns["f_nan"]["reference_missing"] == int(ref["f_nan"].isna().sum() + np.isinf(ref["f_nan"]).sum())
    assert any(f["kind"] == "non_finite" and f["column"] == "f_nan" for f in loom["findings"])


def test_large_reference_defaults_match_evidently_and_scipy(tmp):
    ref, cur = tables(5000, 7000, seed=2)
    loom = loom_drift(tmp, ref, cur)
    same(loom, evidently(tmp), {"f_norm": "wasserstein", "i_many": "wasserstein", "i_few": "jensenshannon", "f_few": "jensenshannon",
                               "s_cat": "jensenshannon"})
    columns = {c["name"]: c for c in loom["columns"]}
    a, b = ref["f_norm"], cur["f_norm"]
    assert abs(columns["f_norm"]["score"] - scipy.stats.wasserstein_distance(a, b) / max(np.std(a), 0.001)) <= 1e-6
    counts = pd.concat([ref["s_cat"].value_counts(normalize=True), cur["s_cat"].value_counts(normalize=True)], axis=1).fillna(0)
    assert abs(columns["s_cat"]["score"] - distance.jensenshannon(counts.iloc[:, 0], counts.iloc[:, 1])) <= 1e-6


@pytest.mark.parametrize("num,cat", [("psi", "psi"), ("kl_div", "kl_div"), ("hellinger", "hellinger"), ("jensenshannon", "jensenshannon"),
                                     ("anderson", None), ("cramer_von_mises", None)])
def test_named_methods_match_evidently(tmp, num, cat):
    ref, cur = tables(1500, 2000, seed=3)
    args = ["--numerical-method", num] + (["--categorical-method", cat] if cat else [])
    loom = loom_drift(tmp, ref, cur, *args)
    same(loom, evidently(tmp, num, cat))


def test_bad_data_is_reported_never_a_crash(tmp):
    ref, cur = tables(400, 400, seed=4)
    ref["empty"] = np.nan
    cur["empty"] = np.nan
    ref["constant"] = 5.0
    cur["constant"] = 5.0
    cur["s_cat"] = cur["s_cat"].where(np.arange(len(cur)) % 7 != 0, "enterprise")  # a category the reference lacks
    cur = cur.drop(columns=["f_two"])
    cur["f_few"] = "text now"
    cur["new_one"] = 1
    loom = loom_drift(tmp, ref, cur)
    kinds = {(f["column"], f["kind"]) for f in loom["findings"]}
    assert {("f_two", "missing_column"), ("new_one", "new_column"), ("empty", "all_missing"), ("constant", "constant"),
            ("s_cat", "unseen_categories"), ("f_few", "type_changed")} <= kinds, kinds
    quality = {c["name"]: c for c in loom["data_quality"]["columns"]}
    assert quality["s_cat"]["out_of_range_rate"] == pytest.approx((np.arange(len(cur)) % 7 == 0).sum() / len(cur))
    assert quality["f_few"]["type_error_rate"] == 1.0 and "type_error_rate" in quality["f_few"]["violations"]
    assert quality["f_nan"]["null_rate"] == pytest.approx(cur["f_nan"].isna().sum() / len(cur))
    assert loom["data_quality"]["passed"] is False
    names = {c["name"] for c in loom["columns"]}
    assert "f_two" not in names and "empty" not in names and "constant" in names and "s_cat" in names
    # Bad requests are refused with the field named, and exit 1.
    rp, cp = os.path.join(tmp, "ref.csv"), os.path.join(tmp, "cur.csv")
    for args, needle in [(["--method", "s_cat=ks"], "does not apply"), (["--method", "nope=psi"], "nope"), (["--method", "f_norm=magic"], "unknown drift method"),
                         (["--threshold", "f_norm=abc"], "not a number"), (["--columns", "ghost"], "ghost"),
                         (["--max-null-rate", "2"], "between 0 and 1")]:
        p = subprocess.run([loomproc.loom_bin(), "drift", "--reference", rp, "--current", cp, *args], capture_output=True, text=True, timeout=120)
        assert p.returncode != 0 and needle in p.stderr, (args, p.stderr)
    empty = os.path.join(tmp, "empty.csv")
    with open(empty, "w") as f:
        f.write(",".join(ref.columns) + "\n")
    p = subprocess.run([loomproc.loom_bin(), "drift", "--reference", rp, "--current", empty], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "no rows" in p.stderr


def test_html_report_and_fail_on_drift(tmp):
    ref, cur = tables(800, 800, seed=5)
    loom_drift(tmp, ref, cur)
    html = os.path.join(tmp, "drift.html")
    rp, cp = os.path.join(tmp, "ref.csv"), os.path.join(tmp, "cur.csv")
    p = subprocess.run([loomproc.loom_bin(), "drift", "--reference", rp, "--current", cp, "--html", html, "--fail-on-drift"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, "the data drifted: --fail-on-drift exits 1"
    page = open(html).read()
    assert page.startswith("<!doctype html>") and "<svg" in page and "f_norm" in page and "dataset drift" in page
    assert "Data quality" in page
    assert "http://" not in page and "https://" not in page, "self-contained"
    assert page.count("<section") == len(ref.columns)
    p = subprocess.run([loomproc.loom_bin(), "drift", "--reference", rp, "--current", rp, "--json", "-"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and json.loads(p.stdout)["dataset_drifted"] is False
