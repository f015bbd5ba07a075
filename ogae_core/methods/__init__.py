"""Experiment-1 methods on the shared S-H1 backbone, and the registry of their names.

Every method is a loss on a batch plus scoring rules (see :mod:`ogae_core.methods.base`).
Names users type:

========== ============================================ ==================
name       method                                       scorings
========== ============================================ ==================
ae         autoencoder                                  recons, ocsvm
vae        variational autoencoder                      recons, ocsvm
sae        siamese autoencoder (ref. [45])              recons, ocsvm
ogae       OCSVM-guided autoencoder (proposed)          recons, ocsvm
h-dsvdd    hard-boundary Deep SVDD (Ruff et al. 2018)   svdd
s-dsvdd    soft-boundary Deep SVDD (Ruff et al. 2018)   svdd
dspsvdd    Deep SVDD + reconstruction (ref. [28])       svdd
dvaesvdd   Deep SVDD on a VAE (ref. [30])               svdd
========== ============================================ ==================

Examples
--------
>>> from ogae_core.methods import build_method, method_names
>>> method_names()[:3]
('ae', 'vae', 'sae')
>>> build_method("ogae", {"lam": 0.1}).config.lam
0.1
"""
from __future__ import annotations

import dataclasses

from ogae_core.methods.autoencoders import AE, SAE, VAE, AEConfig, SAEConfig, VAEConfig, similarity_term
from ogae_core.methods.base import (
    BATCH_LAYOUTS,
    COMMON_HISTORY_COLUMNS,
    LOSS_TERMS,
    LossOutput,
    Method,
    MethodConfig,
    Phase,
    check_nonnegative,
    kl_divergence,
    reconstruction_error,
)
from ogae_core.methods.ogae import GUIDANCE_REGIMES, STRATEGIES, OgAE, OgAEConfig, strategy_weights
from ogae_core.methods.svdd import (
    DSPSVDD,
    DVAESVDD,
    DSPSVDDConfig,
    DVAESVDDConfig,
    HardDeepSVDD,
    HardDeepSVDDConfig,
    SoftDeepSVDD,
    SoftDeepSVDDConfig,
    init_center,
    soft_radius,
    squared_distance,
)
from ogae_core.methods.slice_methods import (
    SLICE_METHODS,
    AEUNet,
    VQVAETransformer,
    build_slice_method,
    heal_codes,
)
from ogae_core.nets import BackboneConfig, PatchBackboneConfig, backbone_config_from_dict

#: Registry: user-facing name -> method class.
METHODS: dict[str, type[Method]] = {
    cls.name: cls for cls in (AE, VAE, SAE, OgAE, HardDeepSVDD, SoftDeepSVDD, DSPSVDD, DVAESVDD)
}


def method_names() -> tuple[str, ...]:
    """Registered method names, in the paper's table order."""
    return tuple(METHODS)


def get_method(name: str) -> type[Method]:
    """The method class registered under ``name`` (``ValueError`` naming the valid ones)."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {name!r}; choose one of {list(METHODS)}") from None


def method_rows() -> list[tuple[str, str]]:
    """Every (method, scoring) pair: the twelve rows of the paper's Table I."""
    return [(name, s) for name, cls in METHODS.items() for s in cls.scorings]


def hyperparameter_names(name: str) -> tuple[str, ...]:
    """Names of the hyperparameters of method ``name``."""
    return tuple(f.name for f in dataclasses.fields(get_method(name).Config))


def build_method(name: str, hyperparameters: dict | None = None,
                 backbone: BackboneConfig | PatchBackboneConfig | dict | None = None) -> Method:
    """Instantiate method ``name`` with ``hyperparameters`` (unknown names raise).

    Parameters
    ----------
    name : str
        Registered name.
    hyperparameters : dict, optional
        Fields of the method's ``Config`` dataclass.
    backbone : BackboneConfig, PatchBackboneConfig or dict, optional
        Network options (``latent_dim``, ``widths``, ...); a dict with ``"kind": "patch"``
        builds the S-H2 patch network (see :func:`ogae_core.nets.backbone_config_from_dict`).
        On the MNIST network, options a dict (or ``None``) leaves out take the method's
        :attr:`~ogae_core.methods.Method.network_defaults` (OgAE: slope 0.3).

    Examples
    --------
    >>> build_method("sae", backbone={"kind": "patch"}).backbone_config.latent_dim
    400
    >>> build_method("ogae").backbone_config.negative_slope, build_method("ae").backbone_config.negative_slope
    (0.3, 0.01)
    """
    cls = get_method(name)
    config = cls.Config.from_dict(dict(hyperparameters or {}))
    if isinstance(backbone, dict):
        mnist = backbone.get("kind", "mnist") == "mnist"
        backbone = (cls.mnist_backbone({k: v for k, v in backbone.items() if k != "kind"}) if mnist
                    else backbone_config_from_dict(backbone))
    return cls(config, backbone)


__all__ = [
    "BATCH_LAYOUTS", "GUIDANCE_REGIMES", "COMMON_HISTORY_COLUMNS", "check_nonnegative", "AE", "AEConfig", "DSPSVDD", "DSPSVDDConfig", "DVAESVDD", "DVAESVDDConfig", "HardDeepSVDD",
    "HardDeepSVDDConfig", "LOSS_TERMS", "LossOutput", "METHODS", "Method", "MethodConfig", "OgAE",
    "OgAEConfig", "Phase", "SAE", "SAEConfig", "STRATEGIES", "SoftDeepSVDD", "SoftDeepSVDDConfig", "VAE",
    "VAEConfig", "SLICE_METHODS", "AEUNet", "VQVAETransformer", "build_slice_method", "heal_codes", "build_method", "get_method", "hyperparameter_names", "init_center", "kl_divergence",
    "method_names", "method_rows", "reconstruction_error", "similarity_term", "soft_radius",
    "squared_distance", "strategy_weights",
]
