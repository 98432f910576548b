#!/usr/bin/env bash
# Builds the documentation book (docs/, mdBook) into target/book and fails on a broken internal
# link: a link to a page that does not exist, or to a heading that page does not have, in the
# book and in README.md. mdBook itself is built once per machine from crates.io into
# /var/cache/seccomp-operator/tools (or $SECCOMP_OPERATOR_TOOLS).
set -euo pipefail
cd "$(dirname "$0")/.."

MDBOOK_VERSION=0.5.4
tools=${SECCOMP_OPERATOR_TOOLS:-/var/cache/seccomp-operator/tools}
mdbook="$tools/mdbook-$MDBOOK_VERSION/bin/mdbook"
if [ ! -x "$mdbook" ]; then
  echo "hack/book.sh: building mdbook $MDBOOK_VERSION (once per machine, about 2 minutes)"
  mkdir -p "$tools"
  CARGO_TARGET_DIR="$tools/build" cargo install --quiet --locked --no-default-features \
    --version "$MDBOOK_VERSION" --root "$tools/mdbook-$MDBOOK_VERSION" mdbook
  rm -rf "$tools/build"
fi

rm -rf target/book
"$mdbook" build docs >/dev/null 2> target/book-build.log || { cat target/book-build.log >&2; exit 1; }
if grep -q "WARN\|ERROR" target/book-build.log; then
  cat target/book-build.log >&2
  echo "hack/book.sh: mdbook warned (above)" >&2
  exit 1
fi

python3 - <<'PY'
import html.parser, os, re, sys, urllib.parse

broken = []

class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.hrefs = set(), []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])

def parse(path, cache={}):
    if path not in cache:
        p = Page()
        with open(path, encoding="utf-8") as f:
            p.feed(f.read())
        cache[path] = p
    return cache[path]

root = "target/book"
for dirpath, _, files in os.walk(root):
    for name in files:
        if not name.endswith(".html") or name in ("print.html", "404.html", "toc.html"):
            continue
        page = os.path.join(dirpath, name)
        for href in parse(page).hrefs:
            u = urllib.parse.urlsplit(href)
            if u.scheme or href.startswith("//"):
                continue
            target = os.path.normpath(os.path.join(dirpath, urllib.parse.unquote(u.path))) if u.path else page
            if os.path.isdir(target):
                target = os.path.join(target, "index.html")
            if not target.startswith(root) or not os.path.exists(target):
                broken.append(f"{page}: {href} (no such page)")
            elif u.fragment and target.endswith(".html") and u.fragment not in parse(target).ids:
                broken.append(f"{page}: {href} (no such heading)")

# README.md is not in the book: its links must name files that exist, and headings they have.
def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")

def headings(md):
    with open(md, encoding="utf-8") as f:
        return {slug(l.lstrip("#")) for l in f if l.startswith("#")}

with open("README.md", encoding="utf-8") as f:
    readme = f.read()
for href in re.findall(r"\]\(([^)\s]+)\)", readme):
    u = urllib.parse.urlsplit(href)
    if u.scheme:
        continue
    if u.path and not os.path.exists(u.path):
        broken.append(f"README.md: {href} (no such file)")
    elif u.fragment and u.path.endswith(".md") and u.fragment not in headings(u.path):
        broken.append(f"README.md: {href} (no such heading)")

if broken:
    print("broken links:", *broken, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"book: {root}/index.html, links checked")
PY
