"""Networks: the interface every PC network implements, and its implementations."""

from .base import Activities as Activities, LayerSpec as LayerSpec, PCNetwork as PCNetwork
from .conv import ConvConfig as ConvConfig, ConvResNet as ConvResNet
from .resnet import NetworkConfig as NetworkConfig, ResNet as ResNet
from .stack import LayerStack as LayerStack, StackStructure as StackStructure
from .transformer import Transformer as Transformer, TransformerConfig as TransformerConfig

NETWORKS: dict[str, type[PCNetwork]] = {
    cls.kind: cls for cls in (ResNet, ConvResNet, LayerStack, Transformer)
}
"""Network families by the `kind` stored in checkpoints."""
