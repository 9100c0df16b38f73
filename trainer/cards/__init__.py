"""The trainer's model-card templates (``{name}.md``, ``str.format`` fields, ``{{``/``}}`` for braces).

``model.md``: a pretrained export (:func:`trainer.export.model_card`); ``finetuned.md``: a fine-tuned
classifier (:func:`trainer.finetune.run.classifier_card`). Both are filled by
:func:`mc4_sampling.common.hub.render_card`, the one card mechanism of the project.
"""

from __future__ import annotations

from pathlib import Path

#: Folder of the templates.
CARDS_DIR = Path(__file__).parent


def render(name: str, **fields) -> str:
    """The template ``{name}.md`` of this folder with its fields filled in."""
    from mc4_sampling.common.hub import render_card

    return render_card(CARDS_DIR / f"{name}.md", **fields)
