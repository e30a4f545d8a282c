"""Starting a registered model from weights in torchvision's layout (``train.init``).

Every published TSM recipe starts its 2D backbone from ImageNet, and the 3D ResNets from
Kinetics; from scratch a student lands far below the public figures. A model here is assembled
from the modules of a torchvision network (its stem and stages are that network's own layers,
some convolutions wrapped by a temporal shift), so each of its tensors *is* a tensor of that
network: the builders record, by tensor identity, which torchvision key each of our keys is
(:func:`torchvision_keys`). A state dict in torchvision's layout then loads key by key, whatever
the wrapping, and the classifier is re-initialised when its class count differs.

``train.init`` is a torchvision weights name of the model's architecture (``IMAGENET1K_V2``,
``KINETICS400_V1``), fetched through torchvision's weights API where the machine can reach the
model hub, or the path or storage URI of a state dict saved with ``torch.save`` or safetensors.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from training import storage

CLASSIFIER = ("fc.weight", "fc.bias")


@dataclass(frozen=True)
class TorchvisionSource:
    """The torchvision architecture a model was built from, and its key → our key."""

    arch: str
    keys: dict[str, str]


def tensors(net: nn.Module) -> dict[str, Tensor]:
    """``net``'s tensors by state-dict key, taken before a builder wraps any of its layers (a
    temporal shift moves ``layer1.0.conv1.weight`` to ``layer1.0.conv1.inner.weight``)."""
    return dict(net.state_dict(keep_vars=True))


def torchvision_keys(layout: dict[str, Tensor], model: nn.Module, classifier: str) -> dict[str, str]:
    """torchvision keys (``layout``, from :func:`tensors`) → ``model``'s, for every tensor ``model``
    took over (found by identity), plus the classifier (``fc`` or ``classifier.1``) onto ``model.fc``."""
    ours = {id(tensor): key for key, tensor in model.state_dict(keep_vars=True).items()}
    keys = {key: ours[id(t)] for key, t in layout.items() if id(t) in ours}
    keys |= {f"{classifier}.weight": "fc.weight", f"{classifier}.bias": "fc.bias"}
    return keys


@dataclass(frozen=True)
class InitReport:
    """What :func:`load_initial_weights` did: tensors loaded, and whether the classifier was."""

    loaded: int
    classifier_loaded: bool


def read_state_dict(source: str, arch: str) -> dict[str, Tensor]:
    """The state dict ``source`` names: a torchvision weights name of ``arch``, else a file."""
    from torchvision.models import get_model_weights

    choices = get_model_weights(arch)
    if source not in choices.__members__:
        return _read_file(source, arch, list(choices.__members__))
    try:
        return choices[source].get_state_dict(progress=False)
    except OSError as error:  # URLError is an OSError: no route to the model hub, or a passing outage
        raise OSError(
            f"train.init: cannot download {arch} {source} ({error}); save the state dict where this machine "
            "can read it and give its path"
        ) from error


def _read_file(location: str, arch: str, names: list[str]) -> dict[str, Tensor]:
    try:
        data = storage.read_bytes(location)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"train.init: {storage.display(location)} is neither a file nor a weights name of {arch} "
            f"(torchvision offers {', '.join(names)})"
        ) from None
    try:
        if location.endswith(".safetensors"):
            from safetensors.torch import load

            return load(data)
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # safetensors and torch.load raise many kinds for a damaged file
        raise ValueError(f"train.init: {storage.display(location)} is not a readable state dict ({error})") from error
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"train.init: {storage.display(location)} holds no state dict of tensors")
    return state


def load_initial_weights(model: nn.Module, source: str) -> InitReport:
    """Copy the weights ``source`` names into ``model`` (built with its ``torchvision`` source).

    Every tensor the model took from torchvision must be given, with its shape; the classifier is
    loaded when its shape fits (same class count) and kept as initialised otherwise. Anything else
    is one ``ValueError`` listing the missing, unexpected and mismatched keys."""
    origin: TorchvisionSource | None = getattr(model, "torchvision", None)
    if origin is None:
        raise ValueError(f"train.init: {type(model).__name__} was not built from a torchvision network")
    given = read_state_dict(source, origin.arch)
    ours = model.state_dict()
    missing = [key for key, mine in origin.keys.items() if mine not in CLASSIFIER and key not in given]
    unexpected = [key for key in given if key not in origin.keys]
    mismatched = [
        f"{key} {tuple(given[key].shape)} for {tuple(ours[mine].shape)}"
        for key, mine in origin.keys.items()
        if key in given and mine not in CLASSIFIER and given[key].shape != ours[mine].shape
    ]
    if missing or unexpected or mismatched:
        lines = [("missing", missing), ("unexpected", unexpected), ("of another shape", mismatched)]
        listed = "; ".join(
            f"{what}: {', '.join(keys[:8])}{' …' if len(keys) > 8 else ''}" for what, keys in lines if keys
        )
        raise ValueError(f"train.init: {source} does not fit {origin.arch}'s layout ({listed})")
    classifier = [key for key, mine in origin.keys.items() if mine in CLASSIFIER]
    fits = all(key in given and given[key].shape == ours[origin.keys[key]].shape for key in classifier)
    update = {
        mine: given[key] for key, mine in origin.keys.items() if key in given and (mine not in CLASSIFIER or fits)
    }
    with torch.no_grad():
        for key, value in update.items():
            ours[key].copy_(value)
    return InitReport(loaded=len(update), classifier_loaded=fits)
