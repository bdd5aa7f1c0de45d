"""qvix-bundled at a tiny budget (<= 5 minutes on 2 CPU cores): one seed, few items."""

from experiments.qvix.bundled import report, run  # noqa: F401
from experiments.qvix import bundled as full
from jaxlab.methods.qvix import bundled, standin_train

DESCRIPTION = "QVix quick check on the stand-in LVLM (1 seed, 24 items, tiny training budget)"
CLAIM = full.CLAIM + " Quick budget: untested for effects at this size (wide CIs)."


def get_config(smoke: bool = False) -> bundled.BundledConfig:
  if smoke:
    return full.get_config(smoke=True)
  return bundled.BundledConfig(
    seeds=(0,), n_caption=64, n_vqa=128, n_eval=24,
    align=standin_train.StageConfig(stage="align", steps=10, batch=4, lr=1e-3, ckpt_every=5),
    tune=standin_train.StageConfig(stage="tune", steps=20, batch=4, lr=5e-4, ckpt_every=10),
    conditions=("baseline", "qvix", "irrelevant", "filler"), templates=("hand_v1",),
    llm_max_new_tokens=64, max_new_tokens=6, batch_size=8,
    vision_tower="cached",  # the CLIP stand-in if one is cached (random otherwise: <= 5 min)
    **full.FEWSHOT)  # few-shot writer + the released zero-shot prompt as "qvix_zeroshot"
