"""``mc4-sampling embed-map``: a 2-D map of document embeddings coloured by score and by kept/dropped
(:mod:`mc4_sampling.embed_map`), as ``embed_map.png``, ``embed_map.html`` and ``embed_map.json``."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..common.cli_types import positive_int
from ..common.outputs import atomic_dir, check_output_dir
from ..errors import ConfigError
from .common import (
    add_model_options,
    add_sampling_options,
    add_source_options,
    build_config,
    is_corpus,
    option_values,
)
from .dataset_source import add_dataset_options, check_mc4_split, corpus_language, open_dataset

FILES = ("embed_map.png", "embed_map.html", "embed_map.json")


def add_parser(subparsers) -> None:
    from ..embed_map import PROJECTIONS

    p = subparsers.add_parser(
        "embed-map",
        help="t-SNE map of document embeddings, coloured by score and by kept/dropped (PNG, HTML)",
        description="Embed a sample of documents with a transformers encoder (mean of the last hidden states over "
        "the attention mask), project them to 2-D (t-SNE, or UMAP with umap-learn) and colour them by their score "
        "and by the sampling decision of the weighting (--method...: exactly what `sample` decides for them): "
        "does the sampling keep every kind of document? Reads the bundled sample unless --data-dir, --base-url "
        "or --dataset says otherwise.",
    )
    add_source_options(p)
    add_sampling_options(p)
    add_model_options(p)
    add_dataset_options(p)
    p.add_argument("--split", help="train (default) or validation of mC4, any split of a --dataset")
    m = p.add_argument_group("map")
    m.add_argument("--encoder", required=True, metavar="FOLDER|HUB_ID",
                   help="a transformers encoder whose mean-pooled last hidden states embed the documents")
    m.add_argument("--docs", type=positive_int, default=2000, help="documents on the map (default 2000)")
    m.add_argument("--shards-to-read", type=positive_int, default=4, metavar="K",
                   help="mC4: draw the documents from the first K shards (default 4)")
    m.add_argument("--projection", choices=PROJECTIONS, default="tsne", help="tsne (default) or umap (umap-learn)")
    m.add_argument("--map-seed", type=int, default=0,
                   help="seed of the document sample and of UMAP (default 0; t-SNE starts from PCA: no seed); "
                   "the keep draws use --seed, as sampling does")
    m.add_argument("--max-length", type=positive_int, default=128, help="tokens of a document embedded (default "
                   "128)")
    m.add_argument("--batch-size", type=positive_int, default=32, help="documents embedded together (default 32)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for " + ", ".join(FILES))
    p.add_argument("--overwrite", action="store_true", help="replace --output even if it holds other files")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .. import SAMPLE_DATA_DIR
    from ..embed_map import corpus_documents, mc4_documents, project
    from ..embedding import embed_texts, load_encoder
    from ..map_pictures import html_page, plot_map

    check_output_dir(args.output, "--output", args.overwrite)
    if is_corpus(args):
        from ..corpus import corpus_options
        from ..options import flag

        language = corpus_language(args)
        options = corpus_options(spell=flag, **option_values(args))
        ds = open_dataset(args)
        where = args.dataset
    else:
        check_mc4_split(args)
        if len(args.lang) != 1:
            raise ConfigError(f"--lang: a map is of one language, got {' '.join(args.lang)}")
        language = args.lang[0]
        if args.data_dir is None and args.base_url is None:
            args.data_dir = SAMPLE_DATA_DIR
        config = build_config(args)
        where = "the bundled sample" if args.data_dir == SAMPLE_DATA_DIR else (args.data_dir or args.base_url)
    encoder = load_encoder(args.encoder)  # a wrong encoder is reported before any reading
    with tqdm(desc="reading", unit="doc", file=sys.stderr, dynamic_ncols=True) as bar:
        if is_corpus(args):
            docs = corpus_documents(ds, options, language, args.docs, args.map_seed, text_column=args.text_column,
                                    id_column=args.id_column)
        else:
            docs = mc4_documents(config, language, args.split, args.docs, args.map_seed, args.shards_to_read,
                                 progress=bar.update)
    with tqdm(total=len(docs.texts), desc="embedding", unit="doc", file=sys.stderr, dynamic_ncols=True) as bar:
        emb = embed_texts(docs.texts, encoder, batch_size=args.batch_size, max_length=args.max_length,
                          progress=bar.update)
    coords = project(emb, args.projection, seed=args.map_seed)
    name = os.path.basename(os.path.normpath(args.encoder))
    title = (f"{len(docs.texts):,} documents of {where} ({language}), {args.projection.replace('tsne', 't-SNE')} "
             f"of {name} embeddings")
    with atomic_dir(args.output, "mc4-sampling embed-map", "--output", args.overwrite) as out:
        plot_map(coords, docs, out / "embed_map.png", title=title)
        (out / "embed_map.html").write_text(html_page(coords, docs, title=title), encoding="utf-8")
        record = {"encoder": args.encoder, "projection": args.projection, "map_seed": args.map_seed,
                  "score_name": docs.score_name, "method": docs.method, "factor": docs.factor,
                  "documents": [{"x": float(x), "y": float(y), "score": float(s), "keep_probability": float(p),
                                 "kept": bool(k), "where": w}
                                for (x, y), s, p, k, w in zip(coords, docs.scores, docs.probability, docs.kept,
                                                              docs.where)]}
        (out / "embed_map.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    print(f"{len(docs.texts)} documents, {int(docs.kept.sum())} kept by {docs.method}: wrote "
          + ", ".join(os.path.join(args.output, f) for f in FILES))
    return 0
