"""pip install ./python: builds the extension with the project's CMake.

The extension uses Python's stable ABI (abi3), so one wheel serves every
CPython >= 3.10."""
import os
import shutil
import subprocess
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        with tempfile.TemporaryDirectory() as build:
            flags = ["-DCMAKE_BUILD_TYPE=Release", "-DVP_BUILD_TESTS=OFF"]
            flags += os.environ.get("VP_CMAKE_FLAGS", "").split()
            subprocess.check_call(["cmake", "-S", ROOT, "-B", build] + flags)
            subprocess.check_call(["cmake", "--build", build, "--target", "vp_python", "-j"])
            built = os.path.join(HERE, "voxpipe", "_voxpipe.abi3.so")
            dest = self.get_ext_fullpath(ext.name)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(built, dest)

    def get_ext_filename(self, name):
        return os.path.join(*name.split(".")) + ".abi3.so"


setup(
    packages=["voxpipe"],
    ext_modules=[Extension("voxpipe._voxpipe", sources=[], py_limited_api=True)],
    cmdclass={"build_ext": CMakeBuild},
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
