"""Preview grids: one row per sample image, columns A, A→B, A→B→A, B, B→A, B→A→B."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from cyclestudio.atomic import atomic_write
from cyclestudio.core.data import to_image

GAP = 2


def grid_image(grid: torch.Tensor) -> Image.Image:
    """Tile an (N, 6, C, H, W) tensor in [-1, 1] into one RGB image with thin gaps."""
    n, cols, _, h, w = grid.shape
    sheet = Image.new("RGB", (cols * w + (cols - 1) * GAP, n * h + (n - 1) * GAP), (24, 24, 24))
    for r in range(n):
        for c in range(cols):
            tile = to_image(grid[r, c]).convert("RGB")
            sheet.paste(tile, (c * (w + GAP), r * (h + GAP)))
    return sheet


def save_grid(grid: torch.Tensor, path: Path) -> None:
    """Write the grid as PNG atomically (the app may be reading the folder)."""
    with atomic_write(Path(path)) as f:
        grid_image(grid).save(f, format="PNG")
