#!/usr/bin/env python3
"""Train and run Loom's built-in models and scikit-learn's, side by side, on the same data.

Usage: bench/.venv/bin/python bench/models_bench.py [--rows 1000000] [--loom PATH] [--threads N]

Generates (once, cached under bench/.data/) a binary classification table of --rows training
rows and 200,000 test rows, 20 numeric features (two with 5% missing values in the training
and test data alike), whose label depends on the features linearly, through interactions and
through thresholds (so that trees beat a linear model). Then, for logistic regression and
gradient-boosted trees:

- fit time: Loom's `fit_seconds` from `loom train --json` (the data already in memory; reading
  the CSV is reported apart) next to scikit-learn's `fit()` on a numpy array read by pandas
  (`LogisticRegression()` and `HistGradientBoostingClassifier()`, their defaults; Loom's
  defaults are the same settings); missing values are imputed with the mean for both logistic
  regressions, as Loom does;
- test accuracy and ROC AUC of both on the test rows;
- batch inference: rows per second of `loom predict` (`rows_per_second`, prediction alone) next
  to scikit-learn's `predict_proba` on the test rows.

Both use every core (scikit-learn through OpenMP, Loom through its own threads). Markdown goes
to stdout and bench/results/models.md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "bench", ".data")
RESULTS = os.path.join(ROOT, "bench", "results")
FEATURES = 20


def generate(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES))
    weights = np.linspace(-1, 1, FEATURES)
    z = x @ weights * 0.6 + 0.8 * x[:, 0] * x[:, 1] + 1.2 * (x[:, 2] > 0.7) - 0.9 * (x[:, 3] < -0.5) + np.sin(2 * x[:, 4])
    label = (z + rng.logistic(size=rows) * 0.7 > 0.2).astype(int)
    for j in (5, 6):
        x[rng.random(rows) < 0.05, j] = np.nan
    df = pd.DataFrame(x, columns=[f"f{j}" for j in range(FEATURES)])
    df["label"] = label
    return df


def data(rows: int) -> tuple[str, str]:
    os.makedirs(CACHE, exist_ok=True)
    train = os.path.join(CACHE, f"models_{rows}_train.csv")
    test = os.path.join(CACHE, "models_test.csv")
    if not os.path.exists(train):
        generate(rows, 1).to_csv(train, index=False, float_format="%.6g")
    if not os.path.exists(test):
        generate(200_000, 2).to_csv(test, index=False, float_format="%.6g")
    return train, test


def loom(binary: str, args: list[str]) -> dict:
    p = subprocess.run([binary, *args, "--json"], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"loom {' '.join(args)} failed:\n{p.stderr}")
    return json.loads(p.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--loom", default=os.path.join(ROOT, ".build-release", "release", "loom"))
    args = parser.parse_args()
    train_path, test_path = data(args.rows)
    started = time.time()
    train = pd.read_csv(train_path)
    test = pd.read_csv(test_path)
    pandas_read = time.time() - started
    features = [f"f{j}" for j in range(FEATURES)]
    x_train, y_train = train[features].to_numpy(), train["label"].to_numpy()
    x_test, y_test = test[features].to_numpy(), test["label"].to_numpy()
    means = np.nanmean(x_train, axis=0)
    imputed_train = np.where(np.isnan(x_train), means, x_train)
    imputed_test = np.where(np.isnan(x_test), means, x_test)

    rows = []
    with tempfile.TemporaryDirectory(prefix="loom-models-bench-") as work:
        for family, make, xs in (
            ("logistic", lambda: LogisticRegression(), (imputed_train, imputed_test)),
            ("gbdt", lambda: HistGradientBoostingClassifier(), (x_train, x_test)),
        ):
            summary = loom(args.loom, ["train", "--data", train_path, "--target", "label", "--model", family, "--data-dir", work])
            out = os.path.join(work, f"{family}.csv")
            predicted = loom(args.loom, ["predict", "--model", summary["model_uri"], "--data", test_path, "--data-dir", work, "-o", out])
            evaluation = predicted["evaluation"]
            model = make()
            t = time.time()
            model.fit(xs[0], y_train)
            sk_fit = time.time() - t
            t = time.time()
            proba = model.predict_proba(xs[1])[:, 1]
            sk_predict = time.time() - t
            sk_acc = accuracy_score(y_test, (proba > 0.5).astype(int))
            sk_auc = roc_auc_score(y_test, proba)
            sk_iter = int(np.max(model.n_iter_))
            rows.append((family, summary, predicted, evaluation, sk_fit, sk_predict, sk_acc, sk_auc, sk_iter))

    lines = [
        f"Training data: {args.rows:,} rows x {FEATURES} features (CSV {os.path.getsize(train_path) / 2**20:.0f} MiB); test: 200,000 rows. "
        f"pandas read both CSVs in {pandas_read:.1f} s.",
        "",
        "| model | tool | fit s | iterations | test accuracy | test ROC AUC | inference rows/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for family, summary, predicted, evaluation, sk_fit, sk_predict, sk_acc, sk_auc, sk_iter in rows:
        name = "LogisticRegression" if family == "logistic" else "HistGradientBoostingClassifier"
        lines.append(
            f"| {family} | Loom | {summary['fit_seconds']:.2f} | {summary.get('iterations') or '-'} | {evaluation['accuracy']:.4f} | "
            f"{evaluation['roc_auc']:.4f} | {predicted['rows_per_second']:,.0f} |")
        lines.append(f"| {family} | scikit-learn {name} | {sk_fit:.2f} | {sk_iter} | {sk_acc:.4f} | {sk_auc:.4f} | {200_000 / sk_predict:,.0f} |")
        lines.append(
            f"| {family} | **Loom / scikit-learn** | **{sk_fit / summary['fit_seconds']:.2f}x speed** | | "
            f"{evaluation['accuracy'] - sk_acc:+.4f} | {evaluation['roc_auc'] - sk_auc:+.4f} | "
            f"**{predicted['rows_per_second'] / (200_000 / sk_predict):.2f}x** |")
        lines.append(
            f"| {family} | Loom, with reading the CSV | {summary['seconds']:.2f} | | | | |")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "models.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
