"""QVix experiments (issue 19): ScienceQA protocol and the offline stand-in."""
