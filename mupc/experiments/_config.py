"""`RunConfig`: everything that defines one training run, validated once when built.

The allowed values of every choice come from the library's registries (optimisers, losses,
activations, parameterisations, datasets), so the command line and the configuration agree by
construction; the published defaults come from `mupc._published`.
"""

import dataclasses
import math
from typing import Any, Literal, get_args

from .. import _published
from .._activation import ACTIVATIONS
from .._data import corpus_names, dataset_names
from .._loss import LOSSES
from .._optimisers import OPTIMISERS
from .._parallel import ParallelMode
from .._parameterisation import PARAMETERISATIONS

Method = Literal["pc", "bp"]
NetworkKind = Literal["mlp", "conv", "transformer"]
ActivityKind = Literal["sublayer", "block"]
InferenceKind = Literal["pc", "epc", "epc-then-pc"]
WeightGradient = Literal["local", "reparameterised"]
# Choices, each taken from its registry.
METHODS: tuple[str, ...] = get_args(Method)
NETWORK_KINDS: tuple[str, ...] = get_args(NetworkKind)
INFERENCE_KINDS: tuple[str, ...] = get_args(InferenceKind)
WEIGHT_GRADIENTS: tuple[str, ...] = get_args(WeightGradient)
OPTIMISER_NAMES: tuple[str, ...] = tuple(OPTIMISERS)
LOSS_NAMES: tuple[str, ...] = tuple(LOSSES)
ACTIVATION_NAMES: tuple[str, ...] = tuple(ACTIVATIONS)
PARAMETERISATION_NAMES: tuple[str, ...] = tuple(PARAMETERISATIONS)
PARALLEL_MODES: tuple[str, ...] = get_args(ParallelMode)
# `synthetic`: random Gaussian clusters of `SYNTHETIC` sizes, for smoke tests (not a benchmark).
# Text corpora (character language models, `--network transformer`) and image datasets.
CORPORA: tuple[str, ...] = corpus_names()
DATASETS: tuple[str, ...] = (*dataset_names(), *CORPORA, "synthetic")
ACTIVITY_KINDS: tuple[str, ...] = get_args(ActivityKind)
SYNTHETIC = {"n_train": 1024, "n_test": 256, "input_dim": 64, "num_classes": 10}

# ePC's defaults (not published: chosen here by `mupc sweep transfer --preset epc-depth
# --epochs 15`, whose best cell stayed at (0.05, 0.001) from H = 32 to H = 128; see
# docs/tutorials/epc.md): one gradient-descent step on the errors with this per-example step,
# and Adam on the weights with this learning rate.
EPC_ERROR_LR = 0.001
EPC_WEIGHT_LR = 0.05

# Learning at PC's equilibrium (`inference="epc-then-pc"`, docs/tutorials/epc.md): ePC's warm
# start runs this many error steps of this per-example size (near the minimum of the energy at
# H = 128, where one small step is not), then `refine_steps` gradient-descent steps of
# `refine_lr` per example on the activities, stopped early once every example's activity
# gradient is below `refine_tolerance`. The weights step at the refined activities, with Adam
# at backprop's rate: at equilibrium the PC gradient has backprop's scale (norm ratio ≈ 0.6 at
# H = 128), not ePC's one-small-step scale. Measured at initialisation, not tuned.
EQUILIBRIUM_WARM_LR = 0.1
EQUILIBRIUM_WARM_STEPS = 20
EQUILIBRIUM_WEIGHT_LR = _published.BP_WEIGHT_LR_MNIST_128
REFINE_LR = 0.1
REFINE_STEPS = 50
REFINE_TOLERANCE = 1e-3

# The network's size when none is given: the MLP's H = 8 hidden layers of width 128; for the
# conv ResNet 2 residual blocks per stage and 8 channels in the first stage (8 -> 16 -> 32 over
# 3 stages, the width of the conv results in the docs), which trains an epoch of Fashion-MNIST
# in minutes on a 2-core CPU (the MLP's width, 128 -> 256 -> 512 channels, took GBs and
# hours); for the transformer 4 blocks of width d = 64 (4 heads of 16), the size of its
# results in the docs.
DEFAULT_SIZE = {"mlp": (8, 128), "conv": (2, 8), "transformer": (4, 64)}

# A run has diverged once its training loss (or its energy) exceeds this multiple of its value
# at the first step, or is no longer finite.
DIVERGENCE_THRESHOLD = 1e3

# Fields that may change when a run is resumed (they do not change the trajectory).
RESUMABLE_CHANGES = (
    "steps", "epochs", "eval_every", "log_every", "checkpoint_every", "data_dir", "devices",
    "parallel",
)  # fmt: skip


def _check_choice(name: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {list(allowed)}, got {value!r}.")


def _check_positive(name: str, value: Any, integer: bool = True) -> None:
    kind = int if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kind)
        or not math.isfinite(value)
        or not value > 0
    ):
        what = "a positive integer" if integer else "a positive finite number"
        raise ValueError(f"`{name}` must be {what}, got {value!r}.")


REFINE_FIELDS = {"refine_steps": REFINE_STEPS, "refine_lr": REFINE_LR,
                 "refine_tolerance": REFINE_TOLERANCE}  # fmt: skip


def _check_refine(config: "RunConfig") -> None:
    """The refine phase's settings: valid numbers, and left at their defaults unless the
    inference is `"epc-then-pc"` (they would otherwise be ignored without a word)."""
    if config.inference != "epc-then-pc":
        changed = [name for name, value in REFINE_FIELDS.items() if getattr(config, name) != value]
        if changed:
            raise ValueError(
                f"`{changed[0]}` = {getattr(config, changed[0])!r} applies to inference "
                f"'epc-then-pc' only, got inference {config.inference!r}."
            )
    steps = config.refine_steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"`refine_steps` must be an integer ≥ 0, got {steps!r}.")
    _check_positive("refine_lr", config.refine_lr, integer=False)
    if config.refine_tolerance is not None:
        _check_positive("refine_tolerance", config.refine_tolerance, integer=False)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run; validated when built.

    **Arguments:**

    - `dataset`: one of `mupc.dataset_names()` (`"mnist"`, `"fashion-mnist"`, `"cifar10"`,
      `"mnist-sample"`), a text corpus of `mupc.corpus_names()` (`"austen"`,
      `"tiny-shakespeare"`: a character language model) or `"synthetic"` (random data, for
      smoke tests).
    - `data_dir`: where to look for (and download) the dataset files.
    - `network`: `"mlp"` (the residual MLP, `mupc.ResNet`), `"conv"` (`mupc.ConvResNet`, on
      images (height, width, channels)) or `"transformer"` (`mupc.Transformer`: a ViT on
      images, a causal language model on a text corpus).
    - `depth`, `width`: for the MLP, H hidden layers of width N (default 8 and 128); for the
      conv ResNet, residual blocks per stage and the channels of the first stage (stage s has
      `width` · 2^s; default 2 and 8); for the transformer, blocks and the width d (heads of
      `head_dim`: d / `head_dim` heads; default 4 and 64). None (the default) means the
      network's default.
    - `stages`: the conv ResNet's number of stages (pooling between them); unused by the MLP.
    - `head_dim`, `context`, `patch_size`, `activity`: the transformer's $d_{\text{head}}$,
      context T of a language model, image patch side, and its PC layers (`"sublayer"`: one
      per attention and MLP sub-layer; `"block"`: one per block).
    - `activation`, `parameterisation` (`"sp"`, `"mupc"`, `"ntp"`), `skips` (MLP only).
    - `method`: `"pc"` (`PCTrainer`) or `"bp"` (`BPTrainer`).
    - `optimizer`, `lr`: the weight optimiser (Optax) and its learning rate (default: the
      published μPC rate for MNIST, 0.1).
    - `inference`: `"pc"` (inference on the activities, `mupc.DiscreteInference`), `"epc"`
      (error-optimised inference on the prediction errors, `mupc.ErrorInference`) or
      `"epc-then-pc"` (learning at PC's equilibrium: ePC's warm start, then gradient descent
      on the activities; `mupc.SequentialInference`).
    - `activity_optimizer`, `activity_lr`: the inference optimiser and its **per-example**
      step, on the activities (published batch-mean values divided by the batch size; default
      `mupc._published.ACTIVITY_LR`, the published 0.5 at batch 64) or, for ePC, on the errors.
    - `inference_steps`: T (None: T = H for `"pc"`, 1 for `"epc"`, `EQUILIBRIUM_WARM_STEPS`
      for the warm start of `"epc-then-pc"`).
    - `refine_steps`, `refine_lr`, `refine_tolerance` (`"epc-then-pc"` only): at most R
      gradient-descent steps of size `refine_lr` per example on the activities after the
      warm start, stopping once every example's $\\lVert\\nabla_{z^{(i)}} F_i\\rVert$ is below
      the tolerance (None: all R steps).
    - `weight_gradient`: ePC's weight update, `"local"` (the PC gradient at the final states) or
      `"reparameterised"` (through the error-perturbed forward pass; at ε = 0 it is backprop).
    - `trainable_top`: train only the top k hidden layers and the readout, the rest frozen at
      initialisation (`mupc.freeze_layers`; the MLP only); None trains every layer.
    - `train_examples`: use only the first n training examples (None: all of them).
    - `batch_size`, and the length: `steps` if given, else `epochs` (may be fractional).
    - `seed`: initial weights and data order.
    - `float64`: train in double precision.
    - `eval_every`, `log_every`, `checkpoint_every`: intervals in steps.
    - `loss`: `"mse"` or `"cross-entropy"`.
    - `devices`, `parallel`: train on K devices with `mupc.ParallelTrainer`, splitting the
      batch (`"data"`), the hidden layers (`"layers"`, PC only) or both (`"both"`); K = 1 is
      ordinary single-device training; `"auto"` (`mupc train`'s default) measures one device
      against all the CPU devices present and takes the faster (`run_experiment` records the
      choice in the summary's `placement`). A run may resume on a different K.
    - `divergence_threshold`: the run is stopped as diverged when its training loss, or its
      energy before or after inference, exceeds this multiple of its value at the first step
      (default 1e3), or stops being finite; None keeps only the non-finite test.

    **Raises:** `ValueError` naming the field, the bad value and what is allowed (numbers
    must be finite).
    """

    dataset: str = "mnist-sample"
    data_dir: str | None = None
    network: NetworkKind = "mlp"
    depth: int = None  # type: ignore[assignment]  # None: DEFAULT_SIZE[network]
    width: int = None  # type: ignore[assignment]
    stages: int = 3
    activation: str = "relu"
    parameterisation: str = "mupc"
    skips: bool = True
    head_dim: int = 16
    context: int = 64
    patch_size: int = 7
    activity: ActivityKind = "sublayer"
    method: Method = "pc"
    optimizer: str = "adam"
    lr: float = _published.MUPC_WEIGHT_LR
    inference: InferenceKind = "pc"
    activity_optimizer: str = "sgd"
    activity_lr: float = _published.ACTIVITY_LR
    inference_steps: int | None = _published.INFERENCE_STEPS
    weight_gradient: WeightGradient = "local"
    refine_steps: int = REFINE_STEPS
    refine_lr: float = REFINE_LR
    refine_tolerance: float | None = REFINE_TOLERANCE
    trainable_top: int | None = None
    train_examples: int | None = None
    batch_size: int = _published.BATCH_SIZE
    epochs: float | None = 1.0
    steps: int | None = None
    seed: int = 0
    float64: bool = False
    eval_every: int = 100
    log_every: int = 10
    checkpoint_every: int = 100
    loss: str = "mse"
    devices: int | Literal["auto"] = 1
    parallel: ParallelMode = "data"
    divergence_threshold: float | None = DIVERGENCE_THRESHOLD

    def __post_init__(self):
        _check_choice("dataset", self.dataset, DATASETS)
        _check_choice("method", self.method, METHODS)
        _check_choice("network", self.network, NETWORK_KINDS)
        for name, default in zip(("depth", "width"), DEFAULT_SIZE[self.network], strict=True):
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        _check_choice("inference", self.inference, INFERENCE_KINDS)
        _check_choice("weight_gradient", self.weight_gradient, WEIGHT_GRADIENTS)
        _check_refine(self)
        _check_choice("optimizer", self.optimizer, OPTIMISER_NAMES)
        _check_choice("activity_optimizer", self.activity_optimizer, OPTIMISER_NAMES)
        _check_choice("loss", self.loss, LOSS_NAMES)
        _check_choice("parallel", self.parallel, PARALLEL_MODES)
        _check_choice("activity", self.activity, ACTIVITY_KINDS)
        for name in ("head_dim", "context", "patch_size"):
            _check_positive(name, getattr(self, name))
        if self.is_text and self.network != "transformer":
            raise ValueError(
                f"`dataset` {self.dataset!r} is a text corpus: train a language model with "
                "network='transformer'."
            )
        if self.network == "transformer" and self.width % self.head_dim:
            raise ValueError(
                f"`width` {self.width} must be a multiple of `head_dim` {self.head_dim} (the "
                "transformer's width grows by heads of d_head = head_dim)."
            )
        for name in ("depth", "width", "stages", "batch_size", "eval_every", "log_every"):
            _check_positive(name, getattr(self, name))
        if self.train_examples is not None:
            _check_positive("train_examples", self.train_examples)
        if self.trainable_top is not None:
            if self.network != "mlp":
                raise ValueError(
                    "`trainable_top` (freezing the bottom layers) needs network='mlp'."
                )
            if (
                isinstance(self.trainable_top, bool)
                or not isinstance(self.trainable_top, int)
                or not 0 <= self.trainable_top <= self.depth
            ):
                raise ValueError(
                    f"`trainable_top` must be an integer in [0, depth = {self.depth}] or None, "
                    f"got {self.trainable_top!r}."
                )
        if self.devices != "auto":
            try:
                _check_positive("devices", self.devices)
            except ValueError:
                raise ValueError(
                    f"`devices` must be a positive integer or 'auto', got {self.devices!r}."
                ) from None
        _check_positive("checkpoint_every", self.checkpoint_every)
        _check_positive("lr", self.lr, integer=False)
        _check_positive("activity_lr", self.activity_lr, integer=False)
        if self.steps is None and self.epochs is None:
            raise ValueError("Give the run's length: `steps` or `epochs` (both are None).")
        if self.steps is not None:
            _check_positive("steps", self.steps)
        else:
            _check_positive("epochs", self.epochs, integer=False)
        if self.inference_steps is not None and (
            isinstance(self.inference_steps, bool)
            or not isinstance(self.inference_steps, int)
            or self.inference_steps < 0
        ):
            raise ValueError(
                f"`inference_steps` (T) must be an integer ≥ 0 or None (T = H), got "
                f"{self.inference_steps!r}."
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"`seed` must be an integer ≥ 0, got {self.seed!r}.")
        threshold = self.divergence_threshold
        if threshold is not None:
            _check_positive("divergence_threshold", threshold, integer=False)
            if not threshold > 1:
                raise ValueError(
                    f"`divergence_threshold` must be > 1 (a multiple of the starting loss) or "
                    f"None, got {threshold!r}."
                )
        # Validates activation and parameterisation names with the core's own messages.
        self.network_config(self._probe_shape(), 2 if self.is_text else 1)

    def _probe_shape(self) -> tuple[int, ...]:
        """An input shape this configuration accepts (for validating it without data)."""
        if self.network == "mlp":
            return (1,)
        if self.network == "transformer":
            return (self.context,) if self.is_text else (self.patch_size,) * 2 + (1,)
        return (2**self.stages,) * 2 + (1,)

    @property
    def is_text(self) -> bool:
        """Whether the dataset is a text corpus (a character language model)."""
        return self.dataset in CORPORA

    @property
    def label(self) -> str:
        """A short description for progress bars, e.g. `"epc mupc H=128 N=128"`."""
        method = self.inference if self.method == "pc" else self.method
        if self.network == "conv":
            return (
                f"{method} {self.parameterisation} conv {self.stages}×{self.depth} blocks "
                f"c={self.width}"
            )
        if self.network == "transformer":
            task = "lm" if self.is_text else "vit"
            return f"{method} {self.parameterisation} {task} {self.depth} blocks d={self.width}"
        return f"{method} {self.parameterisation} H={self.depth} N={self.width}"

    @property
    def layout(self) -> str:
        """The data layout the network takes: `"flat"` vectors (the MLP; token windows) or
        `"nhwc"` images (the conv ResNet, the ViT)."""
        return "flat" if self.network == "mlp" or self.is_text else "nhwc"

    def network_config(self, input_shape: tuple[int, ...], output_dim: int):
        """The network's configuration (`mupc.NetworkConfig`, `mupc.ConvConfig` or
        `mupc.TransformerConfig`) for data of one example's `input_shape` ((D,), (height,
        width, channels), or (T,) token ids) and `output_dim` classes (the vocabulary, for
        text)."""
        from .._network import ConvConfig, NetworkConfig, TransformerConfig

        if self.network == "transformer":
            return TransformerConfig(
                tuple(input_shape),
                output_dim,
                vocab_size=output_dim if self.is_text else None,
                patch_size=self.patch_size,
                heads=self.width // self.head_dim,
                head_dim=self.head_dim,
                blocks=self.depth,
                activation=self.activation,
                activity=self.activity,
                parameterisation=self.parameterisation,
            )
        if self.network == "conv":
            channels = tuple(self.width * 2**stage for stage in range(self.stages))
            return ConvConfig(
                tuple(input_shape),  # type: ignore[arg-type]
                channels,
                self.depth,
                output_dim,
                activation=self.activation,
                parameterisation=self.parameterisation,
            )
        (input_dim,) = input_shape
        return NetworkConfig(
            input_dim,
            self.width,
            self.depth,
            output_dim,
            self.activation,
            self.parameterisation,
            self.skips,
        )

    def build_network(self, input_shape: tuple[int, ...], output_dim: int, *, key, dtype):
        """A freshly initialised network (`ResNet`, `ConvResNet` or `Transformer`) of this
        configuration."""
        from .._network import ConvResNet, ResNet, Transformer

        config = self.network_config(input_shape, output_dim)
        if self.network == "transformer":
            return Transformer(config, key=key, dtype=dtype)
        if self.network == "conv":
            return ConvResNet(config, key=key, dtype=dtype)
        return ResNet(config, key=key, dtype=dtype)

    def total_steps(self, num_train: int) -> int:
        """The number of training steps for a training set of `num_train` examples."""
        if self.steps is not None:
            return self.steps
        assert self.epochs is not None  # __post_init__: steps or epochs is given
        per_epoch = num_batches_per_epoch(num_train, self.batch_size)
        return max(1, math.ceil(self.epochs * per_epoch))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description (inverse: `from_dict`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        """Inverse of `to_dict`; unknown keys are an error, missing ones take their defaults
        (files written by older versions lack the newer fields)."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(
                f"Unknown run configuration fields {unknown}; allowed: {sorted(fields)}."
            )
        return cls(**data)


def num_batches_per_epoch(num_train: int, batch_size: int) -> int:
    """Full batches in one epoch (the last incomplete batch is dropped).

    **Raises:** `ValueError` if `batch_size` exceeds the training set.
    """
    from .._data import num_batches

    count = num_batches(num_train, batch_size, True)
    if count < 1:
        raise ValueError(
            f"`batch_size` {batch_size} is larger than the training set ({num_train} examples); "
            "use a smaller batch."
        )
    return count
