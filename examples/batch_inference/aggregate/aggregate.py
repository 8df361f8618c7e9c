"""Combine every partition's predictions into one summary and log the overall accuracy."""

import csv
import json
import sys
from collections import Counter
from pathlib import Path

import mlflow

src, out = Path(sys.argv[1]), Path(sys.argv[2])
total = correct = 0
confusions: Counter[str] = Counter()
for path in sorted(src.rglob("predictions-*.csv")):
    with path.open() as f:
        for row in csv.DictReader(f):
            total += 1
            if row["label"] == row["prediction"]:
                correct += 1
            else:
                confusions[f"{row['label']}->{row['prediction']}"] += 1
accuracy = correct / total if total else 0.0
summary = {
    "images": total,
    "correct": correct,
    "accuracy": accuracy,
    "top_confusions": confusions.most_common(5),
}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
mlflow.log_metric("images", total)
mlflow.log_metric("accuracy", accuracy)
print(json.dumps(summary))
