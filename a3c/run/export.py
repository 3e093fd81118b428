"""A trained policy as one file for deployment, ONNX or TorchScript: observation in, greedy action out.

The file holds the policy's path through the network (torso, core, policy layers and head) and the
conversion to the env's action, and nothing of the value head or the optimizer. Its inputs are the
observation as the env gives it, with a batch axis in front: one input named 'obs', or one per part
of a Dict or Tuple observation named by the part's path (a3c.spaces). A recurrent policy takes its
state too ('lstm_h', 'lstm_c', zeros at an episode's start) and gives the next ('next_lstm_h',
'next_lstm_c'). The output 'action' is what ``predict(obs, deterministic=True)`` gives, in the
action space's dtype and shape. docs/export.md shows how to run both kinds of file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from a3c.core.networks import ActorCritic
from a3c.errors import ConfigError

FORMATS = ("onnx", "torchscript")
STATE_INPUTS = ("lstm_h", "lstm_c")
STATE_OUTPUTS = ("next_lstm_h", "next_lstm_c")
OPSET = 18


class GreedyPolicy(nn.Module):
    """The network's greedy policy as the env sees it: observation parts in, the env's action out.

    Only the policy's modules are registered here, so that a traced or exported file holds them and
    nothing else; forward runs the network's own acting path over them.
    """

    def __init__(self, net: ActorCritic, action_space: gym.Space):
        super().__init__()
        self.torso, self.core, self.policy = net.torso, net.core, net.policy
        self.policy_hidden, self.normalizer = net.policy_hidden, net.normalizer
        self._normalize = net._normalize  # None where the torso normalises its own Box parts
        self._features, self._params = net._policy_features, net._policy_params
        self._core_step = net.core.step
        self.keys = [p.key for p in net.spec.obs_parts]
        self.recurrent = net.recurrent
        self.kind = net.spec.action_kind
        self.shape = tuple(action_space.shape)
        self.dtype = getattr(torch, np.dtype(action_space.dtype).name)
        if self.kind == "discrete":
            self.register_buffer("start", torch.tensor(int(action_space.start)), persistent=False)
        elif self.kind == "multi_discrete":
            self.nvec = list(net.spec.action_nvec)
            self.register_buffer("start", torch.as_tensor(action_space.start.ravel(), dtype=torch.int64),
                                 persistent=False)
        elif self.kind == "box":
            self.register_buffer("low", torch.as_tensor(action_space.low.ravel(), dtype=torch.float32),
                                 persistent=False)
            self.register_buffer("high", torch.as_tensor(action_space.high.ravel(), dtype=torch.float32),
                                 persistent=False)

    @property
    def input_names(self) -> list[str]:
        names = ["obs"] if self.keys == [""] else list(self.keys)
        return names + (list(STATE_INPUTS) if self.recurrent else [])

    @property
    def output_names(self) -> list[str]:
        return ["action"] + (list(STATE_OUTPUTS) if self.recurrent else [])

    def forward(self, *inputs: Tensor) -> Tensor | tuple[Tensor, ...]:
        n = len(self.keys)
        obs: Any = inputs[0] if self.keys == [""] else dict(zip(self.keys, inputs[:n], strict=True))
        state = (inputs[n], inputs[n + 1]) if self.recurrent else None
        x = obs if self._normalize is None else self._normalize(obs)
        h, state = self._core_step(self._features(x), state)
        action = self._greedy(self._params(h))
        return (action, *state) if self.recurrent else action

    def _greedy(self, params: Any) -> Tensor:
        """The mode of the policy, as the env's action (a3c.spaces.action_converter's rule)."""
        if self.kind == "discrete":
            return params.argmax(-1) + self.start
        if self.kind == "multi_discrete":
            parts = [part.argmax(-1) for part in params.split(self.nvec, -1)]
            action = torch.stack(parts, -1) + self.start
        elif self.kind == "multi_binary":
            action = params > 0
        else:
            action = torch.minimum(torch.maximum(params[0], self.low), self.high)
        return action.reshape(-1, *self.shape).to(self.dtype)


def example_inputs(net: ActorCritic, batch: int = 2) -> tuple[Tensor, ...]:
    """Blank observations (and a zero state) of a batch, to trace a GreedyPolicy with."""
    inputs = [torch.zeros(batch, *p.shape, dtype=getattr(torch, np.dtype(p.dtype).name))
              for p in net.spec.obs_parts]
    for part, tensor in zip(net.spec.obs_parts, inputs, strict=True):
        if part.start:  # a valid value of every component, not only zeros
            tensor += torch.as_tensor(part.start).reshape(part.shape or ())
    if net.recurrent:
        inputs += [torch.zeros(batch, net.spec.core_size), torch.zeros(batch, net.spec.core_size)]
    return tuple(inputs)


def export_policy(net: ActorCritic, action_space: gym.Space, path: str | os.PathLike, fmt: str,
                  about: dict[str, Any] | None = None) -> Path:
    """Write the greedy policy of `net` to `path` as fmt ('onnx' or 'torchscript'); `about` (the env
    id, ...) goes into the file's metadata with the names of its inputs and outputs."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    policy = GreedyPolicy(_frozen_copy(net), action_space).eval()
    names = policy.input_names + policy.output_names
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ConfigError(f"observation parts named {', '.join(clash)} clash with the policy's state "
                          "inputs and outputs; rename them in the env to export it")
    meta = json.dumps({"format": "a3c-policy", "inputs": policy.input_names, "outputs": policy.output_names,
                       "observation_parts": [p.to_dict() for p in net.spec.obs_parts],
                       "action_space": str(action_space), "recurrent": policy.recurrent, **(about or {})})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    inputs = example_inputs(net)
    with torch.no_grad():
        if fmt == "torchscript":
            with warnings.catch_warnings():  # torch 2.13 calls TorchScript deprecated; it still runs
                warnings.simplefilter("ignore", DeprecationWarning)
                traced = torch.jit.trace(policy, inputs, check_trace=False)
                torch.jit.save(traced, str(path), _extra_files={"a3c.json": meta})
        else:
            _export_onnx(policy, inputs, path, meta)
    return path


def _frozen_copy(net: ActorCritic) -> ActorCritic:
    """A copy on the CPU whose parameters need no gradient (the file's outputs then need none
    either), computing in float32 whatever precision training used: the weights are float32, and
    an exported policy runs wherever its runtime does, bfloat16 kernels or not."""
    copy = ActorCritic(dataclasses.replace(net.spec, conv_precision="float32"), trust_code=True)
    copy.load_state_dict({k: v.detach().cpu() for k, v in net.state_dict().items()})
    return copy.requires_grad_(False)


def _export_onnx(policy: GreedyPolicy, inputs: tuple[Tensor, ...], path: Path, meta: str) -> None:
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's exporter writes with it)
    except ImportError:
        raise ConfigError('exporting to ONNX needs the onnx and onnxscript packages: '
                          'pip install "a3c[export]"') from None
    batch = torch.export.Dim("batch")
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    # The exporter's notes (on naming the shared batch axis, on torchvision's operators absent here)
    # are about its own workings, not the user's policy.
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(policy, inputs, input_names=policy.input_names,
                                        output_names=policy.output_names, opset_version=OPSET,
                                        dynamic_shapes=(tuple({0: batch} for _ in inputs),), dynamo=True,
                                        verbose=False, external_data=False)
    finally:
        exporter_log.setLevel(level)
    model = program.model_proto
    entry = model.metadata_props.add()
    entry.key, entry.value = "a3c", meta
    onnx.save(model, str(path))
