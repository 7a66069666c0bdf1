"""Loom's built-in models agree with scikit-learn's on the same data (docs/models.md).

Each test writes generated data as CSV, trains with `loom train` (the real binary, its own data
folder), reads the model file from the run's artifacts or scores held-out rows with
`loom predict`, and compares with the scikit-learn estimator that minimises the same objective.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, mean_squared_error

import loomproc

COLORS = ["blue", "green", "red"]


@pytest.fixture(scope="module")
def work():
    path = loomproc.temp_data_dir("loom-models-")
    yield path
    loomproc.remove(path)


def loom(work: str, *args: str) -> dict:
    p = subprocess.run([loomproc.loom_bin(), *args, "--data-dir", os.path.join(work, "store"), "--json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def model_file(work: str, run_id: str) -> dict:
    [path] = glob.glob(os.path.join(work, "store", "artifacts", "*", run_id, "artifacts", "model", "loom-model.json"))
    with open(path) as f:
        return json.load(f)


def linear_data(n: int, seed: int) -> pd.DataFrame:
    """Features on different scales, a categorical column, a few missing values."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)) * [1, 10, 0.1, 3] + [0, 5, 1, -2]
    color = rng.choice(COLORS, size=n)
    effect = np.select([color == "red", color == "green"], [1.0, -0.5], 0.0)
    df = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    df["color"] = color
    df["y"] = x @ [1.5, -0.2, 8, 0.7] + effect + rng.normal(size=n) * 0.5
    z = x @ [1.0, 0.1, -3, 0.4] + effect - 0.3
    df["label"] = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    s = np.stack([x[:, 0], 0.1 * x[:, 1], 5 * x[:, 2] + 0.3 * x[:, 3]], 1)
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    df["kind"] = np.array(["alpha", "beta", "gamma"])[(rng.random(n)[:, None] > p.cumsum(1)).sum(1)]
    df.loc[rng.choice(n, 40, replace=False), "a"] = np.nan
    return df


def design(df: pd.DataFrame, numeric: list[str], impute: bool) -> pd.DataFrame:
    """What Loom builds: numbers (mean-imputed for linear models), then one-hot colours."""
    x = df[numeric].copy()
    if impute:
        x = x.fillna(x.mean())
    for c in COLORS:
        x[f"color={c}"] = (df["color"] == c).astype(float)
    return x


@pytest.fixture(scope="module")
def linear_csv(work):
    df = linear_data(4000, 0)
    path = os.path.join(work, "linear.csv")
    df.to_csv(path, index=False)
    return df, path


@pytest.mark.parametrize("alpha", [0.0, 10.0])
def test_linear_regression_coefficients_match(work, linear_csv, alpha):
    df, path = linear_csv
    s = loom(work, "train", "--data", path, "--target", "y", "--model", "linear", "--exclude", "label", "kind", "--l2", str(alpha))
    m = model_file(work, s["run_id"])
    assert m["features"] == ["a", "b", "c", "d", "color=blue", "color=green", "color=red"]
    x = design(df, ["a", "b", "c", "d"], impute=True)
    ref = (Ridge(alpha=alpha) if alpha else LinearRegression()).fit(x, df["y"])
    ours = np.array(m["linear"]["coefficients"][0])
    if alpha:
        np.testing.assert_allclose(ours, ref.coef_, atol=1e-8)
        assert abs(m["linear"]["intercepts"][0] - ref.intercept_) < 1e-8
    else:
        # Full one-hot plus an intercept is collinear without a penalty: the numeric
        # coefficients and the fitted values are unique, the split between intercept and
        # colours is not.
        np.testing.assert_allclose(ours[:4], ref.coef_[:4], atol=1e-6)
    assert abs(s["training"]["r2"] - ref.score(x, df["y"])) < 1e-9


@pytest.mark.parametrize("target", ["label", "kind"])
@pytest.mark.parametrize("c", [1.0, 0.05])
def test_logistic_regression_coefficients_match(work, linear_csv, target, c):
    df, path = linear_csv
    others = [t for t in ("y", "label", "kind") if t != target]
    s = loom(work, "train", "--data", path, "--target", target, "--model", "logistic", "--exclude", *others, "--l2", str(1 / c))
    m = model_file(work, s["run_id"])
    x = design(df, ["a", "b", "c", "d"], impute=True)
    ref = LogisticRegression(C=c, tol=1e-10, max_iter=10000).fit(x, df[target])
    assert m["classes"] == [str(k) for k in ref.classes_]
    np.testing.assert_allclose(np.array(m["linear"]["coefficients"]), ref.coef_, atol=1e-4)
    np.testing.assert_allclose(np.array(m["linear"]["intercepts"]), ref.intercept_, atol=1e-4)
    assert abs(s["training"]["accuracy"] - ref.score(x, df[target])) < 1e-3


def tree_data(n: int, seed: int) -> pd.DataFrame:
    """Non-linear targets with interactions, thresholds, missing values and a category."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    x[rng.random((n, 6)) < 0.05] = np.nan
    color = rng.choice(COLORS, size=n)
    f = np.nan_to_num(x)
    z = np.sin(2 * f[:, 0]) + f[:, 1] * f[:, 2] + np.where(color == "red", 1.0, -0.5) + 0.5 * (f[:, 3] > 0.5)
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(6)])
    df["color"] = color
    df["y"] = z + rng.normal(size=n) * 0.3
    df["label"] = (z + rng.normal(size=n) * 0.5 > 0.3).astype(int)
    df["kind"] = np.array(["a", "b", "c"])[np.digitize(z + rng.normal(size=n) * 0.5, [-0.5, 0.8])]
    return df


@pytest.fixture(scope="module")
def tree_csv(work):
    train, test = tree_data(15000, 1), tree_data(4000, 2)
    paths = os.path.join(work, "tree-train.csv"), os.path.join(work, "tree-test.csv")
    train.to_csv(paths[0], index=False)
    test.to_csv(paths[1], index=False)
    return train, test, paths


@pytest.mark.parametrize("target", ["label", "kind", "y"])
def test_gbdt_matches_hist_gradient_boosting(work, tree_csv, target):
    train, test, (train_path, test_path) = tree_csv
    others = [t for t in ("y", "label", "kind") if t != target]
    s = loom(work, "train", "--data", train_path, "--target", target, "--model", "gbdt", "--exclude", *others)
    out = os.path.join(work, f"pred-{target}.csv")
    p = loom(work, "predict", "--model", s["model_uri"], "--data", test_path, "-o", out)
    predicted = pd.read_csv(out)
    assert len(predicted) == len(test)
    numeric = [f"x{i}" for i in range(6)]
    if target == "y":
        assert s["task"] == "regression"
        ref = HistGradientBoostingRegressor(random_state=0).fit(design(train, numeric, impute=False), train[target])
        ours = mean_squared_error(test[target], predicted["prediction"]) ** 0.5
        theirs = mean_squared_error(test[target], ref.predict(design(test, numeric, impute=False))) ** 0.5
        assert abs(p["evaluation"]["rmse"] - ours) < 1e-9
        assert ours <= theirs * 1.05, (ours, theirs)
    else:
        assert s["task"] == ("binary" if target == "label" else "multiclass")
        ref = HistGradientBoostingClassifier(random_state=0).fit(design(train, numeric, impute=False), train[target])
        ours = accuracy_score(test[target].astype(str), predicted["prediction"].astype(str))
        theirs = ref.score(design(test, numeric, impute=False), test[target])
        assert abs(p["evaluation"]["accuracy"] - ours) < 1e-9
        assert ours >= theirs - 0.02, (ours, theirs)
        probabilities = predicted[[c for c in predicted.columns if c.startswith("probability_")]].to_numpy()
        np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-9)
    # Early stopping is on past 10,000 rows, as in scikit-learn; both stop somewhere <= 100.
    assert 1 <= s["iterations"] <= 100
