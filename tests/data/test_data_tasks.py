"""mnistc_task: the paper's exact split sizes on real MNIST, metadata, cache and determinism."""
from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from ogae_core.data import corrupt, mnistc_task
from ogae_core.data.manifests import tasks_manifest

SMALL = {"train_corruptions": ("identity", "stripe"), "test_corruptions": ("stripe", "translate")}


@pytest.fixture(scope="module")
def task_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("task-cache")


@pytest.fixture
def cache_env(task_cache, monkeypatch):
    monkeypatch.setenv("OGAE_CACHE", str(task_cache))
    return task_cache


@pytest.mark.slow
@pytest.mark.parametrize("anomaly, val, test", [(8, 5952, 35946), (4, 5976, 35919)])
def test_paper_split_sizes(real_mnist, cache_env, anomaly, val, test):
    task = mnistc_task(3, anomaly, mnist=real_mnist)
    c = task.counts()
    assert c["train"] + c["early_stop"] == 6131 * 3 == 18393
    assert c["early_stop"] == round(0.1 * 18393)
    assert (c["validation"], c["test"]) == (val, test)
    expected = {t["name"]: t["expected_counts"] for t in tasks_manifest()["tasks"]}[f"3v{anomaly}"]
    assert c == expected
    n_anom_train = int((real_mnist.train_labels == anomaly).sum())
    assert int(task.test.labels.sum()) == 3 * n_anom_train
    assert int(task.validation.labels.sum()) == 3 * int((real_mnist.test_labels == anomaly).sum())
    assert not task.train.labels.any() and not task.early_stop.labels.any()
    # every item's digit is the MNIST label of its source image
    np.testing.assert_array_equal(task.test.digits, real_mnist.train_labels[task.test.source_index])
    np.testing.assert_array_equal(task.validation.digits, real_mnist.test_labels[task.validation.source_index])
    # per-corruption breakdown of the test split
    names, counts = np.unique(task.test.corruptions, return_counts=True)
    assert sorted(names.tolist()) == ["brightness", "canny_edges", "stripe"] and set(counts) == {test // 3}
    names, counts = np.unique(np.concatenate([task.train.corruptions, task.early_stop.corruptions]),
                              return_counts=True)
    assert sorted(names.tolist()) == ["identity", "motion_blur", "translate"] and set(counts) == {6131}
    img = task.test.images
    assert img.dtype == np.float32 and img.shape == (test, 28, 28) and 0 <= img.min() and img.max() <= 1


def test_items_are_the_corrupted_sources(real_mnist, cache_env):
    task = mnistc_task(3, 8, mnist=real_mnist, **SMALL)
    sel = np.flatnonzero(task.test.corruptions == "translate")[:40]
    src = task.test.source_index[sel]
    again = corrupt(real_mnist.train_images[src], "translate", seed=0, indices=src)
    np.testing.assert_array_equal(task.test.pixels[sel], again)
    sel = np.flatnonzero(task.validation.corruptions == "stripe")[:10]
    src_imgs = real_mnist.test_images[task.validation.source_index[sel]]
    np.testing.assert_array_equal(task.validation.pixels[sel], corrupt(src_imgs, "stripe"))
    frame = task.to_frame()
    assert set(frame["split"]) == {"train", "early_stop", "validation", "test"}
    assert len(frame) == sum(task.counts().values())
    both = np.concatenate([task.train.source_index * 2 + (task.train.corruptions == "stripe"),
                           task.early_stop.source_index * 2 + (task.early_stop.corruptions == "stripe")])
    assert len(np.unique(both)) == len(both) == 2 * 6131  # holdout and train partition the items


def test_cache_hit_is_fast_and_identical(real_mnist, cache_env):
    first = mnistc_task(3, 8, mnist=real_mnist, **SMALL)
    t = time.perf_counter()
    second = mnistc_task(3, 8, **SMALL)  # no MNIST given: must come from the cache
    elapsed = time.perf_counter() - t
    assert second.cache_key == first.cache_key
    for s in ("train", "early_stop", "validation", "test"):
        np.testing.assert_array_equal(getattr(first, s).pixels, getattr(second, s).pixels)
    print(f"second load {elapsed:.2f}s")  # speed goal lives in benchmarks/bench_data.py


@pytest.mark.slow
def test_damaged_cache_is_rebuilt(real_mnist, cache_env):
    good = mnistc_task(3, 8, mnist=real_mnist, **SMALL)
    path = next(cache_env.glob(f"tasks/*{good.cache_key[:20]}.npz"))
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 3] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.warns(UserWarning, match="damaged"):
        rebuilt = mnistc_task(3, 8, mnist=real_mnist, **SMALL)
    np.testing.assert_array_equal(rebuilt.test.pixels, good.test.pixels)
    path.with_suffix(".sha256").write_text("{}")
    with pytest.warns(UserWarning, match="damaged"):
        mnistc_task(3, 8, mnist=real_mnist, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mnistc_task(3, 8, mnist=real_mnist, **SMALL)


@pytest.mark.slow
def test_determinism_and_seed(real_mnist, cache_env):
    lists = {"train_corruptions": ("identity",), "test_corruptions": ("translate",)}
    a = mnistc_task(3, 8, mnist=real_mnist, use_cache=False, **lists)
    b = mnistc_task(3, 8, mnist=real_mnist, use_cache=False, **lists)
    c = mnistc_task(3, 8, mnist=real_mnist, use_cache=False, seed=1, **lists)
    np.testing.assert_array_equal(a.early_stop.source_index, b.early_stop.source_index)
    np.testing.assert_array_equal(a.test.pixels, b.test.pixels)
    assert not np.array_equal(a.early_stop.source_index, c.early_stop.source_index)
    assert not np.array_equal(a.test.pixels, c.test.pixels)
    assert a.cache_key != c.cache_key


def test_any_pair_and_lists(real_mnist, cache_env):
    t = mnistc_task(1, 7, train_corruptions=["scale"], test_corruptions=["stripe"], mnist=real_mnist,
                    use_cache=False)
    n1, n7 = np.bincount(real_mnist.train_labels)[[1, 7]]
    assert len(t.train) + len(t.early_stop) == n1 and len(t.test) == n1 + n7


def test_bad_arguments(real_mnist):
    with pytest.raises(ValueError, match="differ"):
        mnistc_task(3, 3, mnist=real_mnist)
    with pytest.raises(ValueError, match="digit"):
        mnistc_task(3, 10, mnist=real_mnist)
    with pytest.raises(ValueError, match="unknown test_corruptions"):
        mnistc_task(3, 8, test_corruptions=("snow",), mnist=real_mnist)
    with pytest.raises(ValueError, match="twice"):
        mnistc_task(3, 8, train_corruptions=("identity", "identity"), mnist=real_mnist)
    with pytest.raises(ValueError, match="at least one"):
        mnistc_task(3, 8, train_corruptions=(), mnist=real_mnist)


def test_explicit_partial_mnist_never_shares_the_cache_entry_of_the_real_data(tmp_path, monkeypatch):
    """A task built from a slice of MNIST is cached under its own key."""
    import numpy as np

    from ogae_core.data import mnist as mnist_module
    from ogae_core.data import tasks

    monkeypatch.setenv("OGAE_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    labels = np.tile(np.arange(10), 30).astype(np.int64)
    small = mnist_module.MNIST(
        train_images=rng.integers(0, 256, size=(300, 28, 28), dtype=np.uint8), train_labels=labels,
        test_images=rng.integers(0, 256, size=(100, 28, 28), dtype=np.uint8), test_labels=labels[:100],
        source="test slice",
    )
    other = mnist_module.MNIST(small.train_images[::-1].copy(), small.train_labels, small.test_images,
                               small.test_labels, "reversed slice")
    a = tasks.mnistc_task(3, 8, mnist=small, train_corruptions=("identity",), test_corruptions=("stripe",))
    b = tasks.mnistc_task(3, 8, mnist=other, train_corruptions=("identity",), test_corruptions=("stripe",))
    assert a.cache_key != b.cache_key
    assert not np.array_equal(a.train.pixels, b.train.pixels)
