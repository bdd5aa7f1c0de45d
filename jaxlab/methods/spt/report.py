"""Markdown summary of an SPT study, beside the paper's Llama-2-13B numbers."""

PAPER_13B = {  # Table 1 / controls [paper], Llama-2-13B-Chat
  "base": {"confidence": 0.08, "truthfulness": 18.89},
  "full": {"confidence": 61.55, "truthfulness": 84.06, "kl": "0.048-0.105 (range)"},
  "spt": {"confidence": 71.92, "truthfulness": 86.72, "kl": "0.0008-0.0043 (range)"},
  "lora": {"confidence": 70.04, "truthfulness": 79.66},
  "random_mean": {"confidence": "60.11 +- 7.37", "truthfulness": "74.05 +- 4.73"},
}
_LABEL = {"base": "base", "spt": "SPT (top-k heads)", "full": "full SFT", "lora": "LoRA r16",
          "lora_heads": "LoRA on heads", "random_mean": "random-k heads (mean)"}


def _f(v, nd=1):
  if v is None:
    return "-"
  if isinstance(v, str):
    return v
  return f"{v:.{nd}f}"


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
    "| arm | Confidence | Truthfulness | acc after | acc arith / general | KL | "
    "trainable | paper 13B Conf / Truth |",
    "|---|---|---|---|---|---|---|---|",
  ]
  for name, row in r["table"].items():
    if name == "random_std" or (name.startswith("random_s")):
      continue
    paper = PAPER_13B.get(name, {})
    conf = _f(row.get("confidence"))
    truth = _f(row.get("truthfulness"))
    if name == "random_mean" and "random_std" in r["table"]:
      sd = r["table"]["random_std"]
      conf += f" +- {_f(sd['confidence'])}"
      truth += f" +- {_f(sd['truthfulness'])}"
    lines.append(
      f"| {_LABEL.get(name, name)} | {conf} | {truth} | {_f(row.get('acc_after'))} | "
      f"{_f(row.get('acc_arith'))} / {_f(row.get('acc_general'))} | "
      f"{_f(row.get('kl'), 4)} | {_f(row.get('trainable'), 0)} | "
      f"{_f(paper.get('confidence'))} / {_f(paper.get('truthfulness'))} |")
  if "repatch" in r:
    rp = r["repatch"]
    lines += ["", f"Re-patching after SPT: selected heads' mean score "
              f"{_f(rp['selected_before'], 4)} -> {_f(rp['selected_after'], 4)} "
              "(paper: head 16.39 3.77% -> 0.64%)."]
  return "\n".join(lines) + "\n"
