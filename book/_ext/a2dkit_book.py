"""Local Sphinx extension of the a2dkit book: every page works offline and loads each script once.

- The chapters' "Open in Colab" badge (an image on colab.research.google.com) is served from the
  book itself (``_ext/colab-badge.svg``); any other remote image is a warning, so ``-W`` fails.
- Inline scripts that extensions add while the docs are read (sphinx-thebe's
  ``const THEBE_JS_URL = ...``, sphinx-togglebutton's selector) reach Sphinx 7.4 twice, once
  with filename None and once with "" so its de-duplication misses them: a SyntaxError on every
  page. Identical scripts are dropped here.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = "/_ext/colab-badge.svg"  # "/..." = relative to the book's source folder
logger = logging.getLogger(__name__)


def localize_images(app: Sphinx, doctree: nodes.document) -> None:
    """Serve the Colab badge locally; warn about any other image that needs the network."""
    for image in doctree.findall(nodes.image):
        uri = image.get("uri", "")
        if uri == COLAB_BADGE:
            image["uri"] = LOCAL_BADGE
            image.get("candidates", {}).pop("?", None)
        elif "://" in uri:
            logger.warning("remote image %s: the book must work offline", uri, location=image)


def drop_duplicate_scripts(app: Sphinx, pagename: str, templatename: str, context: dict,
                           doctree: Any) -> None:
    seen, unique = set(), []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        # the registry's copy has filename None, the builder's "" (why Sphinx keeps both)
        key = (str(getattr(script, "filename", script) or ""), tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique  # in place: the builder keeps adding to this very list


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-read", localize_images, priority=400)  # before the image collector
    # early: html-page-context stops at the first handler that returns a template name
    app.connect("html-page-context", drop_duplicate_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
