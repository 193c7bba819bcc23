"""A whole LSTM or GRU stack as one autograd function with a hand-written backward pass.

Why: on a CPU, training a stack of small recurrent layers is dominated by per-step overhead,
not arithmetic. `torch.nn.LSTM` runs one layer after another, 60 steps each, and autograd
records every small operation. Here the stack runs as a *wavefront*: at wave `k`, layer `l`
computes time step `k - l`, so all layers advance together and a 4-layer, 60-step stack takes
63 waves instead of 240 steps. Each wave is one batched matrix multiply over the layers (input
weights, recurrent weights and bias stacked into one matrix per layer, the bias against a
constant-one input column) and a handful of element-wise operations. The backward pass runs
the waves in reverse with the gate derivatives written out, and the weight gradients of every
wave come from one batched multiply at the end.

The result matches `nn.LSTM`/`nn.GRU` with the same parameters (tests compare outputs and
gradients). Buffers put features before the batch, so each gate of a layer is one contiguous
block; the layer inputs `z` and the gate gradients are layer-major, so that the final weight
gradient reads them in place, the rest wave-major. They live in a workspace reused from batch
to batch with every per-wave view made once: a view costs about as much as a small operation,
and there would be thousands per batch.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

Params = list[torch.Tensor]  # per layer: weight_ih, weight_hh, bias_ih, bias_hh (torch's own layout)


def stack_forward(cell: str, x: torch.Tensor, layers: nn.ModuleList, dropout: float = 0.0) -> torch.Tensor:
    """The last layer's final hidden state, (batch, units), for input x (batch, steps, inputs).

    `layers` are single-layer `nn.LSTM`/`nn.GRU` modules (they hold the parameters, so saved
    models are unchanged). `dropout` is applied to the output of every layer but the last, as
    `nn.Dropout` would be: each element kept with probability 1 - p and scaled by 1 / (1 - p)."""
    params = [p for rnn in layers for p in (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)]
    return _Stack.apply(cell, x, float(dropout), *params)


def _gate_rows(cell: str, h: int) -> list[tuple[slice, slice]]:
    """(rows of the stacked matrix, rows of torch's weight) per gate block. LSTM rows are
    reordered i, f, o, g so the three sigmoid gates are one block; GRU rows are r, z and then
    the input and hidden parts of n, kept apart because the reset gate scales only the hidden part."""
    if cell == "lstm":
        return [
            (slice(0, 2 * h), slice(0, 2 * h)),
            (slice(2 * h, 3 * h), slice(3 * h, 4 * h)),
            (slice(3 * h, 4 * h), slice(2 * h, 3 * h)),
        ]
    return [(slice(0, 3 * h), slice(0, 3 * h))]


def input_width(n_in: int, h: int, n_layers: int) -> int:
    """Rows of every layer's input block, the last one the constant 1: as many as the widest layer
    input, so that one batched multiply serves all layers. A single layer needs only its own inputs:
    for 7 inputs and 64 units its stacked matrix has 72 columns instead of 129, and every multiply
    of a training batch does a little over half the work (one thread trains 1.4x faster)."""
    return (max(n_in, h) if n_layers > 1 else n_in) + 1


class _Workspace:
    """Every buffer of one input shape, and every per-wave view of them, made once and reused."""

    def __init__(self, key: tuple) -> None:
        cell, n_layers, steps, batch, n_in, h, masked, dtype, device = key
        self.key, self.generation, self.free = key, 0, False
        self.width = width = input_width(n_in, h, n_layers)
        self.waves = waves = steps + n_layers - 1
        rows = width + h
        new = {"dtype": dtype, "device": device}
        spans = [(max(0, k - steps + 1), min(n_layers, k + 1)) for k in range(waves)]  # active layers
        up = [(lo, min(hi, n_layers - 1)) for lo, hi in spans]  # active layers that feed a layer above

        def waves_of(buffer: torch.Tensor, which: list[tuple[int, int]] = spans) -> list[torch.Tensor]:
            """Wave-major (waves, layers, ...) buffer: buffer[k, lo:hi] per wave k."""
            return [buffer[k, lo:hi] for k, (lo, hi) in enumerate(which)]

        def layer_waves(buffer: torch.Tensor, which: list[tuple[int, int]] = spans) -> list[torch.Tensor]:
            """Layer-major (layers, features, waves, batch) buffer: buffer[lo:hi, :, k] per wave k."""
            return [buffer[lo:hi, :, k] for k, (lo, hi) in enumerate(which)]

        # z[l, :, k] = [input, 1 | previous hidden state] of layer l at wave k; z[l, :, k + 1] gets
        # its output. Zeros that are never written are the initial states and idle layers' inputs.
        # z and d_pre are layer-major, so that the weight gradient of all waves reads them as they
        # are: each layer's (features, waves x batch) matrix is a view.
        self.z = torch.zeros(n_layers, rows, waves + 1, batch, **new)
        self.z[:, width - 1] = 1.0
        self.acts = torch.zeros(waves, n_layers, 4 * h, batch, **new)  # pre-activations, then activations
        self.weights = torch.zeros(n_layers, 4 * h, rows, **new)
        self.weights_t = torch.zeros(n_layers, rows, 4 * h, **new)
        self.masks = torch.ones(waves, n_layers, h, batch, **new) if masked else None
        self.dz = torch.zeros(waves + 1, n_layers + 1, rows, batch, **new)  # + a zero layer above the top
        self.d_pre = torch.zeros(n_layers, 4 * h, waves, batch, **new)  # stays 0 where a layer is idle
        self.d_cell = torch.zeros(n_layers, h, batch, **new)
        self.scratch = torch.zeros(n_layers, 4 * h, batch, **new)
        self.output = self.z[n_layers - 1, width:, waves]
        self.grad_output = self.dz[waves, n_layers - 1, width:]
        w_of = {s: (self.weights[s[0] : s[1]], self.weights_t[s[0] : s[1]]) for s in set(spans)}
        z_in, outs = layer_waves(self.z[:, :, :waves]), layer_waves(self.z[:, width:, 1:])
        acts, dps = waves_of(self.acts), layer_waves(self.d_pre)
        feeds = layer_waves(self.z[1:, :h, 1:], up)
        masks = waves_of(self.masks, spans) if masked else [None] * waves
        n_sig = 3 * h if cell == "lstm" else 2 * h  # the sigmoid gates come first
        # Per wave: (slope of every gate, of the sigmoid gates, of the tanh gate, d of the sigmoid gates).
        slopes = [
            (self.scratch[lo:hi], self.scratch[lo:hi, :n_sig], self.scratch[lo:hi, n_sig:], dps[k][:, :n_sig])
            for k, (lo, hi) in enumerate(spans)
        ]
        gate = lambda t, j: t[:, j * h : (j + 1) * h]  # noqa: E731
        common = []
        for k, (lo, _) in enumerate(spans):
            n_up = up[k][1] - lo
            feed = (outs[k][:n_up], feeds[k], masks[k][:n_up] if masked else None) if n_up > 0 else None
            common.append((w_of[spans[k]], z_in[k], acts[k], outs[k], feed))
        if cell == "lstm":
            self.cells = torch.zeros(waves + 1, n_layers, h, batch, **new)
            self.tanh_c = torch.zeros(waves, n_layers, h, batch, **new)
            c_prev, c_next, tanh_k = waves_of(self.cells[:waves]), waves_of(self.cells[1:]), waves_of(self.tanh_c)
            self.steps_fwd = [
                (
                    *common[k],
                    acts[k][:, : 3 * h],
                    *(gate(acts[k], j) for j in range(4)),
                    c_prev[k],
                    c_next[k],
                    tanh_k[k],
                )
                for k in range(waves)
            ]
        else:
            self.diff = torch.zeros(waves, n_layers, h, batch, **new)  # h_prev - n, for h' = n + z (h_prev - n)
            h_prev, diffs = layer_waves(self.z[:, width:, :waves]), waves_of(self.diff)
            self.steps_fwd = [
                (*common[k], acts[k][:, : 2 * h], *(gate(acts[k], j) for j in range(4)), h_prev[k], diffs[k])
                for k in range(waves)
            ]
        dh_self, dh_above = waves_of(self.dz[1:, :n_layers, width:]), waves_of(self.dz[1:, 1:, :h])
        self.steps_bwd = []
        for k, (lo, hi) in enumerate(spans):
            fwd = self.steps_fwd[k]
            self.steps_bwd.append(
                (
                    dh_self[k],
                    dh_above[k],
                    masks[k],
                    dps[k],
                    *(gate(dps[k], j) for j in range(4)),
                    slopes[k],
                    self.d_cell[lo:hi],
                    w_of[spans[k]][1],
                    self.dz[k, lo:hi],
                    self.dz[k, lo:hi, width:],
                    fwd,
                )
            )


# Free workspaces by shape, the most recently used last. A training run uses two shapes (full
# batches and the last one); a few more are kept, and older ones dropped, so that memory stays
# bounded when many shapes pass through (backtest refits, tests).
_POOL: OrderedDict[tuple, list[_Workspace]] = OrderedDict()
_POOL_SHAPES = 4


def _acquire(key: tuple) -> _Workspace:
    free = _POOL.get(key)
    ws = free.pop() if free else _Workspace(key)
    ws.free = False
    ws.generation += 1
    return ws


def _release(ws: _Workspace) -> None:
    if not ws.free:
        ws.free = True
        _POOL.setdefault(ws.key, []).append(ws)
        _POOL.move_to_end(ws.key)
        while len(_POOL) > _POOL_SHAPES:
            _POOL.popitem(last=False)


def _stack_weights(ws: _Workspace, cell: str, params: Params) -> None:
    """Copy torch's parameters into the stacked (4 units, width + units) matrix of each layer:
    columns are the layer's input, the constant one (the bias) and the previous hidden state."""
    width, one = ws.width, ws.width - 1
    h = params[1].shape[1]
    for i in range(len(params) // 4):
        w_ih, w_hh, b_ih, b_hh = params[4 * i : 4 * i + 4]
        w, n_in = ws.weights[i], w_ih.shape[1]
        if cell == "lstm":
            bias = b_ih + b_hh
            for ours, theirs in _gate_rows(cell, h):
                w[ours, :n_in], w[ours, width:], w[ours, one] = w_ih[theirs], w_hh[theirs], bias[theirs]
        else:
            w[: 3 * h, :n_in] = w_ih
            w[: 2 * h, width:], w[3 * h :, width:] = w_hh[: 2 * h], w_hh[2 * h :]
            w[: 2 * h, one] = b_ih[: 2 * h] + b_hh[: 2 * h]
            w[2 * h : 3 * h, one], w[3 * h :, one] = b_ih[2 * h :], b_hh[2 * h :]


def _param_grads(cell: str, d_weights: torch.Tensor, shapes: list[torch.Size], width: int) -> list[torch.Tensor]:
    """Gradients of torch's own parameters from those of the stacked matrices."""
    grads = []
    h, one = d_weights.shape[1] // 4, width - 1
    for i in range(d_weights.shape[0]):
        n_in, dw = shapes[4 * i][1], d_weights[i]
        if cell == "lstm":
            d_ih, d_hh, db = dw.new_empty(4 * h, n_in), dw.new_empty(4 * h, h), dw.new_empty(4 * h)
            for ours, theirs in _gate_rows(cell, h):
                d_ih[theirs], d_hh[theirs], db[theirs] = dw[ours, :n_in], dw[ours, width:], dw[ours, one]
            grads += [d_ih, d_hh, db, db.clone()]
        else:
            db = dw[:, one]
            d_hh = torch.cat([dw[: 2 * h, width:], dw[3 * h :, width:]])
            grads += [
                dw[: 3 * h, :n_in].contiguous(),
                d_hh,
                db[: 3 * h].contiguous(),
                torch.cat([db[: 2 * h], db[3 * h :]]),
            ]
    return grads


class _Stack(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cell: str, x: torch.Tensor, dropout: float, *params: torch.Tensor) -> torch.Tensor:
        n_layers, (batch, steps, n_in), h = len(params) // 4, x.shape, params[1].shape[1]
        masked = dropout > 0 and n_layers > 1
        ws = _acquire((cell, n_layers, steps, batch, n_in, h, masked, x.dtype, x.device))
        _stack_weights(ws, cell, list(params))
        ws.z[0, :n_in, :steps] = x.permute(2, 1, 0)
        if masked:
            seed = int(torch.randint(0, 2**62, ()).item())  # torch's seed fixes NumPy's faster generator
            draws = np.random.Generator(np.random.PCG64(seed)).random(
                (ws.waves, n_layers - 1, h, batch), dtype=np.float32
            )
            ws.masks[:, :-1] = torch.from_numpy(draws).ge_(dropout).mul_(1 / (1 - dropout))
        if cell == "lstm":
            for w, z_in, act, out, feed, sig, i, f, o, g, c_prev, c, tanh_c in ws.steps_fwd:
                torch.bmm(w[0], z_in, out=act)
                sig.sigmoid_()
                g.tanh_()
                torch.mul(f, c_prev, out=c)
                c.addcmul_(i, g)
                torch.tanh(c, out=tanh_c)
                torch.mul(o, tanh_c, out=out)
                if feed is not None:
                    torch.mul(feed[0], feed[2], out=feed[1]) if masked else feed[1].copy_(feed[0])
        else:
            for w, z_in, act, out, feed, rz, r, zg, n, nh, h_prev, diff in ws.steps_fwd:
                torch.bmm(w[0], z_in, out=act)
                rz.sigmoid_()
                n.addcmul_(r, nh).tanh_()
                torch.sub(h_prev, n, out=diff)
                torch.addcmul(n, zg, diff, out=out)
                if feed is not None:
                    torch.mul(feed[0], feed[2], out=feed[1]) if masked else feed[1].copy_(feed[0])
        ctx.ws, ctx.generation, ctx.cell = ws, ws.generation, cell
        ctx.sizes, ctx.shapes = (steps, n_in), [p.shape for p in params]
        return ws.output.t().clone(memory_format=torch.contiguous_format)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        ws, cell, (steps, n_in) = ctx.ws, ctx.cell, ctx.sizes
        if ws.generation != ctx.generation:
            raise RuntimeError("stockrnn's recurrent stack supports one backward pass per forward pass")
        ws.weights_t.copy_(ws.weights.transpose(1, 2))
        ws.grad_output.copy_(grad_out.t())
        ws.d_cell.zero_()
        masked = ws.masks is not None
        for dh_self, dh_above, mask, dp, d0, d1, d2, d3, slope, d_cell, wt, dz, dz_h, fwd in reversed(ws.steps_bwd):
            # The hidden state made at this wave feeds the layer's next step and the layer above.
            dh = torch.addcmul(dh_self, mask, dh_above) if masked else dh_self + dh_above
            if cell == "lstm":
                sig, i, f, o, g, c_prev, tanh_c = fwd[5], *fwd[6:10], fwd[10], fwd[12]
                u = dh * o
                dc = d_cell + u
                dc.addcmul_(u * tanh_c, tanh_c, value=-1)  # d cell = carried + dh o (1 - tanh(c)^2)
                torch.mul(dc, g, out=d0)
                torch.mul(dc, c_prev, out=d1)
                torch.mul(dh, tanh_c, out=d2)
                torch.mul(dc, i, out=d3)
                torch.mul(dc, f, out=d_cell)
                sig_slope, g_slope = slope[1], slope[2]
                torch.addcmul(sig, sig, sig, value=-1, out=sig_slope)  # sigmoid' = s (1 - s)
                torch.addcmul(_ONE, g, g, value=-1, out=g_slope)  # tanh' = 1 - t^2
                dp.mul_(slope[0])
                torch.bmm(wt, dp, out=dz)
            else:  # d0..d3: r, z, n and the hidden part of n
                rz, r, zg, n, nh, diff = fwd[5], *fwd[6:10], fwd[11]
                torch.mul(dh, diff, out=d1)
                torch.addcmul(dh, dh, zg, value=-1, out=d2)  # dh (1 - z)
                d2.mul_(torch.addcmul(_ONE, n, n, value=-1))  # d of n's pre-activation
                torch.mul(d2, r, out=d3)
                torch.mul(d2, nh, out=d0)
                torch.addcmul(rz, rz, rz, value=-1, out=slope[1])
                slope[3].mul_(slope[1])
                torch.bmm(wt, dp, out=dz)
                dz_h.addcmul_(dh, zg)  # h' = (1 - z) n + z h_prev
        # Every wave's weight gradient in one multiply over (layers, rows, waves x batch) matrices.
        n_layers, waves, batch = ws.weights.shape[0], ws.waves, ws.z.shape[-1]
        d_flat = ws.d_pre.view(n_layers, -1, waves * batch)
        z_flat = ws.z[:, :, :waves].flatten(2)  # a view: (layers, rows, waves x batch)
        d_weights = torch.bmm(z_flat, d_flat.transpose(1, 2)).transpose(1, 2)  # this way round is faster
        grad_x = ws.dz[:steps, 0, :n_in].permute(2, 0, 1).clone() if ctx.needs_input_grad[1] else None
        _release(ws)
        return (None, grad_x, None, *_param_grads(cell, d_weights, ctx.shapes, ws.width))


_ONE = torch.ones(())
