# lit configuration of shardc's FileCheck tests: tools come from the build (shardc,
# shardc-opt) and from LLVM (FileCheck, not, count, split-file), never from PATH.
import os

import lit.formats
from lit.llvm import llvm_config  # noqa: F401  (provides the standard feature set)

config.name = "shardc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py"]
config.test_source_root = os.path.dirname(__file__)

def tool(directory, name):
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        lit_config.fatal(f"{name} not found at {path}")
    return path

for name in ("shardc-opt", "shardc"):
    config.substitutions.append((rf"(?<![\w/.-]){name}(?![\w-])", tool(config.shardc_tools_dir, name)))
for name in ("FileCheck", "not", "count", "split-file"):
    config.substitutions.append((rf"(?<![\w/.-]){name}(?![\w-])", tool(config.llvm_tools_dir, name)))
config.substitutions.append(("%python", config.python_executable))
config.substitutions.append(("%shared", config.shared_dir))
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "import", "Inputs")))
