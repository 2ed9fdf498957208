"""Hostile-input tools: the SIP fuzz harness (``make fuzz``) and the soak (``make soak``).

* :mod:`simulator.fuzz.sip` — one input through everything the Edge does with
  bytes off the wire (framer, parser, the fields the Edge reads, the answer it
  builds). Runs under atheris (coverage-guided, ``make fuzz``) or as a plain
  Python loop over a seed corpus and seeded random mutations, so CI needs no
  native build: ``python -m simulator.fuzz --seconds 10``.
* :mod:`simulator.fuzz.soak` — minutes of mixed good and bad traffic from
  several processes against a real ``fedsim serve``, then the process must be
  alive, its RSS flat and its events complete (``python -m simulator.fuzz.soak``).
"""

from __future__ import annotations
