"""Train a small classifier on the even half of the digits and log it as an MLflow model."""

import argparse
import json
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

p = argparse.ArgumentParser()
p.add_argument("--seed", type=float, default=0)
p.add_argument("--out", required=True)
args = p.parse_args()

digits = load_digits()
train = np.arange(len(digits.images))[0::2]
x = digits.data[train] / 16.0
y = digits.target[train]
model = LogisticRegression(max_iter=500, random_state=int(args.seed)).fit(x, y)
mlflow.log_metric("train_accuracy", float(model.score(x, y)))
# Explicit requirements and signature: MLflow's inference of both starts subprocesses (~15 s).
info = mlflow.sklearn.log_model(
    model,
    name="model",
    signature=infer_signature(x[:2], model.predict(x[:2])),
    pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
)
(Path(args.out) / "model.json").write_text(json.dumps({"model_uri": info.model_uri}))
print("logged", info.model_uri)
