"""The latency model (tinygrad_rnn/nn/latency_model.py) beside the earlier H200 run, per step.

For each config of the small-step table: the measured ms of our default path and cuDNN (the earlier
run, float32, forward + backward, TF32 off), their microseconds per step (ms / T / 2), and the
model's step for each design with its terms. No GPU needed: it prints the model, not a measurement.

    python bench/latency_table.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (layer, B, I, H, T): (ours ms, cuDNN ms), the earlier H200 run (default path)
MEASURED = {("lstm", 32, 64, 128, 50): (3.14, 1.49), ("lstm", 64, 256, 256, 100): (3.87, 5.37),
            ("lstm", 64, 512, 512, 100): (7.04, 5.83), ("lstm", 256, 1024, 1024, 100): (32.5, 31.7),
            ("lstm", 32, 128, 128, 1000): (12.6, 5.33), ("lstm", 1, 256, 256, 500): (11.1, 14.5),
            ("lstm", 128, 2048, 2048, 50): (30.0, 31.5), ("gru", 64, 512, 512, 100): (6.27, 5.37),
            ("gru", 32, 128, 128, 1000): (12.2, 3.73), ("rnn", 64, 512, 512, 100): (2.42, 4.03),
            ("rnn", 32, 128, 128, 1000): (9.61, 2.01)}
CELLS = {"lstm": "lstm", "gru": "gru", "rnn": "rnn_tanh"}
H200 = (132, 227 * 1024)


def main():
    from bench.common import table
    from tinygrad_rnn.nn import cluster_kernels as CK
    from tinygrad_rnn.nn import fused
    from tinygrad_rnn.nn import latency_model as LM
    rows, terms = [], []
    for (layer, B, I, H, T), (ours, cudnn) in MEASURED.items():
        cell = fused.CELLS[CELLS[layer]]
        plans = {"cluster": CK.cluster_plans(cell, B, H, 4, *H200), "persistent": fused.persistent_plans(cell, B, H, 4, *H200),
                 "elementwise": None}
        step = {d: LM.step_us(d, cell.gates, B, H, 4, plans[d]) for d in LM.DESIGNS}
        total = {d: LM.pass_ms(d, cell.gates, B, I, H, T, 4, plans[d]) for d in LM.DESIGNS}
        rows.append([layer.upper(), f"{B},{I},{H},{T}", f"{ours:.2f}", f"{cudnn:.2f}", f"{ours / T / 2 * 1e3:.1f}",
                     f"{cudnn / T / 2 * 1e3:.1f}"] +
                    [f"{step[d]:.2f}" if step[d] is not None else "-" for d in LM.DESIGNS] +
                    [f"{total[d]:.1f}" if total[d] is not None else "-" for d in LM.DESIGNS])
        for design in ("persistent", "cluster"):
            if plans[design] is not None:
                f = LM.step_terms(design, plans[design][0], H, 4)
                b = LM.step_terms(design, plans[design][1], cell.gates * H, 4)
                terms.append([layer.upper(), f"{B},{I},{H},{T}", design, f"{plans[design][0].blocks}"] +
                             [f"{(f[k] + b[k]) / 2:.2f}" for k in f] + [f"{sum(f.values()) / 2 + sum(b.values()) / 2:.2f}"])
    print("## Measured beside the model: microseconds per step, model milliseconds per pass\n")
    print(table(["layer", "B,I,H,T", "ours ms", "cuDNN ms", "ours us/step", "cuDNN us/step"] +
                [f"model {d} us/step" for d in LM.DESIGNS] + [f"model {d} ms" for d in LM.DESIGNS], rows))
    print("\n## The model's step, term by term (us, forward and backward averaged)\n")
    print(table(["layer", "B,I,H,T", "design", "blocks", "barrier", "operand", "product", "pointwise", "step"], terms))
    print("\n## Figures\n")
    print(table(["figure", "value", "unit", "source"],
                [[name, f"{f.value:g}", f.unit, f.source] for name, f in LM.H200.items()]))


if __name__ == "__main__":
    main()
