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
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ogae_core.batching import resolve_device
from ogae_core.methods import Method, build_method

if TYPE_CHECKING:  # pragma: no cover
    from ogae_core.train import TrainConfig

__all__ = ["load_model", "model_config", "save_model"]


def model_config(method: Method, train_config: TrainConfig | None = None) -> dict:
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


def _atomic_dir_write(target: Path, write: Callable[[Path], None]) -> None:
    """Write a directory's files into a temp sibling, then swap it in place of ``target``."""
    target = Path(target)
    tmp = target.with_name(target.name + ".tmp")
    old = target.with_name(target.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _state_dict_cpu(module: torch.nn.Module) -> dict:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def save_model(directory: str | Path, method: Method, train_config: TrainConfig | None = None, *, overwrite: bool = False) -> Path:
    """Write ``model.safetensors`` (state_dict) and ``model.json`` (config) into ``directory``.

    Raises ``FileExistsError`` when those files exist and ``overwrite`` is false.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = [directory / "model.safetensors", directory / "model.json"]
    if not overwrite and any(f.exists() for f in files):
        raise FileExistsError(f"{directory} already holds a model; pass overwrite=True to replace it")
    tmp = directory / "model.safetensors.tmp"
    save_file(_state_dict_cpu(method), str(tmp))
    os.replace(tmp, files[0])
    tmpj = directory / "model.json.tmp"
    tmpj.write_text(json.dumps(model_config(method, train_config), indent=2))
    os.replace(tmpj, files[1])
    return directory


def load_model(directory: str | Path, device: str | torch.device = "cpu") -> Method:
    """Rebuild a method saved by :func:`save_model` (eval mode)."""
    directory = Path(directory)
    cfg_path, weights = directory / "model.json", directory / "model.safetensors"
    for p in (cfg_path, weights):
        if not p.is_file():
            raise FileNotFoundError(f"missing {p.name} in {directory}")
    cfg = json.loads(cfg_path.read_text())
    method = build_method(cfg["method"], cfg["hyperparameters"], cfg["backbone"])
    method.load_state_dict(load_file(str(weights)))
    return method.to(resolve_device(device)).eval()


def _save_checkpoint(ckpt: Path, method: Method, optimizer, best_state, loop: dict, gen: torch.Generator, config: TrainConfig) -> None:
    def write(d: Path) -> None:
        save_file(_state_dict_cpu(method), str(d / "model.safetensors"))
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
    _atomic_dir_write(ckpt, write)


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.bool_):
        return bool(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _load_checkpoint(ckpt: Path, method: Method, optimizer, gen: torch.Generator, config: TrainConfig):
    if not ckpt.exists() and ckpt.with_name(ckpt.name + ".old").exists():
        ckpt = ckpt.with_name(ckpt.name + ".old")  # killed between the two renames
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
