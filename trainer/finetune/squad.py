"""SQuAD-format JSON files (``{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
"answers": [{"text", "answer_start"}]}]}]}]}``, SQuAD v1.1's and SQAC's layout) as one row per question.

The ``span`` presets read them without a loading script: local files (``--dataset squad-json
--data-files train=...``) or a Hub dataset's files (a preset's ``squad_files``, read through
``datasets``' ``hf://`` file system at the pinned revision). Rows: ``id``, ``title``, ``question``,
``context``, ``answers`` (``{"text": [...], "answer_start": [...]}``, what the span kind reads).
"""

from __future__ import annotations

from ..errors import DataError

#: ``--dataset`` value of local SQuAD-format JSON files.
SQUAD_JSON = "squad-json"


def flatten(articles: list) -> list[dict]:
    """The questions of SQuAD-format articles, one row each, in file order."""
    rows = []
    for article in articles:
        for paragraph in article.get("paragraphs") or ():
            for qa in paragraph.get("qas") or ():
                answers = qa.get("answers") or []
                rows.append({"id": str(qa.get("id", "")), "title": article.get("title") or "",
                             "question": qa.get("question"), "context": paragraph.get("context"),
                             "answers": {"text": [a.get("text") for a in answers],
                                         "answer_start": [a.get("answer_start") for a in answers]}})
    return rows


def load_squad_json(files: dict, what: str):
    """A ``DatasetDict`` of the SQuAD-format files ``{split: [path or hf:// URL, ...]}``; DataError naming
    ``what`` when a file cannot be read or is not in that format."""
    import datasets

    try:
        raw = datasets.load_dataset("json", data_files=files, field="data")
    except Exception as e:
        from mc4_sampling.common.console import root_cause

        paths = ", ".join(p for v in files.values() for p in v)
        raise DataError(f"cannot read the SQuAD-format JSON of {what} ({paths}): {root_cause(e)}") from None
    out = {}
    for split, ds in raw.items():
        if "paragraphs" not in ds.column_names:
            raise DataError(f"{', '.join(files[split])} is not SQuAD-format JSON (no data[].paragraphs)")
        out[split] = datasets.Dataset.from_list(flatten(list(ds)))
    return datasets.DatasetDict(out)
