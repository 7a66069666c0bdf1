"""The scikit-learn candidate: a random forest on one-hot features.

Run by the pipeline's `sklearn` command step. MLFLOW_TRACKING_URI and MLFLOW_RUN_ID are set by
Loom, so mlflow.start_run() continues the step's own tracking run: parameters and validation
metrics land there. The model is saved in MLflow's format to the step's output folder, which
Loom stores as the step run's `model` artifact.
"""

import argparse

import mlflow
import mlflow.sklearn
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

TARGET = "churned"


def features(frame: pd.DataFrame) -> pd.DataFrame:
    x = frame.drop(columns=[TARGET, "customer_id"])
    return pd.get_dummies(x, columns=["contract"], dtype=float).astype(float)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", required=True)
    parser.add_argument("--validation", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    train = pd.read_csv(args.train if args.train.endswith(".csv") else f"{args.train}/customers-train.csv")
    valid = pd.read_csv(args.validation if args.validation.endswith(".csv") else f"{args.validation}/customers-validation.csv")
    x_train, x_valid = features(train), features(valid)
    x_valid = x_valid.reindex(columns=x_train.columns, fill_value=0.0)
    y_train, y_valid = (train[TARGET] == "yes").astype(int), (valid[TARGET] == "yes").astype(int)

    with mlflow.start_run():
        mlflow.log_params({"model": "random_forest", "trees": args.trees, "seed": args.seed, "min_samples_leaf": 20})
        model = RandomForestClassifier(n_estimators=args.trees, min_samples_leaf=20, random_state=args.seed, n_jobs=1)
        model.fit(x_train, y_train)
        p = model.predict_proba(x_valid)[:, 1]
        mlflow.log_metrics({
            "validation_roc_auc": roc_auc_score(y_valid, p),
            "validation_accuracy": accuracy_score(y_valid, p >= 0.5),
            "validation_log_loss": log_loss(y_valid, p),
        })
        # Trees are stored with skops; its node arrays are this script's own, so they are trusted.
        mlflow.sklearn.save_model(model, args.out, input_example=x_valid.head(3), skops_trusted_types=["sklearn.tree._tree.Tree"])


if __name__ == "__main__":
    main()
