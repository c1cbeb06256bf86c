"""Does the built documentation site need the network? `python -m tests.offline_site SITE`
(run by `make docs`) exits 1 naming every page that loads a script, style sheet, font or image
from another host, or a local file that is not in the site; tests/test_docs.py runs it too."""

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

# Attributes that make a browser fetch something as the page loads (not plain links).
_LOADED = {
    ("script", "src"), ("img", "src"), ("iframe", "src"), ("source", "src"), ("audio", "src"),
    ("video", "src"), ("embed", "src"), ("object", "data"),
}  # fmt: skip
_LINK_RELS = {"stylesheet", "preconnect", "preload", "modulepreload", "dns-prefetch", "icon",
              "manifest", "prefetch", "font"}  # fmt: skip
_REMOTE = re.compile(r"^(https?:)?//", re.I)
_CSS_REMOTE = re.compile(r"""(url\(\s*['"]?|@import\s+['"]?)(https?:)?//""", re.I)


class _Fetches(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        for name, value in attrs:
            if value and (tag, name) in _LOADED:
                self.urls.append(value)
        rels = set((values.get("rel") or "").lower().split())
        if tag == "link" and rels & _LINK_RELS and values.get("href"):
            self.urls.append(values["href"])
        if values.get("style"):
            self.styles.append(values["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def problems(site: Path) -> list[str]:
    """Every fetch of the site's pages that needs the network or a missing file."""
    found = []
    for page in sorted(site.rglob("*.html")):
        parser = _Fetches()
        parser.feed(page.read_text(errors="replace"))
        for url in parser.urls:
            if _REMOTE.match(url):
                found.append(f"{page.relative_to(site)}: loads {url}")
                continue
            if url.startswith(("data:", "#")):
                continue
            path = url.split("#")[0].split("?")[0]
            base = site if path.startswith("/") else page.parent  # 404.html: from the root
            target = (base / path.lstrip("/")).resolve()
            if not target.exists():
                found.append(f"{page.relative_to(site)}: loads {url}, which is not in the site")
        for style in parser.styles:
            if _CSS_REMOTE.search(style):
                found.append(f"{page.relative_to(site)}: an inline style loads from the network")
    for sheet in sorted(site.rglob("*.css")):
        if _CSS_REMOTE.search(sheet.read_text(errors="replace")):
            found.append(f"{sheet.relative_to(site)}: loads from the network")
    return found


def main(argv: list[str]) -> int:
    site = Path(argv[0] if argv else "site")
    found = problems(site)
    for line in found:
        print(f"offline_site: {line}", file=sys.stderr)
    pages = len(list(site.rglob("*.html")))
    if not pages:
        print(f"offline_site: no pages in {site}/", file=sys.stderr)
        return 1
    if not found:
        print(f"offline_site: the {pages} pages of {site}/ load nothing from the network")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
