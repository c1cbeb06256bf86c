"""Runs of the PC family on image data (`mupc generative`): a decoder, supervised generative
PC, bidirectional and hybrid PC, the discriminative network they are compared with, and a
backprop autoencoder; resumable, logged, their results in `summary.json`.

Protocol (the docs state it with every number):

- Pixels are scaled to [0, 1] and **mean-centred** by the training set's mean image (as PCA
  is); errors are reported per pixel on the [0, 1] scale, on the first `eval_examples` test
  images.
- A decoder's reconstruction infers the latent with `eval_steps` steps of the training solver
  from the training start, then decodes it with the feedforward pass.
- Classification by inference frees the label end (it starts at 1/C for every class, or at
  the amortiser's prediction for bPC and hybrid PC) and runs `eval_steps` steps; the class is
  the argmax of the label end.
- Generation error: the image generated from a test image's label (the feedforward pass, or
  bPC's inference with the image end free) against that test image.
"""

import dataclasses
import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._activity_init import AmortisedInit, FeedforwardInit
from .._atomic import atomic_open, write_json_atomic
from .._by_inference import classify_by_inference, reconstruct
from .._clamp import Clamp
from .._coupling import Amortised, Bidirectional
from .._data import iterate_batches, load_dataset, num_batches
from .._data.load import _get_spec
from .._inference import DiscreteInference, ErrorInference, LangevinInference
from .._loss import MSE, Bernoulli, Loss
from .._network import LayerStack, NetworkConfig, ResNet
from .._optimisers import make_optimiser
from .._pair import NetworkPair
from .._prior import GaussianPrior
from .._training import PCTrainer, StepMetrics, Trainer, trainable

Variant = Literal["decoder", "supervised", "discriminative", "bpc", "hybrid", "autoencoder"]
VARIANTS: tuple[str, ...] = get_args(Variant)
InferenceKind = Literal["gd", "epc", "langevin"]
INFERENCE_KINDS: tuple[str, ...] = get_args(InferenceKind)
OutputTerm = Literal["mse", "bernoulli"]
WeightUpdate = Literal["after-inference", "every-step"]


@dataclasses.dataclass(frozen=True)
class FamilyConfig:
    """One run of the PC family (`mupc generative train`); validated when built.

    **Fields:** `variant` (`"decoder"`, `"supervised"`, `"discriminative"`, `"bpc"`,
    `"hybrid"`, `"autoencoder"`: a backprop autoencoder of the decoder with a mirrored
    encoder); the data (`dataset`, `train_examples`, `batch_size`, `epochs`, `max_steps`,
    `time_budget` seconds of training); the network (`depth` H (0: a decoder made of one dense
    map), `width` N, `latent` size, `activation`, `parameterisation`); the energy (`loss`
    `"mse"` or `"bernoulli"` on the images, `prior_std` of a Gaussian prior on a decoder's
    latent (None: no prior), `latent_std` of its random start (0: at the prior's mean),
    `alpha_f`, `alpha_b` of bPC); inference (`inference` `"gd"`, `"epc"` or `"langevin"`,
    `steps` T, `activity_lr`, `activity_optimizer`, `temperature` of Langevin); learning
    (`optimizer`, `lr`, `update` `"after-inference"` or `"every-step"` (iPC)); evaluation
    (`eval_examples`, `eval_steps` (None: T), `eval_every` steps (0: at the end only)),
    `log_every`, `seed`.

    **Raises:** `ValueError` naming a bad value.
    """

    variant: Variant = "decoder"
    dataset: str = "fashion-mnist"
    train_examples: int | None = None
    batch_size: int = 64
    epochs: int = 1
    max_steps: int | None = None
    time_budget: float | None = None
    depth: int = 2
    width: int = 256
    latent: int = 64
    activation: str = "tanh"
    parameterisation: str = "mupc"
    loss: OutputTerm = "mse"
    prior_std: float | None = 1.0
    latent_std: float = 0.0
    alpha_f: float = 1.0
    alpha_b: float = 1.0
    inference: InferenceKind = "epc"
    steps: int = 20
    activity_lr: float = 0.1
    activity_optimizer: str = "sgd"
    temperature: float = 1.0
    optimizer: str = "adam"
    lr: float = 1e-3
    update: WeightUpdate = "after-inference"
    eval_examples: int = 2000
    eval_steps: int | None = None
    eval_every: int = 0
    log_every: int = 20
    seed: int = 0

    def __post_init__(self):
        choices = {
            "variant": VARIANTS,
            "inference": INFERENCE_KINDS,
            "loss": get_args(OutputTerm),
            "update": get_args(WeightUpdate),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"`{name}` must be one of {list(allowed)}, got {getattr(self, name)!r}."
                )
        for name in ("batch_size", "epochs", "width", "latent", "eval_examples", "log_every"):
            _positive_int(name, getattr(self, name))
        for name in ("depth", "steps", "eval_every", "seed"):
            _positive_int(name, getattr(self, name), minimum=0)
        for name in ("train_examples", "max_steps", "eval_steps"):
            if getattr(self, name) is not None:
                _positive_int(name, getattr(self, name), minimum=0 if name == "eval_steps" else 1)
        for name in ("activity_lr", "lr"):
            _positive_float(name, getattr(self, name))
        for name in ("latent_std", "alpha_f", "alpha_b", "temperature"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value < math.inf):
                raise ValueError(f"`{name}` must be finite and ≥ 0, got {value!r}.")
        if self.prior_std is not None:
            _positive_float("prior_std", self.prior_std)
        if self.time_budget is not None:
            _positive_float("time_budget", self.time_budget)
        from .._data import dataset_names

        if self.dataset not in dataset_names():
            raise ValueError(
                f"`dataset` must be one of {list(dataset_names())}, got {self.dataset!r}."
            )
        if self.depth == 0 and self.variant != "decoder":
            raise ValueError("`depth` 0 (one dense map) is a decoder only: use depth ≥ 1.")
        if self.variant in ("bpc", "hybrid") and self.inference == "epc":
            raise ValueError(
                f"The {self.variant} variant descends two networks' energy: use inference 'gd' "
                "or 'langevin', not 'epc'."
            )
        if self.update == "every-step" and self.inference != "gd":
            raise ValueError("update 'every-step' (iPC) needs inference 'gd'.")
        if self.alpha_f == 0 and self.alpha_b == 0:
            raise ValueError("`alpha_f` and `alpha_b` cannot both be 0.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FamilyConfig":
        """Inverse of `to_dict`."""
        return cls(**data)

    @property
    def evaluation_steps(self) -> int:
        """T at evaluation."""
        return self.steps if self.eval_steps is None else self.eval_steps


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"`{name}` must be an integer ≥ {minimum}, got {value!r}.")


def _positive_float(name: str, value: Any) -> None:
    if not (
        isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < math.inf
    ):
        raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}.")


# --------------------------------------------------------------------------------- data


@dataclasses.dataclass(frozen=True)
class FamilyData:
    """Images as mean-centred [0, 1] pixels (n, D), one-hot labels (n, C), and the mean image
    that was subtracted (D,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    mean_image: np.ndarray
    image_shape: tuple[int, ...]
    name: str

    @property
    def num_classes(self) -> int:
        """C."""
        return int(self.train_labels.shape[1])

    @property
    def pixels(self) -> int:
        """D."""
        return int(self.train_images.shape[1])


def load_family_data(dataset: str, train_examples: int | None = None) -> FamilyData:
    """Load `dataset` (flattened), undo its normalisation to [0, 1] pixels and subtract the
    training set's mean image."""
    data = load_dataset(dataset)
    spec = _get_spec(dataset)
    mean = np.repeat(np.asarray(spec.mean, np.float32), int(np.prod(spec.image_shape[1:])))
    std = np.repeat(np.asarray(spec.std, np.float32), int(np.prod(spec.image_shape[1:])))
    train = data.train_images * std + mean
    test = data.test_images * std + mean
    labels = data.train_labels
    if train_examples is not None:
        train, labels = train[:train_examples], labels[:train_examples]
    centre = train.mean(axis=0)
    return FamilyData(
        (train - centre).astype(np.float32),
        labels.astype(np.float32),
        (test - centre).astype(np.float32),
        data.test_labels.astype(np.float32),
        centre.astype(np.float32),
        tuple(spec.image_shape),
        dataset,
    )


def ends(config: FamilyConfig, images, labels) -> tuple[Any, Any]:
    """`(inputs, targets)` of a batch for the variant: the images at the output end
    (generative), at the input end (discriminative), or alone (a decoder: inputs None)."""
    if config.variant in ("decoder", "autoencoder"):
        return None, images
    if config.variant == "discriminative":
        return images, labels
    return labels, images


# ------------------------------------------------------------------------------ models


class _Identity(eqx.Module):
    """$z_1 = z_0$: the input layer of a decoder made of one dense map."""

    def __call__(self, x):
        return x


def _resnet(config: FamilyConfig, inputs: int, outputs: int, key) -> ResNet:
    network = NetworkConfig(
        inputs, config.width, config.depth, outputs, config.activation, config.parameterisation
    )
    return ResNet(network, key=key, dtype=jnp.float32)


def build_model(config: FamilyConfig, data: FamilyData, key) -> Any:
    """The network (or `NetworkPair`) of the variant, freshly initialised from `key`, in
    float32 (as the data)."""
    import mupc.nn

    d, c, k = data.pixels, data.num_classes, config.latent
    first, second = jax.random.split(key)
    if config.variant == "decoder":
        if config.depth == 0:
            readout = mupc.nn.Linear(k, d, kind="readout")
            return LayerStack(
                _Identity(), [], readout, input_shape=(k,), key=first,
                parameterisation=config.parameterisation, dtype=jnp.float32,
            )  # fmt: skip
        return _resnet(config, k, d, first)
    if config.variant == "autoencoder":
        return NetworkPair(_resnet(config, k, d, first), _resnet(config, d, k, second))
    if config.variant == "supervised":
        return _resnet(config, c, d, first)
    if config.variant == "discriminative":
        return _resnet(config, d, c, first)
    return NetworkPair(_resnet(config, c, d, first), _resnet(config, d, c, second))


class AutoencoderTrainer(Trainer):
    """Backprop on a decoder f with a mirrored encoder g (a `NetworkPair(f, g)`): one
    optimiser step on $\\nabla \\tfrac1B \\sum_i \\ell(f(g(x_i)), x_i)$ (the baseline of the
    decoder results)."""

    optimiser: Any
    loss: Loss = MSE()

    def gradients(self, network, inputs, targets, key):
        def mean_loss(params):
            pair = eqx.combine(params, network)
            return jnp.mean(self.loss(pair.forward(pair.backward(targets)), targets))

        loss, grads = jax.value_and_grad(mean_loss)(trainable(network))
        return grads, StepMetrics(loss=loss)

    def step(self, state, inputs, targets):
        from .._training.base import _compiled_step

        targets = jnp.asarray(targets, state.network.dtype)
        return _compiled_step(self, state, None, targets)


def _inference(config: FamilyConfig, steps: int):
    optimiser = make_optimiser(config.activity_optimizer, config.activity_lr)
    if config.inference == "gd":
        return DiscreteInference(optimiser, steps)
    if config.inference == "epc":
        return ErrorInference(optimiser, steps)
    return LangevinInference(config.activity_lr, steps, config.temperature)


def build_trainer(config: FamilyConfig, data: FamilyData, steps: int | None = None) -> Trainer:
    """The trainer of the variant (with `steps` inference steps: default T)."""
    optimiser = make_optimiser(config.optimizer, config.lr)
    loss: Loss = Bernoulli() if config.loss == "bernoulli" else MSE()
    if config.variant == "autoencoder":
        return AutoencoderTrainer(optimiser, loss)
    inference = _inference(config, config.steps if steps is None else steps)
    if config.variant == "decoder":
        prior = None if config.prior_std is None else GaussianPrior(0.0, config.prior_std)
        return PCTrainer(
            optimiser=optimiser, inference=inference,
            activity_init=FeedforwardInit(latent_std=config.latent_std), loss=loss,
            clamp=Clamp(input="free"), prior=prior, update=config.update,
        )  # fmt: skip
    if config.variant == "supervised":
        start = FeedforwardInit(latent_mean=1.0 / data.num_classes)
        return PCTrainer(
            optimiser=optimiser, inference=inference, activity_init=start, loss=loss,
            update=config.update,
        )  # fmt: skip
    if config.variant == "discriminative":
        return PCTrainer(optimiser=optimiser, inference=inference, loss=MSE(), update=config.update)
    coupling = (
        Bidirectional(forward_weight=config.alpha_f, backward_weight=config.alpha_b, loss=MSE())
        if config.variant == "bpc"
        else Amortised(loss=MSE())
    )
    return PCTrainer(
        optimiser=optimiser, inference=inference, activity_init=AmortisedInit(), loss=loss,
        coupling=coupling, update=config.update,
    )  # fmt: skip


# -------------------------------------------------------------------------- evaluation


def _chunks(total: int, size: int):
    for begin in range(0, total, size):
        yield slice(begin, min(total, begin + size))


def _accuracy(scores, labels) -> float:
    return float(np.mean(np.argmax(np.asarray(scores), 1) == np.argmax(labels, 1)))


def evaluate_family(
    config: FamilyConfig, model: Any, data: FamilyData, *, key=None, chunk: int = 500
) -> dict[str, float]:
    """The variant's test metrics on the first `eval_examples` test images (module
    docstring): `test_mse` (decoder, autoencoder), `test_accuracy` and
    `test_generation_mse` (supervised, bPC), `amortiser_accuracy`, `hybrid_accuracy`,
    `generator_accuracy` (hybrid), `test_accuracy` (discriminative)."""
    key = jax.random.key(config.seed + 1) if key is None else key
    count = min(config.eval_examples, len(data.test_images))
    images, labels = data.test_images[:count], data.test_labels[:count]
    trainer = build_trainer(config, data, config.evaluation_steps)
    sums: dict[str, float] = {}

    def add(name, value, rows):
        sums[name] = sums.get(name, 0.0) + float(value) * rows

    for index, part in enumerate(_chunks(count, chunk)):
        x, y = jnp.asarray(images[part]), labels[part]
        rows = part.stop - part.start
        chunk_key = jax.random.fold_in(key, index)
        if config.variant == "decoder":
            _, recon = reconstruct(trainer, model, x, key=chunk_key)
            add("test_mse", jnp.mean((recon - x) ** 2), rows)
        elif config.variant == "autoencoder":
            add("test_mse", jnp.mean((model.forward(model.backward(x)) - x) ** 2), rows)
        elif config.variant == "discriminative":
            add("test_accuracy", _accuracy(model(x), y), rows)
        elif config.variant == "supervised":
            scores = classify_by_inference(trainer, model, x, key=chunk_key)
            add("test_accuracy", _accuracy(scores, y), rows)
            add("test_generation_mse", jnp.mean((model(jnp.asarray(y)) - x) ** 2), rows)
        elif config.variant == "bpc":
            scores = classify_by_inference(trainer, model, x, key=chunk_key)
            add("test_accuracy", _accuracy(scores, y), rows)
            add("amortiser_accuracy", _accuracy(model.backward(x), y), rows)
            assert isinstance(trainer, PCTrainer)
            generating = dataclasses.replace(
                trainer, clamp=Clamp(output="free"), activity_init=FeedforwardInit()
            )
            generated = generating.infer(model, jnp.asarray(y), None, key=chunk_key).outputs
            add("test_generation_mse", jnp.mean((generated - x) ** 2), rows)
        else:  # hybrid
            add("amortiser_accuracy", _accuracy(model.backward(x), y), rows)
            scores = classify_by_inference(trainer, model, x, key=chunk_key)
            add("hybrid_accuracy", _accuracy(scores, y), rows)
            assert isinstance(trainer, PCTrainer)
            generator = dataclasses.replace(
                trainer, activity_init=FeedforwardInit(latent_mean=1.0 / data.num_classes)
            )
            scores = classify_by_inference(generator, model, x, key=chunk_key)
            add("generator_accuracy", _accuracy(scores, y), rows)
            add("test_generation_mse", jnp.mean((model.forward(jnp.asarray(y)) - x) ** 2), rows)
    return {name: total / count for name, total in sums.items()}


def pca_test_mse(dataset: str, latent: int, *, eval_examples: int | None = None) -> float:
    """Mean-centred PCA with `latent` components fitted on the training images: the test
    reconstruction error per pixel on the [0, 1] scale (on the first `eval_examples` test
    images; all when None)."""
    data = load_family_data(dataset)
    train = data.train_images.astype(np.float64)
    covariance = train.T @ train / len(train)
    basis = np.linalg.eigh(covariance)[1][:, ::-1][:, :latent]
    test = data.test_images.astype(np.float64)
    if eval_examples is not None:
        test = test[:eval_examples]
    return float(np.mean((test @ basis @ basis.T - test) ** 2))


# ------------------------------------------------------------------------------ running


def machine() -> str:
    """The CPU model (from /proc/cpuinfo) and core count."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def _serialise(path: Path, state) -> None:
    """Write a `TrainState` (its typed PRNG key as raw key data)."""
    raw = eqx.tree_at(lambda s: s.key, state, jax.random.key_data(state.key))
    with atomic_open(path, "wb") as handle:
        eqx.tree_serialise_leaves(handle, raw)


def _deserialise(path: Path, like):
    """Read a `TrainState` written by `_serialise`, shaped like `like`."""
    raw = eqx.tree_at(lambda s: s.key, like, jax.random.key_data(like.key))
    raw = eqx.tree_deserialise_leaves(path, raw)
    return eqx.tree_at(lambda s: s.key, raw, jax.random.wrap_key_data(raw.key))


def initial_state(config: FamilyConfig, data: FamilyData):
    """The trainer and its freshly initialised state (deterministic in the seed)."""
    key = jax.random.key(config.seed)
    model = build_model(config, data, jax.random.fold_in(key, 0))
    trainer = build_trainer(config, data)
    return trainer, trainer.init(model, jax.random.fold_in(key, 1))


def load_family_run(out: str | os.PathLike):
    """`(config, data, model)` of a run folder (its last checkpoint)."""
    out = Path(out)
    config = FamilyConfig.from_dict(json.loads((out / "config.json").read_text()))
    data = load_family_data(config.dataset, config.train_examples)
    _, state = initial_state(config, data)
    state = _deserialise(out / "checkpoint.eqx", state)
    return config, data, state.network


def run_family(
    config: FamilyConfig,
    out: str | os.PathLike,
    *,
    resume: bool = False,
    log: Callable[[str], None] = print,
    checkpoint_every: int = 200,
) -> dict[str, Any]:
    """Train and evaluate one run into the folder `out` (`config.json`, `metrics.jsonl`,
    `checkpoint.eqx`, `progress.json`, `summary.json`, all written atomically); with
    `resume`, continue from the last checkpoint (a finished run is not run again).

    **Returns:** the summary (also `summary.json`).

    **Raises:** `ValueError` when `out` holds another configuration or a run and `resume`
    is False.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stored = out / "config.json"
    if stored.exists():
        if json.loads(stored.read_text()) != config.to_dict():
            raise ValueError(f"{out} holds a run with another configuration: choose another --out.")
        if not resume:
            raise ValueError(f"{out} already holds this run: pass --resume to continue it.")
        summary = out / "summary.json"
        if summary.exists():
            return json.loads(summary.read_text())
    write_json_atomic(stored, config.to_dict())
    data = load_family_data(config.dataset, config.train_examples)
    trainer, state = initial_state(config, data)
    progress = {"step": 0, "train_seconds": 0.0, "eval_seconds": 0.0}
    if resume and (out / "checkpoint.eqx").exists():
        state = _deserialise(out / "checkpoint.eqx", state)
        progress = json.loads((out / "progress.json").read_text())
        _truncate(out / "metrics.jsonl", progress["step"])
    per_epoch = num_batches(len(data.train_images), config.batch_size)
    total = per_epoch * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    metrics = open(out / "metrics.jsonl", "a")
    evaluations: list[dict] = []

    def evaluate(step: int) -> dict:
        began = time.perf_counter()
        result = evaluate_family(config, state.network, data)
        progress["eval_seconds"] += time.perf_counter() - began
        record = {"step": step, "elapsed": progress["train_seconds"], **result}
        metrics.write(json.dumps(record) + "\n")
        metrics.flush()
        log("  " + "  ".join(f"{k} {v:.5g}" for k, v in record.items()))
        bad = sorted(name for name, value in result.items() if not math.isfinite(value))
        if bad:
            raise ValueError(
                f"The evaluation at step {step} is not finite ({', '.join(bad)}): inference "
                f"diverged at evaluation (activity_lr {config.activity_lr}, "
                f"{config.evaluation_steps} steps); lower --activity-lr or --eval-steps."
            )
        return record

    def save(step: int) -> None:
        _serialise(out / "checkpoint.eqx", state)
        progress["step"] = step
        write_json_atomic(out / "progress.json", progress)

    step = int(progress["step"])
    try:
        while step < total:
            budget = config.time_budget
            if budget is not None and progress["train_seconds"] >= budget:
                break
            epoch, start = divmod(step, per_epoch)
            batches = iterate_batches(
                data.train_images, data.train_labels, config.batch_size,
                seed=config.seed, epoch=epoch, start=start,
            )  # fmt: skip
            for images, labels in batches:
                inputs, targets = ends(config, images, labels)
                began = time.perf_counter()
                state, step_metrics = trainer.step(state, inputs, targets)
                jax.block_until_ready(state)
                progress["train_seconds"] += time.perf_counter() - began
                step += 1
                if step % config.log_every == 0 or step == total:
                    record = {"step": step, "epoch": step / per_epoch,
                              "elapsed": progress["train_seconds"]}  # fmt: skip
                    for name in ("loss", "energy_before", "energy_after"):
                        value = getattr(step_metrics, name)
                        if value is not None:
                            record[name] = float(value)
                    if not all(math.isfinite(v) for v in record.values()):
                        raise FloatingPointError(f"non-finite metrics at step {step}: {record}")
                    metrics.write(json.dumps(record) + "\n")
                    metrics.flush()
                    log(f"step {step}/{total}  " + "  ".join(
                        f"{k} {v:.4g}" for k, v in record.items() if k != "step"))  # fmt: skip
                if config.eval_every and step % config.eval_every == 0 and step < total:
                    evaluations.append(evaluate(step))
                if step % checkpoint_every == 0:
                    save(step)
                over = budget is not None and progress["train_seconds"] >= budget
                if step >= total or over:
                    break
        save(step)
        evaluations.append(evaluate(step))
    finally:
        metrics.close()
    result = {
        "status": "completed",
        "config": config.to_dict(),
        "steps": step,
        "epochs": step / per_epoch,
        **{k: v for k, v in evaluations[-1].items() if k not in ("step", "elapsed")},
        "train_seconds": progress["train_seconds"],
        "eval_seconds": progress["eval_seconds"],
        "seconds_per_step": progress["train_seconds"] / max(step, 1),
        "machine": machine(),
        "jax": jax.__version__,
        "eval_examples": min(config.eval_examples, len(data.test_images)),
        "eval_steps": config.evaluation_steps,
    }
    write_json_atomic(out / "summary.json", result)
    return result


def _truncate(path: Path, last_step: int) -> None:
    """Drop the metric records after `last_step` (logged after the last checkpoint)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line)
        except (json.JSONDecodeError, KeyError):
            break
    with atomic_open(path, "w") as handle:
        handle.write("".join(line + "\n" for line in kept))
