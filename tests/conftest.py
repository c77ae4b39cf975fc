"""Process-wide test setup.

PyTorch 2.14's CUDA wheels bring Triton, whose compiler library bundles its own LLVM; loading
it into a process that has already loaded TensorFlow (which bundles another LLVM) crashes with
a segmentation fault. timm imports torchvision, which imports `torch._dynamo`, which imports
Triton when it is installed. The tests run PyTorch on the CPU only, where Triton is never
used, so it is hidden from this process: `import triton` raises ImportError and PyTorch
proceeds as on a CPU-only install. Subprocesses are unaffected.
"""

import sys

sys.modules.setdefault("triton", None)
