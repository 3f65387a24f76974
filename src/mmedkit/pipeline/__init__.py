"""The study as one reproducible experiment: ``mmed pipeline run RECIPE --out DIR``.

An experiment file (:mod:`~mmedkit.pipeline.experiment`) names the stages by reference to their own
configs; :mod:`~mmedkit.pipeline.plan` turns it into stages with fingerprints; :mod:`~mmedkit.pipeline.runner`
runs them (skipping finished ones, resuming interrupted ones) and :mod:`~mmedkit.pipeline.report` compares
the arms. This package may import every stage; no stage imports it.
"""
