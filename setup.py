"""Build of invert_fast's C++/CUDA extension (invert_fast._C).

The CPU build is the default and always works. CUDA kernels are added when INVERT_FAST_CUDA
asks for them:
  INVERT_FAST_CUDA=auto (default)  build CUDA if torch is a CUDA build and a CUDA toolkit is found
  INVERT_FAST_CUDA=1               build CUDA or fail with the reason
  INVERT_FAST_CUDA=0               CPU only
Other switches: CUDA_HOME (toolkit), TORCH_CUDA_ARCH_LIST (GPU architectures; "8.0;9.0" when unset
and no GPU is visible), INVERT_FAST_DEBUG=1 (-O0 -g), INVERT_FAST_SKIP_EXT=1 (no extension: see below).
"""

import glob
import os
import sys
from pathlib import Path

import torch
from setuptools import setup
from torch.utils import cpp_extension

ROOT = Path(__file__).parent.resolve()


def want_cuda() -> bool:
    mode = os.environ.get("INVERT_FAST_CUDA", "auto").strip().lower()
    if mode not in {"auto", "0", "1"}:
        sys.exit(f"INVERT_FAST_CUDA must be auto, 0 or 1, got {mode!r}")
    if mode == "0":
        return False
    problems = []
    if torch.version.cuda is None:
        problems.append(f"torch {torch.__version__} is not a CUDA build")
    if cpp_extension.CUDA_HOME is None:
        problems.append("no CUDA toolkit found (set CUDA_HOME)")
    if problems and mode == "1":
        sys.exit("INVERT_FAST_CUDA=1 but the CUDA kernels cannot be built: " + "; ".join(problems))
    return not problems


def torch_nvidia_includes() -> list[str]:
    """Headers of torch's pip-installed CUDA libraries (cuBLAS, cuSPARSE, ...), which
    ATen/cuda/CUDAContext.h includes and a bare toolkit may lack."""
    site = Path(torch.__file__).resolve().parent.parent
    return sorted(str(p) for p in site.glob("nvidia/*/include") if p.is_dir())


def extension():
    debug = os.environ.get("INVERT_FAST_DEBUG") == "1"
    opt = ["-O0", "-g"] if debug else ["-O3"]
    sources = [str(ROOT / "csrc" / "ops.cpp")] + sorted(glob.glob(str(ROOT / "csrc" / "cpu" / "*.cpp")))
    cxx = [*opt, "-fopenmp"]  # the C++ standard is the one torch's headers need (set by BuildExtension)
    kwargs = dict(
        name="invert_fast._C",
        sources=[os.path.relpath(s, ROOT) for s in sources],
        extra_link_args=["-fopenmp"],
    )
    if want_cuda():
        if "TORCH_CUDA_ARCH_LIST" not in os.environ and not torch.cuda.is_available():
            os.environ["TORCH_CUDA_ARCH_LIST"] = "8.0;9.0"
        cu = sorted(glob.glob(str(ROOT / "csrc" / "cuda" / "*.cu")))
        kwargs["sources"] += [os.path.relpath(s, ROOT) for s in cu]
        kwargs["include_dirs"] = torch_nvidia_includes()
        kwargs["define_macros"] = [("INVERT_FAST_WITH_CUDA", None)]
        kwargs["extra_compile_args"] = {"cxx": cxx, "nvcc": opt}
        print("invert_fast: building CPU and CUDA kernels", file=sys.stderr)
        return cpp_extension.CUDAExtension(**kwargs)
    kwargs["extra_compile_args"] = {"cxx": cxx}
    print("invert_fast: building CPU kernels only", file=sys.stderr)
    return cpp_extension.CppExtension(**kwargs)


# INVERT_FAST_SKIP_EXT=1: package metadata and the `invert-fast` command only, for an editable install
# over an extension already built in place (scripts/setup.sh builds it incrementally first).
skip = os.environ.get("INVERT_FAST_SKIP_EXT") == "1"
setup(
    ext_modules=[] if skip else [extension()],
    cmdclass={"build_ext": cpp_extension.BuildExtension},
)
