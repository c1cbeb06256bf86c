"""mupc: very deep predictive coding networks with μPC (Depth-μP), in JAX."""

from . import experiments as experiments, nn as nn
from ._activity_init import (
    ActivityInit as ActivityInit,
    AmortisedInit as AmortisedInit,
    FeedforwardInit as FeedforwardInit,
    NormalInit as NormalInit,
    ZerosInit as ZerosInit,
)
from ._batch_energy import (
    BatchEnergy as BatchEnergy,
    CoupledEnergy as CoupledEnergy,
    NetworkEnergy as NetworkEnergy,
)
from ._by_inference import (
    classify_by_inference as classify_by_inference,
    reconstruct as reconstruct,
)
from ._checkpoint import (
    load_checkpoint as load_checkpoint,
    load_network as load_network,
    read_checkpoint_config as read_checkpoint_config,
    save_checkpoint as save_checkpoint,
)
from ._clamp import Clamp as Clamp
from ._coupling import (
    Amortised as Amortised,
    Bidirectional as Bidirectional,
    Coupling as Coupling,
)
from ._data import (
    Dataset as Dataset,
    DatasetError as DatasetError,
    TextCorpus as TextCorpus,
    TextWindows as TextWindows,
    corpus_names as corpus_names,
    dataset_names as dataset_names,
    iterate_batches as iterate_batches,
    iterate_text_batches as iterate_text_batches,
    load_corpus as load_corpus,
    load_dataset as load_dataset,
    ngram_cross_entropy as ngram_cross_entropy,
    num_batches as num_batches,
    synthetic_dataset as synthetic_dataset,
    text_windows as text_windows,
)
from ._diagnostics.coords import Coordinates as Coordinates, coordinate_check as coordinate_check
from ._diagnostics.hessian import (
    DenseSpectrum as DenseSpectrum,
    HessianSpectrum as HessianSpectrum,
    LanczosSpectrum as LanczosSpectrum,
    SpectrumMethod as SpectrumMethod,
    activity_hessian as activity_hessian,
    hessian_spectrum as hessian_spectrum,
    lanczos_tridiagonal as lanczos_tridiagonal,
    track_hessian as track_hessian,
)
from ._diagnostics.signal import (
    DecileSummary as DecileSummary,
    LearningSignal as LearningSignal,
    decile_summary as decile_summary,
    learning_signal as learning_signal,
)
from ._diagnostics.theory import (
    Equilibrium as Equilibrium,
    equilibrium_activities as equilibrium_activities,
    equilibrium_energy as equilibrium_energy,
    linear_activity_hessian as linear_activity_hessian,
    output_covariance as output_covariance,
    output_jacobians as output_jacobians,
)
from ._energy import (
    energy as energy,
    layer_energies as layer_energies,
    prediction_errors as prediction_errors,
)
from ._evaluation import Evaluation as Evaluation, evaluate as evaluate
from ._generate import generate as generate
from ._inference import (
    ContinuousInference as ContinuousInference,
    DiscreteInference as DiscreteInference,
    ErrorInference as ErrorInference,
    InferenceResult as InferenceResult,
    InferenceSolver as InferenceSolver,
    LangevinInference as LangevinInference,
    SequentialInference as SequentialInference,
    activity_lr_from_batch_mean as activity_lr_from_batch_mean,
)
from ._loss import MSE as MSE, Bernoulli as Bernoulli, CrossEntropy as CrossEntropy, Loss as Loss
from ._network import (
    ConvConfig as ConvConfig,
    ConvResNet as ConvResNet,
    LayerSpec as LayerSpec,
    LayerStack as LayerStack,
    NetworkConfig as NetworkConfig,
    PCNetwork as PCNetwork,
    ResNet as ResNet,
    Transformer as Transformer,
    TransformerConfig as TransformerConfig,
)
from ._optimisers import freeze_layers as freeze_layers, make_optimiser as make_optimiser
from ._pair import NetworkPair as NetworkPair
from ._parallel import ParallelTrainer as ParallelTrainer, device_mesh as device_mesh
from ._parameterisation import (
    Multipliers as Multipliers,
    MuPC as MuPC,
    NeuralTangent as NeuralTangent,
    Parameterisation as Parameterisation,
    StandardPC as StandardPC,
)
from ._prior import GaussianPrior as GaussianPrior
from ._states import States as States
from ._training import (
    BPTrainer as BPTrainer,
    Inferred as Inferred,
    PCTrainer as PCTrainer,
    StepMetrics as StepMetrics,
    Trainer as Trainer,
    TrainState as TrainState,
)
from ._version import __version__ as __version__
