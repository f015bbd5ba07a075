"""The S-H2 patch network: shapes, parameter count, the latent-size option, configs."""
import pytest
import torch

from ogae_core.methods import build_method
from ogae_core.nets import PatchBackbone, PatchBackboneConfig, backbone_config_from_dict, build_backbone


def test_sh2_shapes_and_parameter_count():
    net = PatchBackbone().eval()
    with torch.no_grad():
        out = net(torch.rand(5, 1, 15, 15))
    assert out.z.shape == (5, 400) and out.x_hat.shape == (5, 1, 15, 15)
    assert float(out.x_hat.min()) >= 0 and float(out.x_hat.max()) <= 1
    assert sum(p.numel() for p in net.parameters()) == 4849
    convs = [m for m in net.encoder_conv if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [3, 4, 12, 16] and [c.kernel_size[0] for c in convs] == [5, 3, 3, 3]
    assert all(c.padding == (0, 0) for c in convs)
    deconvs = [m for m in net.decoder_conv if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in deconvs] == [12, 4, 3, 1]
    assert [type(m).__name__ for m in net.encoder_conv][:3] == ["Conv2d", "BatchNorm2d", "GELU"]


def test_latent_size_is_an_option():
    cfg = PatchBackboneConfig(widths=(3, 4, 12, 8))
    assert cfg.latent_dim == 200 and PatchBackbone(cfg).encode(torch.rand(2, 1, 15, 15)).z.shape == (2, 200)
    cfg = PatchBackboneConfig(patch_size=17)
    assert cfg.latent_shape == (16, 7, 7) and PatchBackbone(cfg)(torch.rand(1, 1, 17, 17)).x_hat.shape[-1] == 17


@pytest.mark.parametrize("kwargs, match", [({"patch_size": 14}, "odd"), ({"patch_size": 9}, "too small"),
                                           ({"variational": True}, "variational"), ({"kernel_sizes": (5, 3)}, "one per")])
def test_bad_configs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PatchBackboneConfig(**kwargs)


def test_config_round_trip_and_factory():
    cfg = PatchBackboneConfig(widths=(3, 4, 12, 8), bias=False)
    assert backbone_config_from_dict(cfg.to_dict()) == cfg
    assert isinstance(build_backbone(cfg), PatchBackbone)
    with pytest.raises(ValueError, match="unknown backbone kind"):
        backbone_config_from_dict({"kind": "other"})


@pytest.mark.parametrize("name", ["ae", "sae", "ogae"])
def test_methods_train_on_the_patch_network(name):
    m = build_method(name, {"nu": 0.25} if name == "ogae" else {}, {"kind": "patch"})
    assert m.input_shape == (1, 15, 15)
    phase = m.phases(2)[-1].name
    out = m.loss(torch.rand(16, 1, 15, 15), phase, 0)
    out.total.backward()
    assert out.z.shape == (16, 400) and torch.isfinite(out.total)


def test_bias_free_variant_and_variational_method_error():
    m = build_method("h-dsvdd", {}, {"kind": "patch"})
    assert not any(p.numel() for n, p in m.backbone.named_parameters() if n.endswith("bias"))
    with pytest.raises(ValueError, match="variational"):
        build_method("vae", {}, {"kind": "patch"})
