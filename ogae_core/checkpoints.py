"""Model files and training checkpoints: safetensors for tensors, JSON for the rest.

* :func:`save_model` / :func:`load_model`: ``model.safetensors`` (the method's whole
  ``state_dict``: backbone weights prefixed ``backbone.`` plus method buffers such as the
  Deep SVDD center) and ``model.json`` (method name, hyperparameters, backbone options —
  enough to rebuild the bare network with :class:`ogae_core.nets.MnistBackbone` without
  any training code).
* Training checkpoints (used by :func:`ogae_core.train.train`): a directory written
  atomically after every epoch (written next to it, then swapped in) holding the model,
  the best hold-out weights of the current phase, the Adam state and the RNG states
  (safetensors) and the loop state with the history (``trainer_state.json``). No pickle.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ogae_core.atomic import atomic_write_dir, atomic_write_file
from ogae_core.batching import resolve_device
from ogae_core.methods import Method, build_method
from ogae_core.nets import backbone_config_from_dict

__all__ = ["checkpoint_path", "load_checkpoint", "load_model", "model_config", "save_checkpoint", "save_model",
           "saved_model_config", "state_dict_cpu"]


class ConfigLike(Protocol):
    """What this module needs of a training config (e.g. :class:`ogae_core.train.TrainConfig`)."""

    def to_dict(self) -> dict: ...


def model_config(method: Method, train_config: ConfigLike | None = None) -> dict:
    """JSON config that rebuilds ``method`` (and, with the backbone keys alone, the bare
    network via :class:`ogae_core.nets.MnistBackbone`)."""
    cfg = {
        "format": "ogae-model/1",
        "method": method.name,
        "hyperparameters": method.config.to_dict(),
        "backbone": method.backbone_config.to_dict(),
        "state_dict_prefix_backbone": "backbone.",
    }
    if train_config is not None:
        cfg["train"] = train_config.to_dict()
    return cfg


def state_dict_cpu(module: torch.nn.Module) -> dict:
    """Detached, contiguous CPU copies of a module's ``state_dict`` tensors."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def save_model(directory: str | Path, method: Method, train_config: ConfigLike | None = None, *,
               overwrite: bool = False) -> Path:
    """Write ``model.safetensors`` (state_dict) and ``model.json`` (config) into ``directory``.

    Each file is written atomically. Raises ``FileExistsError`` when those files exist and
    ``overwrite`` is false.

    Examples
    --------
    >>> import tempfile
    >>> from ogae_core.methods import build_method
    >>> d = save_model(tempfile.mkdtemp(), build_method("ae", backbone={"latent_dim": 4}))
    >>> load_model(d).backbone_config.latent_dim
    4
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = [directory / "model.safetensors", directory / "model.json"]
    if not overwrite and any(f.exists() for f in files):
        raise FileExistsError(f"{directory} already holds a model; pass overwrite=True to replace it")
    state = state_dict_cpu(method)
    atomic_write_file(files[0], lambda tmp: save_file(state, str(tmp)))
    text = json.dumps(model_config(method, train_config), indent=2)
    atomic_write_file(files[1], lambda tmp: tmp.write_text(text))
    return directory


def saved_model_config(directory: str | Path) -> dict:
    """The ``model.json`` :func:`save_model` wrote in ``directory`` (method, hyperparameters,
    network and, when given, the trainer options); ``FileNotFoundError`` naming a missing file.

    Examples
    --------
    >>> import tempfile
    >>> from ogae_core.methods import build_method
    >>> saved_model_config(save_model(tempfile.mkdtemp(), build_method("ae")))["method"]
    'ae'
    """
    directory = Path(directory)
    for p in (directory / "model.json", directory / "model.safetensors"):
        if not p.is_file():
            raise FileNotFoundError(f"missing {p.name} in {directory}")
    return json.loads((directory / "model.json").read_text())


def load_model(directory: str | Path, device: str | torch.device = "cpu", config: dict | None = None) -> Method:
    """Rebuild a method saved by :func:`save_model` (eval mode); ``config``: its
    :func:`saved_model_config` when the caller has read it already."""
    weights = Path(directory) / "model.safetensors"
    cfg = config if config is not None else saved_model_config(directory)
    if not weights.is_file():
        raise FileNotFoundError(f"missing {weights.name} in {directory}")
    # the saved network options as they are (a dict would take today's method defaults for missing keys)
    method = build_method(cfg["method"], cfg["hyperparameters"], backbone_config_from_dict(cfg["backbone"]))
    method.load_state_dict(load_file(str(weights)))
    return method.to(resolve_device(device)).eval()


def checkpoint_path(ckpt: str | Path) -> Path | None:
    """The checkpoint directory to read for ``ckpt``, or ``None`` when there is none.

    A process killed between the two renames of an atomic swap leaves only the previous
    checkpoint, renamed aside (``.latest.old-*``, or ``latest.old`` from older versions):
    that one is returned then.

    Examples
    --------
    >>> checkpoint_path("/nonexistent/latest") is None
    True
    """
    ckpt = Path(ckpt)
    if ckpt.is_dir():
        return ckpt
    legacy = ckpt.with_name(ckpt.name + ".old")
    if legacy.is_dir():
        return legacy
    parent = ckpt.parent
    aside = sorted(parent.glob(f".{ckpt.name}.old-*")) if parent.is_dir() else []
    return aside[0] if aside else None


def save_checkpoint(ckpt: Path, method: Method, optimizer, best_state, loop: dict, gen: torch.Generator,
                    config: ConfigLike) -> None:
    """Write a training checkpoint directory atomically (see the module docstring)."""
    def write(d: Path) -> None:
        save_file(state_dict_cpu(method), str(d / "model.safetensors"))
        if best_state is not None:
            save_file(best_state, str(d / "best.safetensors"))
        opt_state = optimizer.state_dict()
        tensors, meta = {}, {}
        for pid, st in opt_state["state"].items():
            for k, v in st.items():
                if isinstance(v, torch.Tensor):
                    tensors[f"{pid}.{k}"] = v.detach().to("cpu").contiguous().clone()
                else:
                    meta[f"{pid}.{k}"] = v
        tensors["__rng_torch"] = torch.get_rng_state()
        tensors["__rng_gen"] = gen.get_state()
        device = next(method.parameters()).device
        if device.type == "cuda":  # VAE sampling on the GPU uses the CUDA generator
            tensors["__rng_cuda"] = torch.cuda.get_rng_state(device)
        save_file(tensors, str(d / "optimizer.safetensors"))
        state = dict(loop, param_groups=opt_state["param_groups"], optimizer_scalars=meta,
                     model=model_config(method, config))
        (d / "trainer_state.json").write_text(json.dumps(state, indent=1, default=_json_default))
    atomic_write_dir(ckpt, write)
    for stale in [ckpt.with_name(ckpt.name + ".old"), *ckpt.parent.glob(f".{ckpt.name}.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)  # a previous checkpoint left aside by a killed swap


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.bool_):
        return bool(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def load_checkpoint(ckpt: Path, method: Method, optimizer, gen: torch.Generator, config: ConfigLike):
    """Restore a checkpoint written by :func:`save_checkpoint` into ``method``, ``optimizer``
    and ``gen`` (and torch's global RNG); returns ``(loop state, best weights or None)``.

    Raises ``ValueError`` when the checkpoint was made with another method,
    hyperparameters, backbone or training config, ``FileNotFoundError`` when there is none.
    """
    found = checkpoint_path(ckpt)
    if found is None:
        raise FileNotFoundError(f"no checkpoint at {ckpt}")
    ckpt = found
    state = json.loads((ckpt / "trainer_state.json").read_text())
    saved = state["model"]
    mine = model_config(method, config)
    for key in ("method", "hyperparameters", "backbone"):
        if saved[key] != mine[key]:
            raise ValueError(f"checkpoint in {ckpt} was made with a different {key}: {saved[key]} != {mine[key]}")
    cosmetic = ("progress", "log")  # may differ between the interrupted and the resumed call
    a = {k: v for k, v in (saved.get("train") or {}).items() if k not in cosmetic}
    b = {k: v for k, v in (mine.get("train") or {}).items() if k not in cosmetic}
    if a != b:
        raise ValueError(f"checkpoint in {ckpt} was made with a different training config: {a} != {b}")
    device = next(method.parameters()).device
    method.load_state_dict(load_file(str(ckpt / "model.safetensors"), device=str(device)))
    tensors = load_file(str(ckpt / "optimizer.safetensors"))
    torch.set_rng_state(tensors.pop("__rng_torch"))
    gen.set_state(tensors.pop("__rng_gen"))
    cuda_state = tensors.pop("__rng_cuda", None)
    if cuda_state is not None and device.type == "cuda":
        torch.cuda.set_rng_state(cuda_state, device)
    opt_state: dict = {"state": {}, "param_groups": state.pop("param_groups")}
    for key, v in tensors.items():
        pid, name = key.split(".", 1)
        opt_state["state"].setdefault(int(pid), {})[name] = v
    for key, v in state.pop("optimizer_scalars").items():
        pid, name = key.split(".", 1)
        opt_state["state"].setdefault(int(pid), {})[name] = v
    optimizer.load_state_dict(opt_state)
    best_path = ckpt / "best.safetensors"
    best_state = load_file(str(best_path)) if best_path.exists() else None
    return state, best_state
