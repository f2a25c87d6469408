"""Every ```python block of README.md and docs/*.md runs as written (on TensorFlow: JAX has the longest lane of
`make test`), so the docs cannot drift.

Blocks run one by one, each in a fresh namespace, in a temporary directory that holds a link to the repository's
`saved_models/` (so blocks read the shipped models as a user in the checkout does, and write their files
elsewhere). To keep `make test` short the
only change made is to training length: every `epochs=N` becomes `epochs=1, steps_per_epoch=2`. A block that
cannot run on one machine (several hosts) is marked by the line `<!-- not run: why -->` right above its fence.
"""

import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FENCE = re.compile(r"(?:<!-- not run: (?P<why>[^>]*) -->\n)?```python\n(?P<code>.*?)```", re.S)

pytestmark = pytest.mark.tensorflow  # the lighter lane of `make test`; the blocks are backend-neutral


def blocks():
    found = []
    for path in [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        for k, match in enumerate(FENCE.finditer(text)):
            line = text[:match.start("code")].count("\n") + 1
            found.append(pytest.param(match.group("code"), match.group("why"),
                                      id=f"{os.path.relpath(path, ROOT)}:{line}"))
    return found


def shorten(code):
    """`epochs=N` → `epochs=1, steps_per_epoch=2`: the one liberty the test takes with a block."""
    return re.sub(r"\bepochs=\d+", "epochs=1, steps_per_epoch=2", code)


def test_shorten_touches_only_the_training_length():
    assert shorten("m.fit(x, batch_size=64, epochs=40)") == "m.fit(x, batch_size=64, epochs=1, steps_per_epoch=2)"
    assert shorten("total_epochs=3") == "total_epochs=3"


def test_there_are_blocks_to_run():
    assert len(blocks()) >= 5


@pytest.mark.parametrize("code, why", blocks())
def test_block_runs_as_written(code, why, tmp_path, monkeypatch):
    if why:
        pytest.skip(f"not run: {why}")
    os.symlink(os.path.join(ROOT, "saved_models"), tmp_path / "saved_models")
    monkeypatch.chdir(tmp_path)
    exec(compile(shorten(code), "<markdown block>", "exec"), {"__name__": "__readme__"})
