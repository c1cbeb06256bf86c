"""The published settings of μPC (docs/method.md, "Published settings"), written once.

Every default that reproduces the paper (presets, `RunConfig`, the command line, `make run`)
reads its number from here. Activity learning rates are kept as **published**, in the
reference's batch-mean convention, and converted to this library's per-example convention by
dividing by the batch size (docs/method.md, "Conventions"):
$\\beta_\\text{ours} = \\beta_\\text{published} / B$.

| setting | value |
|---|---|
| batch size $B$ | 64 |
| activity step $\\beta$ (batch-mean; ReLU) | 0.5, i.e. 0.5 / 64 = 0.0078125 per example |
| activity step $\\beta$ (batch-mean; linear, tanh) | 1 |
| inference steps $T$ | $H$ (`None` in the configuration objects) |
| μPC weight lr (Adam) | MNIST 0.1, Fashion-MNIST 0.05, CIFAR-10 0.1 |
| μPC activity step (batch-mean) | MNIST 0.5, Fashion-MNIST 0.5, CIFAR-10 0.01 |
| BP (Depth-μP) weight lr (Adam) | 1e-2 (depth sweep, CIFAR-10), 5e-3 (128-layer MNIST) |
| width $N$ | 512 |
| transfer grid, weight lr | 0.5, 0.1, 0.05, 0.01 |
| transfer grid, activity lr (batch-mean) | 1e3, 5e2, 1e2, 5e1, 1e1, 5, 1, 0.5, 0.1, 0.05, 0.01 |
| normalisation | MNIST mean 0.1307, sd 0.3081; Fashion-MNIST mean 0.5, sd 0.5 |
"""

# Batch size of every published run but CIFAR-10 (batch 128).
BATCH_SIZE = 64
# Width N of the published networks.
WIDTH = 512
# T = H: `None` means "as many inference steps as hidden layers" wherever T is configured.
INFERENCE_STEPS = None

# μPC's activity step, batch-mean convention, ReLU networks (linear and tanh: 1).
ACTIVITY_LR_BATCH_MEAN = 0.5
ACTIVITY_LR_BATCH_MEAN_LINEAR_TANH = 1.0
# The same step in this library's per-example convention at the published batch size.
ACTIVITY_LR = ACTIVITY_LR_BATCH_MEAN / BATCH_SIZE

# μPC weight learning rates (Adam) and activity steps (batch-mean), by dataset.
WEIGHT_LR = {"mnist": 0.1, "fashion-mnist": 0.05, "cifar10": 0.1}
ACTIVITY_LR_BATCH_MEAN_BY_DATASET = {"mnist": 0.5, "fashion-mnist": 0.5, "cifar10": 0.01}
# The default μPC weight learning rate (MNIST).
MUPC_WEIGHT_LR = WEIGHT_LR["mnist"]

# Backprop on the same Depth-μP network (Adam): the depth sweep and CIFAR-10; 128-layer MNIST.
BP_WEIGHT_LR = 1e-2
BP_WEIGHT_LR_MNIST_128 = 5e-3

# The learning-rate transfer grid (activity rates batch-mean, as published).
TRANSFER_WEIGHT_LRS = (0.5, 0.1, 0.05, 0.01)
TRANSFER_ACTIVITY_LRS = (1e3, 5e2, 1e2, 5e1, 1e1, 5.0, 1.0, 0.5, 0.1, 0.05, 0.01)
# Sizes of the transfer sweeps: widths at H = 8, depths at N = 512.
TRANSFER_WIDTHS = (64, 128, 256, 512, 1024)
TRANSFER_DEPTHS = (8, 16, 32, 64, 128)
TRANSFER_DEPTH = 8
# Depths of the test-accuracy-against-depth experiment.
DEPTHS = (8, 16, 32, 64, 128)
SEEDS = 3

# Per-channel pixel normalisation (mean, sd) after scaling to [0, 1].
MNIST_NORMALISATION = ((0.1307,), (0.3081,))
FASHION_MNIST_NORMALISATION = ((0.5,), (0.5,))
