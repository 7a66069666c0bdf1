"""Writes data/customers.csv: synthetic telecom customers and whether they churned.

Deterministic (seeded), standard library only. Churn is more likely for short tenure, monthly
contracts, high charges and many support calls, with noise, so that models can learn it but
not perfectly.
"""

import argparse
import csv
import math
import os
import random


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "customers.csv"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["customer_id", "age", "tenure_months", "contract", "monthly_charges", "support_calls", "churned"])
        for i in range(args.rows):
            age = rng.randint(18, 85)
            tenure = rng.randint(0, 72)
            contract = rng.choices(["month", "year", "two_year"], weights=[55, 25, 20])[0]
            charges = round(rng.uniform(18, 120), 2)
            calls = min(12, int(rng.expovariate(0.6)))
            z = (-1.2 - 0.045 * tenure + 0.018 * (charges - 60) + 0.35 * calls
                 + {"month": 1.1, "year": -0.4, "two_year": -1.3}[contract] + 0.01 * (40 - age) + rng.gauss(0, 0.8))
            churned = "yes" if rng.random() < 1 / (1 + math.exp(-z)) else "no"
            w.writerow([f"C{i:06d}", age, tenure, contract, charges, calls, churned])


if __name__ == "__main__":
    main()
