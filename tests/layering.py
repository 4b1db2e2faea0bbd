"""The layering check (scripts/check_layering.py): it passes on src/ and fails on each kind of
violation, in a tree this test writes."""
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHECK = ROOT / "scripts" / "check_layering.py"


def check(src):
    r = subprocess.run([sys.executable, str(CHECK), str(src)], capture_output=True, text=True)
    return r.returncode, r.stderr


def tree(files):
    root = pathlib.Path(tempfile.mkdtemp())
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def main():
    failures = []
    code, err = check(ROOT / "src")
    if code != 0:
        failures.append(f"src/ has violations:\n{err}")
    cases = {
        "upward include": ({"util/a.h": '#include "run/b.h"\n', "run/b.h": ""}, "a layer above it"),
        "unknown folder": ({"misc/a.h": ""}, "not a layer"),
        "missing header": ({"data/a.cpp": '#include "data/gone.h"\n'}, "does not exist"),
        "header in no layer": ({"eval/a.cpp": '#include "vendor/x.h"\n'}, "in no layer"),
    }
    for name, (files, needle) in cases.items():
        code, err = check(tree(files))
        if code != 1 or needle not in err:
            failures.append(f"{name}: expected exit 1 with '{needle}', got {code}: {err}")
    code, err = check(tree({"util/a.h": "", "data/b.h": '#include "util/a.h"\n', "cli/c.cpp": '#include "data/b.h"\n'}))
    if code != 0:
        failures.append(f"downward includes were refused: {err}")
    for f in failures:
        print("FAIL:", f)
    print(f"{6 - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
