"""Twin-sight and its baselines as ``fl.Plugin``s (losses of spec §5.4 on the engine).

Labeled and unlabeled clients share one vmap: each client's ``labeled`` flag comes from
``FedData.extra["labeled"]`` (copied into the server's plug-in state, read by id) and
both branches of the loss are computed, ``L = lab * L_lab + (1 - lab) * L_unlab``.
``f_u`` is the plug-in's ``owned`` model (own optimizer, n_k aggregation weights).
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.federated import plugins
from jaxlab.federated.schedule import local_steps
from jaxlab.federated.types import Owned, Plugin, Sampler
from jaxlab.methods.twin_sight import augment, losses
from jaxlab.methods.twin_sight.config import TwinSightConfig
from jaxlab.methods.twin_sight.model import Twin


def tree_where(c, a, b):
  return jax.tree.map(lambda x, y: jnp.where(c, x, y), a, b)


def sq_dist(a, b) -> jax.Array:
  return sum(jnp.sum(jnp.square(x - y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _server_init(all_labeled: bool):
  def server_init(key, data):
    lab = data.extra["labeled"]
    return {"labeled": jnp.ones_like(lab) if all_labeled else lab}
  return server_init


def _client_flag(server, meta) -> jax.Array:
  return jnp.take(server.ext["labeled"], meta.id, mode="fill", fill_value=0.0)


def _fm_start(cfg: TwinSightConfig, row, num_classes: int) -> dict:
  fm0 = losses.freematch_init(num_classes)
  if cfg.freematch_state != "persistent":
    return fm0
  return tree_where(row["fm"]["p_model"].sum() > 0, row["fm"], fm0)   # padding rows read 0


def _pseudo(cfg: TwinSightConfig, method: str, lw, ls, fm):
  return losses.pseudo_step(lw, ls, fm, method=method, ema=cfg.freematch_ema,
                            threshold=cfg.fixmatch_threshold)


# ---- the twin --------------------------------------------------------------------------
def _ssl_term(twin: Twin, cfg: TwinSightConfig, ext, proj, pred, inp, n: int):
  """Instance discrimination on ``f_u``: NT-Xent (SimCLR) or BYOL against the target."""
  if cfg.ssl_model == "simclr":
    return losses.nt_xent(proj[:n], proj[n:], cfg.tau)
  _, tp, _ = twin.unsup(ext["target"], inp)
  swapped = jnp.concatenate([tp[n:], tp[:n]])
  return losses.byol_loss(pred, swapped)


def twin_pc_loss(twin: Twin, cfg: TwinSightConfig, aug: augment.AugConfig):
  """PC loss: ``lab * CE + insdis * L_ins + sim * L_NP (+ (1 - lab) * ratio * L_pseudo)``."""
  def loss(params, ms, ext, batch, key):
    b = batch["x"].shape[0]
    xw, xs = augment.views(batch["x"], key, aug)
    inp = jnp.concatenate([xw, xs])
    (feat_s, logits), ms = twin.sup(params["model"], ms, inp, True)
    feat_u, proj, pred = twin.unsup(params["owned"], inp)
    l_np = losses.np_loss(feat_u[:b], feat_s[:b], ext["np_xor"])
    l_ins = _ssl_term(twin, cfg, ext, proj, pred, inp, b)
    ce = plugins.cross_entropy(logits[:b], batch["y"])
    lab = ext["labeled"]
    total = lab * ce + ext["insdis"] * l_ins + ext["sim"] * l_np
    m = {"ce": ce, "np": l_np, "ins": l_ins}
    if cfg.pc_pseudo_label:
      lw, ls = (logits[b:], logits[:b]) if cfg.quirk_swap_weak_strong else (logits[:b], logits[b:])
      lp, fm, pm = _pseudo(cfg, cfg.ssl_method, lw, ls, ext["fm"])
      ext = {**ext, "fm": tree_where(lab > 0.5, ext["fm"], fm)}
      total = total + (1 - lab) * cfg.pc_ulb_loss_ratio * lp
      m.update(pseudo=lp, **pm)
    return total, (ms, ext, m)
  return loss


def twin_pd_loss(twin: Twin, cfg: TwinSightConfig, aug: augment.AugConfig):
  """PD loss: ``CE(lb) + ratio * L_pseudo(ulb) + insdis * L_ins + sim * L_NP + mu ||u - u_g||^2``
  (NP and instance discrimination over all labeled + unlabeled rows; the prox term of
  ``f_s`` comes from the FedProx baseline)."""
  def loss(params, ms, ext, batch, key):
    bl = batch["x_lb"].shape[0]
    xw, xs = augment.views(jnp.concatenate([batch["x_lb"], batch["x_ulb"]]), key, aug)
    n = xw.shape[0]
    inp = jnp.concatenate([xw, xs])
    (feat_s, logits), ms = twin.sup(params["model"], ms, inp, True)
    feat_u, proj, pred = twin.unsup(params["owned"], inp)
    l_np = losses.np_loss(feat_u[:n], feat_s[:n], ext["np_xor"])
    l_ins = _ssl_term(twin, cfg, ext, proj, pred, inp, n)
    ce = plugins.cross_entropy(logits[:bl], batch["y_lb"])
    lp, fm, pm = _pseudo(cfg, cfg.ssl_method, logits[bl:n], logits[n + bl:], ext["fm"])
    prox = cfg.pd_prox_mu * sq_dist(params["owned"], ext["global_u"])
    total = (ce + cfg.pd_ulb_loss_ratio * lp + ext["insdis"] * l_ins + ext["sim"] * l_np
             + prox)
    return total, (ms, {**ext, "fm": fm}, {"ce": ce, "np": l_np, "ins": l_ins, "pseudo": lp,
                                            **pm})
  return loss


def twin_plugin(twin: Twin, cfg: TwinSightConfig, aug: augment.AugConfig, num_classes: int,
                owned_tx, work=None) -> Plugin:
  """The Twin-sight plug-in: ``f_s`` is the engine model, ``f_u`` the owned model."""
  byol = cfg.ssl_model == "byol"
  u_shape = jax.eval_shape(twin.unsup_init, jax.random.key(0))

  def persist_init(ext):
    row = {"fm": losses.freematch_init(num_classes) if cfg.freematch_state == "persistent"
           else ()}
    if byol:
      row.update(target=jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), u_shape),
                 has_target=jnp.zeros([], jnp.float32))
    return row

  def client_init(server, row, meta, key):
    hp = server.hparams
    ext = {"labeled": _client_flag(server, meta), "fm": _fm_start(cfg, row, num_classes),
           "sim": hp["sim"], "insdis": hp["insdis"], "np_xor": hp["np_xor"]}
    if cfg.setting == "pd":
      ext["global_u"] = server.owned
    if byol:
      ext["target"] = tree_where(row["has_target"] > 0, row["target"], server.owned)
    return ext

  def post_step(carry):
    if not byol:
      return carry
    d = cfg.byol_decay
    tgt = jax.tree.map(lambda t, p: d * t + (1 - d) * p, carry.ext["target"], carry.owned)
    return carry._replace(ext={**carry.ext, "target": tgt})

  def client_final(server, carry, meta):
    row = {"fm": carry.ext["fm"] if cfg.freematch_state == "persistent" else ()}
    if byol:
      row.update(target=carry.ext["target"], has_target=jnp.ones([], jnp.float32))
    return (), row

  loss = (twin_pd_loss if cfg.setting == "pd" else twin_pc_loss)(twin, cfg, aug)
  return Plugin(
    server_init=_server_init(False), persist_init=persist_init, client_init=client_init,
    loss=loss, client_final=client_final,
    server_update=lambda server, ups, w, key: (server.ext, {}),
    hparams={"sim": cfg.sim, "insdis": cfg.insdis, "np_xor": float(cfg.quirk_np_xor)},
    post_step=post_step if byol else None, owned=Owned(init=twin.unsup_init, tx=owned_tx),
    work=work, eval_logits=eval_logits(twin, aug))


# ---- single-model baselines ------------------------------------------------------------
def single_loss(twin: Twin, cfg: TwinSightConfig, aug: augment.AugConfig, ssl: str | None):
  """FedAvg(+FixMatch/FreeMatch) on ``f_s``: CE on labeled weak views, pseudo-labels on
  unlabeled clients (PC) or on the unlabeled batch (PD)."""
  ratio = cfg.baseline_ulb_ratio

  def loss(params, ms, ext, batch, key):
    pd = "x_lb" in batch
    x = jnp.concatenate([batch["x_lb"], batch["x_ulb"]]) if pd else batch["x"]
    y = batch["y_lb"] if pd else batch["y"]
    b = y.shape[0]
    xw, xs = augment.views(x, key, aug)
    if ssl is None:
      (_, logits), ms = twin.sup(params, ms, xw[:b], True)
      ce = plugins.cross_entropy(logits, y)
      return ext["labeled"] * ce, (ms, ext, {"ce": ce})
    n = xw.shape[0]
    (_, logits), ms = twin.sup(params, ms, jnp.concatenate([xw, xs]), True)
    ce = plugins.cross_entropy(logits[:b], y)
    lw, ls = (logits[b:n], logits[n + b:]) if pd else (logits[:b], logits[b:])
    lp, fm, pm = _pseudo(cfg, ssl, lw, ls, ext["fm"])
    lab = 1.0 if pd else ext["labeled"]
    total = lab * ce + (1 - lab) * ratio * lp if not pd else ce + ratio * lp
    return total, (ms, {**ext, "fm": fm}, {"ce": ce, "pseudo": lp, **pm})
  return loss


def single_plugin(twin: Twin, cfg: TwinSightConfig, aug: augment.AugConfig, num_classes: int,
                  ssl: str | None, all_labeled: bool = False, work=None) -> Plugin:
  """A baseline plug-in on ``f_s`` alone (lower/upper bounds, FedAvg + FixMatch/FreeMatch)."""
  base = plugins.supervised(twin.model)

  def client_init(server, row, meta, key):
    return {"labeled": _client_flag(server, meta), "fm": losses.freematch_init(num_classes)}

  return base._replace(server_init=_server_init(all_labeled), client_init=client_init,
                       loss=single_loss(twin, cfg, aug, ssl), work=work,
                       server_update=lambda server, ups, w, key: (server.ext, {}),
                       eval_logits=eval_logits(twin, aug))


def eval_logits(twin: Twin, aug: augment.AugConfig):
  """``(server, x in [0, 1]) -> logits`` of ``f_s`` only (``f_u`` is never evaluated)."""
  return lambda server, x: twin.model.apply(server.params, server.model_state,
                                            augment.normalise(x, aug), False)[0]


# ---- samplers and per-client work -------------------------------------------------------
def pd_sampler(batch_lb: int, batch_ulb: int, preprocess) -> Sampler:
  """PD batches: ``batch_lb`` labeled rows (wrapping over the client's labeled ids) and
  ``batch_ulb`` unlabeled rows (one pass per epoch) per step."""
  def prepare(data, meta, key):
    def perm(name, k):
      row = jnp.take(data.extra[f"idx_{name}"], meta.id, axis=0, mode="fill", fill_value=0)
      n = jnp.take(data.extra[f"n_{name}"], meta.id, mode="fill", fill_value=0)
      u = jax.random.uniform(jax.random.fold_in(key, k), row.shape)
      return row[jnp.argsort(jnp.where(jnp.arange(row.shape[0]) < n, u, jnp.inf))], n
    (lb, n_lb), (ulb, n_ulb) = perm("lb", 0), perm("ulb", 1)
    return {"lb": lb, "ulb": ulb, "n_lb": n_lb, "n_ulb": n_ulb}

  def batch(data, meta, st, t):
    pl = st["lb"][(t * batch_lb + jnp.arange(batch_lb)) % jnp.maximum(st["n_lb"], 1)]
    pu = st["ulb"][(t * batch_ulb + jnp.arange(batch_ulb)) % jnp.maximum(st["n_ulb"], 1)]
    return {"x_lb": preprocess(data.x[pl]), "y_lb": data.y[pl], "x_ulb": preprocess(data.x[pu])}

  return Sampler(prepare, batch)


def labeled_only_work(n, extra, batch_size, epochs):
  """PC lower bounds: unlabeled clients take no steps and get weight 0."""
  lab = np.asarray(extra["labeled"]) > 0.5
  return np.where(lab, local_steps(n, batch_size, epochs), 0), np.where(lab, n, 0)


def pd_work(source: str):
  """PD: steps = E * ceil(n_source / B) (``ulb``: FixMatch convention; ``lb``: the
  labeled-only lower bound); weight n_k (``ulb``) or n_lb (``lb``)."""
  def work(n, extra, batch_size, epochs):
    m = np.asarray(extra[f"n_{source}"])
    return local_steps(m, batch_size, epochs), (n if source == "ulb" else m)
  return work
