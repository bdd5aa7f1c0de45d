"""Head-level fine-tuning: element-wise masks, pinpoint optax transforms, LoRA, and the
one vmapped fine-tuning loop every arm runs through (``jaxlab.tuning.loop``).

See docs/interp.md ("jaxlab.tuning API") and docs/spt.md.
"""

from jaxlab.tuning import evaluate, loop, sft, slices, verdict
from jaxlab.tuning.lora import (
  lora_head_masks, lora_init, lora_merge, lora_param_count, restrict_lora,
)
from jaxlab.tuning.loop import Arm, Lane, TrainConfig, sweep, train
from jaxlab.tuning.masks import (
  HeadTuning, as_head_mask, count_trainable, full_masks, head_masks, heads_to_list,
  kv_group, kv_mask, random_heads, top_heads, union_heads,
)
from jaxlab.tuning.transform import leaf_any, mask_updates, masked_adamw, pinpoint

__all__ = [
  "Arm", "HeadTuning", "Lane", "TrainConfig", "as_head_mask", "count_trainable", "evaluate",
  "full_masks", "head_masks", "heads_to_list", "kv_group", "kv_mask", "leaf_any", "loop",
  "lora_head_masks", "lora_init", "lora_merge", "lora_param_count", "mask_updates",
  "masked_adamw", "pinpoint", "random_heads", "restrict_lora", "sft", "slices", "sweep",
  "top_heads",
  "train", "union_heads", "verdict",
]
