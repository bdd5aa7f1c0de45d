"""QVix: question-driven visual exploration (Yang et al., arXiv 2312.01598).

Pure pieces: ``prompts`` (released templates, prompt builders, reply parsing), ``scoring``
(the released VQA normaliser and scorer variants), ``llm`` (pre-question LLM with a disk
cache and the replay hook), ``controls`` (the B.5 conditions and statistics),
``pipeline`` (runs conditions over items with an LVLM). See docs/qvix.md.
"""
