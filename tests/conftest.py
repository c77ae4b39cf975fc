"""Process-wide test setup.

PyTorch 2.14's CUDA wheels bring Triton, whose compiler library bundles its own LLVM; loading
it into a process that has already loaded TensorFlow (which bundles another LLVM) crashes with
a segmentation fault. timm imports torchvision, which imports `torch._dynamo`, which imports
Triton when it is installed. The tests run PyTorch on the CPU only, where Triton is never
used, so it is hidden from this process: `import triton` raises ImportError and PyTorch
proceeds as on a CPU-only install. Subprocesses are unaffected.

Memory: the suite runs in one process on a 24 GB machine, and a module's fixtures hold full
ImageNet-size models. After each module, once its fixtures are gone, Keras' global state is
cleared, garbage is collected and glibc hands the freed heap back to the system, so that one
module's models never add to the next one's. After a test that leaves the process above
`COLLECT_ABOVE_MB` resident, garbage is collected at once as well (TensorFlow graphs and
converters leave gigabytes in reference cycles that Python's own collector reaches late).

Two processes: `pytest` runs the suite on two pytest-xdist workers (`addopts` in
pyproject.toml). Each test module runs whole on one worker (`pytest_xdist_make_scheduler`
below), so its module fixtures are built once. The modules that hold full ImageNet-size
models (`FULL_SIZE_MODEL_MODULES`) share one worker and run one after another, so that their
peaks never add up; the other worker takes the training, backend, layer, package and
documentation tests meanwhile.
"""

import ctypes
import gc
import sys

import pytest

sys.modules.setdefault("triton", None)

COLLECT_ABOVE_MB = 4000
FULL_SIZE_MODEL_MODULES = {
    "test_export",
    "test_inception_mobilenet",
    "test_resnet",
    "test_timm_weights",
    "test_vgg",
}


# The work units that take longest, first: pytest-xdist hands out units in collection order
# (with `--no-loadscope-reorder`), two per worker to start with, so long units that start last
# would leave one worker idle at the end. Measured standalone: the full-size models ~9 min,
# the backend subprocesses ~5 min, every constructor through the harness ~5 min, the
# training job ~6 min.
LONGEST_FIRST = (
    "full_size_models",
    "tests/test_backends.py",
    "tests/applications/test_every_model.py",
    "tests/training/test_train.py",
)


def pytest_collection_modifyitems(items):
    """Put the longest work units first (see `LONGEST_FIRST`), keeping the order inside each."""

    def rank(item):
        unit = work_unit(item.nodeid)
        return LONGEST_FIRST.index(unit) if unit in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


def pytest_xdist_make_scheduler(config, log):
    """Schedule each test module whole on one worker, the full-size-model modules together.

    `--dist loadscope` alone groups by module; this scheduler adds the one shared group. It
    replaces `--dist loadgroup` with `xdist_group` marks, which pytest-xdist 3.8 stopped
    honouring under pytest 9.2 (it renames node ids, which pytest 9.2 no longer lets it do;
    pytest-dev/pytest-xdist#1386): every test became a work unit of its own, so module
    fixtures were built once per worker and full-size models met on both workers.
    """
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return work_unit(nodeid)

    return ModuleScheduling(config, log)


def work_unit(nodeid):
    """The work unit of a test: its module's path, or `full_size_models`.

    Example: `work_unit("tests/training/test_train.py::test_a[1]")` is
    `"tests/training/test_train.py"`.
    """
    module = nodeid.split("::", 1)[0]
    name = module.rsplit("/", 1)[-1].removesuffix(".py")
    return "full_size_models" if name in FULL_SIZE_MODEL_MODULES else module


def _return_free_heap_to_the_system():
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


@pytest.fixture(scope="module", autouse=True)
def release_memory_after_each_module():
    yield
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.backend.clear_session()
    gc.collect()
    _return_free_heap_to_the_system()


@pytest.fixture(autouse=True)
def collect_garbage_after_a_heavy_test():
    yield
    from keras_se.benchmarks.worker import HostMemory  # imported by then: no cost

    try:
        resident_mb = HostMemory().current() / 2**20
    except OSError:  # no /proc (not Linux)
        return
    if resident_mb > COLLECT_ABOVE_MB:
        gc.collect()
        _return_free_heap_to_the_system()
