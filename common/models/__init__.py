"""The model registry: ``create_model(name, **kwargs)`` for every architecture in the repository.

Architectures register themselves with ``@MODELS.register("name")`` where they are defined; tests
iterate over the registry, so a new model is tested automatically.
"""

import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from common.registry import Registry

MODELS: Registry = Registry("model")


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name``; ``kwargs`` go to its builder."""
    return MODELS.get(name)(**kwargs)


def check_model(name: str, kwargs: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`~common.config.ConfigError` unless ``name`` is a registered model and every
    key of ``kwargs`` is an argument of its builder (checked with the config, before any work)."""
    from common.config import ConfigError

    if name not in MODELS:
        raise ConfigError(
            f"model: {name!r} is not a registered model; known: {', '.join(MODELS.names())}"
        )
    params = inspect.signature(MODELS.get(name)).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in kwargs or {}:
        if key not in allowed:
            raise ConfigError(
                f"model_kwargs.{key}: not an argument of model {name!r}; allowed: "
                + (", ".join(allowed) or "none")
            )


def input_shape(name: str) -> tuple[int, ...]:
    """The ``(C, H, W)`` input a registered model expects with its default arguments.

    Builders declare it as an ``input_shape`` attribute; tests use it to run every model.
    """
    return tuple(MODELS.get(name).input_shape)


def example_inputs(name: str, batch: int = 2) -> tuple[Any, ...]:
    """Inputs a registered model runs on with its default arguments: random images of its
    ``input_shape`` (vision models), or the ``example_inputs(batch)`` its builder declares (token
    models, whose inputs are id sequences)."""
    import torch

    builder = MODELS.get(name)
    if hasattr(builder, "example_inputs"):
        return tuple(builder.example_inputs(batch))
    return (torch.randn(batch, *input_shape(name)),)


from common.models import lenet, mbconv, torchvision_models, transformer, vgg  # noqa: E402,F401  (registers models)

__all__ = ["MODELS", "check_model", "create_model", "example_inputs", "input_shape"]
