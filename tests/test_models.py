import pytest
import torch

from costtrain.data.models import MLP, SimpleNN, SmallCNN, build_model, model_name
from costtrain.utils import CosttrainError


@pytest.mark.parametrize("name,shape", [("simple", (1, 28, 28)), ("mlp", (1, 28, 28)),
                                        ("cnn", (3, 32, 32)), ("simple", (3, 32, 32)),
                                        ("mlp", (3, 32, 32)), ("cnn", (1, 28, 28))])
def test_output_shape(name, shape):
    net = build_model(name, shape, 10)
    assert net(torch.randn(5, *shape)).shape == (5, 10)
    assert model_name(net) == name


def test_simple_is_the_classic_net():
    net = SimpleNN()
    assert sum(p.numel() for p in net.parameters()) == 21840  # the mnist_hogwild net
    out = net.eval()(torch.randn(3, 1, 28, 28))
    assert torch.allclose(out.exp().sum(1), torch.ones(3), atol=1e-5)  # log-probabilities


def test_unknown_model_is_a_clear_error():
    with pytest.raises(CosttrainError, match="unknown model 'resnet'.*simple, mlp, cnn"):
        build_model("resnet")


def test_classes_are_exported():
    assert isinstance(build_model("mlp"), MLP) and isinstance(build_model("cnn", (3, 32, 32)), SmallCNN)
