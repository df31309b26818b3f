"""The training docs name only documents that exist (they once pointed at a METHOD.md that
never did: the method is docs/method.md)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("doc", ["training.md", "adaptation.md", "ablation.md"])
def test_docs_name_existing_documents(doc: str) -> None:
    text = (ROOT / "docs" / doc).read_text()
    # Every "NAME.md" the text mentions or links, except files a run writes (OUT/...).
    named = {m for m in re.findall(r"[A-Za-z0-9_./-]+\.md\b", text) if not m.startswith("OUT/")}
    assert named, "expected the doc to name other documents"
    missing = sorted(n for n in named if not ((ROOT / "docs" / n).is_file() or (ROOT / n).is_file()))
    assert not missing, f"docs/{doc} names documents that do not exist: {missing}"
