#!/usr/bin/env python3
"""Build the bundled mC4-layout Spanish sample (``mc4_sampling/data/sample/``).

Input: Debian packages unpacked under ``scripts/.build/root/<package>/`` (done by
``scripts/build_default_model.sh``, which then runs this script). Output, byte for byte the same
for the same package contents:

- ``mc4_sampling/data/sample/multilingual/c4-es.tfrecord-0000{0..3}-of-02048.json.gz`` (train)
- ``mc4_sampling/data/sample/multilingual/c4-es-validation.tfrecord-00000-of-00016.json.gz``
- ``mc4_sampling/data/sample/README.md`` (sources, licences, composition)
- ``scripts/.build/sample_kinds.jsonl`` (url -> kind of every document; not committed; read by
  ``build_default_model.py`` for its perplexity table)

Each line is ``{"text": ..., "timestamp": ..., "url": ...}`` as in ``allenai/c4``. About 62 % of
the documents are held-out Spanish prose (never used to train the embedded model), the rest is
the kind of low-quality web text that perplexity sampling is meant to push down.

Usage: ``.venv/bin/python scripts/build_sample.py [--root scripts/.build/root]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import json
import random
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import spanish_text as st  # noqa: E402

from mc4_sampling.normalization import normalize_line  # noqa: E402

SEED = 20210715
TRAIN_SHARDS = (0, 1, 2, 3)
N_TRAIN_SHARDS_TOTAL = 2048
N_VALID_SHARDS_TOTAL = 16
DOCS_PER_TRAIN_SHARD = 900
DOCS_VALIDATION = 400

#: Share of every kind of document (sums to 1).
KINDS = {
    "prose": 0.52,  # held-out Spanish prose, 1-9 paragraphs
    "prose_nav": 0.10,  # the same with menu / cookie / footer lines around it
    "boilerplate": 0.07,  # menus, cookie banners, footers, "leave a comment" only
    "word_salad": 0.06,  # random words from a Spanish word list
    "repeated": 0.04,  # one or a few lines repeated many times
    "short": 0.06,  # one or two short lines (404 pages, product titles...)
    "english": 0.06,  # English prose (Debian Administrator's Handbook, en-US)
    "spam": 0.05,  # keyword stuffing / SEO spam
    "ui_strings": 0.04,  # program messages from Spanish .mo catalogues
}
KIND_DESCRIPTIONS = {
    "prose": "held-out Spanish prose, 1 to 9 paragraphs of one source document",
    "prose_nav": "held-out Spanish prose wrapped in menu, cookie-banner and footer lines",
    "boilerplate": "only navigation menus, cookie banners, footers, comment forms",
    "word_salad": "random words from the wspanish word list, as lines or tag clouds",
    "repeated": "one line (or a few) repeated 6 to 40 times",
    "short": "one or two short lines (error pages, product titles, 'loading...')",
    "english": "English prose from debian-handbook (en-US)",
    "spam": "keyword stuffing: pharmacy, casino, loans, locksmith-in-every-city pages",
    "ui_strings": "program messages from the Spanish .mo catalogues of GNU tools",
}

#: Word stems never used in made-up domain and site names.
DOMAIN_BLOCKLIST = ("puta", "puto", "mari", "coit", "cojo", "follar", "polla", "culo", "mierd", "nazi",
                    "negr", "moro", "sudaca", "judi", "gitan", "maric", "joto", "verga", "pene", "teta",
                    "sexo", "zorr", "idiot", "imbec", "subnorm", "retras", "muert", "matar", "viol")  # fmt: skip

START = dt.datetime(2013, 5, 1, tzinfo=dt.timezone.utc)
END = dt.datetime(2020, 10, 31, tzinfo=dt.timezone.utc)

NAV_ITEMS = [
    "Inicio", "Quiénes somos", "Servicios", "Productos", "Blog", "Contacto", "Tienda", "Mi cuenta",
    "Carrito", "Iniciar sesión", "Registrarse", "Preguntas frecuentes", "Aviso legal",
    "Política de privacidad", "Política de cookies", "Mapa del sitio", "Noticias", "Ofertas",
    "Novedades", "Galería", "Eventos", "Agenda", "Trabaja con nosotros", "Descargas", "Foro",
    "Ayuda", "Buscar", "Categorías", "Archivo", "Nosotros", "Empresa", "Clientes", "Portafolio",
    "Recursos", "Opiniones", "Envíos y devoluciones", "Condiciones de venta", "Prensa", "Equipo",
]  # fmt: skip
COOKIE_LINES = [
    "Utilizamos cookies propias y de terceros para mejorar nuestros servicios y mostrarle publicidad relacionada "
    "con sus preferencias mediante el análisis de sus hábitos de navegación. Si continúa navegando, consideramos "
    "que acepta su uso.",
    "Este sitio web utiliza cookies para que usted tenga la mejor experiencia de usuario. Si continúa navegando "
    "está dando su consentimiento para la aceptación de las mencionadas cookies y la aceptación de nuestra "
    "política de cookies.",
    "Usamos cookies para asegurar que te damos la mejor experiencia en nuestra web. Si continúas usando este "
    "sitio, asumiremos que estás de acuerdo con ello.",
    "Esta web usa cookies. Aceptar Leer más",
    "Aceptar cookies Configurar Rechazar",
    "Al navegar por este sitio aceptas el uso de cookies. Más información",
]
FOOTER_LINES = [
    "© {year} {name}. Todos los derechos reservados.",
    "Copyright © {year} {name} | Aviso legal | Política de privacidad | Cookies",
    "{name} - Todos los derechos reservados - {year}",
    "Diseño web por {name}",
    "Síguenos en Facebook, Twitter e Instagram",
    "Suscríbete a nuestro boletín y recibe todas las novedades",
    "Compartir: Facebook Twitter WhatsApp Email",
    "Deja un comentario Cancelar respuesta",
    "Tu dirección de correo electrónico no será publicada. Los campos obligatorios están marcados con *",
    "Guarda mi nombre, correo electrónico y web en este navegador para la próxima vez que comente.",
    "Entradas recientes",
    "Comentarios recientes",
    "Leer más",
    "Publicado el {day} de {month} de {year} por {name}",
    "Teléfono: 9{phone} | Email: info@{domain}",
    "Horario: lunes a viernes de 9:00 a 14:00 y de 16:00 a 19:00",
    "Envío gratis en pedidos superiores a 50 €",
    "Añadir al carrito",
    "Valoraciones (0)",
    "Aún no hay valoraciones.",
]
MONTHS = ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
          "octubre", "noviembre", "diciembre"]  # fmt: skip
SHORT_PAGES = [
    ["Página no encontrada", "Lo sentimos, la página que busca no existe."],
    ["Error 404"],
    ["Cargando..."],
    ["Esta página ya no está disponible."],
    ["Inicia sesión para continuar"],
    ["Sitio en construcción", "Vuelve pronto"],
    ["El producto no está disponible"],
    ["Acceso restringido. Debe ser mayor de edad para entrar."],
    ["Dominio en venta", "Contacte con el propietario"],
    ["{product} - {price} €", "Añadir al carrito"],
    ["{product}", "Precio: {price} €"],
    ["{city}: {n} ofertas de empleo"],
    ["Tiempo en {city}", "Hoy: {n}°C"],
]
PRODUCTS = [
    "Zapatillas deportivas hombre", "Funda para móvil", "Camiseta de algodón", "Cafetera italiana",
    "Mochila escolar", "Auriculares inalámbricos", "Silla de oficina", "Lámpara de pie",
    "Vestido de fiesta", "Bicicleta de montaña", "Colchón viscoelástico", "Reloj de pulsera",
    "Juego de sábanas", "Cargador USB", "Pantalón vaquero mujer", "Aceite de oliva virgen extra",
]  # fmt: skip
CITIES = [
    "Madrid", "Barcelona", "Valencia", "Sevilla", "Zaragoza", "Málaga", "Murcia", "Palma",
    "Bilbao", "Alicante", "Córdoba", "Valladolid", "Vigo", "Gijón", "Granada", "Oviedo",
    "Ciudad de México", "Guadalajara", "Monterrey", "Puebla", "Bogotá", "Medellín", "Cali",
    "Buenos Aires", "Rosario", "Córdoba", "Lima", "Arequipa", "Santiago", "Valparaíso", "Quito",
    "Guayaquil", "Caracas", "Montevideo", "Asunción", "La Paz", "San José", "Panamá",
]  # fmt: skip
SPAM_TEMPLATES = [
    ["comprar {drug} barato", "{drug} sin receta", "{drug} online", "{drug} precio",
     "{drug} genérico", "comprar {drug} en {city}", "{drug} envío gratis", "{drug} 100mg"],
    ["casino online", "casino online gratis", "bono sin depósito", "tragamonedas gratis",
     "ruleta online dinero real", "apuestas deportivas {city}", "mejores casinos online {year}",
     "giros gratis sin depósito"],
    ["préstamos rápidos", "préstamos sin aval", "préstamos online {city}",
     "dinero rápido sin nómina", "créditos rápidos sin buró", "préstamo inmediato",
     "minicréditos al instante", "préstamos con asnef"],
    ["cerrajero {city}", "cerrajero 24 horas {city}", "cerrajero urgente {city}",
     "cerrajero barato {city}", "apertura de puertas {city}", "cambio de cerraduras {city}"],
    ["ganar dinero desde casa", "ganar dinero por internet", "trabajo desde casa {city}",
     "ingresos extra", "cómo ganar dinero rápido", "negocio online rentable"],
    ["adelgazar rápido", "pastillas para adelgazar", "perder peso en una semana",
     "quemar grasa abdominal", "dieta milagro", "adelgazar sin dieta {year}"],
]  # fmt: skip
DRUGS = ["viagra", "cialis", "levitra", "kamagra", "tramadol", "xanax", "propecia"]
TLDS = [".es"] * 8 + [".com"] * 10 + [".com.mx"] * 3 + [".com.ar"] * 2 + [".cl", ".co", ".pe",
        ".org", ".net", ".info", ".com.co", ".ec", ".uy", ".cat", ".eus", ".gal"]  # fmt: skip
SECTIONS = ["blog", "noticias", "articulos", "ayuda", "guia", "tutoriales", "docs", "foro",
            "manual", "recursos", "opinion", "actualidad", "tecnologia", "informatica",
            "soporte", "comunidad", "wiki", "aprende", "cursos", "linux"]  # fmt: skip


def slug(text: str, max_words: int = 7) -> str:
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    words = re.findall(r"[a-z0-9]+", text)[:max_words]
    return "-".join(words) or "pagina"


class Generator:
    def __init__(self, root: Path, rng: random.Random):
        self.root = root
        self.rng = rng
        self.sources: Counter = Counter()
        wordlist = (root / "wspanish/usr/share/dict/spanish").read_text(encoding="utf-8").split("\n")
        self.words = [w for w in wordlist if w and not w[0].isupper() and "'" not in w]
        self.domain_words = [
            w for w in self.words if re.fullmatch(r"[a-z]{4,9}", w) and not any(b in w for b in DOMAIN_BLOCKLIST)
        ]
        self.ui_strings = []
        for pkg in st.MO_PACKAGES:
            for mo in sorted((root / pkg / "usr/share/locale/es/LC_MESSAGES").glob("*.mo")):
                for _msgid, msgstr in st.read_mo(mo):
                    s = " ".join(msgstr.split())
                    if 3 <= len(s) <= 300:
                        self.ui_strings.append(s)
        self.urls: set[str] = set()

    # --- metadata ----------------------------------------------------------------------------
    def timestamp(self) -> str:
        seconds = self.rng.randrange(int((END - START).total_seconds()))
        return (START + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def domain(self) -> str:
        r = self.rng
        n = r.choice([1, 1, 2, 2, 2, 3])
        name = r.choice(["", "-"]).join(r.choice(self.domain_words) for _ in range(n))
        if r.random() < 0.15:
            name += r.choice(["online", "web", "blog", "info", "es", "24", "365", "mx", "ar"])
        return name + r.choice(TLDS)

    def url(self, title: str, kind: str) -> str:
        r = self.rng
        while True:
            host = ("www." if r.random() < 0.6 else "") + self.domain()
            scheme = "https" if r.random() < 0.7 else "http"
            style = r.randrange(6)
            s = slug(title)
            if style == 0:
                path = f"/{r.choice(SECTIONS)}/{s}/"
            elif style == 1:
                path = f"/{r.randint(2012, 2020)}/{r.randint(1, 12):02d}/{s}/"
            elif style == 2:
                path = f"/{r.choice(SECTIONS)}/{s}-{r.randint(100, 99999)}.html"
            elif style == 3:
                path = f"/index.php?option=com_content&view=article&id={r.randint(1, 9999)}"
            elif style == 4:
                path = f"/?p={r.randint(1, 40000)}"
            else:
                path = f"/{s}"
            if kind in {"boilerplate", "short"} and r.random() < 0.5:
                path = r.choice(["/", "/contacto", "/aviso-legal", "/tienda/", "/carrito", "/404"])
            url = f"{scheme}://{host}{path}"
            if url not in self.urls:
                self.urls.add(url)
                return url

    def site_name(self) -> str:
        return " ".join(w.capitalize() for w in self.rng.sample(self.domain_words, 2))

    # --- pieces of pages ---------------------------------------------------------------------
    def fill(self, template: str, name: str | None = None) -> str:
        r = self.rng
        return template.format(
            year=r.randint(2012, 2020), name=name or self.site_name(), day=r.randint(1, 28),
            month=r.choice(MONTHS), phone=r.randint(10000000, 99999999),
            domain=slug(name or "web", 2).replace("-", "") + ".es", product=r.choice(PRODUCTS),
            price=f"{r.randint(5, 300)},{r.choice(['00', '95', '99', '50'])}", city=r.choice(CITIES),
            n=r.randint(2, 400), drug=r.choice(DRUGS),
        )

    def menu(self) -> list[str]:
        r = self.rng
        items = r.sample(NAV_ITEMS, r.randint(4, 12))
        if r.random() < 0.5:
            return [" ".join(items)]
        return items

    def footer(self, name: str) -> list[str]:
        r = self.rng
        lines = [self.fill(t, name) for t in r.sample(FOOTER_LINES, r.randint(2, 6))]
        if r.random() < 0.6:
            lines.insert(r.randrange(len(lines) + 1), r.choice(COOKIE_LINES))
        return lines

    # --- documents ---------------------------------------------------------------------------
    def boilerplate(self) -> list[str]:
        name = self.site_name()
        return self.menu() + self.footer(name) + (self.menu() if self.rng.random() < 0.3 else [])

    def prose_nav(self, paras: list[str]) -> list[str]:
        name = self.site_name()
        return self.menu() + paras + self.footer(name)

    def word_salad(self) -> list[str]:
        r = self.rng
        if r.random() < 0.3:
            tags = r.sample(self.words, r.randint(15, 60))
            return [r.choice(["Etiquetas: ", "Tags: ", "Búsquedas relacionadas: ", ""]) + ", ".join(tags)]
        lines = []
        for _ in range(r.randint(2, 10)):
            line = " ".join(r.sample(self.words, r.randint(6, 22)))
            lines.append(line[0].upper() + line[1:] + r.choice([".", ".", "", ","]))
        return lines

    def repeated(self) -> list[str]:
        r = self.rng
        footers = [self.fill(t) for t in r.sample(FOOTER_LINES, 3)]
        pool = footers + [self.fill(r.choice(SPAM_TEMPLATES[r.randrange(len(SPAM_TEMPLATES))]))]
        block = r.sample(pool, r.randint(1, 3))
        return block * r.randint(6, 40 // len(block) + 6)

    def short(self) -> list[str]:
        return [self.fill(t) for t in self.rng.choice(SHORT_PAGES)]

    def spam(self) -> list[str]:
        r = self.rng
        templates = r.choice(SPAM_TEMPLATES)
        lines = []
        for _ in range(r.randint(3, 12)):
            k = r.randint(3, 10)
            lines.append(" ".join(self.fill(r.choice(templates)) for _ in range(k)))
        if r.random() < 0.5:
            title = self.fill(r.choice(templates)).capitalize()
            lines.insert(0, title + " - Las mejores ofertas de " + str(r.randint(2014, 2020)))
        return lines

    def ui(self) -> list[str]:
        r = self.rng
        return r.sample(self.ui_strings, r.randint(8, 40))


def prose_chunks(heldout: dict, rng: random.Random) -> list[tuple[str, list[str]]]:
    """Cut every held-out document into chunks of 1-9 consecutive paragraphs, shuffled."""
    chunks = []
    for package in sorted(heldout):
        for doc_id, paras in heldout[package]:
            i = 0
            while i < len(paras):
                k = rng.randint(1, 9)
                chunks.append((package, paras[i : i + k]))
                i += k
    rng.shuffle(chunks)
    # one-paragraph chunks must be real pages, not a stray heading
    return [c for c in chunks if len(c[1]) > 1 or len(c[1][0]) >= 200]


def english_chunks(root: Path, rng: random.Random) -> list[list[str]]:
    chunks = []
    seen: set[str] = set()
    for _doc_id, paras in st.handbook_docs(root / "debian-handbook", "en-US"):
        paras = [p for p in paras if st.looks_like_prose(p) and st.is_english(p) and p not in seen]
        seen.update(paras)
        i = 0
        while i < len(paras):
            k = rng.randint(2, 7)
            chunks.append(paras[i : i + k])
            i += k
    rng.shuffle(chunks)
    return chunks


def kind_sequence(rng: random.Random | None = None) -> tuple[dict, list[str]]:
    """``(counts, kinds)``: how many documents of each kind, and the kind of every document in output
    order (train shards one after the other, then validation): the build's first draw, ``rng``
    (``Random(SEED)``) shuffling the list of kinds. It depends on nothing else, so the kinds can be
    replayed without the Debian packages (``--kinds-only``)."""
    rng = rng if rng is not None else random.Random(SEED)
    total = DOCS_PER_TRAIN_SHARD * len(TRAIN_SHARDS) + DOCS_VALIDATION
    counts = {k: round(w * total) for k, w in KINDS.items()}
    counts["prose"] += total - sum(counts.values())
    kinds = [k for k, n in counts.items() for _ in range(n)]
    rng.shuffle(kinds)
    return counts, kinds


def output_files() -> list[tuple[str, str, int, int, int]]:
    """``(file name, split, shard, first document, documents)`` of every output file, in output order."""
    files = []
    for i, shard in enumerate(TRAIN_SHARDS):
        name = f"c4-es.tfrecord-{shard:05d}-of-{N_TRAIN_SHARDS_TOTAL:05d}.json.gz"
        files.append((name, "train", shard, i * DOCS_PER_TRAIN_SHARD, DOCS_PER_TRAIN_SHARD))
    name = f"c4-es-validation.tfrecord-00000-of-{N_VALID_SHARDS_TOTAL:05d}.json.gz"
    files.append((name, "validation", 0, DOCS_PER_TRAIN_SHARD * len(TRAIN_SHARDS), DOCS_VALIDATION))
    return files


#: The sidecar beside the sample: the kind of every document, keyed by split, shard and position.
KINDS_SIDECAR = "kinds.tsv.gz"


def write_kinds_sidecar(out_dir: Path, kinds: list[str]) -> Path:
    """``<out_dir>/kinds.tsv.gz``: ``split shard position kind`` lines (tab-separated, with a header),
    gzip with mtime 0 (the same bytes every time). Written beside the sample, never into its files."""
    lines = ["split\tshard\tposition\tkind"]
    for _name, split, shard, first, n in output_files():
        lines += [f"{split}\t{shard}\t{pos}\t{kinds[first + pos]}" for pos in range(n)]
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(("\n".join(lines) + "\n").encode("utf-8"))
    path = out_dir / KINDS_SIDECAR
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(path)
    return path


def build(root: Path, out_dir: Path, kinds_path: Path) -> dict:
    rng = random.Random(SEED)
    _train, heldout = st.load_corpus(root, normalize_line)
    gen = Generator(root, random.Random(SEED + 1))
    prose = prose_chunks(heldout, random.Random(SEED + 2))
    english = english_chunks(root, random.Random(SEED + 3))

    counts, kinds = kind_sequence(rng)
    need_prose = counts["prose"] + counts["prose_nav"]
    if len(prose) < need_prose:
        raise SystemExit(f"only {len(prose)} held-out prose chunks for {need_prose} prose documents")

    docs = []
    prose_it = iter(prose)
    english_it = iter(english)
    sources: Counter = Counter()
    for kind in kinds:
        if kind in {"prose", "prose_nav"}:
            package, paras = next(prose_it)
            sources[package] += 1
            lines = paras if kind == "prose" else gen.prose_nav(paras)
            title = paras[0]
        elif kind == "english":
            lines = next(english_it)
            sources["debian-handbook (en-US)"] += 1
            title = lines[0]
        else:
            lines = getattr(gen, {"ui_strings": "ui"}.get(kind, kind))()
            title = lines[0] if kind != "boilerplate" else gen.rng.choice(NAV_ITEMS)
        text = "\n".join(lines)
        docs.append({"kind": kind, "text": text, "timestamp": gen.timestamp(), "url": gen.url(title, kind)})

    out = out_dir / "multilingual"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("c4-es*.json.gz"):
        old.unlink()
    files = {}
    n_train = DOCS_PER_TRAIN_SHARD * len(TRAIN_SHARDS)
    for i, shard in enumerate(TRAIN_SHARDS):
        name = f"c4-es.tfrecord-{shard:05d}-of-{N_TRAIN_SHARDS_TOTAL:05d}.json.gz"
        files[name] = ("train", docs[i * DOCS_PER_TRAIN_SHARD : (i + 1) * DOCS_PER_TRAIN_SHARD])
    files[f"c4-es-validation.tfrecord-00000-of-{N_VALID_SHARDS_TOTAL:05d}.json.gz"] = ("validation", docs[n_train:])
    with open(kinds_path, "w", encoding="utf-8") as kf:
        for name, (split, shard_docs) in files.items():
            buf = io.BytesIO()
            with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
                for d in shard_docs:
                    rec = {"text": d["text"], "timestamp": d["timestamp"], "url": d["url"]}
                    gz.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
                    kf.write(json.dumps({"file": name, "split": split, "url": d["url"], "kind": d["kind"]}) + "\n")
            (out / name).write_bytes(buf.getvalue())
    write_kinds_sidecar(out_dir, [d["kind"] for d in docs])

    stats = {
        "files": {name: (split, len(ds), (out / name).stat().st_size) for name, (split, ds) in files.items()},
        "kinds": {split: Counter(d["kind"] for d in ds)
                  for split, ds in (("train", docs[:n_train]), ("validation", docs[n_train:]))},
        "sources": sources,
        "prose_chunks_available": len(prose),
        "chars": sum(len(d["text"]) for d in docs),
        "ui_strings": len(gen.ui_strings),
        "words": len(gen.words),
    }
    write_readme(root, out_dir / "README.md", stats, counts)
    return stats


def write_readme(root: Path, path: Path, stats: dict, counts: dict) -> None:
    ver = lambda p: st.package_version(root, p)  # noqa: E731
    lines = [
        "# Bundled Spanish sample in the mC4 layout",
        "",
        "A few thousand documents laid out exactly like `allenai/c4`'s `multilingual/` folder, so",
        "that the builder, the tests and the examples run offline:",
        "`mc4_sampling.SAMPLE_DATA_DIR` is a drop-in `data_dir`. Each line of each file is a JSON",
        'object with exactly `text`, `timestamp` and `url`; paragraphs of a page are joined by `"\\n"`.',
        "",
        "This file and the data files are generated by `scripts/build_sample.py` (run by",
        "`scripts/build_default_model.sh`): same Debian package versions, same bytes",
        f"(fixed seed {SEED}, gzip with mtime 0). Do not edit by hand.",
        "",
        "## Files",
        "",
        "| file | split | documents | bytes (gzip) |",
        "|---|---|---:|---:|",
    ]
    for name, (split, n, size) in stats["files"].items():
        lines.append(f"| `multilingual/{name}` | {split} | {n} | {size:,} |")
    lines += [
        "",
        "Train files are shards 0-3 of the 2048 Spanish train shards and the validation file shard",
        "0 of 16, named like the real ones; their contents are of course not the real mC4 shards.",
        f"Uncompressed text: {stats['chars']:,} characters.",
        "",
        "## Composition",
        "",
        "| kind | what | train | validation |",
        "|---|---|---:|---:|",
    ]
    for kind in KINDS:
        lines.append(
            f"| `{kind}` | {KIND_DESCRIPTIONS[kind]} | {stats['kinds']['train'][kind]} "
            f"| {stats['kinds']['validation'][kind]} |"
        )
    low = sum(n for k, n in counts.items() if k not in {"prose", "prose_nav"})
    lines += [
        "",
        f"Low-quality documents: {low} of {sum(counts.values())} ({100 * low / sum(counts.values()):.0f} %).",
        "The order of the documents is shuffled (fixed seed); timestamps are drawn uniformly between",
        "2013-05-01 and 2020-10-31 and URLs are made up from Spanish words (no real site is meant).",
        "",
        "## Sources and licences",
        "",
        "Prose documents (`prose`, `prose_nav`, `english`) by source package:",
        "",
        "| Debian package | version | licence | documents |",
        "|---|---|---|---:|",
    ]
    licences = {p: lic for p, (_f, lic) in {**st.TRAIN_SOURCES, **st.HELDOUT_SOURCES}.items()}
    for package, n in sorted(stats["sources"].items()):
        base = package.split(" ")[0]
        lines.append(f"| {package} | {ver(base)} | {licences.get(base, '')} | {n} |")
    lines += [
        "",
        f"- Word salad: `wspanish` {ver('wspanish')} (`/usr/share/dict/spanish`, word list in the public domain),"
        f" {stats['words']:,} lower-case words.",
        "- UI strings: Spanish `.mo` catalogues (GPL-3+) of "
        + ", ".join(f"`{p}` {ver(p)}" for p in st.MO_PACKAGES)
        + f"; {stats['ui_strings']:,} messages.",
        "- Menus, cookie banners, footers, spam and short pages: templates in `scripts/build_sample.py`.",
        "",
        "## Held out from the embedded model",
        "",
        "None of the prose here was used to train `mc4_sampling/data/model/`: `gimp-help-es` and",
        f"`debian-handbook` are held out as whole packages, 1 in {st.HOLDOUT_MODULUS} documents of every",
        "training package is held out (by a hash of package and document name), and any held-out",
        "paragraph whose normalised form also occurs in the training text is dropped (see "
        "`scripts/spanish_text.py`, `load_corpus`). The",
        "model's quartiles (`model.json`, `boundaries`) are computed on the train split of this",
        "sample.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=HERE / ".build" / "root")
    ap.add_argument("--out", type=Path, default=REPO / "mc4_sampling" / "data" / "sample")
    ap.add_argument("--kinds", type=Path, default=HERE / ".build" / "sample_kinds.jsonl")
    ap.add_argument("--kinds-only", action="store_true",
                    help=f"only write {KINDS_SIDECAR} beside the sample (replays the kinds; no packages needed)")
    args = ap.parse_args()
    if args.kinds_only:
        print(write_kinds_sidecar(args.out, kind_sequence()[1]))
        return
    stats = build(args.root, args.out, args.kinds)
    for name, (split, n, size) in stats["files"].items():
        print(f"{name}: {split} {n} docs {size:,} bytes")
    print("kinds:", dict(stats["kinds"]["train"] + stats["kinds"]["validation"]))
    print("prose sources:", dict(stats["sources"]), "chunks available:", stats["prose_chunks_available"])


if __name__ == "__main__":
    main()
