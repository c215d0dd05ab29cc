"""Training: config, SMD, SLU regulariser, the loop with checkpoints and resume, evaluation, the CLI.

Plug-in points: ``model.conv`` (see ``e2train.models.convs``) and ``optim.name`` (see ``.optim``);
beside the steps, the trainer's callbacks (``.callbacks``). The config names load without torch; the
optimizer's names load it on first use.
"""

from .config import DEFAULTS, ConfigError, load_config, scheduled_iterations

_OPTIM = ("OPTIMIZER_FACTORIES", "make_optimizer", "register_optimizer_factory")


def __getattr__(name: str):
    if name in _OPTIM:
        from . import optim

        return getattr(optim, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULTS", "ConfigError", "OPTIMIZER_FACTORIES", "load_config", "make_optimizer", "register_optimizer_factory", "scheduled_iterations"]
