"""What a training run logged: :class:`History`, a table of values by optimizer step."""

from __future__ import annotations

import math


class History:
    """The logged quantities of a run: ``history["loss"]`` is a list of floats.

    ``history.steps`` holds the optimizer step of each entry; quantities logged only some
    of the time (e.g. a kNN accuracy every 100 steps) are NaN elsewhere.
    """

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.records: dict[str, list[float]] = {}
        self.seconds: float = 0.0  # wall-clock time spent in fit, summed over resumes

    def log(self, step: int, values: dict[str, float]) -> None:
        if self.steps and self.steps[-1] == step:  # merge into the row of this step
            row = len(self.steps) - 1
        else:
            self.steps.append(step)
            row = len(self.steps) - 1
            for seq in self.records.values():
                seq.append(math.nan)
        for key, value in values.items():
            seq = self.records.setdefault(key, [math.nan] * len(self.steps))
            seq[row] = float(value)

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.records:
            raise KeyError(f"{key!r} was not logged; logged quantities: {sorted(self.records)}")
        return [v for v in self.records[key] if not math.isnan(v)]

    def __contains__(self, key: object) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.steps)

    def keys(self) -> list[str]:
        return list(self.records)

    def items(self):
        return self.records.items()

    def last(self, key: str = "loss") -> float:
        """The most recent logged value of ``key``."""
        values = self[key]
        if not values:
            raise KeyError(f"{key!r} has no logged value yet ({len(self.steps)} entries)")
        return values[-1]

    def steps_of(self, key: str) -> list[int]:
        """The steps at which ``key`` was logged (for quantities logged now and then)."""
        return [s for s, v in zip(self.steps, self.records[key]) if not math.isnan(v)]

    def plot(self, keys: list[str] | None = None, smooth: float = 0.0):
        """A matplotlib figure with one panel per logged quantity."""
        from minissl import viz

        return viz.plot_history(self, keys=keys, smooth=smooth)

    def state_dict(self) -> dict:
        return {"steps": list(self.steps), "records": {k: list(v) for k, v in self.records.items()},
                "seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.steps = list(state["steps"])
        self.records = {k: list(v) for k, v in state["records"].items()}
        self.seconds = float(state.get("seconds", 0.0))

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={self[k][-1]:.4g}" for k in self.records if self[k])
        return f"History({len(self.steps)} entries; last: {last})"
