"""docs/threat-model.md names, for each guard, the tests that prove it: every file and function it names
exists, so that a renamed or deleted test cannot leave a guard that nothing checks any more."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CITATION = re.compile(r"`(tests/[^`]+)`(?: \(([^)]*)\))?")


def test_every_test_the_threat_model_names_exists():
    text = (ROOT / "docs/threat-model.md").read_text()
    cited = CITATION.findall(text)
    assert len(cited) > 20
    for path, functions in cited:
        assert (ROOT / path).exists(), path
        for function in re.findall(r"`(test_\w+)`", functions):
            assert f"def {function}(" in (ROOT / path).read_text(), f"{path} has no {function}"


def test_security_md_points_at_the_threat_model():
    assert "docs/threat-model.md" in (ROOT / "SECURITY.md").read_text()
