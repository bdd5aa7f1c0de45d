"""Head-level fine-tuning: element-wise masks, pinpoint optax transforms, LoRA, SFT arms.

See docs/interp.md ("jaxlab.tuning API").
"""

from jaxlab.tuning import evaluate, sft
from jaxlab.tuning.lora import (
  lora_head_masks, lora_init, lora_merge, lora_param_count, restrict_lora,
)
from jaxlab.tuning.masks import (
  HeadTuning, as_head_mask, count_trainable, full_masks, head_masks, heads_to_list,
  kv_group, kv_mask, random_heads, top_heads, union_heads,
)
from jaxlab.tuning.sft import Arm, finetune
from jaxlab.tuning.transform import leaf_any, mask_updates, masked_adamw, pinpoint

__all__ = [
  "Arm", "HeadTuning", "as_head_mask", "count_trainable", "evaluate", "finetune",
  "full_masks", "head_masks", "heads_to_list", "kv_group", "kv_mask", "leaf_any",
  "lora_head_masks", "lora_init", "lora_merge", "lora_param_count", "mask_updates",
  "masked_adamw", "pinpoint", "random_heads", "restrict_lora", "sft", "top_heads",
  "union_heads",
]
