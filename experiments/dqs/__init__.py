"""DQS experiments (issue 8)."""
