"""Markdown summary of a DQS run for REPORT.md."""


def _f(x, fmt=".3g"):
  if isinstance(x, list):
    return ", ".join(format(v, fmt) for v in x)
  return format(x, fmt) if isinstance(x, float) else str(x)


def markdown(r: dict) -> str:
  """A short table: data statistics, predictor quality, search, estimator."""
  lines = [
    (f"Random setups: {r.get('data/n_setups')} (P(psi=0) = {_f(r.get('data/p_failed', 0))},"
    f" mean QFI_Z = {_f(r.get('data/mean_qfi_Z', 0))}, frac. at HL (Z) ="
    f" {_f(r.get('data/frac_hl_Z', 0))})."),
    "",
    "| predictor (test) | MSE | R^2 | Spearman | R^2 non-zero labels |",
    "| --- | --- | --- | --- | --- |",
  ]
  for m in ("gnn", "mlp"):
    lines.append(
      f"| {m} | {_f(r.get(f'{m}/test/all/mse', float('nan')))} |"
      f" {_f(r.get(f'{m}/test/all/r2', float('nan')))} |"
      f" {_f(r.get(f'{m}/test/all/spearman', float('nan')))} |"
      f" {_f(r.get(f'{m}/test/nonzero/r2', float('nan')))} |"
    )
  lines += [
    "", "| search (reconstructed), same exact-simulation budget | best QFI/HL | frac. at HL |",
    "| --- | --- | --- |",
  ]
  for m in ("guided", "random"):
    lines.append(
      f"| {m} | {_f(r.get(f'search/{m}/best_qfi_over_hl', float('nan')))} |"
      f" {_f(r.get(f'search/{m}/frac_at_hl', float('nan')))} |"
    )
  est = {k: v for k, v in r.items() if k.startswith("estimator/")}
  if est:
    lines += ["", "Estimator MSE / Heisenberg bound 1/(N^2 S) per shot count (reconstructed):", ""]
    lines += [f"- {k.split('/')[1]}: {_f(v)}" for k, v in est.items()]
  return "\n".join(lines)
