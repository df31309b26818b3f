"""The network descriptor, the padding helper, feature levels and growth through it."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from uniremoval import nets
from uniremoval.infer import Engine
from uniremoval.losses.cluster import EncoderEmbedder
from uniremoval.losses.contrast import TeacherEncoderFeatures
from uniremoval.nets.descriptor import NetDescriptor
from uniremoval.nets.nafnet import NAFBlock, NAFNet


def test_build_attaches_a_descriptor_for_each_architecture() -> None:
    net = nets.build("nafnet", width=8, enc_blocks=[1, 1, 1], middle_blocks=1)
    d = net.descriptor
    assert isinstance(d, NetDescriptor) and nets.descriptor(net) is d
    assert (d.arch, d.size_multiple, d.feature_channels) == ("nafnet", 8, (8, 16, 32, 64))
    assert d.encoder_features and d.has_features and d.growable and d.grow_block is NAFBlock
    assert d.receptive_radius is None and not d.tiling_exact(1024)  # TLC/global pooling
    assert set(d.precisions) == {"fp32", "bf16", "fp16"}
    # A preset keeps its registry name.
    assert nets.build("nafnet-small").descriptor.arch == "nafnet-small"
    p = nets.build("plain", width=4, depth=3).descriptor
    assert (p.size_multiple, p.receptive_radius, p.has_features, p.growable) == (1, 3, False, False)
    assert p.tiling_exact(12) and not p.tiling_exact(8)
    # A network built by its class (not the registry) is described the same way.
    assert nets.descriptor(NAFNet(width=8, enc_blocks=[1, 1], middle_blocks=1)).feature_channels == (8, 16, 32)


def test_wrappers_and_unregistered_modules_are_described() -> None:
    net = nets.build("nafnet", width=8, enc_blocks=[1, 1], middle_blocks=1)
    assert nets.descriptor(torch.compile(net)) is net.descriptor
    assert nets.descriptor(torch.nn.DataParallel(net)) is net.descriptor

    class Legacy(torch.nn.Module):  # the implicit attributes of the protocol
        size_multiple = 4
        feature_channels = [3, 6]
        receptive_radius = 2

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    d = nets.descriptor(Legacy())
    assert (d.arch, d.size_multiple, d.feature_channels, d.receptive_radius) == ("Legacy", 4, (3, 6), 2)
    assert nets.size_multiple(Legacy()) == 4 and nets.size_multiple(torch.nn.Identity()) == 1


def test_registry_lives_in_its_module_and_is_re_exported() -> None:
    from uniremoval.nets import registry

    assert nets.build is registry.build and nets.register is registry.register
    assert nets.available is registry.available and nets.size_multiple is registry.size_multiple
    assert {"nafnet", "plain", "patchgan"} <= set(nets.available())


@pytest.mark.parametrize("shape", [(5, 7), (8, 8), (13, 3), (1, 1), (2, 9)])
def test_pad_to_multiple_mirrors_like_f_pad_and_beyond(shape: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *shape)
    xp, hw = nets.pad_to_multiple(x, 8)
    assert hw == shape and xp.shape[-2] % 8 == 0 and xp.shape[-1] % 8 == 0
    assert torch.equal(xp[..., : shape[0], : shape[1]], x)
    ph, pw = xp.shape[-2] - shape[0], xp.shape[-1] - shape[1]
    if ph < shape[0] and pw < shape[1]:  # where F.pad can reflect, the same numbers
        assert torch.equal(xp, F.pad(x, (0, pw, 0, ph), mode="reflect"))
    if shape == (8, 8):
        assert xp is x
    rp, _ = nets.pad_to_multiple(x, 8, mode="replicate")
    assert torch.equal(rp[..., -1, : shape[1]], x[..., -1, :])
    with pytest.raises(ValueError, match="mode"):
        nets.pad_to_multiple(x, 3, mode="wrap")  # type: ignore[arg-type]


def test_features_use_the_encoder_or_the_protocol() -> None:
    torch.manual_seed(0)
    net = nets.build("nafnet", width=8, enc_blocks=[1, 1], middle_blocks=1).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        _, ref = net(x, return_features=True)
        got = nets.features(net, x)
    assert len(got) == 3 and all(torch.equal(a, b) for a, b in zip(got, ref))
    with pytest.raises(ValueError, match="no feature levels"):
        nets.features(nets.build("plain", width=4, depth=2), x)


class _FeatNet(torch.nn.Module):
    """A non-NAFNet that follows the feature protocol, with NAFNet-like attribute names that
    mean something else (the old extractors took any net with ``intro``/``encoders``... for a
    NAFNet and ran those parts by hand)."""

    feature_channels = [4, 6]
    size_multiple = 2

    def __init__(self) -> None:
        super().__init__()
        self.intro = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.encoders = torch.nn.ModuleList([torch.nn.Identity()])
        self.downs = torch.nn.ModuleList([torch.nn.Conv2d(4, 5, 2, stride=2)])
        self.middle = torch.nn.Identity()
        self.deep = torch.nn.Conv2d(4, 6, 2, stride=2)

    def forward(self, x: torch.Tensor, return_features: bool = False):  # type: ignore[no-untyped-def]
        a = self.intro(x)
        feats = [a, self.deep(a)]
        return (x, feats) if return_features else x


def test_feature_extractors_follow_the_descriptor_not_attribute_names() -> None:
    net = _FeatNet()
    x = torch.rand(2, 3, 8, 8)
    g = EncoderEmbedder(net, pool="mean")
    assert g.dim == 6 and g(x).shape == (2, 6)
    phi = TeacherEncoderFeatures(_FeatNet())
    assert [f.shape[1] for f in phi(x)] == [4, 6]
    # A network without feature levels is refused up front, not at the first step.
    plain = nets.build("plain", width=4, depth=2)
    with pytest.raises(ValueError, match="no feature levels"):
        EncoderEmbedder(plain)
    with pytest.raises(ValueError, match="no feature levels"):
        TeacherEncoderFeatures(nets.build("plain", width=4, depth=2))


def test_engine_reads_precision_and_tiling_from_the_descriptor() -> None:
    net = nets.build("plain", width=4, depth=4)
    net.descriptor = NetDescriptor(arch="fp32-only", receptive_radius=4, precisions=("fp32",))
    with pytest.raises(ValueError, match="not supported by fp32-only"):
        Engine(net, "cpu", precision="bf16")
    assert Engine(net, "cpu", precision="auto").dtype == torch.float32
    e = Engine(nets.build("plain", width=4, depth=4), "cpu", tile=48, overlap=16)
    assert e.tiling_is_exact(123, 201) and e.tiling_is_exact(40, 40)  # tiled, and one pass
    assert not Engine(nets.build("plain", width=4, depth=5), "cpu", tile=48, overlap=16).tiling_is_exact(123, 201)
    naf = nets.build("nafnet", width=8, enc_blocks=[1, 1], middle_blocks=1)
    assert not Engine(naf, "cpu", tile=48, overlap=16).tiling_is_exact(123, 201)


def test_grow_needs_a_growable_architecture() -> None:
    small = nets.build("nafnet", width=8, enc_blocks=[1, 1], middle_blocks=1)
    with torch.no_grad():
        for name, p in small.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.normal_(0, 0.5)
    big = nets.build("nafnet", width=8, enc_blocks=[1, 2], middle_blocks=2)
    nets.grow(small, big)
    assert big.training  # mode kept
    x = torch.rand(1, 3, 16, 16)
    big.eval()
    with torch.no_grad():
        torch.testing.assert_close(big(x), small(x), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="plain cannot be grown"):
        nets.grow(nets.build("plain", width=4, depth=2), nets.build("plain", width=4, depth=3))
