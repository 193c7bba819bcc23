"""The fused recurrent stack (hand-written backward pass) against torch's own nn.LSTM / nn.GRU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stockrnn import recurrent
from stockrnn.models import RecurrentNet
from stockrnn.recurrent import stack_forward
from stockrnn.windows import WindowDataset

SHAPES = [  # (inputs, units, layers, steps, batch)
    (1, 50, 4, 60, 32),  # the reference recipe
    (7, 32, 1, 10, 5),  # the defaults
    (40, 8, 3, 5, 3),  # more inputs than units
    (2, 6, 2, 1, 1),  # one step, one series
    (12, 4, 1, 3, 2),  # one layer with more inputs than units
    (7, 64, 1, 20, 16),  # the global network: one layer, fewer inputs than units
]


def reference(net: RecurrentNet, x: torch.Tensor, masks: list[torch.Tensor] | None = None) -> torch.Tensor:
    """torch's modules layer by layer, with optional dropout masks (batch, steps, units) between layers."""
    h = x
    for i, rnn in enumerate(net.recurrent):
        h, _ = rnn(h)
        if masks is not None and i < len(net.recurrent) - 1:
            h = h * masks[i]
    return h[:, -1]


def random_net(cell: str, n_in: int, units: int, layers: int, scale: float = 0.4) -> RecurrentNet:
    """Random weights, larger than the initialisation so that every gate saturates somewhere.
    With `scale` 0, the network's own (Keras) initialisation."""
    net = RecurrentNet(cell, n_in, units, layers, 0.0)
    if scale:
        with torch.no_grad():
            for p in net.parameters():
                p.normal_(0, scale)
    return net


def assert_close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> None:
    """Equal to 1e-5 of the tensor's scale: float32 sums over thousands of terms in another order
    differ in their last bits, so the tolerance is relative to the largest element, not elementwise."""
    a, b = a.detach(), b.detach()
    scale = max(1.0, float(b.abs().max()))
    assert float((a - b).abs().max()) <= tol * scale


def grads(out: torch.Tensor, inputs: list[torch.Tensor], weight: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(out, inputs, weight))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_torch_outputs_and_gradients(cell, shape, dtype):
    """Float32 to 1e-5 of scale with the initialised network; float64 to 1e-10 with saturating
    random weights, a bar that only the same arithmetic reaches. (Random weights that large make
    a 60-step, 4-layer stack chaotic: float32 rounding alone then moves gradients by 1e-4.)"""
    n_in, units, layers, steps, batch = shape
    torch.manual_seed(1)
    net = random_net(cell, n_in, units, layers, scale=0.0 if dtype == torch.float32 else 0.4).to(dtype)
    params = [p for rnn in net.recurrent for p in rnn.parameters()]
    x = torch.randn(batch, steps, n_in, requires_grad=True, dtype=dtype)
    weight = torch.randn(batch, units, dtype=dtype)
    ours = stack_forward(cell, x, net.recurrent)
    theirs = reference(net, x)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert_close(ours, theirs, tol)
    for a, b in zip(grads(ours, [x, *params], weight), grads(theirs, [x, *params], weight), strict=True):
        assert_close(a, b, tol)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_dropout_masks_match_torch_with_the_same_masks(cell):
    """Read back the masks the stack drew, apply them between torch's layers: same outputs and
    gradients; the masks zero about p of the elements and scale the rest by 1 / (1 - p)."""
    n_in, units, layers, steps, batch, p = 1, 16, 3, 20, 64, 0.3
    torch.manual_seed(2)
    net = random_net(cell, n_in, units, layers)
    params = [q for rnn in net.recurrent for q in rnn.parameters()]
    x = torch.randn(batch, steps, n_in)
    ours = stack_forward(cell, x, net.recurrent, p)
    weight = torch.randn(batch, units)
    our_grads = grads(ours, params, weight)  # the backward pass returns the workspace to the pool
    key = (cell, layers, steps, batch, n_in, units, True, x.dtype, x.device)
    masks = recurrent._POOL[key][-1].masks  # (waves, layers, units, batch); layer l at step t is wave t + l
    per_layer = [torch.stack([masks[t + i, i].T for t in range(steps)], dim=1) for i in range(layers - 1)]
    kept = torch.cat([m.flatten() for m in per_layer])
    assert abs(float((kept == 0).float().mean()) - p) < 0.02
    torch.testing.assert_close(kept[kept != 0], torch.full_like(kept[kept != 0], 1 / (1 - p)))
    theirs = reference(net, x, per_layer)
    assert_close(ours, theirs)
    for a, b in zip(our_grads, grads(theirs, params, weight), strict=True):
        assert_close(a, b)


def test_hand_written_backward_passes_gradcheck_with_dropout():
    """Numerical against analytic gradients in double precision, the dropout masks fixed by the seed."""
    torch.manual_seed(3)
    net = random_net("lstm", 2, 3, 2).double()
    x = torch.randn(2, 4, 2, dtype=torch.double, requires_grad=True)

    def fn(x, *params):
        torch.manual_seed(0)  # the same masks at every call
        return recurrent._Stack.apply("lstm", x, 0.4, *params)

    assert torch.autograd.gradcheck(fn, (x, *net.recurrent.parameters()), eps=1e-6, atol=1e-5)


def test_workspaces_are_not_shared_between_live_graphs():
    """Two forward passes before either backward (an ensemble, say): each keeps its own buffers."""
    torch.manual_seed(4)
    net = random_net("gru", 1, 8, 2)
    xs = [torch.randn(4, 6, 1) for _ in range(2)]
    outs = [stack_forward("gru", x, net.recurrent) for x in xs]
    for x, out in zip(xs, outs, strict=True):
        theirs = reference(net, x)
        assert_close(out, theirs)
        ours_g = grads(out, list(net.parameters())[:8], torch.ones_like(out))
        theirs_g = grads(theirs, list(net.parameters())[:8], torch.ones_like(out))
        for a, b in zip(ours_g, theirs_g, strict=True):
            assert_close(a, b)


def test_training_forward_equals_inference_forward_without_dropout():
    """The network uses the fused stack when gradients are recorded and torch's modules otherwise."""
    torch.manual_seed(5)
    net = RecurrentNet("lstm", 3, 12, 2, 0.0)
    x = torch.randn(7, 9, 3)
    with torch.no_grad():
        inference = net(x)
    training = net(x)
    assert "_StackBackward" in str(training.grad_fn.next_functions)  # the fused stack, not nn.LSTM
    assert_close(training.detach(), inference)


def test_panel_windows_never_cross_series():
    """Many tickers in one dataset: each window equals the same window of its own series."""
    rng = np.random.default_rng(0)
    series = [rng.standard_normal((n, 2)).astype(np.float32) for n in (30, 12, 45)]
    window = 5
    parts = [(s, s[np.arange(window - 1, len(s) - 1) + 1, :1], np.arange(window - 1, len(s) - 1)) for s in series]
    panel = WindowDataset.panel(parts, window)
    assert len(panel) == sum(len(p[2]) for p in parts)
    x, y = panel.batch(torch.arange(len(panel)))
    row = 0
    for s, targets, origins in parts:
        for j, o in enumerate(origins):
            np.testing.assert_array_equal(x[row].numpy(), s[o - window + 1 : o + 1])
            np.testing.assert_array_equal(y[row].numpy(), targets[j])
            row += 1


def test_reused_workspace_refuses_a_stale_second_backward():
    """retain_graph, then another forward of the same shape reuses the buffers: the stale graph
    must fail loudly rather than return gradients of the wrong batch."""
    net = random_net("lstm", 1, 4, 2)
    first = stack_forward("lstm", torch.randn(3, 5, 1), net.recurrent).sum()
    first.backward(retain_graph=True)
    stack_forward("lstm", torch.randn(3, 5, 1), net.recurrent).sum().backward()
    with pytest.raises(RuntimeError, match="one backward pass per forward pass"):
        first.backward()


def test_workspace_pool_stays_bounded():
    net = random_net("gru", 1, 4, 2)
    for batch in range(1, 10):
        stack_forward("gru", torch.randn(batch, 5, 1), net.recurrent).sum().backward()
    assert len(recurrent._POOL) <= recurrent._POOL_SHAPES


@pytest.mark.parametrize(("n_in", "units", "layers", "columns"), [(7, 64, 1, 72), (12, 4, 1, 17), (7, 64, 2, 129)])
def test_a_single_layer_multiplies_only_its_own_inputs(n_in, units, layers, columns):
    """A one-layer stack's matrix holds its inputs, the bias and the recurrent weights (72 columns
    for 7 inputs and 64 units, not 129): the padding to the units' width is only for stacks, where
    one batched multiply serves layers whose inputs differ in width."""
    net = random_net("lstm", n_in, units, layers)
    stack_forward("lstm", torch.randn(3, 4, n_in), net.recurrent).sum().backward()
    key = ("lstm", layers, 4, 3, n_in, units, False, torch.float32, torch.device("cpu"))
    assert recurrent._POOL[key][-1].weights.shape == (layers, 4 * units, columns)
