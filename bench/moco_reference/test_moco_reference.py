"""Checks of the PyTorch reference's pieces: split BN against per-group BN, the key shuffle's
effect, the kNN vote on hand-made features, the queue, and one run on a small Arrow stream."""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile

import numpy as np
import pyarrow as pa
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moco_reference as ref  # noqa: E402


def test_split_batchnorm_is_batchnorm_per_interleaved_group():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 5, 5) * 3 + 1
    bn = ref.SplitBatchNorm(3, 4)
    bn.weight.data = torch.tensor([0.5, 1.5, 2.0])
    bn.bias.data = torch.tensor([0.1, -0.2, 0.3])
    y = bn(x)
    running_mean, running_var = torch.zeros(3), torch.zeros(3)
    for g in range(4):
        part = x[g::4]  # sample n in group n mod 4
        mean = part.mean(dim=(0, 2, 3))
        var = part.var(dim=(0, 2, 3), unbiased=False)
        want = (part - mean.view(1, 3, 1, 1)) / torch.sqrt(var.view(1, 3, 1, 1) + bn.eps)
        want = want * bn.weight.view(1, 3, 1, 1) + bn.bias.view(1, 3, 1, 1)
        torch.testing.assert_close(y[g::4], want, rtol=1e-5, atol=1e-5)
        running_mean += 0.1 * mean / 4
        running_var += (0.9 + 0.1 * part.var(dim=(0, 2, 3), unbiased=True)) / 4
    torch.testing.assert_close(bn.running_mean, running_mean)
    torch.testing.assert_close(bn.running_var, running_var)
    bn.eval()  # plain BN on the running statistics
    want = (x - bn.running_mean.view(1, 3, 1, 1)) / torch.sqrt(bn.running_var.view(1, 3, 1, 1) + bn.eps)
    want = want * bn.weight.view(1, 3, 1, 1) + bn.bias.view(1, 3, 1, 1)
    torch.testing.assert_close(bn(x), want, rtol=1e-5, atol=1e-5)


def test_key_shuffle_changes_keys_only_through_split_bn():
    torch.manual_seed(1)
    im = torch.randn(8, 3, 28, 28)
    for splits, same in ((1, True), (4, False)):
        torch.manual_seed(2)
        model = ref.MoCo(dim=16, K=32, m=0.99, T=0.2, bn_splits=splits)
        k_plain = F.normalize(model.encoder_k(im), dim=1)
        perm = torch.randperm(8)
        k_shuffled = F.normalize(model.encoder_k(im[perm]), dim=1)[torch.argsort(perm)]
        assert torch.allclose(k_plain, k_shuffled, atol=1e-5) == same, splits


def test_knn_vote_weights_neighbours_by_similarity():
    class Fixed(torch.nn.Module):  # features = the first two pixels of the red channel
        def forward(self, x):
            return x[:, 0, 0, :2]

    def images(rows):
        out = np.zeros((len(rows), 2, 2, 3), dtype=np.uint8)
        out[:, 0, :2, 0] = rows
        return torch.from_numpy(out)

    # Normalised to ImageNet statistics, 0 becomes negative: use values whose features point
    # along clear directions after normalisation.
    bank = (images([[255, 0], [250, 0], [0, 255]]), torch.tensor([0, 0, 1]))
    test = (images([[255, 10], [0, 250]]), torch.tensor([0, 1]))
    assert ref.knn_accuracy(Fixed(), bank, test, k=2, t=0.1, classes=2) == 1.0
    # With k=3 every test image sees all three; class 0 has two votes, but the test image
    # near class 1 must still pick it thanks to the exp(sim/t) weights.
    assert ref.knn_accuracy(Fixed(), bank, test, k=3, t=0.1, classes=2) == 1.0
    wrong = (test[0], torch.tensor([1, 0]))
    assert ref.knn_accuracy(Fixed(), bank, wrong, k=2, t=0.1, classes=2) == 0.0


def test_queue_takes_keys_at_the_pointer_and_wraps():
    model = ref.MoCo(dim=4, K=6, m=0.99, T=0.2, bn_splits=1)
    keys = [F.normalize(torch.randn(2, 4), dim=1) for _ in range(4)]
    for key in keys:
        model._dequeue_and_enqueue(key)
    torch.testing.assert_close(model.queue[:, 0:2], keys[3].T)
    torch.testing.assert_close(model.queue[:, 2:4], keys[1].T)
    torch.testing.assert_close(model.queue[:, 4:6], keys[2].T)
    assert model.queue_ptr == 2


def write_views(path, batches, size=28, seed=0):
    rng = np.random.default_rng(seed)
    tensor = pa.fixed_shape_tensor(pa.uint8(), [size, size, 3])
    schema = pa.schema([("q", tensor), ("k", tensor), ("epoch", pa.int32())])
    with pa.OSFile(str(path), "wb") as f, pa.ipc.new_stream(f, schema) as w:
        for epoch in batches:
            views = rng.integers(0, 256, (2, 8, size, size, 3), dtype=np.uint8)
            cols = [pa.ExtensionArray.from_storage(tensor, pa.FixedSizeListArray.from_arrays(
                pa.array(v.reshape(-1)), size * size * 3)) for v in views]
            w.write_batch(pa.record_batch(cols + [pa.array([epoch] * 8, pa.int32())], schema=schema))


def write_shard(path, n, seed=0):
    rng = np.random.default_rng(seed)
    with tarfile.open(str(path), "w:gz") as tar:
        for i in range(n):
            png = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), "L").save(png, "PNG")
            for ext, data in (("png", png.getvalue()), ("cls", str(i % 3).encode())):
                info = tarfile.TarInfo(f"{i:06d}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_run_reads_views_and_reports_knn_per_epoch(tmp_path, capsys):
    write_views(tmp_path / "v.arrow", [0, 0, 1, 1])
    write_shard(tmp_path / "bank.tar.gz", 12)
    write_shard(tmp_path / "test.tar.gz", 6, seed=1)
    out = tmp_path / "s.json"
    assert ref.main(["--views", str(tmp_path / "v.arrow"), "--bank", str(tmp_path / "bank.tar.gz"),
                     "--test", str(tmp_path / "test.tar.gz"), "--epochs", "2", "--K", "16",
                     "--knn-k", "5", "--summary-json", str(out)]) == 0
    s = json.loads(out.read_text())
    assert s["steps"] == 4 and s["batch"] == 8 and len(s["losses"]) == 4
    assert len(s["knn_accuracy_per_epoch"]) == 2
    assert all(0 <= a <= 1 for a in [s["knn_accuracy_at_init"], *s["knn_accuracy_per_epoch"]])
    # lr 0.24 per 256 at batch 8, cosine per epoch over 2 epochs: full, then half.
    assert s["lr_per_epoch"] == pytest.approx([0.24 * 8 / 256, 0.24 * 8 / 256 * 0.5])
    assert all(np.isfinite(s["losses"]))


def test_read_shards_rejects_a_sample_without_label(tmp_path):
    path = tmp_path / "bad.tar.gz"
    with tarfile.open(str(path), "w:gz") as tar:
        png = io.BytesIO()
        Image.new("L", (28, 28)).save(png, "PNG")
        info = tarfile.TarInfo("000001.png")
        info.size = len(png.getvalue())
        tar.addfile(info, io.BytesIO(png.getvalue()))
    with pytest.raises(ValueError, match="000001"):
        ref.read_shards([str(path)])


REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def test_our_first_step_is_the_reference_step(tmp_path):
    """Our trainer (sink/moco on SimpleGo) and the reference, from the same state on the same
    batch with the same key shuffle, agree to float32 rounding in every tensor."""
    import subprocess

    import onestep

    views = tmp_path / "views.arrow"
    subprocess.run(["go", "run", "./cmd/pipeline", "run", "examples/fashion-mnist.yaml", "--set", "epochs=1",
                    "--set", f"sink={{kind: arrow-file, path: {views}}}", "--progress", "off"],
                   cwd=REPO, check=True, capture_output=True)
    subprocess.run(["go", "run", "./bench/moco_reference/onestep", "-views", str(views), "-seed", "1",
                    "-steps", "1", "-out", str(tmp_path / "dump")], cwd=REPO, check=True, capture_output=True)
    r = onestep.replay(["--dump", str(tmp_path / "dump"), "--views", str(views)])
    assert r["loss_diff"] < 1e-5
    assert r["keys_diff"] < 1e-5
    assert r["worst"] < 1e-3  # measured: 3e-5 (the first conv's gradient)
    assert r["ptr"] == (64, 64)
