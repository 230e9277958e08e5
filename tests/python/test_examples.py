"""Each example exists as a pipeline file and as Python: both build the same graph (the
same bytes), and the pipeline files run through `voxpipe run`."""
import importlib.util
import json
import os
import subprocess

import numpy as np
import pytest

import voxpipe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = [("mlperf_unet3d", "kits"), ("nnunet_brats", "brats")]


def _load_module(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "examples", name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name,kind", EXAMPLES)
def test_python_and_json_examples_agree(tmp_path, cli, name, kind):
    data = tmp_path / "data"
    subprocess.run([cli, "synth", "--kind", kind, "--cases", "3", "--shape", "40,60,50",
                    "--format", "npy", "--out", str(data)], check=True, capture_output=True)
    with open(os.path.join(ROOT, "examples", name + ".json")) as f:
        spec = json.load(f)
    spec["reader"]["dataset_json"] = str(data / "dataset.json")
    path = tmp_path / (name + ".json")
    path.write_text(json.dumps(spec))
    a = voxpipe.Pipeline.from_file(path, device=-1, num_threads=2)
    b = _load_module(name).build(str(data / "dataset.json"), device_id=None, num_threads=2)
    for _ in range(3):
        for xa, xb in zip(a.run(), b.run()):
            for s, t in zip(xa, xb):
                assert s.shape[-3:] == (128, 128, 128)
                assert np.asarray(s).tobytes() == np.asarray(t).tobytes()
    r = subprocess.run([cli, "run", str(path), "--device", "cpu", "--iterations", "3"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "samples/s" in r.stdout
