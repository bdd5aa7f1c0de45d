"""Interpretability engine on jaxlab's decoder: patching, the exact fast path,
attribution patching, knockout, attention mass, head-map plots.

See docs/interp.md.
"""

from jaxlab.interp import attention, attribution, fast, knockout, metrics, patching
from jaxlab.interp.attention import attention_mass, format_heads, head_heatmap
from jaxlab.interp.attribution import agreement, attribution_patch
from jaxlab.interp.fast import act_patch_fast, act_patch_naive, path_patch_fast
from jaxlab.interp.knockout import knockout_sweep, mean_ci, mean_z, random_k_masks, top_k_mask
from jaxlab.interp.metrics import Metric
from jaxlab.interp.patching import Pair, PatchResult, path_patch_naive

__all__ = [
  "Metric", "Pair", "PatchResult", "act_patch_fast", "act_patch_naive", "agreement",
  "attention", "attention_mass", "attribution", "attribution_patch", "fast", "format_heads",
  "head_heatmap", "knockout", "knockout_sweep", "mean_ci", "mean_z", "metrics", "patching",
  "path_patch_fast", "path_patch_naive", "random_k_masks", "top_k_mask",
]
