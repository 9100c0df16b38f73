"""A fixed external eval set (``data.eval_files``): the documents of local files, read whole and in order.

JSON lines (``.jsonl``/``.json``, optionally ``.gz``), Parquet, CSV or plain text (one document per
line); the documents are the ``text_column`` of each row (``text`` for plain text files).
"""

from __future__ import annotations

import os

from ..errors import DataError

#: file name endings -> the ``datasets`` packaged builder that reads them
FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".jsonl.gz": "json", ".json.gz": "json", ".parquet": "parquet",
                 ".csv": "csv", ".txt": "text", ".txt.gz": "text"}


def read_eval_texts(files: list[str], text_column: str = "text") -> list[str]:
    """Every document of ``files`` (in the order given, rows in file order); errors name the file."""
    import datasets

    from .stream import resolve_markers

    texts: list[str] = []
    for path in resolve_markers(list(files)):
        if not os.path.isfile(path):
            raise DataError(f"data.eval_files: no file {path!r}")
        builder = next((b for end, b in FILE_BUILDERS.items() if path.endswith(end)), None)
        if builder is None:
            raise DataError(f"data.eval_files: {path!r} is not a known format ({', '.join(FILE_BUILDERS)})")
        try:
            ds = datasets.load_dataset(builder, data_files=[path], split="train", streaming=True)
            column = "text" if builder == "text" else text_column
            rows = [row.get(column) for row in ds]
        except Exception as e:  # datasets raises many types; all mean "this file does not load"
            raise DataError(f"data.eval_files: cannot read {path!r}: {type(e).__name__}: {e}") from None
        bad = next((i for i, t in enumerate(rows) if not isinstance(t, str)), None)
        if bad is not None:
            raise DataError(f"data.eval_files: row {bad} of {path!r} has no text in column {column!r}")
        texts += rows
    if not texts:
        raise DataError(f"data.eval_files: {', '.join(files)} hold no documents")
    return texts
