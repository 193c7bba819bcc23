"""What a window model sees and predicts: inputs and target built from prices, and back to prices.

Statistics (scaler bounds) are fitted on training rows only; every transform is row-wise, so a
row's features never depend on later rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.preprocessing import MinMaxScaler

KINDS = ("level",)


class Features:
    """`level`: the target price alone, MinMax-scaled on the training span (the reference recipe)."""

    def __init__(self, target: str = "high", kind: str = "level") -> None:
        self.target = target
        self.kind = kind

    @property
    def n_inputs(self) -> int:
        return 1

    def fit(self, frame: pd.DataFrame) -> Features:
        """Fit the scaler on the training rows in `frame` and return self."""
        self.scaler_ = MinMaxScaler().fit(frame[[self.target]].to_numpy(dtype=float))
        return self

    def inputs(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows, n_inputs) float32 model inputs."""
        return self.scaler_.transform(frame[[self.target]].to_numpy(dtype=float)).astype(np.float32)

    def targets(self, frame: pd.DataFrame) -> np.ndarray:
        """(rows,) the target of each row in model units."""
        return self.inputs(frame)[:, 0]

    def to_price(self, values: np.ndarray, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        """Model outputs (n, horizon) for windows with `origins` back to prices."""
        scale, low = self.scaler_.scale_[0], self.scaler_.min_[0]
        return (np.asarray(values, dtype=float) - low) / scale

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "kind": self.kind,
            "scaler": {
                "kind": "minmax",
                "data_min": self.scaler_.data_min_.tolist(),
                "data_max": self.scaler_.data_max_.tolist(),
            },
        }

    @classmethod
    def from_dict(cls, state: dict) -> Features:
        features = cls(state["target"], state["kind"])
        bounds = np.array([state["scaler"]["data_min"], state["scaler"]["data_max"]], dtype=float)
        features.scaler_ = MinMaxScaler().fit(bounds)
        return features
