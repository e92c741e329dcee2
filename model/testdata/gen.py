#!/usr/bin/env python3
"""Trains the small offline models of the model package's tests (model/testdata/*.json, *.txt).

The data is synthetic, like the tests' events: amount ~ lognormal, channel a category code 0..2
(pos, online, atm), tx_count_1m a count; P(fraud) is logistic in log1p(amount), the channel and
the count. Run by hand (the Go tests read the committed files):

  python3 -m venv /tmp/models-venv
  /tmp/models-venv/bin/pip install 'xgboost==3.2.0' 'lightgbm==4.7.0' numpy pandas scikit-learn
  /tmp/models-venv/bin/python model/testdata/gen.py
"""
import os

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))


def data(n, seed):
    rng = np.random.default_rng(seed)
    amount = np.exp(rng.normal(size=n) + 3)
    channel = rng.integers(0, 3, size=n).astype(float)
    count = rng.integers(1, 30, size=n).astype(float)
    z = -3 + 0.6 * np.log1p(amount) + 1.5 * (channel == 1) + 0.05 * count
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return pd.DataFrame({"amount": amount, "channel": channel, "tx_count_1m": count}), y


def main():
    X, y = data(20_000, 1)
    xgb.XGBClassifier(n_estimators=20, max_depth=3, random_state=1, n_jobs=1).fit(X, y).save_model(
        os.path.join(HERE, "fraud_v1.json"))
    xgb.XGBClassifier(n_estimators=40, max_depth=4, learning_rate=0.2, random_state=2, n_jobs=1).fit(X, y).save_model(
        os.path.join(HERE, "fraud_v2.json"))
    lgb.LGBMClassifier(n_estimators=20, num_leaves=8, random_state=3, n_jobs=1, verbose=-1).fit(X, y).booster_.save_model(
        os.path.join(HERE, "fraud_lgb.txt"))
    # Refused as versions of the binary model: another task, and a feature the pipeline lacks.
    xgb.XGBRegressor(n_estimators=5, max_depth=2, n_jobs=1).fit(X, y).save_model(os.path.join(HERE, "fraud_regression.json"))
    X2 = X.assign(merchant_risk=np.random.default_rng(4).random(len(X)))
    xgb.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(X2, y).save_model(os.path.join(HERE, "fraud_needs_merchant_risk.json"))
    # A multiclass model (the channel from the amount and the count), for the multiclass paths.
    xgb.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1, random_state=5).fit(
        X[["amount", "tx_count_1m"]], X["channel"].astype(int)).save_model(os.path.join(HERE, "channel_multiclass.json"))
    # The reference predictions for the first rows, to check streamd scores as the library does.
    Xt, _ = data(200, 9)
    Xt.loc[::7, "amount"] = np.nan
    m = xgb.XGBClassifier()
    m.load_model(os.path.join(HERE, "fraud_v1.json"))
    out = Xt.assign(p=m.predict_proba(Xt)[:, 1], margin=m.predict(Xt, output_margin=True))
    out.to_csv(os.path.join(HERE, "fraud_v1_expect.csv"), index=False, float_format="%.17g")


if __name__ == "__main__":
    main()
