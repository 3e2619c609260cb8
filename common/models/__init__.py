"""The model registry: ``create_model(name, **kwargs)`` for every architecture in the repository.

Architectures register themselves with ``@MODELS.register("name")`` where they are defined; tests
iterate over the registry, so a new model is tested automatically.
"""

from typing import Any

from torch import nn

from common.registry import Registry

MODELS: Registry = Registry("model")


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name``; ``kwargs`` go to its builder."""
    return MODELS.get(name)(**kwargs)


def input_shape(name: str) -> tuple[int, ...]:
    """The ``(C, H, W)`` input a registered model expects with its default arguments.

    Builders declare it as an ``input_shape`` attribute; tests use it to run every model.
    """
    return tuple(MODELS.get(name).input_shape)


from common.models import lenet, mbconv, torchvision_models, vgg  # noqa: E402,F401  (registers models)

__all__ = ["MODELS", "create_model", "input_shape"]
