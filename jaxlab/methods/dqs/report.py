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
    "", "| search (reconstructed) | exact simulations | best QFI/HL | frac. at HL | setups at HL |"
    " best P*QFI/HL |",
    "| --- | --- | --- | --- | --- | --- |",
  ]
  names = {"guided": "GNN-guided (top-k verified)", "random": "random, same exact simulations",
           "matched": "random, compute-matched (data + GNN CPU time)"}
  for m, name in names.items():
    if f"search/{m}/best_qfi_over_hl" not in r:
      continue
    lines.append(
      f"| {name} | {_f(r.get(f'search/{m}/n_simulated', float('nan')), '.0f')} |"
      f" {_f(r.get(f'search/{m}/best_qfi_over_hl', float('nan')))} |"
      f" {_f(r.get(f'search/{m}/frac_at_hl', float('nan')))} |"
      f" {_f(r.get(f'search/{m}/n_at_hl', float('nan')), '.1f')} |"
      f" {_f(r.get(f'search/{m}/best_pqfi_over_hl', float('nan')))} |"
    )
  if "search/matched/budget_seconds" in r:
    lines.append(
      f"\nCompute-matched: {_f(r['search/matched/budget_seconds'], '.0f')} CPU s budget (GNN"
      f" training + one guided search), {_f(r['search/matched/n_extra'], '.0f')} extra random"
      f" setups at {_f(r['search/matched/rate'], '.0f')} setups per CPU s plus the {r.get('data/n_setups')} training"
      f" setups{' (capped by search_matched_max_setups)' if r.get('search/matched/capped') else ''}."
      f" The GNN pipeline's own HL setups, training data included:"
      f" {_f(r.get('search/guided/n_at_hl_incl_data', float('nan')), '.1f')}."
    )
  est = {k: v for k, v in r.items() if k.startswith("estimator/")}
  if est:
    lines += ["", "Estimator (reconstructed), per shot count S: MSE / (1/(N^2 S)) per setting,"
              " mse_over_hl_total = MSE / (1/(N^2 (2N+2) S)) over the whole shot budget,"
              " mse_over_crb = MSE / (1/(w F_Q S)) (w = P when post-selection is counted):", ""]
    lines += [f"- {k.split('/', 1)[1]}: {_f(v)}" for k, v in est.items()]
  return "\n".join(lines)
