#!/usr/bin/env python3
"""Fails when a file under src/ includes a header from a layer above its own.

The layers, lowest first, are the folders of src/ (docs/design.md explains each):
    util <- dist <- data <- models <- train <- checkpoint <- eval <- deploy <- report <- run <- cli
A file may include headers of its own layer and of the layers below it. Every folder of src/
must be a known layer, and every project header an include names must exist.
Usage: scripts/check_layering.py [SRC_DIR]   (default: the src/ beside this script)
"""
import pathlib
import re
import sys

LAYERS = ["util", "dist", "data", "models", "train", "checkpoint", "eval", "deploy", "report", "run", "cli"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def violations(src: pathlib.Path):
    for folder in sorted(p for p in src.iterdir() if p.is_dir()):
        if folder.name not in LAYERS:
            yield f"{folder}: not a layer (known: {', '.join(LAYERS)})"
    for file in sorted(src.rglob("*")):
        if file.suffix not in (".h", ".cpp") or not file.is_file():
            continue
        layer = file.relative_to(src).parts[0]
        if layer not in LAYERS:
            continue
        text = file.read_text(encoding="utf-8")
        for match in INCLUDE.finditer(text):
            header = match.group(1)
            line = text.count("\n", 0, match.start()) + 1
            target = header.split("/")[0]
            where = f"{file}:{line}"
            if target not in LAYERS:
                yield f"{where}: includes \"{header}\", which is in no layer"
            elif not (src / header).is_file():
                yield f"{where}: includes \"{header}\", which does not exist"
            elif LAYERS.index(target) > LAYERS.index(layer):
                yield f"{where}: {layer}/ includes \"{header}\" from {target}/, a layer above it"


def main() -> int:
    src = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent / "src"
    if not src.is_dir():
        print(f"check_layering: {src}: no such directory", file=sys.stderr)
        return 2
    found = list(violations(src))
    for v in found:
        print(v, file=sys.stderr)
    files = sum(1 for f in src.rglob("*") if f.suffix in (".h", ".cpp"))
    print(f"layering: {files} files, {len(found)} violations")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
