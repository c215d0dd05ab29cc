"""Training: config, SMD, SLU regulariser, the loop with checkpoints and resume, evaluation, the CLI.

Plug-in points: ``model.conv`` (see ``e2train.models.convs``) and ``optim.name`` (see ``.optim``).
"""

from .config import DEFAULTS, ConfigError, load_config, scheduled_iterations
from .optim import OPTIMIZER_FACTORIES, make_optimizer, register_optimizer_factory

__all__ = ["DEFAULTS", "ConfigError", "OPTIMIZER_FACTORIES", "load_config", "make_optimizer", "register_optimizer_factory", "scheduled_iterations"]
