"""Seeded fault injection: the failures real servers produce, at chosen rates.

Spec syntax (``--faults``): comma-separated ``name=value`` pairs, e.g.
``429=0.1,5xx=0.05,reset=0.02,truncate=0.02,slow=0.05,seed=7``.

    429=R        answer 429 with Retry-After and rate-limit headers, rate R
    5xx=R        start a burst of 500/502/503 answers (503 carries Retry-After), rate R
    burst=N      length of a 5xx burst (default 3)
    reset=R      close the connection with a TCP reset, no response, rate R
    truncate=R   send a JSON body cut in half under the full Content-Length, rate R
    slow=R       delay the answer by slow_ms, rate R
    slow_ms=N    delay of a slow answer (default 1500)
    retry_after=N  seconds announced in Retry-After (default 1)
    seed=N       random seed (default 0): the same seed gives the same fault sequence
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field

FAULT_KINDS = ("429", "5xx", "reset", "truncate", "slow")


class FaultSpecError(ValueError):
    pass


@dataclass
class FaultPlan:
    rates: dict[str, float] = field(default_factory=dict)
    burst: int = 3
    slow_ms: int = 1500
    retry_after: int = 1
    seed: int = 0
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._burst_left = 0
        self._burst_status = 500

    @classmethod
    def parse(cls, spec: str | None) -> FaultPlan | None:
        if not spec:
            return None
        plan = cls()
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, value = part.partition("=")
            if not sep:
                raise FaultSpecError(f"fault spec {part!r}: expected name=value")
            try:
                if name in FAULT_KINDS:
                    rate = float(value)
                    if not 0.0 <= rate <= 1.0:
                        raise ValueError
                    plan.rates[name] = rate
                elif name in ("burst", "slow_ms", "retry_after", "seed"):
                    setattr(plan, name, int(value))
                else:
                    known = ", ".join(FAULT_KINDS + ("burst", "slow_ms", "retry_after", "seed"))
                    raise FaultSpecError(f"unknown fault {name!r} (known: {known})")
            except ValueError as exc:
                if isinstance(exc, FaultSpecError):
                    raise
                raise FaultSpecError(f"fault {name}: bad value {value!r}") from exc
        plan.__post_init__()
        return plan

    def draw(self) -> tuple[str, int] | None:
        """The fault for the next request: (kind, status) or None."""
        with self._lock:
            if self._burst_left > 0:
                self._burst_left -= 1
                self.injected["5xx"] += 1
                return "5xx", self._burst_status
            for kind in FAULT_KINDS:
                rate = self.rates.get(kind, 0.0)
                if rate and self._rng.random() < rate:
                    self.injected[kind] += 1
                    if kind == "5xx":
                        self._burst_status = self._rng.choice((500, 502, 503))
                        self._burst_left = max(self.burst - 1, 0)
                        return kind, self._burst_status
                    return kind, 429 if kind == "429" else 0
            return None
