"""Training machinery shared by every stage (configs, checkpoints, loop, DDP, EMA, schedules).

Stages (:mod:`uniremoval.stages`) build on :class:`~uniremoval.train.trainer.Trainer`; import
the submodules directly (``from uniremoval.train.trainer import Trainer``) so that importing
this package stays cheap.
"""
