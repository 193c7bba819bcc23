"""The recurrent network: one module for LSTM and GRU, the cell is a parameter."""

from __future__ import annotations

import torch
from torch import nn

from .recurrent import stack_forward

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentNet(nn.Module):
    """Stacked recurrent layers, each followed by its own dropout layer, and a dense head.

    One single-layer recurrent module per layer (not `num_layers=`) so that every layer is
    followed by a dropout layer, as in the Keras recipe: four layers give four dropout layers.
    """

    def __init__(self, cell: str, n_inputs: int, units: int, layers: int, dropout: float, horizon: int = 1) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"unknown cell {cell!r}; choose from {', '.join(CELLS)}")
        self.cell = cell
        sizes = [n_inputs] + [units] * layers
        self.recurrent = nn.ModuleList(
            CELLS[cell](sizes[i], units, num_layers=1, batch_first=True) for i in range(layers)
        )
        self.dropouts = nn.ModuleList(nn.Dropout(dropout) for _ in range(layers))
        self.head = nn.Linear(units, horizon)
        keras_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (batch, window, n_inputs)
        if torch.is_grad_enabled() and not x.is_cuda:
            # Training on a CPU: the whole stack as one function with a hand-written backward
            # pass (recurrent.py): a little faster than nn.LSTM, over four times nn.GRU's speed.
            p = self.dropouts[0].p if self.training else 0.0
            last = stack_forward(self.cell, x, self.recurrent, p)  # (batch, units)
            return self.head(self.dropouts[-1](last))  # (batch, horizon)
        # Inference (no autograd to record) and CUDA (cuDNN): torch's own recurrent modules.
        for rnn, drop in zip(self.recurrent, self.dropouts, strict=True):
            x, _ = rnn(x)  # (batch, window, units)
            x = drop(x)  # (batch, window, units)
        return self.head(x[:, -1])  # (batch, horizon)


@torch.no_grad()
def keras_init_(net: RecurrentNet) -> None:
    """Keras's defaults: Glorot-uniform input weights, orthogonal recurrent weights, zero biases,
    LSTM forget-gate bias 1 (torch gate order i, f, g, o), Glorot-uniform dense kernel."""
    for rnn in net.recurrent:
        units = rnn.hidden_size
        nn.init.xavier_uniform_(rnn.weight_ih_l0)
        nn.init.orthogonal_(rnn.weight_hh_l0)
        nn.init.zeros_(rnn.bias_ih_l0)
        nn.init.zeros_(rnn.bias_hh_l0)
        if net.cell == "lstm":
            rnn.bias_ih_l0[units : 2 * units] = 1.0
    nn.init.xavier_uniform_(net.head.weight)
    nn.init.zeros_(net.head.bias)


class Ensemble(nn.Module):
    """Several networks of one architecture; the forecast is the mean of theirs."""

    def __init__(self, members: list[RecurrentNet]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (batch, window, n_inputs)
        return torch.stack([m(x) for m in self.members]).mean(dim=0)  # (batch, horizon)
