"""The jobs: what a command does, from a resolved configuration to the files of a run.

:mod:`.prepare` turns a configuration into a :class:`~.prepare.Plan` (data loaded, the
configuration resolved once, every check made, the model built once on ``meta`` and once for
real, the run directory opened); :mod:`.train` trains a plan, :mod:`.run` is ``pyro-vae run``
(train, evaluate, baselines, figures, report) and the experiments' ``trained_run``,
:mod:`.evaluate` is ``pyro-vae evaluate``. This layer sits above :mod:`pyro_vae.app` (the
parts, the run directory, the estimators, the figures and the report) and below the command
line (:mod:`pyro_vae.cli`)."""
