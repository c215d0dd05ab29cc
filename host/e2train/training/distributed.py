"""Training on several processes: torch.distributed with DDP, launched by torchrun or ``e2train train --nproc N``.

The loop sees a ``World`` (rank, size, device and the few collectives it needs) and a ``Replica`` (what it
trains through); nothing else in the training code calls torch.distributed. A process started without
torchrun's environment gets ``World()``, the single process, whose collectives return their input.

What a run on R ranks at batch B (``schedule.batch_size``, the global batch) does:

* **Data**: rank r takes rows ``r*B/R ..`` of every batch, augmented with the whole batch's draws
  (``BatchSchedule(shard=...)``): the R ranks see the samples and augmentations of one process at B.
* **Loss and gradients**: each rank's loss is its share of the global loss (the cross-entropy summed
  over its rows and divided by B, the SLU regulariser divided by R at the global computation ratio), and
  DDP sums the ranks' gradients (a comm hook that does not average), so the float gradients are those
  of one process at B up to the order of the sums.
* **SMD** decides from (seed, iteration) on every rank alike; no rank ever runs a step alone.
* **SLU**: each rank gathers its own active samples. In training every rank runs a gated block's branch
  when any rank has an active sample for it (on zero samples if it has none), so the ranks run the same
  layers and collectives, and a block idle on one rank still contributes a zero gradient to the sums;
  a block idle on every rank is skipped everywhere (DDP with ``find_unused_parameters``).
* **PSG** (``dist.psg``): ``exact`` agrees the per-layer exponents of x and g_y (all-reduce max) and sums
  the integer G_msb, then G_full, inside each quantised conv's backward, before the threshold and the
  sign choice: the weights end where one process at B ends, bit for bit (torch engine in float64, and
  no float reduction across samples elsewhere: see docs/distributed.md). ``vote``: each rank takes its
  own signs and the ranks' majority is the update (signSGD with majority vote, Bernstein et al. 2019),
  two bits per weight on the wire.
* **BatchNorm**: each rank's statistics over its share of the batch, or over the global batch with
  ``dist.sync_bn`` (``DistBatchNorm2d``, CPU and CUDA).
* **Counters**: each rank counts what it ran (MACs, PSG decisions); checkpoints keep every rank's
  counters, reports and metrics show their sums (computed on rank 0, which alone writes files).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import hashlib
import inspect
import json
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

from .config import ConfigError

# what each kind of traffic is for (report.json's ``dist.bytes_per_step`` uses these names)
TRAFFIC_KINDS = ("gradients", "psg_exponents", "psg_g_msb", "psg_g_full", "sign_vote", "sync_bn", "slu", "step")


class RankLost(RuntimeError):
    """A collective failed: another rank exited, hung past ``dist.timeout`` or cannot be reached."""


class World:
    """This process's place in a run, and the collectives of the training code (on a side group, so that
    their order never interleaves with DDP's own gradient buckets)."""

    def __init__(self, rank: int = 0, size: int = 1, local_rank: int = 0, backend: str | None = None,
                 device: torch.device | None = None, side=None):
        self.rank, self.size, self.local_rank = rank, size, local_rank
        self.backend = backend
        self.device = device or torch.device("cpu")  # where collectives' tensors live (CUDA for nccl)
        self.side = side
        self.batch = 0  # the global batch (prepare_model): bounds the integer sums of quantised convs
        self.traffic: dict[str, int] = {}  # kind -> payload bytes this rank handed to collectives

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def __repr__(self) -> str:
        return f"World(rank={self.rank}, size={self.size}, backend={self.backend})"

    def __deepcopy__(self, memo):
        return self  # models holding the world (layers, BN) are deep-copied for SWA: one world serves all

    # ---- collectives ----------------------------------------------------------------------------
    def _count(self, kind: str, t: torch.Tensor) -> None:
        self.traffic[kind] = self.traffic.get(kind, 0) + t.numel() * t.element_size()

    def _call(self, what: str, fn, *args, **kw):
        import torch.distributed as dist

        try:
            return fn(*args, group=self.side, **kw)
        except (RuntimeError, dist.DistError) as exc:  # gloo, nccl and the store raise these
            raise RankLost(f"rank {self.rank}: {what} failed: another rank exited, hung or is unreachable "
                           f"({_first_line(exc)})") from exc

    def all_reduce_(self, t: torch.Tensor, kind: str, op: str = "sum") -> torch.Tensor:
        """In place: the sum (or max) over ranks."""
        if self.size == 1:
            return t
        import torch.distributed as dist

        self._count(kind, t)
        on = t if t.device == self.device else t.to(self.device)
        self._call(f"all-reduce ({kind})", dist.all_reduce, on, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
        if on is not t:
            t.copy_(on)
        return t

    def sum(self, values: list[float], kind: str = "step") -> list[float]:
        """Sums over ranks of a few numbers (float64: exact for counts below 2**53)."""
        if self.size == 1:
            return list(values)
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        return self.all_reduce_(t, kind).tolist()

    def max_scalar(self, value: float, kind: str = "psg_exponents") -> float:
        if self.size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        return float(self.all_reduce_(t, kind, op="max")[0])

    def sum_exact(self, t: torch.Tensor, kind: str, bound: int | None = None) -> torch.Tensor:
        """The sum over ranks of an integer-valued float tensor, exact: int32 on the wire when ``bound``
        (a bound of |sum| that every rank computes alike) allows, else int64."""
        if self.size == 1:
            return t
        q = t.to(torch.int32 if bound is not None and bound < 2**31 else torch.int64)
        self.all_reduce_(q, kind)
        return q.to(t.dtype)

    def any_active(self, d: torch.Tensor) -> bool:
        """Whether any rank has a sample for which this gated block runs (``d``: this rank's decisions)."""
        if self.size == 1:
            return bool(d.any())
        t = d.sum().to(device=self.device, dtype=torch.int64).reshape(1)
        return bool(self.all_reduce_(t, "slu")[0] > 0)

    def all_gather(self, t: torch.Tensor, kind: str) -> list[torch.Tensor]:
        if self.size == 1:
            return [t]
        import torch.distributed as dist

        self._count(kind, t)
        on = t.to(self.device)
        out = [torch.empty_like(on) for _ in range(self.size)]
        self._call(f"all-gather ({kind})", dist.all_gather, out, on)
        return out

    def gather_objects(self, obj) -> list:
        """Every rank's ``obj`` (picklable), on every rank, in rank order."""
        if self.size == 1:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.size
        self._call("gathering state", dist.all_gather_object, out, obj)
        return out

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if self.size == 1:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        self._call("broadcast from rank 0", dist.broadcast_object_list, box, src=0)
        return box[0]

    def on_main(self, fn, errors: tuple = (Exception,)):
        """``fn()`` run by rank 0 alone, its value (or the error it raised, re-raised) on every rank."""
        if self.size == 1:
            return fn()
        res = None
        if self.is_main:
            try:
                res = ("ok", fn())
            except errors as exc:
                res = ("error", exc)
        kind, value = self.broadcast_object(res)
        if kind == "error":
            raise value
        return value

    def broadcast_buffers(self, model: nn.Module) -> None:
        """Rank 0's buffers (BN running statistics) on every rank: each rank then evaluates one model."""
        if self.size == 1:
            return
        import torch.distributed as dist

        for b in model.buffers():
            on = b.to(self.device)
            self._call("broadcast of buffers", dist.broadcast, on, src=0)
            if on is not b:
                b.copy_(on)

    def check_same(self, what: str, obj) -> None:
        """A clear error when the ranks were started with different ``obj`` (e.g. configs)."""
        digest = hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
        digests = self.gather_objects(digest)
        odd = [r for r, d in enumerate(digests) if d != digests[0]]
        if odd:
            raise ConfigError(f"ranks {odd} were started with a different {what} than rank 0")



# what gloo, NCCL and the store say when a peer is gone or silent (DDP's hook re-raises them as RuntimeError)
_LOST = ("connection reset", "connection closed", "connection refused", "broken pipe", "timed out", "timeout",
         "gloo", "nccl", "socket", "peer")


def is_comm_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a failed collective (another rank died, hung or cannot be reached)."""
    import torch.distributed as dist

    if isinstance(exc, (RankLost, dist.DistError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(k in text for k in _LOST)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


# ---- process-group setup and teardown -------------------------------------------------------------
def env_world_size() -> int:
    """The world size torchrun gave this process (1 when it was not started by torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def check_batch(cfg: dict, size: int) -> None:
    b = cfg["schedule"]["batch_size"]
    if b % size:
        raise ConfigError(f"schedule.batch_size {b} (the global batch) cannot be split over {size} processes: "
                          f"choose a multiple of {size}")


def init(cfg: dict) -> World:
    """Join the process group torchrun's environment describes; ``World()`` without one."""
    size = env_world_size()
    if size <= 1:
        return World()
    check_batch(cfg, size)
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    d = cfg["dist"]
    device = torch.device("cpu")
    if cfg["run"]["device"] == "cuda" or (cfg["run"]["device"] == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("run.device = cuda but no CUDA device is available")
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"local rank {local_rank} has no GPU: this node has {torch.cuda.device_count()}")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    backend = d["backend"] if d["backend"] != "auto" else ("nccl" if device.type == "cuda" else "gloo")
    if backend == "nccl" and device.type != "cuda":
        raise ConfigError("dist.backend = nccl needs run.device = cuda; on CPUs use gloo")
    timeout = datetime.timedelta(seconds=d["timeout"])
    try:
        dist.init_process_group(backend, timeout=timeout)
        side = dist.new_group(backend=backend, timeout=timeout)
    except (RuntimeError, dist.DistError) as exc:
        raise RankLost(f"rank {rank}: could not join the process group ({_first_line(exc)})") from exc
    world = World(rank, dist.get_world_size(), local_rank, backend, device, side)
    world.check_same("configuration", cfg)
    return world


def shutdown(world: World, failed: bool = False) -> None:
    """Leave the process group. After a failure, without waiting for the others (they may be gone)."""
    if world.size == 1:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        return
    if failed:  # the others may be gone: a clean destroy could wait on them
        from torch.distributed import distributed_c10d as c10d

        with contextlib.suppress(Exception):
            c10d._abort_process_group()
        return
    with contextlib.suppress(Exception):
        dist.destroy_process_group()


def launch(argv: list[str], nproc: int, nnodes: str | None = None, rdzv_endpoint: str | None = None) -> int:
    """``e2train train ... --nproc N``: the same command on N processes through torch.distributed.run."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default for several processes (run.threads sets torch's)
    opts = ["--nproc-per-node", str(nproc)]
    if rdzv_endpoint:
        opts += ["--nnodes", nnodes or "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", rdzv_endpoint, "--rdzv-id", "e2train"]
    else:
        opts += ["--standalone"]
    try:
        run(get_args_parser().parse_args([*opts, "--module", "e2train.cli", *argv]))
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        print(f"e2train: error: rank {rank} exited with status {failure.exitcode}; its error is above", file=sys.stderr)
        return failure.exitcode if failure.exitcode and failure.exitcode > 0 else 1
    return 0


def strip_launch_flags(argv: list[str]) -> list[str]:
    """``argv`` without --nproc / --nnodes / --rdzv-endpoint (the workers must not launch again)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--nproc", "--nnodes", "--rdzv-endpoint"):
            skip = True
            continue
        if a.startswith(("--nproc=", "--nnodes=", "--rdzv-endpoint=")):
            continue
        out.append(a)
    return out


# ---- BatchNorm: empty shares and synchronised statistics ------------------------------------------
class _SyncBatchNorm(torch.autograd.Function):
    """Batch normalisation whose statistics are those of all ranks' rows together."""

    @staticmethod
    def forward(ctx, x, weight, bias, bn: "DistBatchNorm2d"):
        c = x.shape[1]
        dims = (0, 2, 3)
        local = torch.cat([
            torch.tensor([x.numel() // c if c else 0], dtype=torch.float64, device=x.device),
            x.sum(dims, dtype=torch.float64), x.double().square().sum(dims),
        ])
        bn.world.all_reduce_(local, "sync_bn")
        count = float(local[0])
        if count == 0:  # no rank has a row: nothing to normalise
            ctx.empty = True
            return x * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)
        ctx.empty = False
        mean = local[1:c + 1] / count
        var = (local[c + 1:] / count - mean.square()).clamp_(min=0.0)
        if bn.track_running_stats:
            with torch.no_grad():
                bn.num_batches_tracked.add_(1)
                m = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
                unbiased = var * (count / max(count - 1.0, 1.0))
                bn.running_mean.mul_(1 - m).add_(mean.to(bn.running_mean.dtype), alpha=m)
                bn.running_var.mul_(1 - m).add_(unbiased.to(bn.running_var.dtype), alpha=m)
        invstd = (var + bn.eps).rsqrt().to(x.dtype)
        xhat = (x - mean.to(x.dtype).view(1, -1, 1, 1)) * invstd.view(1, -1, 1, 1)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.count, ctx.world = count, bn.world
        return xhat * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)

    @staticmethod
    def backward(ctx, gy):
        if ctx.empty:
            return None, None, None, None
        xhat, invstd, weight = ctx.saved_tensors
        dims = (0, 2, 3)
        g_bias = gy.sum(dims)
        g_weight = (gy * xhat).sum(dims)
        sums = torch.cat([g_bias, g_weight]).double()
        ctx.world.all_reduce_(sums, "sync_bn")
        c = g_bias.numel()
        sum_dy, sum_dy_xhat = sums[:c].to(gy.dtype), sums[c:].to(gy.dtype)
        scale = (weight * invstd / ctx.count).view(1, -1, 1, 1)
        gx = scale * (ctx.count * gy - sum_dy.view(1, -1, 1, 1) - xhat * sum_dy_xhat.view(1, -1, 1, 1))
        return gx, g_weight, g_bias, None


class DistBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d of a distributed run: statistics of this rank's rows, or of all ranks' rows
    (``sync``); a rank with no row (a gated block that runs for other ranks only) leaves the running
    statistics alone and gives its parameters zero gradients."""

    world: World
    sync: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        if self.sync:
            return _SyncBatchNorm.apply(x, self.weight, self.bias, self)
        if x.shape[0] == 0:
            return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return super().forward(x)

    @classmethod
    def convert(cls, model: nn.Module, world: World, sync: bool) -> int:
        """Replace every BatchNorm2d of ``model`` in place (same parameters and buffers); -> how many."""
        n = 0
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is nn.BatchNorm2d:
                    if not child.affine:
                        raise ConfigError(f"BatchNorm {name} without affine parameters is not supported in distributed runs")
                    new = cls(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
                    new.load_state_dict(child.state_dict())
                    new.to(child.weight.device)
                    new.world, new.sync = world, sync
                    setattr(parent, name, new)
                    n += 1
        return n


# ---- the model of a distributed run ---------------------------------------------------------------
def quant_layers(model) -> list:
    return [m for m in model.modules() if hasattr(m, "x_exp") and hasattr(m, "engine")]


def prepare_model(model, world: World, cfg: dict) -> None:
    """Before the optimizer is built: BN layers, the SLU agreement and, in exact mode, the quantised convs'
    collectives. Nothing changes for a single process."""
    if world.size == 1:
        return
    world.batch = cfg["schedule"]["batch_size"]
    DistBatchNorm2d.convert(model, world, cfg["dist"]["sync_bn"])
    if getattr(model, "gating", "none") == "slu":
        model.any_rank_active = world.any_active
    if cfg["dist"]["psg"] == "exact":
        for layer in quant_layers(model):
            if not hasattr(layer.engine, "comm"):
                raise ConfigError(f"dist.psg = exact sums the integer weight gradients between the two phases of PSG, "
                                  f"which the {layer.engine.name!r} backend runs as one call; use the torch backend, "
                                  f"or dist.psg = vote")
            layer.engine.comm = world
            layer.x_exp.comm = world
            layer.g_exp.comm = world


def combined_in_layer(layer) -> bool:
    """Whether exact mode sums this quantised conv's weight gradient inside the layer (integer G)."""
    return layer.mode == "psg" or layer.grad_bits == 16


class TrainForward(nn.Module):
    """The training forward: logits and the SLU computation ratio. Both are outputs, so that DDP finds the
    gates' parameters used wherever the regulariser reaches them."""

    def __init__(self, model, gated_macs: list[int]):
        super().__init__()
        self.model = model
        self.gated_macs = gated_macs

    def forward(self, x):
        from .slu import computation_ratio

        out = self.model(x)
        return out, computation_ratio(self.model, self.gated_macs)


def _sum_hook(world: World, bucket):
    """DDP comm hook: the sum of the ranks' gradients (each rank's loss is its share of the global loss)."""
    import torch.distributed as dist

    buf = bucket.buffer()
    world._count("gradients", buf)
    return dist.all_reduce(buf, async_op=True).get_future().then(lambda fut: fut.value()[0])


class Replica:
    """What the loop trains through: ``replica(x) -> (logits, C)`` and ``after_backward()``."""

    def __init__(self, model, gated_macs: list[int], world: World | None = None, optimizer=None, cfg: dict | None = None):
        self.world = world or World()
        self.module = TrainForward(model, gated_macs)
        self.net = self.module
        self.vote = None
        self.ddp_params = 0
        if self.world.size == 1:
            return
        mode = cfg["dist"]["psg"]
        own = set()  # parameters whose gradient the ranks combine outside DDP
        if mode == "exact":
            own = {id(m.weight) for m in quant_layers(model) if combined_in_layer(m)}
        else:
            voted = [p for g in optimizer.param_groups if g.get("sign") for p in g["params"] if p.requires_grad]
            own = {id(p) for p in voted}
            if voted:
                self.vote = SignVote(voted, self.world)
        names = [n for n, p in self.module.named_parameters() if id(p) in own]
        trained = [p for p in self.module.parameters() if p.requires_grad and id(p) not in own]
        self.ddp_params = sum(p.numel() for p in trained)
        if not trained:
            return
        from torch.nn.parallel import DistributedDataParallel as DDP

        DDP._set_params_and_buffers_to_ignore_for_model(self.module, names)
        dev = self.world.device
        # buffers (BN running statistics): rank 0's at every forward, unless SyncBN keeps them equal anyway
        sync_buffers = not cfg["dist"]["sync_bn"]
        newer = "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters  # broadcast_buffers, renamed in newer torch
        self.net = DDP(self.module, device_ids=[dev.index] if dev.type == "cuda" else None,
                       # a gated block idle on every rank, or dropped by stochastic depth, has no gradient
                       find_unused_parameters=getattr(model, "gating", "none") != "none",
                       **{"forward_sync_buffers" if newer else "broadcast_buffers": sync_buffers})
        self.net.register_comm_hook(self.world, _sum_hook)

    def __call__(self, x):
        return self.net(x)

    def after_backward(self) -> None:
        if self.vote is not None:
            self.vote()


def _pack_bits(b: torch.Tensor) -> torch.Tensor:
    """bool [n] -> uint8 [ceil(n / 8)]"""
    n = b.numel()
    padded = torch.zeros((n + 7) // 8 * 8, dtype=torch.uint8, device=b.device)
    padded[:n] = b.to(torch.uint8)
    weights = torch.tensor([1, 2, 4, 8, 16, 32, 64, 128], dtype=torch.uint8, device=b.device)
    return (padded.view(-1, 8) * weights).sum(1, dtype=torch.int32).to(torch.uint8)


def _unpack_bits(packed: torch.Tensor, n: int) -> torch.Tensor:
    shifts = torch.arange(8, dtype=torch.uint8, device=packed.device)
    return ((packed.view(-1, 1) >> shifts) & 1).view(-1)[:n].bool()


def encode_signs(signs: torch.Tensor) -> torch.Tensor:
    """Signs in {-1, 0, 1} [n] -> two bit planes (nonzero, negative), ``2 * ceil(n / 8)`` bytes."""
    return torch.cat([_pack_bits(signs != 0), _pack_bits(signs < 0)])


def decode_sum(planes: list[torch.Tensor], n: int) -> torch.Tensor:
    """The sum (int32 [n]) of the signs that ``planes`` (one ``encode_signs`` per rank) encode."""
    total = torch.zeros(n, dtype=torch.int32, device=planes[0].device)
    for got in planes:
        half = got.numel() // 2
        nz, neg = _unpack_bits(got[:half], n), _unpack_bits(got[half:], n)
        total += nz.to(torch.int32) * (1 - 2 * neg.to(torch.int32))
    return total


class SignVote:
    """signSGD with majority vote: each rank's signs go to every rank as two bit planes, and the sign of
    their sum becomes every rank's gradient (a tie gives 0)."""

    def __init__(self, params: list[torch.Tensor], world: World):
        self.params = params
        self.world = world

    def __call__(self) -> None:
        ps = [p for p in self.params if p.grad is not None]  # the same set on every rank (SLU agreement)
        if not ps:
            return
        signs = torch.cat([p.grad.detach().reshape(-1).sign() for p in ps])
        gathered = [g.to(signs.device) for g in self.world.all_gather(encode_signs(signs), "sign_vote")]
        vote = decode_sum(gathered, signs.numel()).sign()
        at = 0
        for p in ps:
            k = p.grad.numel()
            p.grad.copy_(vote[at:at + k].view_as(p.grad))
            at += k


# ---- evaluation over the ranks -----------------------------------------------------------------
def evaluate_sharded(evaluate, model, data, batch_size: int, device, world: World) -> dict:
    """``evaluate`` with rank r taking the evaluation batches r, r + R, ...: the batches of one process,
    so quantised layers choose the same exponents; the counts are summed."""
    if world.size == 1:
        return evaluate(model, data, batch_size, device)
    world.broadcast_buffers(model)
    return evaluate(model, data, batch_size, device, part=(world.rank, world.size), reduce=lambda v: world.sum(v, "eval"))


# ---- per-rank counters ----------------------------------------------------------------------------
def _counted_modules(model) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if type(m).get_extra_state is not nn.Module.get_extra_state}


def local_counters(model, counter) -> dict:
    """This rank's counters: MACs per layer, and the extra state (PSG counters) of each layer."""
    return {"macs": copy.deepcopy(counter.state_dict()),
            "extra": {n: copy.deepcopy(m.get_extra_state()) for n, m in _counted_modules(model).items()}}


def restore_counters(model, counter, state: dict) -> None:
    counter.load_state_dict(state["macs"])
    mods = _counted_modules(model)
    for n, s in state["extra"].items():
        mods[n].set_extra_state(s)


def _sum_macs(states: list[dict]) -> dict:
    totals: dict[str, dict[str, int]] = {}
    for s in states:
        for layer, row in s["totals"].items():
            acc = totals.setdefault(layer, dict.fromkeys(row, 0))
            for ph, v in row.items():
                acc[ph] = acc.get(ph, 0) + v
    return {"totals": totals}


@contextlib.contextmanager
def merged_counters(world: World, model, counter):
    """Every rank calls this together; inside it, rank 0's counters are the sums over the ranks (for a
    report or a metrics line); afterwards each rank's own counters are back."""
    if world.size == 1:
        yield
        return
    states = world.gather_objects(local_counters(model, counter))
    if not world.is_main:
        yield
        return
    mine = local_counters(model, counter)
    mods = _counted_modules(model)
    merged = {"macs": _sum_macs([s["macs"] for s in states]), "extra": {}}
    for n, m in mods.items():
        parts = [s["extra"][n] for s in states]
        merge = getattr(type(m), "merge_extra_states", None)
        merged["extra"][n] = merge(parts) if merge is not None else parts[0]
    restore_counters(model, counter, merged)
    try:
        yield
    finally:
        restore_counters(model, counter, mine)


def describe(world: World, cfg: dict, executed_steps: int, replica: Replica, traffic: dict[str, int]) -> dict:
    """report.json's ``dist`` table: ``bytes_per_step`` is what this rank handed to collectives per executed
    step, by kind (``TRAFFIC_KINDS``; ring all-reduce moves about twice that over each rank's link)."""
    per_step = {k: traffic[k] / executed_steps for k in TRAFFIC_KINDS if traffic.get(k) and executed_steps}
    return {
        "world_size": world.size, "backend": world.backend, "psg": cfg["dist"]["psg"], "sync_bn": cfg["dist"]["sync_bn"],
        "ddp_parameters": replica.ddp_params,
        "bytes_per_step": per_step, "bytes_per_step_total": sum(per_step.values()),
    }


def cross_entropy_share(out: torch.Tensor, y: torch.Tensor, batch: int) -> torch.Tensor:
    """This rank's share of the batch-mean cross-entropy: its rows' sum over the global batch. For one
    process it equals ``F.cross_entropy(out, y)`` in value and gradient, bit for bit (the gradient of
    each row is fl(1/B) times the softmax difference either way)."""
    return F.cross_entropy(out, y, reduction="sum") / batch
