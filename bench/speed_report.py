"""speed.md from speed.json: the tables and the words around them (bench/speed.py writes both)."""

from __future__ import annotations

CELLS = ("lstm", "gru")


def render(results: dict) -> str:
    lines = ["# Speed", "", f"Machine: {results.get('machine', '?')}  "]
    lines += [f"Command: `{results.get('command', '')}` ({results.get('date', '')})", ""]
    training = results.get("training")
    if training:
        lines += ["## Training the reference configuration", ""]
        lines += [
            "4 layers of 50 units, window 60, batch 32, 2,709 IBM windows (2006-2016); "
            f"{training['threads']} threads, median of {training['rounds']} runs of {training['epochs_per_run']} "
            "epochs each (first epoch of each run excluded as warm-up), every run a fresh process.",
            "",
        ]
        keras_on = "keras" in training
        head = "| cell | s/epoch | windows/s | 50 epochs | GFLOP/s | peak MB | nn.LSTM/GRU s/epoch |"
        rule = "|---|---:|---:|---:|---:|---:|---:|"
        if keras_on:
            head += " Keras s/epoch | Keras peak MB | speed-up (median, min-max) |"
            rule += "---:|---:|---|"
        lines += [head, rule]
        for cell, e in training["cells"].items():
            row = (
                f"| {cell.upper()} | {e['seconds_per_epoch']:.2f} | {e['windows_per_second']:.0f} | "
                f"{e['seconds_50_epochs']:.0f} s | {e['gflops']:.1f} | {e['peak_mb']:.0f} | "
                f"{e['torch_nn_seconds_per_epoch']:.2f} |"
            )
            if keras_on:
                row += (
                    f" {e['keras_seconds_per_epoch']:.2f} | {e['keras_peak_mb']:.0f} | "
                    f"**{e['ratio_median']:.2f}x** ({e['ratio_min']:.2f}-{e['ratio_max']:.2f}) |"
                )
            lines.append(row)
        if keras_on:
            lines += [
                "",
                f"Keras side: {training['keras']}, same windows, same thread count, alternating with stockrnn.",
            ]
            lines += ["", "Per round, stockrnn vs Keras s/epoch (ratio):", ""]
            for cell, e in training["cells"].items():
                rounds = "; ".join(
                    f"{r['stockrnn_s']:.2f} vs {r['keras_s']:.2f} ({r['ratio']:.2f}x)" for r in e["runs"]
                )
                lines.append(f"- {cell.upper()}: {rounds}")
            met = all(e["ratio_median"] >= 3 for e in training["cells"].values())
            lines += ["", f"Floor, at least 3x Keras for both cells (median ratio): **{'met' if met else 'missed'}**."]
        lines += [
            "",
            "nn.LSTM/GRU: the same training through torch's own modules (autograd through every time"
            " step), as the network ran before the fused stack, measured in the same rounds.",
        ]
        if any("one_thread_seconds_per_epoch" in e for e in training["cells"].values()):
            one = ", ".join(
                f"{c.upper()} {e['one_thread_seconds_per_epoch']:.2f}" for c, e in training["cells"].items()
            )
            lines.append(f"stockrnn with one thread instead of {training['threads']}, s/epoch: {one}.")
        lines += [
            "",
            "Achieved GFLOP/s counts the multiply-adds of the recurrent layers, forward and backward "
            f"({training['cells']['lstm']['gflop_per_epoch']:.1f} GFLOP per LSTM epoch, "
            f"{training['cells']['gru']['gflop_per_epoch']:.1f} per GRU epoch). This machine's matrix multiply "
            "in torch, GFLOP/s:",
            "",
        ]
        lines += ["| shape | 1 thread | " + f"{training['threads']} threads |", "|---|---:|---:|"]
        for name, rates in training["matmul_gflops"].items():
            values = list(rates.values())
            lines.append(f"| {name} | {values[0]:.0f} | {values[-1]:.0f} |")
        lines.append("")
    accuracy = results.get("accuracy")
    if accuracy:
        lines += [
            "## Accuracy: same recipe, same windows",
            "",
            f"Test RMSE of next-day High, IBM 2017 ({accuracy['test_days']} days), 50 epochs, seeds 0, 1, 2.",
            "",
            "| cell | stockrnn | mean | Keras | mean | stockrnn / Keras |",
            "|---|---|---:|---|---:|---:|",
        ]
        for cell, e in accuracy["cells"].items():
            ours_s = ", ".join(f"{v:.3f}" for v in e["stockrnn"])
            theirs = ", ".join(f"{v:.3f}" for v in e["keras"])
            lines.append(
                f"| {cell.upper()} | {ours_s} | {e['stockrnn_mean']:.3f} | {theirs} | {e['keras_mean']:.3f} "
                f"| {e['ratio']:.3f} |"
            )
        met = all(e["ratio"] <= 1.05 for e in accuracy["cells"].values())
        lines += [
            "",
            "Each run one process with one thread, two at a time. Floor, stockrnn's mean RMSE at most Keras's"
            f" mean + 5%: **{'met' if met else 'missed'}**. Command: `{accuracy.get('run_by', '')}`.",
            "",
        ]
    profiled = results.get("profile")
    if profiled:
        lines += [
            "## Where a training batch goes",
            "",
            "torch.profiler over 20 batches of the reference configuration (self time per batch, the"
            " profiler's own overhead included). `_Stack` and `_StackBackward` are the Python wave loops"
            " themselves; `aten::bmm` the matrix multiplies; the rest the element-wise gate arithmetic,"
            " dropout masks and the optimiser.",
            "",
        ]
        for cell, e in ((c, profiled[c]) for c in CELLS if c in profiled):
            lines += [
                f"{cell.upper()}: {e['ms_per_batch']:.1f} ms per batch",
                "",
                "| operation | ms/batch | calls/batch |",
            ]
            lines += ["|---|---:|---:|"]
            lines += [f"| `{t['name']}` | {t['ms_per_batch']:.2f} | {t['calls']:.0f} |" for t in e["top"]]
            lines.append("")
    defaults = results.get("defaults")
    if defaults:
        lines += [
            "## The defaults, end to end",
            "",
            f"`{defaults['command']}` (LSTM and GRU ensembles of 3, ridge, "
            f"persistence; load, train, forecast, score, write): **{defaults['seconds']:.1f} s**.",
            "",
        ]
    inference = results.get("inference")
    if inference:
        lines += [
            "## Forecasting",
            "",
            f"- One next-day forecast through the API (default LSTM ensemble, features, intervals): "
            f"{inference['api_next_day_ms']:.1f} ms",
            f"- Reference network forward pass, 1 series: {inference['reference_forward_1_ms']:.2f} ms; "
            f"500 series: {inference['reference_forward_500_ms']:.1f} ms",
            "",
        ]
    memory = results.get("memory")
    if memory:
        lines += [
            "## Memory",
            "",
            f"One epoch of batches (256) over 500 synthetic tickers x 5,000 days x 5 features, window 60: "
            f"{memory['windows']:,} windows, which materialised would take {memory['materialised_gb']:.2f} GB. "
            f"Peak resident memory of the whole process (Python, torch and the data): "
            f"**{memory['peak_mb']:.0f} MB**; the epoch took {memory['seconds']:.1f} s.",
            "",
        ]
    return "\n".join(lines)
