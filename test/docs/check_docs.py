#!/usr/bin/env python3
"""Checks that the docs name what the code has (ctest docs.consistency).

1. every pass and pass pipeline that shardc-opt registers (`Pass<"sc-…">` in
   passes/include/shardc/Passes/Passes.td, `PassPipelineRegistration<>("sc-…")` in passes/)
   appears as `--sc-…` in docs/cli.md, and every `--sc-…` the docs name is registered;
2. every step kind (the enum StepKind of runtime/schema/artifact.fbs, the CPU kernel table in
   runtime/kernels/cpu/KernelRegistry.cpp, the collectives in runtime/comm/CollectiveKernels.cpp)
   and every value of the `formula` kind's attribute (the rows of SC_ELEMENTWISE_FORMULAS in
   FusedPrelude.h) appears as `kind` in docs/artifact-format.md;
3. every repository path that README.md, CONTRIBUTING.md and docs/*.md name (in backticks or
   as a link target, e.g. `runtime/comm/CollectiveKernels.cpp`) exists, and every relative
   Markdown link points at an existing file.

Each source list must be non-empty, so a refactor that moves one fails here (update this
script with it) instead of silently checking nothing. Run by hand:
    .venv/bin/python test/docs/check_docs.py --root .
"""
import argparse
import pathlib
import re
import sys

TOP_DIRS = ("compiler/", "passes/", "runtime/", "tools/", "test/", "bench/", "scripts/", "docs/",
            "third_party/", ".ci/")
# Placeholders and patterns, not paths: skipped.
NOT_A_PATH = re.compile(r"[*<>{}$…]|\.\.\.|\|")


def read(root, rel):
    path = root / rel
    if not path.is_file():
        sys.exit(f"check_docs: {rel} is missing (update test/docs/check_docs.py if it moved)")
    return path.read_text(encoding="utf-8")


def need(names, what):
    if not names:
        sys.exit(f"check_docs: found no {what} (update test/docs/check_docs.py if it moved)")
    return names


def registered_passes(root):
    names = set(re.findall(r'Pass<"(sc-[a-z0-9-]+)"', read(root, "passes/include/shardc/Passes/Passes.td")))
    need(names, "Pass<\"sc-…\"> in Passes.td")
    for src in sorted((root / "passes").glob("*.cpp")):
        names |= set(re.findall(r'PassPipelineRegistration<>\(\s*"(sc-[a-z0-9-]+)"', src.read_text(encoding="utf-8")))
    return names


def step_kinds(root):
    registry = read(root, "runtime/kernels/cpu/KernelRegistry.cpp")
    table = re.search(r"kKernels\[\]\s*=\s*\{(.*?)\n\};", registry, re.S)
    cpu = set(re.findall(r'\{\s*"([a-z0-9_]+)"\s*,', table.group(1) if table else ""))
    need(cpu, "entries of kKernels in KernelRegistry.cpp")
    prelude = read(root, "runtime/kernels/common/include/shardc/kernels/FusedPrelude.h")
    rows = re.search(r"#define SC_ELEMENTWISE_FORMULAS\(X\)(.*?)\n\s*\n", prelude, re.S)
    formulas = set(re.findall(r"\bX\(\s*([a-z0-9_]+)\s*,", rows.group(1) if rows else ""))
    need(formulas, "rows of SC_ELEMENTWISE_FORMULAS in FusedPrelude.h")
    collectives = set(re.findall(r'\{\s*"([a-z0-9_]+)"\s*,\s*check\w+\s*,\s*run\w+\s*,\s*\w+Wire\s*[,}]',
                                 read(root, "runtime/comm/CollectiveKernels.cpp")))
    need(collectives, "collectives in CollectiveKernels.cpp's table")
    enum = re.search(r"enum StepKind\b[^{]*\{(.*?)\}", read(root, "runtime/schema/artifact.fbs"), re.S)
    schema = set(re.findall(r"\b([a-z][a-z0-9_]*)\b", re.sub(r"//[^\n]*", "", enum.group(1) if enum else "")))
    need(schema, "values of enum StepKind in artifact.fbs")
    return {"artifact.fbs StepKind": schema, "KernelRegistry.cpp": cpu,
            "SC_ELEMENTWISE_FORMULAS": formulas, "CollectiveKernels.cpp": collectives}


def doc_files(root):
    files = [root / "README.md", root / "CONTRIBUTING.md"] + sorted((root / "docs").glob("*.md"))
    return [f for f in files if f.is_file()]


def path_errors(root):
    errors = []
    for doc in doc_files(root):
        rel_doc = doc.relative_to(root)
        in_code_block = False
        for lineno, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                in_code_block = not in_code_block
                continue
            if in_code_block:
                continue
            # Relative Markdown links: [text](target) where target is not a URL or an anchor.
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if re.match(r"[a-z]+:", target) or target.startswith("#"):
                    continue
                file_part = target.split("#", 1)[0]
                if file_part and not (doc.parent / file_part).exists():
                    errors.append(f"{rel_doc}:{lineno}: link to a missing file: {target}")
            # Repository paths in backticks.
            for token in re.findall(r"`([^`\s]+)`", line):
                token = token.split("#", 1)[0].rstrip(".,:;")
                token = re.sub(r":\d+$", "", token)
                if not token.startswith(TOP_DIRS) or NOT_A_PATH.search(token):
                    continue
                if not (root / token).exists():
                    errors.append(f"{rel_doc}:{lineno}: names a path that does not exist: {token}")
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=str(pathlib.Path(__file__).resolve().parents[2]))
    root = pathlib.Path(ap.parse_args().root).resolve()
    errors = []

    cli = read(root, "docs/cli.md")
    passes = registered_passes(root)
    for name in sorted(passes):
        if f"`--{name}`" not in cli:
            errors.append(f"docs/cli.md: the shardc-opt table lacks `--{name}` (registered in passes/)")
    for doc in doc_files(root):
        text = doc.read_text(encoding="utf-8")
        for name in sorted(set(re.findall(r"--(sc-[a-z0-9-]*[a-z0-9])", text)) - passes):
            errors.append(f"{doc.relative_to(root)}: names `--{name}`, which no pass or pipeline registers")

    artifact = read(root, "docs/artifact-format.md")
    documented = set(re.findall(r"`([a-z0-9_]+)`", artifact))
    for source, kinds in step_kinds(root).items():
        for kind in sorted(kinds - documented):
            errors.append(f"docs/artifact-format.md: step kind `{kind}` ({source}) is not described")

    errors += path_errors(root)
    for e in errors:
        print(e)
    if errors:
        print(f"check_docs: {len(errors)} problem(s); CONTRIBUTING.md says which doc to update")
        return 1
    print("check_docs: passes, step kinds and paths named in the docs are consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
