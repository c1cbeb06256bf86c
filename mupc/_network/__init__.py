"""Networks: the interface every PC network implements, and its implementations."""

from .base import Activities as Activities, LayerSpec as LayerSpec, PCNetwork as PCNetwork
from .conv import ConvConfig as ConvConfig, ConvResNet as ConvResNet
from .resnet import NetworkConfig as NetworkConfig, ResNet as ResNet

NETWORKS: dict[str, type[PCNetwork]] = {cls.kind: cls for cls in (ResNet, ConvResNet)}
"""Network families by the `kind` stored in checkpoints."""
