"""The corpus stage: raw multilingual text in, clean medical corpus out, as datatrove pipeline steps.

Modules: ``lid`` (offline language identification), ``keywords`` (medical keyword density),
``quality`` (Gopher/FineWeb-style heuristics per language, as ``rules``), ``dedup`` (exact and MinHash, per
language), ``readers`` (tolerant readers that set malformed records aside), ``stats`` (corpus table
and report), ``config`` / ``pipeline`` / ``cli`` (``mmed corpus build CONFIG.yaml``).

Nothing is imported here, so that ``import mmedkit.corpus`` stays cheap and datatrove is only needed
by the modules that use it.
"""
