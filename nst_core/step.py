"""The loop's record of one step. Free of PyTorch at import (its tensors are only annotations), so
a process that only moves records, such as the Ray registry, can read them without loading it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass
class Step:
    """One record of the loop. Costs are the weighted terms: α·J_content, β·J_style, β·λ[l]·J_style[l]."""

    step: int
    total_steps: int
    stage: int
    size: tuple[int, int]
    elapsed: float
    eta: float
    content: float
    style: float
    tv: float
    total: float
    style_layers: dict[str, float]
    best_image: torch.Tensor
    best_total: float
    image: torch.Tensor | None = None  # a snapshot at step 1, every `snapshot_every` steps and at the end
    status: str = "running"  # running | done | diverged
    message: str = ""
    weights: dict = field(default_factory=dict)  # the α, β, λ actually used
    gflop: float = 0.0  # the network's work so far: every forward+backward pass, by its image size
    network_checksums: tuple[str, str] | None = None  # on the final record: checks.weights_checksum at start and end

    def as_row(self) -> dict:
        """The record's numbers as one flat row, for the CLI's CSV log (the figures and texts take the records)."""
        return {"step": self.step, "stage": self.stage, "size": f"{self.size[1]}x{self.size[0]}",
                "elapsed": self.elapsed, "total": self.total, "content": self.content, "style": self.style,
                "tv": self.tv, **{f"style_{k}": v for k, v in self.style_layers.items()}}
