"""Visualizers: denoising trajectories (ipywidgets viewer, static plot, GIF), speculative decoding
forward by forward, attention masks, and the library's own source in a notebook. They read a
sampler's ``history`` or a speculative ``trace`` only and never sample; ipywidgets/matplotlib
are imported lazily.

References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (§3.2, Fig. 2: M_BD, M_OBC, M_BC);
speculative decoding arXiv 2211.17192.
"""

from a2dkit.viz.masks import MASK_KINDS, MaskExplorer, build_mask, plot_mask
from a2dkit.viz.source import show_source
from a2dkit.viz.speculation import SPECULATION_COLORS, SpeculationViewer
from a2dkit.viz.trajectory import DenoisingViewer, animate, commit_steps, plot_trajectory

__all__ = [
    "MASK_KINDS",
    "DenoisingViewer",
    "MaskExplorer",
    "SPECULATION_COLORS",
    "SpeculationViewer",
    "animate",
    "build_mask",
    "commit_steps",
    "plot_mask",
    "plot_trajectory",
    "show_source",
]
