#!/usr/bin/env python3
"""Train, export and register the real models, and make the broken release fixtures.

    python scripts/train_models.py --out model_registry --fixtures fixtures/broken_models
    python scripts/train_models.py --stage DIR [--model NAME ...]   # DIR/<model>/<version> only

Every model is built by the same code from one entry of :data:`SPECS` (data set, label,
threshold, architecture of each version, broken fixtures, ``model.yaml``). Data: data sets that
scikit-learn ships (nothing is downloaded). The score is the probability of one class; a score at
or above the card's threshold is a "reject" (the decision the rejection-rate gate counts). The
network takes raw features: the training mean and standard deviation live inside it as frozen
parameters.

  risk-score   breast cancer data (569 rows, 30 features); score = P(malignant); threshold 0.5;
               200 reference rows; v1 hidden [16] seed 1, v2 hidden [20] seed 3
  digit-seven  8x8 handwritten digits (1797 rows, 64 pixel features, 0-16); score = P(digit is a
               7), flagged for review at >= 0.3; 400 reference rows; v1 hidden [32, 16] seed 1,
               v2 hidden [48, 16] seed 3

Deterministic: one CPU thread, fixed seeds, weights initialised from NumPy, full-batch Adam, and
each model built with Paddle's name counters reset (the names in ``model.json`` do not depend on
which other models the run builds: ``--model`` alone gives the same files). A rerun on the same
machine writes the same bytes; on another CPU the weights differ in their last bits, so versions
already in the registry are compared as models (scores within 1e-4, card figures at their
printed precision: ``export_differences``), never overwritten.

Broken candidates (written to the fixtures registry; they share v1's reference rows), per model
as its spec lists them:
  bad-shift      v1 with its output layer scaled and biased: score distribution moves a lot
  bad-reject     v1 with a biased output layer: ~15 points more rejections on the reference
  bad-slow       v1 plus a wide tanh stack whose result is multiplied by 0: same scores, slow
  bad-nan        v1 plus 0 * sqrt(feature - c): NaN where the feature is below c (~25 % rows)
  bad-signature  v1 without its last input column: takes n-1 features, card says n
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("GLOG_minloglevel", "2")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from paddle_canary.registry import (Registry, RegistryError, check_model_name,  # noqa: E402
                                    score_histogram)
from paddle_canary.registry.card import REQUIRED_FILES  # noqa: E402
from paddle_canary.settings import REPO  # noqa: E402
from paddle_canary.registry.export_check import (  # noqa: E402
    create_cpu_predictor, export_differences, run_predictor)

SPLIT_SEED = 0
EPOCHS = 300
LEARNING_RATE = 0.01
WEIGHT_DECAY = 1e-4
SLOW_WIDTH = 1024     # one 1024x1024 float32 matrix = 4 MiB of parameters, reused
SLOW_REPEATS = 224    # times the wide layer is applied per row
NAN_SHARE = 0.25      # share of reference rows bad-nan answers NaN for
EXTRA_REJECT = 0.15   # extra share of reference rows bad-reject rejects
BROKEN_KINDS = ("bad-shift", "bad-reject", "bad-slow", "bad-nan", "bad-signature")


@dataclass(frozen=True)
class ModelSpec:
    """Everything that differs between two models; the code that builds them is shared."""

    name: str
    loader: str                 # a sklearn.datasets function (bundled data, no download)
    positive: int               # the sklearn target value whose probability is the score
    label: str                  # card training.label
    output_meaning: str         # card output.meaning
    test_rows: int              # the held-out split; also every version's reference sample
    threshold: float            # card decision_threshold: score >= threshold = reject
    net: str                    # word in Paddle parameter names: <net>_mlp_0.w_0, slow_<net>_0...
    title: str                  # version descriptions: "<title>, hidden [16], seed 1 (baseline)"
    more_rejects: str           # bad-reject's description ends "...; <more_rejects>"
    versions: dict              # real versions: name -> {"hidden": [...], "seed": n}
    broken: tuple               # which of BROKEN_KINDS to build
    model_yaml: dict            # <model>/model.yaml: description, plan, gates
    std_floor: float = 0.0      # standardise with max(std + 1e-6, floor)
    standardisation: str = "inside the network (frozen train mean/std)"


RISK_SCORE = ModelSpec(
    name="risk-score",
    loader="load_breast_cancer",
    positive=0,  # 0 = malignant in sklearn; risk = malignant
    label="1 = malignant (sklearn target 0)",
    output_meaning="probability of the risk (malignant) class, in [0, 1]",
    test_rows=200,
    threshold=0.5,
    net="risk",
    title="Risk MLP",
    more_rejects="rejects many more applicants",
    versions={"v1": {"hidden": [16], "seed": 1}, "v2": {"hidden": [20], "seed": 3}},
    broken=BROKEN_KINDS,
    model_yaml={
        "model": "risk-score",
        "description": ("Risk score for a review decision: probability of the positive "
                        "(malignant) class of scikit-learn's breast cancer data; score >= "
                        "threshold = reject."),
        "plan": {"steps": [5, 15, 25, 35, 45, 55, 65, 75, 85, 95, 100], "step_interval_s": 3600,
                 "approvals_before": [50, 100], "teardown_delay_s": 86400},
        "gates": {
            "score_distribution": {"max_mean_rel_diff": 0.05, "max_psi": 0.1},
            "rejection_rate": {"max_abs_diff_pp": 1.0},
            "latency_p95": {"max_ms": 80, "max_ratio": 1.2},
            "errors": {"max_abs_diff_pp": 0.5},
            "min_samples": 200,
        },
    },
)

DIGIT_SEVEN = ModelSpec(
    name="digit-seven",
    loader="load_digits",
    positive=7,
    label="1 = the digit is a 7 (sklearn target 7)",
    output_meaning="probability that the 8x8 image is a handwritten 7, in [0, 1]",
    test_rows=400,
    threshold=0.3,
    net="digit",
    title="Digit MLP",
    more_rejects="flags many more images for review",
    versions={"v1": {"hidden": [32, 16], "seed": 1}, "v2": {"hidden": [48, 16], "seed": 3}},
    broken=("bad-shift", "bad-reject"),
    std_floor=1.0,  # pixels that are (almost) always 0 would otherwise be divided by ~1e-6
    standardisation="inside the network (frozen train mean/std, std floored at 1)",
    model_yaml={
        "model": "digit-seven",
        "description": ("Review flag for handwritten digits: probability that an 8x8 image of "
                        "scikit-learn's digits data is a 7; score >= threshold (0.3) = flag for "
                        "review, counted as a reject."),
        "plan": {"steps": [10, 25, 50, 75, 100], "step_interval_s": 1800,
                 "approvals_before": [100], "teardown_delay_s": 43200},
        "gates": {
            "score_distribution": {"max_mean_rel_diff": 0.05, "max_psi": 0.1},
            "rejection_rate": {"max_abs_diff_pp": 1.0},
            "latency_p95": {"max_ms": 50, "max_ratio": 1.2},
            "errors": {"max_abs_diff_pp": 0.5},
            "min_samples": 200,
        },
    },
)

# In build order. Each model is built with fresh Paddle name counters, so the order changes no
# export; risk-score stays first anyway (its committed files predate this table).
SPECS = {spec.name: spec for spec in (RISK_SCORE, DIGIT_SEVEN)}


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def load_data(spec: ModelSpec) -> dict:
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    data = getattr(sklearn.datasets, spec.loader)()
    x = data.data.astype(np.float32)
    y = (data.target == spec.positive).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=spec.test_rows, stratify=y, random_state=SPLIT_SEED)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test,
            "features": [slug(f) for f in data.feature_names]}


# ---- networks ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def build_layers():
    """The paddle.nn classes (defined once paddle is imported)."""
    import paddle
    import paddle.nn.functional as F
    from paddle import nn

    def frozen(layer, values):
        param = layer.create_parameter(
            list(values.shape), dtype="float32",
            default_initializer=nn.initializer.Assign(np.asarray(values, dtype=np.float32)))
        param.stop_gradient = True
        return param

    class ScoreMLP(nn.Layer):
        """Standardise with frozen training statistics, ReLU hidden layers, one logit."""

        def __init__(self, mean, std, hidden, rng, net):
            super().__init__(name_scope=f"{net}_mlp")
            self.net = net
            self.mean = frozen(self, mean)
            self.std = frozen(self, std)
            sizes = [len(mean), *hidden, 1]
            layers = []
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
                w = rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), (fan_in, fan_out))
                layers.append(nn.Linear(
                    fan_in, fan_out,
                    weight_attr=paddle.ParamAttr(initializer=nn.initializer.Assign(
                        w.astype(np.float32))),
                    bias_attr=paddle.ParamAttr(initializer=nn.initializer.Constant(0.0))))
            self.layers = nn.LayerList(layers)

        def logit(self, x):
            h = (x - self.mean) / self.std
            for layer in self.layers[:-1]:
                h = F.relu(layer(h))
            return self.layers[-1](h)

        def forward(self, x):
            return F.sigmoid(self.logit(x))

    class SlowScore(nn.Layer):
        """The base network plus an expensive branch that contributes exactly 0."""

        def __init__(self, base, width, repeats, rng):
            super().__init__(name_scope=f"slow_{base.net}")
            self.base = base
            n = base.mean.shape[0]
            self.proj = frozen(self, rng.normal(0, 1 / np.sqrt(n), (n, width)))
            self.wide = frozen(self, rng.normal(0, 1 / np.sqrt(width), (width, width)))
            self.gate = frozen(self, np.zeros([1]))
            self.repeats = repeats

        def forward(self, x):
            h = paddle.tanh(paddle.matmul((x - self.base.mean) / self.base.std, self.proj))
            for _ in range(self.repeats):
                h = paddle.tanh(paddle.matmul(h, self.wide))
            extra = self.gate * paddle.mean(h, axis=1, keepdim=True)
            return F.sigmoid(self.base.logit(x) + extra)

    class NanScore(nn.Layer):
        """The base network plus 0 * sqrt(x[:, k] - c): NaN wherever feature k is below c."""

        def __init__(self, base, feature, cutoff):
            super().__init__(name_scope=f"nan_{base.net}")
            self.base = base
            self.feature = feature
            self.cutoff = frozen(self, np.array([cutoff]))
            self.gate = frozen(self, np.zeros([1]))

        def forward(self, x):
            column = x[:, self.feature:self.feature + 1]
            extra = self.gate * paddle.sqrt(column - self.cutoff)
            return F.sigmoid(self.base.logit(x) + extra)

    return ScoreMLP, SlowScore, NanScore


def train(spec: ModelSpec, data: dict, hidden: list[int], seed: int):
    import paddle
    import paddle.nn.functional as F

    ScoreMLP, _, _ = build_layers()
    paddle.seed(seed)
    rng = np.random.default_rng(seed)
    mean = data["x_train"].mean(axis=0)
    std = data["x_train"].std(axis=0) + 1e-6
    if spec.std_floor:
        std = np.maximum(std, np.float32(spec.std_floor))
    net = ScoreMLP(mean, std, hidden, rng, spec.net)
    opt = paddle.optimizer.Adam(learning_rate=LEARNING_RATE, parameters=net.parameters(),
                                weight_decay=WEIGHT_DECAY)
    x = paddle.to_tensor(data["x_train"])
    y = paddle.to_tensor(data["y_train"].reshape(-1, 1))
    for _ in range(EPOCHS):
        loss = F.binary_cross_entropy_with_logits(net.logit(x), y)
        loss.backward()
        opt.step()
        opt.clear_grad()
    net.eval()
    return net, float(loss)


def logits_of(net, x: np.ndarray) -> np.ndarray:
    import paddle

    with paddle.no_grad():
        return net.logit(paddle.to_tensor(x)).numpy().reshape(-1).astype(np.float64)


def copy_net(net, hidden: list[int]):
    ScoreMLP, _, _ = build_layers()
    clone = ScoreMLP(net.mean.numpy(), net.std.numpy(), hidden, np.random.default_rng(0), net.net)
    clone.set_state_dict(net.state_dict())
    clone.eval()
    return clone


def logit_of_probability(p: float) -> float:
    """The logit at which the sigmoid reaches ``p`` (0.0 for 0.5, exactly)."""
    return float(np.log(p / (1.0 - p)))


# ---- export, measure, card --------------------------------------------------------------------

def export(layer, out_dir: Path, n_inputs: int) -> None:
    import paddle
    from paddle.static import InputSpec

    out_dir.mkdir(parents=True, exist_ok=True)
    layer.eval()
    paddle.jit.save(layer, str(out_dir / "model"),
                    input_spec=[InputSpec([None, n_inputs], "float32", "x")])
    for leftover in out_dir.iterdir():
        if leftover.name not in ("model.json", "model.pdiparams"):
            leftover.unlink()


def score_export(out_dir: Path, rows: np.ndarray) -> np.ndarray:
    predictor = create_cpu_predictor(out_dir / "model.json", out_dir / "model.pdiparams")
    return run_predictor(predictor, rows).reshape(-1).astype(np.float64)


def ms_per_call(out_dir: Path, row: np.ndarray, budget_s: float = 1.0) -> float:
    """Median milliseconds of one single-row Paddle Inference call (CPU, 1 thread)."""
    predictor = create_cpu_predictor(out_dir / "model.json", out_dir / "model.pdiparams")
    row = row.reshape(1, -1)
    run_predictor(predictor, row)
    times = []
    deadline = time.perf_counter() + budget_s
    while len(times) < 5 or (time.perf_counter() < deadline and len(times) < 2000):
        start = time.perf_counter()
        run_predictor(predictor, row)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def auc(y: np.ndarray, scores: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    finite = np.isfinite(scores)
    if finite.sum() < 2 or len(set(y[finite])) < 2:
        return None
    return round(float(roc_auc_score(y[finite], scores[finite])), 6)


def write_card(spec: ModelSpec, out_dir: Path, version: str, data: dict, scores: np.ndarray,
               description: str, training: dict, extra_metrics: dict | None = None) -> None:
    y = data["y_test"]
    finite = np.isfinite(scores)
    decisions = scores[finite] >= spec.threshold
    metrics = {
        "auc": auc(y, scores),
        "accuracy": round(float((decisions == (y[finite] == 1)).mean()), 6),
        "test_rows": int(len(y)),
        "reference_mean_score": round(float(scores[finite].mean()), 6),
        "reference_reject_rate": round(float(decisions.mean()), 6),
    }
    metrics.update(extra_metrics or {})
    card = {
        "model": spec.name,
        "version": version,
        "description": description,
        "input": {"name": "x", "dtype": "float32", "features": data["features"]},
        "output": {"name": "score", "shape": [None, 1], "meaning": spec.output_meaning},
        "decision_threshold": spec.threshold,
        "training": training,
        "metrics": metrics,
        "reference": {"file": "reference.csv", "rows": int(len(scores)),
                      "source": "the held-out split (every row of it)",
                      "histogram": score_histogram(scores)},
    }
    (out_dir / "card.yaml").write_text(
        yaml.safe_dump(card, sort_keys=False, default_flow_style=None, width=100),
        encoding="utf-8")
    write_reference(out_dir / "reference.csv", data)


def write_reference(path: Path, data: dict) -> None:
    lines = [",".join(data["features"])]
    lines += [",".join(np.format_float_positional(v, unique=True, trim="-") for v in row)
              for row in data["x_test"]]  # shortest text that reads back as the same float32
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def training_info(spec: ModelSpec, data: dict, hidden, seed, loss) -> dict:
    return {
        "data_source": f"sklearn.datasets.{spec.loader}",
        "label": spec.label,
        "split": {"test_rows": spec.test_rows, "train_rows": int(len(data["y_train"])),
                  "stratified": True, "random_state": SPLIT_SEED},
        "architecture": {"hidden": list(hidden), "activation": "relu",
                         "standardisation": spec.standardisation},
        "optimizer": {"name": "adam", "learning_rate": LEARNING_RATE,
                      "weight_decay": WEIGHT_DECAY, "batch": "full"},
        "seed": seed, "epochs": EPOCHS, "final_train_loss": round(loss, 6),
        "script": "scripts/train_models.py",
    }


# ---- the versions -----------------------------------------------------------------------------

def build_model(spec: ModelSpec, stage: Path) -> dict[str, dict]:
    """Export every version of ``spec`` under ``stage/<version>/``; return figures per version.

    Runs with fresh Paddle name counters, so the names in ``model.json`` are the same
    whichever models were built before in this process.
    """
    import paddle

    paddle.set_device("cpu")
    with fresh_paddle_names():
        return _build_model(spec, stage)


@contextlib.contextmanager
def fresh_paddle_names():
    """Paddle's two process-wide name counters, reset for the duration: parameter names
    (``linear_3.w_0``, ``unique_name``) and the layer paths ``jit.save`` writes into every op
    (``/Linear_14/``, ``framework._name_struct``, a private root with no public reset). Both
    end up in ``model.json``, so without this a model's export would depend on the models
    built before it in the same process."""
    from paddle.base import framework
    from paddle.utils import unique_name

    saved = getattr(framework, "_name_struct", None)
    if saved is not None:
        framework._name_struct = framework.NameStruct()
    try:
        with unique_name.guard():
            yield
    finally:
        if saved is not None:
            framework._name_struct = saved


def _build_model(spec: ModelSpec, stage: Path) -> dict[str, dict]:
    data = load_data(spec)
    x_ref = data["x_test"]
    n = x_ref.shape[1]
    built: dict[str, dict] = {}

    nets = {}
    for version, vspec in spec.versions.items():
        net, loss = train(spec, data, vspec["hidden"], vspec["seed"])
        nets[version] = net
        out = stage / version
        export(net, out, n)
        scores = score_export(out, x_ref)
        desc = (f"{spec.title}, hidden {vspec['hidden']}, seed {vspec['seed']}"
                + (" (baseline)" if version == "v1" else " (a retrain of v1's recipe)"))
        write_card(spec, out, version, data, scores, desc,
                   training_info(spec, data, vspec["hidden"], vspec["seed"], loss))
        built[version] = {"scores": scores}

    base, base_spec = nets["v1"], spec.versions["v1"]
    base_info = training_info(spec, data, base_spec["hidden"], base_spec["seed"], 0.0)
    base_info.pop("final_train_loss")
    base_logits = logits_of(base, x_ref)
    ScoreMLP, SlowScore, NanScore = build_layers()

    def broken(version, layer, n_inputs, rows, description, how, extra=None):
        out = stage / version
        export(layer, out, n_inputs)
        scores = score_export(out, rows)
        info = dict(base_info, broken={"kind": version, "how": how, "base": "v1"})
        write_card(spec, out, version, data, scores, description, info, extra)
        built[version] = {"scores": scores, "n_inputs": n_inputs}

    for kind in spec.broken:  # BROKEN_KINDS order: the Paddle name counters follow it
        if kind not in BROKEN_KINDS:
            raise SystemExit(f"error: {spec.name}: unknown broken kind {kind!r}")
    wanted = [k for k in BROKEN_KINDS if k in spec.broken]

    if "bad-shift" in wanted:
        # Compress and lift the logits; decisions move little, the distribution a lot.
        shift_scale, shift_bias = 0.25, 0.6
        net = copy_net(base, base_spec["hidden"])
        out_layer = net.layers[-1]
        out_layer.weight.set_value(out_layer.weight.numpy() * shift_scale)
        out_layer.bias.set_value(out_layer.bias.numpy() * shift_scale + shift_bias)
        broken("bad-shift", net, n, x_ref,
               "BROKEN: v1 with its output layer scaled and biased; scores pile up mid-range",
               f"output layer weight*{shift_scale}, bias*{shift_scale}+{shift_bias}")

    if "bad-reject" in wanted:
        # Bias the logit so that EXTRA_REJECT more of the reference rows reach the threshold.
        cut = logit_of_probability(spec.threshold)
        ordered = np.sort(base_logits)[::-1]
        k = int(round(((base_logits >= cut).mean() + EXTRA_REJECT) * len(ordered)))
        reject_bias = float(cut - (ordered[k - 1] + ordered[k]) / 2)
        net = copy_net(base, base_spec["hidden"])
        out_layer = net.layers[-1]
        out_layer.bias.set_value(out_layer.bias.numpy() + np.float32(reject_bias))
        broken("bad-reject", net, n, x_ref,
               f"BROKEN: v1 with a biased output layer; {spec.more_rejects}",
               f"output layer bias + {reject_bias:.4f} (targets +{EXTRA_REJECT:.0%} rejections)")

    if "bad-slow" in wanted:
        # Same scores as v1, plus SLOW_REPEATS wide matmuls per row whose result is * 0.
        slow = SlowScore(copy_net(base, base_spec["hidden"]), SLOW_WIDTH, SLOW_REPEATS,
                         np.random.default_rng(7))
        broken("bad-slow", slow, n, x_ref,
               "BROKEN: v1 plus a large branch that adds nothing; far slower per call",
               f"{SLOW_REPEATS} x tanh(h @ W), W {SLOW_WIDTH}x{SLOW_WIDTH}, result multiplied "
               "by 0")

    if "bad-nan" in wanted:
        # NaN where one feature is below its NAN_SHARE quantile; the first reference row stays
        # finite (so a health check on it passes and only live traffic shows the NaNs).
        feature = next(j for j in range(n)
                       if x_ref[0, j] > np.quantile(x_ref[:, j], NAN_SHARE + 0.1))
        column = np.sort(x_ref[:, feature].astype(np.float64))
        n_nan = int(round(NAN_SHARE * len(column)))
        cutoff = float((column[n_nan - 1] + column[n_nan]) / 2)
        nan_net = NanScore(copy_net(base, base_spec["hidden"]), feature, cutoff)
        broken("bad-nan", nan_net, n, x_ref,
               "BROKEN: v1 plus 0*sqrt(feature - c); NaN scores where the feature is below c",
               f"0 * sqrt({data['features'][feature]} - {cutoff:.6g})",
               {"reference_non_finite": int(np.sum(x_ref[:, feature] < cutoff))})

    if "bad-signature" in wanted:
        # v1 minus its last input column; the card still lists n features.
        sig = ScoreMLP(base.mean.numpy()[:-1], base.std.numpy()[:-1], base_spec["hidden"],
                       np.random.default_rng(0), base.net)
        state = {k: v.numpy() for k, v in base.state_dict().items()}
        state["mean"], state["std"] = state["mean"][:-1], state["std"][:-1]
        state["layers.0.weight"] = state["layers.0.weight"][:-1]
        sig.set_state_dict(state)
        broken("bad-signature", sig, n - 1, x_ref[:, :-1],
               f"BROKEN: export takes {n - 1} features, the card lists {n}",
               "v1 with its last input column removed from the first layer")

    for version, info in built.items():
        n_inputs = info.get("n_inputs", n)
        info["ms"] = ms_per_call(stage / version, x_ref[0, :n_inputs],
                                 budget_s=0.5 if version != "bad-slow" else 2.0)
        info["y"] = data["y_test"]
    return built


# ---- writing into registries ------------------------------------------------------------------

def same_model(a: Path, b: Path) -> bool:
    """Both directories hold every export file and the same model (within float tolerance:
    training on another CPU does not give the same bytes; see ``export_differences``)."""
    return (all((a / n).is_file() and (b / n).is_file() for n in REQUIRED_FILES)
            and not export_differences(a, b))


def write_model_yaml(spec: ModelSpec, model_dir: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(spec.model_yaml, sort_keys=False, default_flow_style=None, width=100)
    path = model_dir / "model.yaml"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def publish_real(spec: ModelSpec, stage: Path, root: Path) -> list[str]:
    """Register the real versions into ``root`` (unchanged when identical); make v1 stable if
    none is."""
    check_model_name(spec.name)  # before the model directory is created
    write_model_yaml(spec, root / spec.name)
    registry = Registry(root)
    notes = []
    for version in spec.versions:
        target = root / spec.name / version
        if target.exists():
            differences = export_differences(target, stage / version)
            if differences:
                raise SystemExit(f"error: {target} exists and differs from this run's export "
                                 f"({'; '.join(differences)}); registered versions are "
                                 "immutable (register a new name)")
            notes.append(f"{version}: the same model as the registered one")
            continue
        registry.register(spec.name, version, stage / version)
        notes.append(f"{version}: registered")
    if registry.pointers(spec.name).stable is None:
        registry.promote(spec.name, "v1", reason="initial stable version (scripts/train_models.py)")
        notes.append("v1: promoted to stable")
    return notes


def publish_fixtures(spec: ModelSpec, stage: Path, root: Path, versions: list[str]) -> list[str]:
    """Write the broken versions into ``root`` (a fixtures registry), replacing changed ones."""
    model_dir = root / spec.name
    write_model_yaml(spec, model_dir)
    notes = []
    for version in versions:
        target = model_dir / version
        if target.exists() and same_model(target, stage / version):
            notes.append(f"{version}: unchanged")
            continue
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=model_dir))
        for name in REQUIRED_FILES:
            shutil.copyfile(stage / version / name, tmp / name)
        os.chmod(tmp, 0o755)
        if target.exists():
            shutil.rmtree(target)
        os.rename(tmp, target)
        notes.append(f"{version}: written")
    return notes


def print_table(spec: ModelSpec, stage: Path, built: dict[str, dict]) -> None:
    v1 = built["v1"]["scores"]
    print(f"{spec.name}: {len(built)} versions, threshold {spec.threshold} "
          "(ms per single-row call: Paddle Inference, CPU, 1 thread, oneDNN off)")
    print(f"{'version':<14} {'auc':>7} {'mean':>7} {'reject':>7} {'nan':>4} "
          f"{'psi_vs_v1':>9} {'ms/call':>8} {'params':>9}")
    for version, info in built.items():
        s = info["scores"]
        fin = np.isfinite(s)
        psi = population_stability(v1, s[fin])
        a = auc(info["y"], s)
        size = (stage / version / "model.pdiparams").stat().st_size
        print(f"{version:<14} {a if a is not None else float('nan'):>7.4f} "
              f"{s[fin].mean():>7.4f} {np.mean(s[fin] >= spec.threshold):>7.1%} "
              f"{int((~fin).sum()):>4d} {psi:>9.3f} {info['ms']:>8.3f} {size:>9d}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "model_registry",
                        help="registry root for the real versions (default: model_registry)")
    parser.add_argument("--fixtures", type=Path, default=REPO / "fixtures" / "broken_models",
                        help="registry root for the broken versions")
    parser.add_argument("--stage", type=Path, default=None,
                        help="only export everything into DIR/<model>/<version>; register nothing")
    parser.add_argument("--model", action="append", choices=sorted(SPECS), default=None,
                        help="build only this model (repeatable; default: all)")
    args = parser.parse_args(argv)
    specs = [SPECS[name] for name in SPECS if args.model is None or name in args.model]

    with tempfile.TemporaryDirectory(prefix="train-models-") as tmp:
        stage_root = args.stage or Path(tmp)
        for spec in specs:
            check_model_name(spec.name)
            stage = stage_root / spec.name
            t0 = time.perf_counter()
            built = build_model(spec, stage)
            print(f"built {spec.name} in {time.perf_counter() - t0:.1f} s")
            print_table(spec, stage, built)
            if args.stage:
                continue
            try:
                for note in publish_real(spec, stage, args.out):
                    print(f"{args.out}/{spec.name}: {note}")
            except RegistryError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            broken = [v for v in built if v not in spec.versions]
            for note in publish_fixtures(spec, stage, args.fixtures, broken):
                print(f"{args.fixtures}/{spec.name}: {note}")
    return 0


def population_stability(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI over the score buckets, with empty buckets floored at 0.5 counts."""
    e = np.asarray(score_histogram(expected)["counts"], dtype=float)
    a = np.asarray(score_histogram(actual)["counts"], dtype=float)
    e = np.maximum(e, 0.5) / max(e.sum(), 1)
    a = np.maximum(a, 0.5) / max(a.sum(), 1)
    return float(np.sum((a - e) * np.log(a / e)))


if __name__ == "__main__":
    sys.exit(main())
