"""The documentation speaks for itself: nothing in the repository refers to a document outside
it, and every place the code, help texts and docs cite on the method page exists. (The built
site's offline check is `test_site.py`.)"""

import re
import subprocess
from pathlib import Path

from offline_site import problems

ROOT = Path(__file__).resolve().parent.parent
METHOD = ROOT / "docs" / "method.md"
SECTION = "\u00a7"  # the section sign: "(document) SECTION 3" cites another document
# Phrases that cite a document a user of the repository cannot open (built from parts, so that
# this file does not match itself).
OUTSIDE = [
    re.compile(SECTION),
    re.compile(r"shared" + "/" + r"spec"),
    re.compile(r"\b(the|see|in|from|of)\s+(the\s+)?spec(ification)?\b(?!\s*[=(:,\[\]]|\.\w)", re.I),
    re.compile(r"\bspec(ification)?'s\b", re.I),
    re.compile(r"(?<=\s)\(spec\)", re.I),  # prose, not a call f(spec)
    re.compile(r"developers' " + r"reference", re.I),
]


def _repository_files() -> list[Path]:
    """The files of the repository (tracked by git, or every file outside build folders)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout.decode()  # fmt: skip
        paths = [ROOT / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "site", "build", "dist", "node_modules", "vendor"}
        paths = [p for p in ROOT.rglob("*") if not skip & set(p.relative_to(ROOT).parts)]
    return [path for path in paths if path.is_file()]


def _text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


def test_the_outside_reference_patterns_match_what_they_should():
    cited = ["the conv ResNet of spec " + SECTION + "9", "see the spec", "the spec's table",
             "linear κ (spec)", "in the specification",
             "as derived in " + SECTION + "3.2"]  # fmt: skip
    fine = ["def read(self, directory, spec):", "multiplier(spec) for spec in specs",
            "the layer spec", "importlib.util.module_from_spec(spec)",
            "for file in spec.files:"]  # fmt: skip
    assert all(any(p.search(text) for p in OUTSIDE) for text in cited)
    assert not any(p.search(text) for p in OUTSIDE for text in fine)


def test_no_file_refers_to_a_document_outside_the_repository():
    found = []
    for path in _repository_files():
        text = _text(path)
        if text is None or path.resolve() == Path(__file__).resolve():  # its examples
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if any(pattern.search(line) for pattern in OUTSIDE):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert found == []


def _slug(heading: str) -> str:
    """The anchor mkdocs (Python-Markdown's toc) gives a heading."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    text = re.sub(r"[^\w\s-]", "", text)
    return re.sub(r"[\s]+", "-", text)


def _method_sections() -> dict[str, str]:
    headings = re.findall(r"^#{2,4} (.+)$", METHOD.read_text(), flags=re.M)
    return {heading: _slug(heading) for heading in headings}


def test_every_citation_of_the_method_page_names_a_section_it_has():
    """Code and help texts cite `docs/method.md, "Section"`; pages link `method.md#anchor`."""
    sections = _method_sections()
    anchors = set(sections.values())
    bad = []
    for path in _repository_files():
        text = _text(path)
        if text is None or path.resolve() == Path(__file__).resolve():
            continue
        for name in re.findall(r'docs/method\.md(?:,\s*|\s*\()"([^"]+)"', text):
            name = " ".join(name.split())  # a citation may wrap over lines
            if name not in sections:
                bad.append(f"{path.relative_to(ROOT)}: no section {name!r}")
        for anchor in re.findall(r"method\.md#([\w-]+)", text):
            if anchor not in anchors:
                bad.append(f"{path.relative_to(ROOT)}: no anchor #{anchor}")
    assert bad == []
    assert "linear-networks-in-closed-form" in anchors and "the-learning-signal" in anchors


def test_the_readme_links_only_to_files_in_the_repository():
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", readme)
    local = [t.split("#")[0] for t in targets if not re.match(r"^[a-z]+:", t) and t[0] != "#"]
    assert local and [t for t in local if not (ROOT / t).exists()] == []


def test_the_checker_finds_a_page_that_loads_from_the_network(tmp_path):
    (tmp_path / "a.html").write_text(
        '<html><head><script src="https://cdn.example/x.js"></script>'
        '<link rel="stylesheet" href="//fonts.example/css"><link rel="stylesheet" href="b.css">'
        '</head><body><a href="https://example.org/">a plain link is fine</a></body></html>'
    )
    (tmp_path / "b.css").write_text("@font-face { src: url(https://fonts.example/f.woff) }")
    found = problems(tmp_path)
    assert sorted(found) == [
        "a.html: loads //fonts.example/css",
        "a.html: loads https://cdn.example/x.js",
        "b.css: loads from the network",
    ]
