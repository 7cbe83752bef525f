"""The README's exit-status rule, through the real command line: 0 success, 1 a check failed, 2 bad arguments,
where a path named on the command line that is missing (or of the wrong kind) is a bad argument. Each command
runs in a subprocess (`python -m tinytorch.tito`) on a private copy of the tree and must exit 2 with a one-line
`tito: error:` message naming the path, before it writes anything."""
from __future__ import annotations

import pytest

# (command line with {missing}/{file}/{dir}/{out} placeholders, the path that must be named)
CASES = {
    "olympics submit, missing folder": ("olympics submit {missing}", "{missing}"),
    "olympics submit, a file": ("olympics submit {file}", "{file}"),
    "olympics grade, missing folder": ("olympics grade {missing} --out {out}", "{missing}"),
    "olympics grade, a file": ("olympics grade {file} --out {out}", "{file}"),
    "olympics grade, --out a file": ("olympics grade {dir} --out {file}", "{file}"),
    "olympics leaderboard, missing folder": ("olympics leaderboard {missing}", "{missing}"),
    "olympics leaderboard, a file": ("olympics leaderboard {file}", "{file}"),
    "olympics leaderboard, no results.json": ("olympics leaderboard {dir}", "{dir}/results.json"),
    "grade autograde, missing course": ("grade autograde --course {missing} --submissions {dir}", "{missing}"),
    "grade autograde, course is a file": ("grade autograde --course {file} --submissions {dir}", "{file}"),
    "grade autograde, course is not a course": ("grade autograde --course {dir} --submissions {dir}",
                                                "{dir}/gradebook.db"),
    "grade autograde, missing submissions": ("grade autograde --course {dir} --submissions {missing}", "{missing}"),
    "grade export, missing course": ("grade export --course {missing} --out {out}.csv", "{missing}"),
    "grade generate, course is a file": ("grade generate --course {file} --modules 1", "{file}"),
    "zoo eval, missing weights": ("zoo eval digits_mlp --weights {missing}.npz", "{missing}.npz"),
    "zoo eval, weights a folder": ("zoo eval digits_mlp --weights {dir}", "{dir}"),
    "zoo eval, weights not an npz": ("zoo eval digits_mlp --weights {file}", "{file}"),
}


FAMILIES = ("olympics", "grade", "zoo")


@pytest.mark.parametrize("family", FAMILIES)
def test_a_bad_path_exits_2_with_one_line_naming_it(tree, tito, tmp_path, family):
    scratch = tmp_path / "scratch"
    (scratch / "empty").mkdir(parents=True)
    (scratch / "a_file").write_text("not what the command wants\n")
    paths = {"missing": scratch / "no_such_thing", "file": scratch / "a_file", "dir": scratch / "empty",
             "out": scratch / "out"}
    cases = [case for case in CASES if case.startswith(family + " ")]
    assert cases
    for case in cases:
        line, named = CASES[case]
        args = [part.format(**{k: str(v) for k, v in paths.items()}) for part in line.split()]
        named = named.format(**{k: str(v) for k, v in paths.items()})
        proc = tito(tree, *args)
        assert proc.returncode == 2, f"{case}: tito {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("tito: error: ") and named in lines[0], (case, proc.stderr)
        assert "Traceback" not in proc.stdout + proc.stderr, case
        assert sorted(p.name for p in scratch.iterdir()) == ["a_file", "empty"], case   # nothing was written
