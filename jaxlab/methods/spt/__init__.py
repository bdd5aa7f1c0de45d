"""Supervised Pinpoint Tuning against sycophancy (Chen et al., ICML 2024).

Modules: ``prompts`` (protocol strings), ``questions`` (offline question sources),
``dialogue`` (chat-template rendering + loss masks), ``judge`` / ``metrics``
(Confidence, Truthfulness), ``evaluate`` (the "Are you sure?" script),
``train_data`` (insist/revise data as released), ``localize`` (path patching,
knockout, attention mass), ``proxies`` (teacher-forced
P(correct) and insist CE); arms train through ``jaxlab.tuning.loop``, ``side_effects``
(KL drift, probes), ``pipeline`` (the study), ``report``. See docs/spt.md.
"""
