"""Extract Spanish prose from unpacked Debian packages (shared by the two build scripts).

Used by ``scripts/build_default_model.py`` (training text of the embedded KenLM model) and
``scripts/build_sample.py`` (the bundled mC4-layout sample). Every package is unpacked with
``dpkg -x`` under ``<root>/<package>/`` by ``scripts/build_default_model.sh``.

Everything here is deterministic: files are read in sorted order, nothing depends on the
machine except the package contents (whose versions the manifests record).

A "document" is a list of paragraphs (strings without ``\\n``); each extractor yields
``(doc_id, paragraphs)`` pairs.
"""

from __future__ import annotations

import gzip
import html
import re
import struct
import unicodedata
import xml.etree.ElementTree as ET
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable, Iterator

Doc = tuple[str, list[str]]

# --------------------------------------------------------------------------------------------
# Language filter: share of very frequent function words, Spanish against English.
# The two lists are disjoint and compared after lower-casing and stripping accents.
# --------------------------------------------------------------------------------------------
ES_WORDS = frozenset(
    """de la que el en y los se del las un por con una su para es al lo como mas pero sus le ha
    si sin sobre este ya entre cuando todo esta ser son dos tambien fue habia era muy hasta desde
    esta porque solo han hay vez puede todos asi nos ni tiene donde bien mismo ese ahora cada
    otro despues otros aunque esa eso hace otra tan durante siempre tanto ella tres dijo sido
    segun menos antes contra sino nada hacer estaba poco estos mucho mientras ademas quien esto
    pues hoy lugar mejor nuevo decir algunos entonces todas debe como casi toda tal luego sea
    nunca poder aqui ver pueden tienen misma nueva cual fueron tras cosas dentro nuestro dice
    ello cualquier aun parece haber fuera bajo nuestra usted hizo nadie posible puede estan
    estas unas el ellos les cuyo cuya mediante puede desde hacia ante algo""".split()
)
EN_WORDS = frozenset(
    """the of and to in is that for it as was with be by on not he this are or his from at which
    but have an they you were her she there been one all we their has would when if will what
    can more so about who them some could into than its only other then these two may any should
    does do also how such used use your our must each where which while""".split()
)

_WORD_RE = re.compile(r"[a-z\u00f1]+")


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in text if unicodedata.category(c) != "Mn")


def words(text: str) -> list[str]:
    return _WORD_RE.findall(_fold(text))


def is_spanish(paragraph: str, min_words: int = 6) -> bool:
    """True for a paragraph of at least ``min_words`` words that reads as Spanish prose."""
    toks = words(paragraph)
    if len(toks) < min_words:
        return False
    es = sum(t in ES_WORDS for t in toks)
    en = sum(t in EN_WORDS for t in toks)
    return es >= 0.15 * len(toks) and es >= 3 * en


def is_english(paragraph: str, min_words: int = 6) -> bool:
    toks = words(paragraph)
    if len(toks) < min_words:
        return False
    es = sum(t in ES_WORDS for t in toks)
    en = sum(t in EN_WORDS for t in toks)
    return en >= 0.15 * len(toks) and en >= 3 * es


def looks_like_prose(paragraph: str) -> bool:
    """Reject code, paths, command lines and tables that slipped through the markup stripping."""
    if len(paragraph) < 30:
        return False
    letters = sum(c.isalpha() for c in paragraph)
    if letters < 0.7 * len(paragraph.replace(" ", "")):
        return False
    if sum(c in "{}[]<>=;$\\|_/#" for c in paragraph) > 0.03 * len(paragraph):
        return False
    return True


_WS_RE = re.compile(r"\s+")


def clean(text: str) -> str:
    text = html.unescape(text).replace("\u00a0", " ").replace("\u00ad", "")
    return _WS_RE.sub(" ", text).strip()


# --------------------------------------------------------------------------------------------
# Markup strippers
# --------------------------------------------------------------------------------------------
_BLOCK_TAGS = {
    "p", "div", "li", "ul", "ol", "dl", "dd", "dt", "h1", "h2", "h3", "h4", "h5", "h6", "td",
    "th", "tr", "table", "blockquote", "br", "section", "article", "header", "footer", "caption",
    "figcaption", "title", "hr", "body", "html",
}  # fmt: skip
_SKIP_TAGS = {"script", "style", "pre", "head", "nav", "noscript", "svg", "textarea", "select"}


class _Html2Paragraphs(HTMLParser):
    def __init__(self, skip_classes: tuple[str, ...] = ()) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._buf: list[str] = []
        self._skip_depth = 0
        self._stack: list[tuple[str, bool]] = []
        self._skip_classes = skip_classes

    def _flush(self) -> None:
        text = clean("".join(self._buf))
        if text:
            self.paragraphs.append(text)
        self._buf = []

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        if tag in {"br", "hr", "img", "meta", "link", "input"}:
            if tag in {"br", "hr"}:
                self._flush()
            return
        cls = dict(attrs).get("class") or ""
        skip = tag in _SKIP_TAGS or any(c in cls.split() for c in self._skip_classes)
        if tag in _BLOCK_TAGS:
            self._flush()
        self._stack.append((tag, skip))
        if skip:
            self._skip_depth += 1

    def handle_endtag(self, tag):  # noqa: ANN001
        if tag not in {t for t, _ in self._stack}:
            return
        while self._stack:
            t, skip = self._stack.pop()
            if skip:
                self._skip_depth -= 1
            if t == tag:
                break
        if tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data):  # noqa: ANN001
        if self._skip_depth == 0:
            self._buf.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def html_paragraphs(raw: str, skip_classes: tuple[str, ...] = ()) -> list[str]:
    parser = _Html2Paragraphs(skip_classes)
    parser.feed(raw)
    parser.close()
    return parser.paragraphs


_ROFF_ESC = [
    (re.compile(r"\\f(\[[^\]]*\]|\(..|.)"), ""),  # font changes
    (re.compile(r"\\s[+-]?\d"), ""),
    (re.compile(r"\\\*\(.."), ""),
    (re.compile(r"\\\*\[[^\]]*\]"), ""),
    (re.compile(r"\\\*."), ""),
    (re.compile(r"\\\((aq|cq|oq)"), "'"),
    (re.compile(r"\\\((lq|rq|dq)"), '"'),
    (re.compile(r"\\\((em|en)"), "-"),
    (re.compile(r"\\\(bu"), ""),
    (re.compile(r"\\\(.."), ""),
    (re.compile(r"\\\[[^\]]*\]"), ""),
    (re.compile(r"\\[-e]"), "-"),
    (re.compile(r"\\[&|^:%]"), ""),
    (re.compile(r"\\ "), " "),
    (re.compile(r"\\c$"), ""),
    (re.compile(r"\\."), ""),
]
_ROFF_BREAK = {
    "SH", "SS", "PP", "P", "LP", "TP", "IP", "HP", "sp", "br", "RS", "RE", "nf", "fi", "TH",
    "TS", "TE", "EX", "EE", "in", "ti", "Sh", "Ss", "Pp", "Bl", "El", "It", "Bd", "Ed", "Dl",
}  # fmt: skip
_ROFF_TEXT_MACROS = {"B", "I", "BI", "BR", "IB", "IR", "RB", "RI", "SM", "SB"}


def roff_paragraphs(raw: str) -> list[str]:
    """Paragraphs of the running text of a man page (headings, tables and examples dropped)."""
    paras: list[str] = []
    buf: list[str] = []
    in_table = in_nofill = False

    def flush() -> None:
        text = clean(" ".join(buf))
        if text:
            paras.append(text)
        buf.clear()

    for line in raw.split("\n"):
        if line.startswith((".", "'")):
            parts = line[1:].strip().split(None, 1)
            macro = parts[0] if parts else ""
            arg = parts[1] if len(parts) > 1 else ""
            if macro == "TS":
                in_table = True
            elif macro == "TE":
                in_table = False
            elif macro in {"nf", "EX"}:
                in_nofill = True
            elif macro in {"fi", "EE"}:
                in_nofill = False
            if macro in _ROFF_BREAK:
                flush()
            elif macro in _ROFF_TEXT_MACROS and not (in_table or in_nofill):
                buf.append(arg.replace('"', ""))
            continue
        if in_table or in_nofill:
            continue
        if not line.strip():
            flush()
            continue
        for pattern, repl in _ROFF_ESC:
            line = pattern.sub(repl, line)
        buf.append(line)
    flush()
    return paras


# --------------------------------------------------------------------------------------------
# Per-package extractors
# --------------------------------------------------------------------------------------------
def _files(base: Path, pattern: str) -> list[Path]:
    return sorted(p for p in base.glob(pattern) if p.is_file() and not p.is_symlink())


def _read(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def _html_docs(base: Path, pattern: str, rel_to: Path, skip_classes: tuple[str, ...] = ()) -> Iterator[Doc]:
    for path in _files(base, pattern):
        yield str(path.relative_to(rel_to)), html_paragraphs(_read(path), skip_classes)


def sword_docs(root: Path) -> Iterator[Doc]:
    """Reina-Valera 1909 (SWORD zText module, OSIS markup).

    ``<t>.bzs`` indexes zlib blocks of ``<t>.bzz``; ``<t>.bzv`` gives (block, offset, size) of
    every verse. Paragraph = 4 consecutive verses, document = 5 paragraphs.
    """
    mod = root / "usr/share/sword/modules/texts/ztext/spaRV1909eb"
    drop_re = re.compile(r"<(title|note)\b[^>]*>.*?</\1>", re.S)
    word_re = re.compile(r"<w\b[^>]*>")
    tag_re = re.compile(r"<[^>]+>")
    for testament in ("ot", "nt"):
        index = (mod / f"{testament}.bzs").read_bytes()
        blob = (mod / f"{testament}.bzz").read_bytes()
        verses_idx = (mod / f"{testament}.bzv").read_bytes()
        blocks: dict[int, bytes] = {}
        verses: list[str] = []
        for k in range(len(verses_idx) // 10):
            b, off, size = struct.unpack("<IIH", verses_idx[k * 10 : k * 10 + 10])
            if size == 0:
                continue
            if b not in blocks:
                boff, bsize, _ = struct.unpack("<III", index[b * 12 : b * 12 + 12])
                blocks = {b: zlib.decompress(blob[boff : boff + bsize])}
            text = blocks[b][off : off + size].decode("utf-8", errors="replace")
            text = clean(tag_re.sub("", word_re.sub(" ", drop_re.sub(" ", text))))
            if len(text.split()) >= 3:
                verses.append(re.sub(r" ([,.;:!?])", r"\1", text))
        paras = [" ".join(verses[i : i + 4]) for i in range(0, len(verses), 4)]
        for j in range(0, len(paras), 5):
            yield f"{testament}/{j // 5:04d}", paras[j : j + 5]


def libreoffice_docs(root: Path) -> Iterator[Doc]:
    base = root / "usr/share/libreoffice/help/es"
    yield from _html_docs(base, "**/*.html", base)


def manpages_docs(root: Path) -> Iterator[Doc]:
    base = root / "usr/share/man/es"
    for path in _files(base, "**/*.gz"):
        yield str(path.relative_to(base)), roff_paragraphs(_read(path))


def lilypond_docs(root: Path) -> Iterator[Doc]:
    base = root / "usr/share/doc/lilypond/html"
    # The big-page manuals repeat the split pages: read only the split pages.
    for path in _files(base, "**/*.es.html"):
        if "big-page" in path.name:
            continue
        yield str(path.relative_to(base)), html_paragraphs(_read(path), ("nav-panel", "toc"))


def debian_reference_docs(root: Path) -> Iterator[Doc]:
    base = root / "usr/share/debian-reference"
    yield from _html_docs(base, "**/*.es.html", base, ("toc", "navheader", "navfooter"))


def gnome_docs(root: Path) -> Iterator[Doc]:
    """Mallard ``.page`` files of the Spanish GNOME help: the text of every ``<p>`` element."""
    base = root / "usr/share/help/es"
    for path in _files(base, "**/*.page"):
        try:
            tree = ET.fromstring(path.read_bytes())
        except ET.ParseError:
            continue
        paras = []
        for el in tree.iter():
            if el.tag.rsplit("}", 1)[-1] in {"p", "title"}:
                paras.append(clean("".join(el.itertext())))
        yield str(path.relative_to(base)), [p for p in paras if p]


def fortunes_docs(root: Path) -> Iterator[Doc]:
    base = root / "usr/share/games/fortunes/es"
    for path in _files(base, "*"):
        if path.suffix in {".dat", ".u8"} or path.name.endswith(".dat"):
            continue
        text = _read(path)
        paras = []
        for fortune in re.split(r"\n%\n", text):
            fortune = re.split(r"\n\s*--", fortune)[0]  # drop the attribution
            paras.append(clean(fortune.replace("\n", " ")))
        yield path.name, [p for p in paras if p]


def aptitude_docs(root: Path) -> Iterator[Doc]:
    base = root / "usr/share/doc/aptitude/html/es"
    yield from _html_docs(base, "**/*.html", base, ("toc", "navheader", "navfooter"))


def maint_guide_docs(root: Path) -> Iterator[Doc]:
    base = root / "usr/share/doc/maint-guide-es/html"
    yield from _html_docs(base, "**/*.html", base, ("toc", "navheader", "navfooter"))


def gimp_help_docs(root: Path) -> Iterator[Doc]:
    base = root / "usr/share/gimp/2.0/help/es"
    yield from _html_docs(base, "*.html", base, ("navheader", "navfooter", "toc"))


def handbook_docs(root: Path, lang: str = "es-ES") -> Iterator[Doc]:
    base = root / "usr/share/doc/debian-handbook/html" / lang
    yield from _html_docs(base, "*.html", base, ("navheader", "navfooter", "toc", "breadcrumbs"))


#: Training text of the embedded model: package -> (extractor, licence).
TRAIN_SOURCES: dict[str, tuple[Callable[[Path], Iterator[Doc]], str]] = {
    "sword-text-sparv": (sword_docs, "public domain (Reina-Valera 1909)"),
    "libreoffice-help-es": (libreoffice_docs, "MPL-2.0"),
    "manpages-es": (manpages_docs, "GPL-3+ (translations); original pages under their own free licences"),
    "manpages-es-dev": (manpages_docs, "GPL-3+ (translations); original pages under their own free licences"),
    "lilypond-doc-html-es": (lilypond_docs, "GFDL-1.3+"),
    "debian-reference-es": (debian_reference_docs, "GPL-2+"),
    "gnome-user-docs": (gnome_docs, "CC-BY-SA-3.0"),
    "fortunes-es": (fortunes_docs, "quotes presumed public domain; package GPL-2+"),
    "aptitude-doc-es": (aptitude_docs, "GPL-2+"),
    "maint-guide-es": (maint_guide_docs, "MIT or GPL-2+ (see package copyright)"),
}

# --- narrative and encyclopedic prose from game and astronomy data (training only) ---------
_MO_TAG_RE = re.compile(r"<[^<>]*>")
#: printf / Python / Lua / shell placeholders: such strings are program messages, not prose.
_PLACEHOLDER_RE = re.compile(r"%(?:\d+\$)?[-+#0-9.]*[a-zA-Z(]|\{[^{}]*\}|\$[A-Za-z_(]|@\w+@")


def mo_prose(msgstr: str) -> list[str]:
    """Paragraphs of one ``.mo`` translation: markup dropped, split at line breaks."""
    if _PLACEHOLDER_RE.search(msgstr):
        return []
    text = _MO_TAG_RE.sub(" ", msgstr.replace("\\n", "\n"))
    return [p for p in (clean(line) for line in text.split("\n")) if p]


def _mo_docs(base: Path, pattern: str, skip: tuple[str, ...] = (), per_doc: int = 20) -> Iterator[Doc]:
    """Spanish ``.mo`` catalogues under ``base``: documents of ``per_doc`` consecutive messages."""
    for path in _files(base, pattern):
        if path.name in skip:
            continue
        paras = [p for _msgid, msgstr in read_mo(path) for p in mo_prose(msgstr)]
        for j in range(0, len(paras), per_doc):
            yield f"{path.name}/{j // per_doc:04d}", paras[j : j + per_doc]


def wesnoth_docs(root: Path) -> Iterator[Doc]:
    """Battle for Wesnoth: campaign dialogue and story text, unit and help descriptions."""
    yield from _mo_docs(root / "usr/share/games/wesnoth", "*/locale/es/LC_MESSAGES/*.mo",
                        skip=("wesnoth-lib.mo", "wesnoth-editor.mo"))


def freeciv_docs(root: Path) -> Iterator[Doc]:
    """Freeciv: nation histories and the help texts (messages with placeholders dropped)."""
    yield from _mo_docs(root / "usr/share/locale/es/LC_MESSAGES", "freeciv-*.mo", skip=("freeciv-ruledit.mo",))


def widelands_docs(root: Path) -> Iterator[Doc]:
    """Widelands: scenario stories, tribe encyclopedia, map descriptions."""
    yield from _mo_docs(root / "usr/share/games/widelands/data/locale/es/LC_MESSAGES", "*.mo",
                        skip=("widelands_editor.mo", "widelands_console.mo"))


def cataclysm_docs(root: Path) -> Iterator[Doc]:
    """Cataclysm: Dark Days Ahead (es_ES and es_AR): item and place descriptions, NPC dialogue,
    notes and news snippets; everyday modern vocabulary."""
    yield from _mo_docs(root / "usr/share/locale", "es_*/LC_MESSAGES/cataclysm-dda.mo")


def freedroidrpg_docs(root: Path) -> Iterator[Doc]:
    """FreedroidRPG: dialogue and item descriptions."""
    yield from _mo_docs(root / "usr/share/locale/es/LC_MESSAGES", "freedroidrpg-*.mo")


def read_qm(path: Path) -> list[str]:
    """Translations of a Qt ``.qm`` catalogue (the messages section, tag 0x69), in file order."""
    data = path.read_bytes()
    pos, out = 16, []  # 16-byte magic, then (tag: u8, length: u32 BE, payload) sections
    while pos + 5 <= len(data):
        tag, length = data[pos], struct.unpack(">I", data[pos + 1 : pos + 5])[0]
        section, pos = data[pos + 5 : pos + 5 + length], pos + 5 + length
        if tag != 0x69:
            continue
        i = 0
        while i < len(section):
            t = section[i]
            i += 1
            if t == 1:  # end of message
                continue
            if t == 5:  # obsolete: 4 bytes
                i += 4
            elif t in (3, 6, 7, 8):  # translation (UTF-16BE), source text, context, comment
                n = struct.unpack(">I", section[i : i + 4])[0]
                i += 4
                if n == 0xFFFFFFFF:
                    continue
                if t == 3:
                    out.append(section[i : i + n].decode("utf-16-be", errors="replace"))
                i += n
            else:  # unknown tag: stop rather than misread
                break
    return out


def gcompris_docs(root: Path) -> Iterator[Doc]:
    """GCompris: instructions and stories of the children's activities."""
    path = root / "usr/share/gcompris-qt/translations/gcompris_es.qm"
    paras = [p for msg in read_qm(path) for p in mo_prose(msg)]
    for j in range(0, len(paras), 20):
        yield f"{path.name}/{j // 20:04d}", paras[j : j + 20]


def stellarium_docs(root: Path) -> Iterator[Doc]:
    """Stellarium: the Spanish descriptions of the sky cultures (myths, history of astronomy)."""
    base = root / "usr/share/stellarium/skycultures"
    yield from _html_docs(base, "*/description.es.utf8", base)


_WESNOTH = ("data", "did", "dm", "dw", "ei", "httt", "l", "low", "nr", "sof", "sota", "sotbe", "thot",
            "trow", "tsg", "ttb", "utbs")  # fmt: skip

#: More training text, added after the sources above (so the bundled sample, built from the
#: held-out part of TRAIN_SOURCES, does not depend on it): modern narrative and encyclopedic
#: Spanish, which software documentation lacks. Same language filter, same 1-in-20 hold-out,
#: de-duplicated against the training text and against every held-out paragraph.
EXTRA_TRAIN_SOURCES: dict[str, tuple[Callable[[Path], Iterator[Doc]], str]] = {
    **{f"wesnoth-1.16-{c}": (wesnoth_docs, "GPL-2+") for c in _WESNOTH},
    "freeciv-data": (freeciv_docs, "GPL-2+"),
    "widelands-data": (widelands_docs, "GPL-2+"),
    "stellarium-data": (stellarium_docs, "GPL-2+"),
    "cataclysm-dda-data": (cataclysm_docs, "CC-BY-SA-3.0"),
    "freedroidrpg-data": (freedroidrpg_docs, "GPL-2+"),
    "gcompris-qt-data": (gcompris_docs, "GPL-3+"),
}

#: Held-out Spanish prose for the bundled sample (never used to train the model).
HELDOUT_SOURCES: dict[str, tuple[Callable[[Path], Iterator[Doc]], str]] = {
    "gimp-help-es": (gimp_help_docs, "GFDL-NIV-1.2+ (copyright file in gimp-help-common)"),
    "debian-handbook": (handbook_docs, "GPL-2+ or CC-BY-SA-3.0"),
}

#: Packages whose Spanish ``.mo`` catalogues give UI strings for the sample.
MO_PACKAGES = ("tar", "grep", "sed", "wget", "findutils", "diffutils")
#: Word lists for word-salad pages.
WORDLIST_PACKAGES = ("wspanish",)


def spanish_paragraphs(docs: Iterator[Doc]) -> Iterator[tuple[str, list[str]]]:
    """Keep only Spanish prose paragraphs of every document (documents left empty are dropped)."""
    for doc_id, paras in docs:
        kept = [p for p in paras if looks_like_prose(p) and is_spanish(p)]
        if kept:
            yield doc_id, kept


def read_mo(path: Path) -> list[tuple[str, str]]:
    """(msgid, msgstr) pairs of a GNU ``.mo`` catalogue (header and plural forms dropped)."""
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic == 0x950412DE else ">"
    _magic, _revision, n, orig_off, trans_off = struct.unpack(endian + "5I", data[:20])
    out = []
    for i in range(n):
        olen, ooff = struct.unpack(endian + "2I", data[orig_off + 8 * i : orig_off + 8 * i + 8])
        tlen, toff = struct.unpack(endian + "2I", data[trans_off + 8 * i : trans_off + 8 * i + 8])
        msgid = data[ooff : ooff + olen].decode("utf-8", errors="replace")
        msgstr = data[toff : toff + tlen].decode("utf-8", errors="replace")
        if not msgid or "\x00" in msgid:
            continue
        out.append((msgid, msgstr.split("\x00")[0]))
    return out


def package_version(root: Path, package: str) -> str:
    """Version recorded by ``build_default_model.sh`` in ``<root>/<package>/.version``."""
    path = root / package / ".version"
    return path.read_text().strip() if path.exists() else "unknown"


# --------------------------------------------------------------------------------------------
# The train / held-out split
# --------------------------------------------------------------------------------------------
#: Share of the documents of every training package held out for the sample (by a hash of
#: ``package/doc_id``): 1 in HOLDOUT_MODULUS.
HOLDOUT_MODULUS = 20
#: The Reina-Valera Bible is archaic and would be a third of the training text: only 1 in
#: BIBLE_KEEP_MODULUS of its (non-held-out) documents is used for training.
BIBLE_KEEP_MODULUS = 2


#: Share of the (non-held-out) documents of a TRAIN_SOURCES package that goes into the training
#: text: 1 in N (by the same hash), 0 = none. Software documentation (menu paths, option
#: lists, command lines) made the model rank menus and boilerplate like prose and everyday
#: Spanish like noise, so it stays out of the training text; it still makes the held-out prose
#: of the bundled sample. This is applied after de-duplication, so the held-out split (and so the
#: sample) is the same as when every document was trained on. Packages not listed: all.
TRAIN_KEEP_MODULUS = {
    "libreoffice-help-es": 0,
    "manpages-es": 0,
    "manpages-es-dev": 0,
    "lilypond-doc-html-es": 0,
    "debian-reference-es": 0,
    "aptitude-doc-es": 0,
    "maint-guide-es": 0,
    "gnome-user-docs": 2,
}


def in_training_text(package: str, bucket: int) -> bool:
    n = TRAIN_KEEP_MODULUS.get(package, 1)
    return n > 0 and (bucket // HOLDOUT_MODULUS) % n == 0


def _bucket(package: str, doc_id: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{package}/{doc_id}".encode()).digest()[:8], "big")


def load_corpus(root: Path, normalize: Callable[[str], str], extra: bool = False):
    """Split the Spanish prose of the unpacked packages into training and held-out documents.

    Returns ``(train, heldout)``, each a dict ``package -> list[(doc_id, paragraphs)]`` in a
    deterministic order. Paragraphs are de-duplicated on their normalised form (``normalize``,
    the runtime's CCNet normalisation): across the whole training text, and in the held-out
    text against the training text and against itself, so no held-out paragraph is ever seen in
    training.
    """
    train: dict[str, list[Doc]] = {}
    heldout: dict[str, list[Doc]] = {}
    seen_train: set[str] = set()
    pending_heldout: list[tuple[str, Doc]] = []
    for package, (extract, _licence) in TRAIN_SOURCES.items():
        docs = []
        for doc_id, paras in spanish_paragraphs(extract(root / package)):
            bucket = _bucket(package, doc_id)
            if bucket % HOLDOUT_MODULUS == 0:
                pending_heldout.append((package, (doc_id, paras)))
                continue
            if package == "sword-text-sparv" and (bucket // HOLDOUT_MODULUS) % BIBLE_KEEP_MODULUS:
                continue
            kept = []
            for p in paras:
                key = normalize(p)
                if key not in seen_train:
                    seen_train.add(key)
                    kept.append(p)
            if kept and in_training_text(package, bucket):
                docs.append((doc_id, kept))
        train[package] = docs
    for package, (extract, _licence) in HELDOUT_SOURCES.items():
        for doc in spanish_paragraphs(extract(root / package)):
            pending_heldout.append((package, doc))
    seen_heldout: set[str] = set()
    for package, (doc_id, paras) in pending_heldout:
        kept = []
        for p in paras:
            key = normalize(p)
            if key not in seen_train and key not in seen_heldout:
                seen_heldout.add(key)
                kept.append(p)
        if kept:
            heldout.setdefault(package, []).append((doc_id, kept))
    if extra:
        # Training only: never changes ``heldout`` (the bundled sample), never repeats it.
        for package, (extract, _licence) in EXTRA_TRAIN_SOURCES.items():
            docs = []
            for doc_id, paras in spanish_paragraphs(extract(root / package)):
                if _bucket(package, doc_id) % HOLDOUT_MODULUS == 0:
                    continue
                kept = []
                for p in paras:
                    key = normalize(p)
                    if key not in seen_train and key not in seen_heldout:
                        seen_train.add(key)
                        kept.append(p)
                if kept:
                    docs.append((doc_id, kept))
            train[package] = docs
    return train, heldout
