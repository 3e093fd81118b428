"""Users' torsos for the tests, importable as 'tests.custom_torsos:Class' (docs/custom-networks.md shows
the first two)."""

from __future__ import annotations

import math

import torch
from torch import nn


class ResidualMLP(nn.Module):
    """A torso for vector observations: a layer of `width` ReLU units, then a residual one."""

    def __init__(self, obs_shape: tuple[int, ...], width: int = 64):
        super().__init__()
        self.inp = nn.Linear(math.prod(obs_shape), width)
        self.hidden = nn.Linear(width, width)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.inp(obs.flatten(1)))
        return x + torch.relu(self.hidden(x))


class CueAndFrame(nn.Module):
    """A torso for ToyDictObs-v0's Dict observation: a small conv net on the frame ([1, 20, 20], scaled
    to [0, 1]), the one-hot cue as it is, side by side."""

    def __init__(self, obs_shape: dict[str, tuple[int, ...]], filters: int = 8):
        super().__init__()
        channels = obs_shape["frame"][0]
        self.conv = nn.Conv2d(channels, filters, kernel_size=5, stride=5)
        self.out = nn.Linear(filters * 4 * 4, 32)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        frame = torch.relu(self.out(torch.relu(self.conv(obs["frame"])).flatten(1)))
        return torch.cat([frame, obs["cue"]], -1)


class NotATensor(nn.Module):
    """Returns a tuple: the network refuses it when it is built."""

    def __init__(self, obs_shape):
        super().__init__()
        self.layer = nn.Linear(math.prod(obs_shape), 4)

    def forward(self, obs):
        return (self.layer(obs),)
