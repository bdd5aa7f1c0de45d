"""The pytrees and function bundles the federated engine passes around.

Every container here is a NamedTuple of arrays (a pytree) or of pure functions.
Shapes use K = total clients, S = clients in a round (padded), N = samples.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from jaxlab.core.types import Metrics, PyTree

Array = jax.Array


class FedData(NamedTuple):
  """Device-resident training data, shared by all clients.

  Attributes:
    x: raw inputs [N, ...] (uint8 images; preprocessed on device).
    y: labels int32[N].
    idx: int32[K, n_max]; row k holds client k's sample ids, padded with 0.
    n: int32[K] client sizes.
    extra: any other arrays a method needs (e.g. class counts [K, C]).
  """
  x: Array
  y: Array
  idx: Array
  n: Array
  extra: dict = {}


class ClientMeta(NamedTuple):
  """One client's round inputs (scalars; stacked [S] across clients)."""
  id: Array      # int32[]; == K for a padding client
  n: Array       # int32[]
  steps: Array   # int32[] real local steps
  weight: Array  # f32[] raw aggregation weight, 0 for padding


RoundInputs = ClientMeta  # the same fields stacked [S_pad]


class ServerState(NamedTuple):
  params: PyTree
  model_state: PyTree      # e.g. {"batch_stats": ...}, {} if none
  opt_state: PyTree        # server optimizer state
  alg: PyTree              # algorithm server state (SCAFFOLD c)
  ext: PyTree              # plug-in server state
  hparams: dict            # swept scalars, f32[] each
  round: Array             # int32[]
  owned: PyTree = ()       # plug-in-owned trainable params (``Plugin.owned``)


class ClientCarry(NamedTuple):
  params: PyTree
  model_state: PyTree
  opt_state: PyTree
  alg: PyTree              # algorithm per-client working state
  ext: PyTree              # plug-in client state
  step: Array              # int32[] real steps taken
  owned: PyTree = ()       # plug-in-owned params being trained locally
  owned_opt: PyTree = ()   # their optimizer state


class SimState(NamedTuple):
  server: ServerState
  clients: PyTree          # persistent table, every leaf [K, ...]


class Model(NamedTuple):
  """A model as two pure functions.

  Attributes:
    init: key -> (params, model_state).
    apply: (params, model_state, x [B, ...], train) -> (logits [B, C], model_state).
  """
  init: Callable[[Array], tuple[PyTree, PyTree]]
  apply: Callable[[PyTree, PyTree, Array, bool], tuple[Array, PyTree]]

  @staticmethod
  def from_linen(module: Any, sample_x: Any, train_arg: str | None = "train") -> "Model":
    """Wraps a Linen module; non-"params" collections become ``model_state``.

    Args:
      module: a Linen module called as ``module(x, train=...)``.
      sample_x: an input batch [B, ...] used to build the variables.
      train_arg: name of the train/eval keyword, or None if the module has none.
    """
    def kw(train):
      return {} if train_arg is None else {train_arg: train}

    def init(key):
      variables = module.init(key, sample_x, **kw(False))
      variables = dict(variables)
      params = variables.pop("params")
      return params, variables

    def apply(params, model_state, x, train):
      variables = {"params": params, **model_state}
      if train and model_state:
        out, new = module.apply(variables, x, mutable=list(model_state), **kw(True))
        return out, dict(new)
      return module.apply(variables, x, **kw(train)), model_state

    return Model(init, apply)


LossFn = Callable[..., tuple[Array, tuple[PyTree, PyTree, Metrics]]]


class Owned(NamedTuple):
  """Trainable parameters a plug-in owns beside the model (a VAE, a second model).

  Attributes:
    init: key -> params (the server's initial copy, ``ServerState.owned``).
    tx: their local optimizer (fresh state every round; its injected
      hyper-parameters are swept as ``owned_<name>``).
    weight: ``meta -> raw aggregation weight``: a scalar, or a pytree that is a
      prefix of the params (one weight per subtree; 0 masks the subtree out).
      Aggregate = sum_k w_k theta_k / sum_k w_k per subtree; where no client has
      weight, the server keeps its copy. None = ``meta.weight``.
  """
  init: Callable
  tx: Any
  weight: Callable | None = None


class Plugin(NamedTuple):
  """A method's additions to a baseline, as pure functions (optax-style bundle).

  The first six are required; every other field is an optional hook (None / {}
  leaves the baseline's behaviour unchanged). See docs/federated.md "Plug-ins".

  Attributes:
    server_init: (key, data: FedData) -> ext_server (stored in ``ServerState.ext``);
      ``data`` is this run's data (in a sweep: its own partition and extras).
    persist_init: ext_server -> one client's persistent row (``()`` if none).
    client_init: (server, ext_row, meta, key) -> ext_carry.
    loss: (params, model_state, ext_carry, batch, key) ->
      (loss, (model_state, ext_carry, metrics)); differentiated w.r.t. params. With
      ``owned``, ``params`` is ``{"model": model params, "owned": owned params}``.
    client_final: (server, carry, meta) -> (ext_upload, ext_row).
    server_update: (server, ext_agg, weights f32[S] normalised, key)
      -> (ext_server, metrics); ``ext_agg`` is the stacked uploads [S, ...], or
      ``finish``'s result when ``reduce``/``finish`` are set.
    hparams: {name: default} swept scalars, merged into ``ServerState.hparams``
      (read them as ``server.hparams[name]``; sweep them like a learning rate).
    post_step: ClientCarry -> ClientCarry, run after every local optimizer step
      (gated with it: padded steps skip it), e.g. an EMA target network in ``ext``.
    owned: an ``Owned``: trainable params with their own optimizer and weights.
    work: host-side ``(n int[K], extra {name: np.ndarray}, batch_size, epochs) ->
      (steps int[K], weight f32[K])``: per-client local steps and raw aggregation
      weights that do not come from the sample count (default E·ceil(n/B), n).
    reduce: (server, ext_uploads [s, ...], p f32[s], totals) -> sums; linear in
      the clients (partials of chunks add up), so uploads are never stacked.
    finish: (server, sums, totals) -> ext_agg for ``server_update``.
    eval_logits: (server, x [B, ...]) -> logits [B, C] of a sub-model (see
      ``eval.make_evaluate_server``); None = the engine model.
    phases: ``Phase``s run before the main phase (``fl.phases.run``), each with its
      own plug-in, rounds, clients per round and local epochs.
  """
  server_init: Callable
  persist_init: Callable
  client_init: Callable
  loss: LossFn
  client_final: Callable
  server_update: Callable
  hparams: dict = {}
  post_step: Callable | None = None
  owned: Owned | None = None
  work: Callable | None = None
  reduce: Callable | None = None
  finish: Callable | None = None
  eval_logits: Callable | None = None
  phases: tuple = ()


class Phase(NamedTuple):
  """A phase a plug-in runs before its main phase (FedFed's feature distillation).

  Attributes:
    name: label (metrics, results).
    plugin: the phase's own plug-in (its loss, owned params such as a VAE, uploads).
    rounds: rounds of this phase.
    per_round: clients sampled per round.
    local_epochs: local epochs E of this phase.
    handoff: ``(phase_server, main_server) -> main_server``: what the main phase
      takes over (e.g. the trained VAE into ``ext``); run per run in a sweep.
  """
  name: str
  plugin: "Plugin"
  rounds: int
  per_round: int
  local_epochs: int = 1
  handoff: Callable = lambda phase_server, main_server: main_server


class FedAlgorithm(NamedTuple):
  """A federated algorithm as pure functions (see docs/federated.md).

  ``aggregate`` reduces a whole round's stacked uploads. ``reduce``/``finish`` are its
  streaming form, used when clients run in chunks (memory ~ one chunk):
  ``reduce(server, uploads [s, ...], weights f32[s], totals) -> Partial`` with
  partials of disjoint chunks adding up (``aggregate.combine``), then
  ``finish(server, partial, totals) -> Aggregate``. ``None`` = not streamable.
  """
  init: Callable[..., ServerState]
  persist_init: Callable[[ServerState], PyTree]
  client_init: Callable[[ServerState, PyTree, ClientMeta, Array], ClientCarry]
  client_step: Callable[[ClientCarry, Any, Array], tuple[ClientCarry, Metrics]]
  client_final: Callable[[ServerState, ClientCarry, ClientMeta], tuple[PyTree, PyTree]]
  aggregate: Callable[[ServerState, PyTree, Array], PyTree]
  server_update: Callable[[ServerState, PyTree, Array], tuple[ServerState, Metrics]]
  reduce: Callable | None = None
  finish: Callable | None = None
  work: Callable | None = None   # host (n, extra, B, E) -> (steps [K], weight [K]); None: default


class Sampler(NamedTuple):
  """How a client draws its local batches.

  Attributes:
    prepare: (data, meta, key) -> sampler state (e.g. epoch permutations).
    batch: (data, meta, state, t) -> batch dict for local step t.
  """
  prepare: Callable
  batch: Callable
