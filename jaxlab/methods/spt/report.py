"""Markdown summary of an SPT study, beside the paper's Llama-2-13B numbers."""

PAPER_13B = {  # Table 1 / controls [paper], Llama-2-13B-Chat
  "base": {"confidence": 0.08, "truthfulness": 18.89},
  "full": {"confidence": 61.55, "truthfulness": 84.06, "kl": "0.048-0.105 (range)"},
  "spt": {"confidence": 71.92, "truthfulness": 86.72, "kl": "0.0008-0.0043 (range)"},
  "lora": {"confidence": 70.04, "truthfulness": 79.66},
  "random_mean": {"confidence": "60.11 +- 7.37", "truthfulness": "74.05 +- 4.73"},
}
_LABEL = {"base": "base", "spt": "SPT (top-k heads)", "full": "full SFT", "lora": "LoRA r16",
          "lora_heads": "LoRA on heads", "random": "random-k heads"}


def _f(v, nd=1):
  if v is None:
    return "-"
  if isinstance(v, str):
    return v
  if nd > 3:
    return f"{v:.2e}"
  return f"{v:.{nd}f}"


def _seeds(row: dict) -> str:
  """``; seeds m [lo, hi] (n)``: Student-t CI over seeds' test means, when there are several."""
  ci, n = row.get("p_correct_seed_ci"), row.get("n_seeds") or 0
  if not ci or n < 2:
    return ""
  return f"; over {n} seeds {_f(ci[0], 3)} [{_f(ci[1], 3)}, {_f(ci[2], 3)}]"


def markdown(r: dict) -> str:
  """REPORT.md section for an SPT study result."""
  lines = [
    "Small-model offline reproduction (SmolLM2-135M-Instruct, rule-based judge, first "
    "answer forced correct); paper numbers are Llama-2-13B-Chat.",
    "",
    f"Selected heads ({r['rank_metric']}, k={r['k']}): "
    + ", ".join(f"{a}.{b}" for a, b in r["selected_heads"]),
    f"Clean - counterfactual gap: {_f(r['gap'][0], 3)} "
    f"[{_f(r['gap'][1], 3)}, {_f(r['gap'][2], 3)}]"
    f"{' (noise)' if r['gap_noise'] else ''}; top-k share of negative effect "
    f"{_f(r['concentration_topk'], 2)}.",
    f"Knockout apology rate: none {_f(r['knockout_apology_none'], 2)}, top-k "
    f"{_f(r['knockout_apology_topk'], 2)}, random-k {_f(r['knockout_apology_random_mean'], 2)}.",
    f"Attention on the challenge sentence: selected {_f(r['attention_challenge_selected'], 3)}"
    f" vs others {_f(r['attention_challenge_others'], 3)} (paper: 0.46 vs 0.15).",
    "",
    f"Training: {r.get('n_train_conversations')} conversations; evaluation: "
    f"{r.get('n_eval_questions')} questions (proxies: test half; lr picked on the other half).",
    "",
    "| arm | best lr | P(correct) after challenge [95% CI] | insist CE [95% CI] | KL [95% CI] | "
    "Confidence [CI] | Confidence keep [CI] | Truthfulness [CI] | trainable | "
    "paper 13B Conf / Truth |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ]
  tri = lambda t, nd: "-" if t is None else f"{_f(t[0], nd)} [{_f(t[1], nd)}, {_f(t[2], nd)}]"
  pair = lambda v, ci: "-" if v is None else f"{_f(v)} [{_f(ci[0])}, {_f(ci[1])}]"
  for name, row in r["table"].items():
    paper = PAPER_13B.get(name, {})
    kl = row.get("kl")
    kl = kl if isinstance(kl, (list, tuple)) or kl is None else (kl, None, None)
    lines.append(
      f"| {_LABEL.get(name, name)} | {_f(row.get('best_lr'), 5)} | "
      f"{tri(row['p_correct'], 3)}{_seeds(row)} | {tri(row['insist_ce'], 3)} | {tri(kl, 5)} | "
      f"{pair(row.get('confidence'), row.get('confidence_ci'))} | "
      f"{pair(row.get('confidence_keep'), row.get('confidence_keep_ci'))} | "
      f"{pair(row.get('truthfulness'), row.get('truthfulness_ci'))} | "
      f"{_f(row.get('trainable'), 0)} | "
      f"{_f(paper.get('confidence'))} / {_f(paper.get('truthfulness'))} |")
  if "repatch" in r:
    rp = r["repatch"]
    lines += ["", f"Re-patching after SPT: selected heads' mean score "
              f"{_f(rp['selected_before'], 4)} -> {_f(rp['selected_after'], 4)} "
              "(paper: head 16.39 3.77% -> 0.64%)."]
  return "\n".join(lines) + "\n"
