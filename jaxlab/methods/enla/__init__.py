"""EnPrompt / EnLa (ACM MM 2024, arXiv 2407.19674): prompt learning with an external layer.

EnPrompt has no public code; the parts marked *reconstructed* in ``config.py`` are config
switches. Baselines (zero-shot, linear probe, CoOp, CoCoOp, PLOT) share the same frozen CLIP.
"""
