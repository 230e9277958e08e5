"""voxpipe.Tensor: metadata, DLPack without copies, lifetimes, devices."""
import gc

import numpy as np
import pytest

import voxpipe

DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "float16",
          "float32", "float64"]


def _random(rng, shape, dtype):
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    native = np.dtype(dtype).newbyteorder("=")
    info = np.iinfo(native)
    return rng.integers(info.min, info.max, size=shape, dtype=native, endpoint=True).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_round_trip_through_dlpack(rng, dtype):
    a = _random(rng, (3, 5, 7), dtype)
    t = voxpipe._as_tensor(a)
    assert t.shape == a.shape and t.dtype == dtype and t.device == "cpu"
    b = np.from_dlpack(t)
    np.testing.assert_array_equal(a, b)
    # no copy: the view shares a's memory
    assert np.shares_memory(a, b)
    np.testing.assert_array_equal(np.asarray(t), a)


def test_capsule_keeps_memory_alive(rng, tmp_path):
    a = _random(rng, (4, 6, 8), "float32")
    p = tmp_path / "x.npy"
    np.save(p, a)
    t = voxpipe.load(p)
    view = np.from_dlpack(t)
    del t
    gc.collect()
    np.testing.assert_array_equal(view, a)  # the capsule holds the tensor


def test_save_with_metadata_does_not_touch_the_source(rng, tmp_path):
    a = _random(rng, (4, 6, 8), "int16")
    t = voxpipe._as_tensor(a)
    voxpipe.save(tmp_path / "a.nii", t, spacing=(2.0, 3.0, 4.0))
    assert t.spacing == (1.0, 1.0, 1.0)
    back = voxpipe.load(tmp_path / "a.nii")
    assert back.spacing == (2.0, 3.0, 4.0)
    np.testing.assert_array_equal(np.asarray(back), a)


def test_bool_and_big_endian_arrays_are_saved(rng, tmp_path):
    m = rng.random((5, 6)) > 0.5
    voxpipe.save(tmp_path / "m.npy", m)
    np.testing.assert_array_equal(np.load(tmp_path / "m.npy"), m.astype(np.uint8))
    b = _random(rng, (5, 6), ">i4")
    voxpipe.save(tmp_path / "b.npy", b)
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), b)


def test_errors_name_the_argument(tmp_path):
    with pytest.raises(OSError, match="case_017.nii.gz"):
        voxpipe.load(tmp_path / "case_017.nii.gz")
    with pytest.raises(ValueError, match="oob"):
        voxpipe.load(tmp_path / "x.npy", roi=((0,), (1,)), oob="wrap")
    with pytest.raises(ValueError, match="device"):
        voxpipe._as_tensor(np.zeros(3)).to("tpu")
    with pytest.raises(ValueError, match="affine"):
        voxpipe.save(tmp_path / "z.nii", np.zeros((2, 2, 2)), affine=np.eye(3))


def test_gpu_paths_without_gpu_are_clear():
    if voxpipe.cuda_device_count() > 0:
        pytest.skip("a GPU is present")
    t = voxpipe._as_tensor(np.zeros((2, 2), np.float32))
    with pytest.raises(voxpipe.VoxpipeError, match="device|CUDA"):
        t.to("gpu")




def _torch():
    try:
        import torch  # noqa: F401
    except ImportError:
        pytest.skip("torch not installed")
    import torch

    return torch


def test_torch_host_zero_copy(rng):
    torch = _torch()
    a = _random(rng, (2, 3, 4), "float32")
    t = voxpipe._as_tensor(a)
    x = torch.from_dlpack(t)
    assert x.data_ptr() == a.ctypes.data
    np.testing.assert_array_equal(x.numpy(), a)
    # and back: a torch tensor is accepted by save through DLPack
    y = torch.arange(24, dtype=torch.int16).reshape(2, 3, 4)
    u = voxpipe._as_tensor(y)
    np.testing.assert_array_equal(np.asarray(u), y.numpy())


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_torch_wrap_keeps_owner_alive(rng, device):
    """Contiguous torch tensors are wrapped by pointer (no DLPack export): the
    handle holds the torch tensor, so the memory outlives the caller's
    reference; every dtype keeps its values; strided, bool and autograd
    tensors take DLPack and keep its rules."""
    torch = _torch()
    if device == "cuda" and voxpipe.cuda_device_count() == 0:
        pytest.skip("needs a GPU")
    for dt in ("float32", "float16", "float64", "uint8", "int8", "int16", "int32", "int64"):
        a = _random(rng, (3, 5, 7), dt)
        x = torch.from_numpy(a.copy()).to(device)
        t = voxpipe._as_tensor(x)
        assert t.dtype == dt and t.shape == (3, 5, 7)
        del x
        gc.collect()
        torch.empty((3, 5, 7), dtype=getattr(torch, dt), device=device).fill_(7)  # reuse bait
        np.testing.assert_array_equal(np.asarray(t.cpu() if device == "cuda" else t), a)
    b = torch.tensor([[True, False]], device=device)
    assert voxpipe._as_tensor(b).dtype == "uint8"
    with pytest.raises(voxpipe.VoxpipeError, match="contiguous"):
        voxpipe._as_tensor(torch.zeros((4, 5), device=device).t())
    with pytest.raises(Exception, match="grad"):
        voxpipe._as_tensor(torch.zeros(3, requires_grad=True, device=device))


@pytest.mark.skipif(voxpipe.cuda_device_count() == 0, reason="needs a GPU")
def test_eager_calls_wait_for_torch_writes():
    """A torch CUDA tensor that torch is still writing (its fill queued behind a spin kernel,
    on the default stream or on a side stream) is read by eager calls only once written:
    their stream waits for torch's current stream (voxpipe reads torch memory by pointer)."""
    torch = _torch()
    x = torch.zeros((2, 32, 48, 40), device="cuda")
    side = torch.cuda.Stream()
    for trial in range(4):
        stream = side if trial % 2 else torch.cuda.current_stream()
        with torch.cuda.stream(stream):
            torch.cuda._sleep(50_000_000)  # tens of ms on the GPU before the fill runs
            x.fill_(trial + 1.0)
            y = voxpipe.fn.cast(x, dtype="float16")
            z = voxpipe.fn.chain([x, x], [("brightness", {"factor": 2.0})])
        assert (np.asarray(y.cpu()) == trial + 1).all(), trial
        for t in z:
            assert (np.asarray(t.cpu()) == 2 * (trial + 1)).all(), trial
        torch.cuda.synchronize()


@pytest.mark.skipif(voxpipe.cuda_device_count() == 0, reason="needs a GPU")
def test_gpu_tensor_to_torch_zero_copy(rng, tmp_path):
    torch = _torch()
    a = _random(rng, (4, 33, 65, 17), "int16")
    np.save(tmp_path / "g.npy", a)
    t = voxpipe.load(tmp_path / "g.npy", device="gpu")
    assert t.device == "gpu:0"
    assert t.__dlpack_device__() == (2, 0)
    x = torch.from_dlpack(t)
    assert x.is_cuda
    ptr = x.data_ptr()
    x2 = torch.from_dlpack(t)
    assert x2.data_ptr() == ptr  # the same device memory, no copy
    del t
    gc.collect()
    np.testing.assert_array_equal(x.cpu().numpy(), a)
    back = voxpipe._as_tensor(x).cpu()
    np.testing.assert_array_equal(np.asarray(back), a)
    # pinned memory round trip
    p = voxpipe._as_tensor(a).to("cpu-pinned")
    assert p.device == "cpu-pinned"
    np.testing.assert_array_equal(np.asarray(p), a)


@pytest.mark.skipif(voxpipe.cuda_device_count() == 0, reason="needs a GPU")
def test_gpu_tensor_to_cupy():
    cp = pytest.importorskip("cupy")
    a = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    t = voxpipe._as_tensor(a).to("gpu")
    c = cp.from_dlpack(t)
    np.testing.assert_array_equal(cp.asnumpy(c), a)
