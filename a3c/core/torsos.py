"""Torsos: from an observation (a tensor, or a dict of tensors by part) to one feature vector.

- `MLP` for a Box vector, called layer by layer on plain references to its weights.
- `ConvTorso` for an image: the A3C paper's convolutions or Nature DQN's; bytes are scaled and an
  image given [H, W, C] is transposed inside its batched forward, never per step in Python.
- `PartsTorso` for everything else and for Dict and Tuple observations: each image part through a
  conv torso of its own, every other part encoded as numbers (Box flattened and, with obs_norm,
  normalised; Discrete and MultiDiscrete one-hot; MultiBinary as 0/1) and all of those through one
  MLP; the features concatenated.
- `UserTorso`: the user's nn.Module class, fed each part as floats a layer takes (see
  docs/custom-networks.md), through its own forward.

Encoders compare against `arange` instead of calling one_hot, so that exported policies (ONNX,
TorchScript) run them too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a3c.errors import ConfigError
from a3c.spaces import ObsPart

Observation = Tensor | dict[str, Tensor]  # one part's batch, or each part's by path
Normalize = Callable[[Tensor], Tensor]

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": torch.tanh, "relu": torch.relu, "elu": F.elu, "gelu": F.gelu, "silu": F.silu,
    "leaky_relu": F.leaky_relu,
}

# Convolutional torsos as (filters, kernel, stride) per layer, then the hidden layer's width.
CONV_LAYERS = {
    # Mnih et al. 2016 (A3C), after Mnih et al. 2013: 16 8x8/4, 32 4x4/2, 256 hidden.
    "a3c-conv": (((16, 8, 4), (32, 4, 2)), 256),
    # Mnih et al. 2015 (Nature DQN): 32 8x8/4, 64 4x4/2, 64 3x3/1, 512 hidden.
    "nature-conv": (((32, 8, 4), (64, 4, 2), (64, 3, 1)), 512),
}


def channels_first(part: ObsPart) -> tuple[int, int, int]:
    c, h, w = (part.shape[2], part.shape[0], part.shape[1]) if part.channels_last else part.shape
    return c, h, w


def conv_output(shape: tuple[int, int, int], kind: str) -> tuple[int, int] | None:
    """(height, width) of the last conv layer's output for images [C, H, W], None if too small."""
    _, height, width = shape
    for _, kernel, stride in CONV_LAYERS[kind][0]:
        height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
        if height <= 0 or width <= 0:
            return None
    return height, width


def conv_takes(part: ObsPart, kind: str) -> bool:
    if kind not in CONV_LAYERS or part.kind != "image":
        return False
    return conv_output(channels_first(part), kind) is not None


def smallest_image(kind: str) -> int:
    """The smallest height and width the conv torso of this kind takes."""
    return next(n for n in range(1, 1000) if conv_output((1, n, n), kind) is not None)


def _orthogonal(layer: nn.Module, gain: float) -> None:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)


class MLP(nn.Module):
    """Fully connected layers, called layer by layer: nn.Sequential's dispatch shows at batch 1."""

    def __init__(self, in_dim: int, hidden_sizes: tuple[int, ...], activation: str):
        super().__init__()
        sizes = (in_dim, *hidden_sizes)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=False))
        self.activation = ACTIVATIONS[activation]
        self.out_dim = sizes[-1]
        for layer in self.layers:
            _orthogonal(layer, math.sqrt(2))
        # Parameters are updated in place (pull, load_state_dict), so these references stay valid.
        self._weights = [(layer.weight, layer.bias) for layer in self.layers]

    def forward(self, x: Tensor) -> Tensor:
        for weight, bias in self._weights:
            x = self.activation(F.linear(x, weight, bias))
        return x


class ConvTorso(nn.Module):
    """Convolutions over an image (a stack of frames), then one hidden layer.

    Observations stay uint8 in rollouts (a quarter of the memory of float32) until this forward
    scales them to [0, 1]; images given [H, W, C] are transposed here, once per batch, and the
    learning pass runs its convolutions channels-last. With precision bfloat16 the layers compute
    in bfloat16 from a cast of the float32 weights (made once per rollout, see Trace), their
    gradients come back float32 to the parameters, and the features leave as float32 for the heads.
    """

    def __init__(self, obs_shape: tuple[int, ...], kind: str, hidden: int = 0, activation: str = "relu",
                 channels_last: bool = False, precision: str = "float32"):
        super().__init__()
        layers, default_hidden = CONV_LAYERS[kind]
        part = ObsPart("", "image", tuple(obs_shape), "uint8", channels_last=channels_last)
        channels, height, width = channels_first(part)
        out = conv_output((channels, height, width), kind)
        if out is None:
            raise ConfigError(f"images of shape {tuple(obs_shape)} are too small for the {kind} torso, "
                              f"which takes at least {smallest_image(kind)}x{smallest_image(kind)} "
                              "pixels; choose torso mlp (or auto) to flatten them")
        convs = []
        for filters, kernel, stride in layers:
            convs.append(nn.Conv2d(channels, filters, kernel, stride))
            channels = filters
        self.convs = nn.ModuleList(convs)
        self.hidden = nn.Linear(channels * out[0] * out[1], hidden or default_hidden)
        self.out_dim = hidden or default_hidden
        self.channels_last = channels_last
        self.activation = ACTIVATIONS[activation]
        self.dtype = PRECISIONS[precision]
        for layer in (*self.convs, self.hidden):
            _orthogonal(layer, math.sqrt(2))
        self._strides = [c.stride for c in self.convs] + [None]  # None: the hidden (linear) layer

    def forward(self, x: Tensor, trace: Trace | None = None) -> Tensor:
        """Features of a batch of images; with trace (acting, without autograd), each layer's
        output before its activation is appended to it, for `replay` to learn from."""
        learning = torch.is_grad_enabled()
        layers = self._layers(x, learning, trace)
        x = self._images(x, learning)
        act = self.activation
        outputs = []
        for layer in layers[:-1]:
            z = F.conv2d(x, layer.weight, layer.bias, layer.stride)
            outputs.append(z)
            x = act(z)
        z = F.linear(x.flatten(1), layers[-1].weight, layers[-1].bias)
        if trace is not None:
            outputs.append(z)
            trace.passes.append(outputs)
        return act(z).float()

    def replay(self, x: Tensor, trace: Trace) -> Tensor:
        """The learning pass, with autograd, over the images x of the acting passes in trace (their
        batches concatenated in order), without running the layers again.

        Acting under the same weights has already computed every layer's output; the graph is
        built from those, and each layer's backward is the one autograd would run. The gradients
        are those of `forward`, but for float rounding, and the layers' forward pass is not paid
        twice (benchmarks/results/atari_loop_ab.md).
        """
        layers = self._layers(x, False, trace)  # the acting passes' own
        x = self._images(x, learning=True)
        act = self.activation
        outputs = [torch.cat(outputs) for outputs in zip(*trace.passes, strict=True)]
        for layer, z in zip(layers, outputs, strict=True):
            if layer.stride is None:
                x = x.flatten(1)
            elif x.device.type == "cpu":
                z = z.contiguous(memory_format=torch.channels_last)  # as forward's learning pass
            x = act(_KnownOutput.apply(x, layer.param_weight, layer.param_bias, z, layer))
        return x.float()

    def _layers(self, x: Tensor, differentiable: bool, trace: Trace | None) -> list[_Layer]:
        """Each layer's weights as it computes with them: the parameters themselves in float32; in
        bfloat16 a cast, the first layer's weights scaled by 1/255 for uint8 images (so that the
        pixels need no pass of their own), made once per trace (a rollout's acting passes and its
        replay), or with autograd for a learning pass that is not replayed."""
        params = [(c.weight, c.bias) for c in self.convs] + [(self.hidden.weight, self.hidden.bias)]
        if self.dtype == torch.float32:
            return [_Layer(w, b, stride, w, b, 1.0)
                    for (w, b), stride in zip(params, self._strides, strict=True)]
        if trace is not None and trace.layers is not None:
            return trace.layers
        with torch.set_grad_enabled(differentiable):
            layers = self._cast_layers(params, 1.0 / 255.0 if x.dtype == torch.uint8 else 1.0)
        if trace is not None:
            trace.layers = layers
        return layers

    def _cast_layers(self, params: list[tuple[Tensor, Tensor]], scale: float) -> list[_Layer]:
        scales = [scale] + [1.0] * (len(params) - 1)
        return [_Layer((w * s).to(self.dtype), b.to(self.dtype), stride, w, b, s)
                for (w, b), stride, s in zip(params, self._strides, scales, strict=True)]

    def _images(self, x: Tensor, learning: bool) -> Tensor:
        """uint8 images [B, C, H, W] (or [B, H, W, C]) as the layers take them: floats in [0, 1],
        or in bfloat16 the bytes' values (the first layer's weights scaled instead)."""
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)  # a [C, H, W] view of [H, W, C] memory: channels-last already
        elif learning and x.device.type == "cpu":
            # The learning pass: on the CPU, oneDNN's weight gradients run about twice as fast on
            # channels-last images (benchmarks/results/atari_loop_ab.md); acting, without
            # autograd, is as fast or faster on the images as they come (batch 1 included).
            # Converted as bytes, a quarter of the copy.
            x = x.contiguous(memory_format=torch.channels_last)
        if self.dtype != torch.float32:
            return x.to(self.dtype)
        return x.float() * (1.0 / 255.0) if x.dtype == torch.uint8 else x


PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX tiles); without either,
    oneDNN emulates it and a conv torso in bfloat16 costs several times float32's CPU time
    (benchmarks/results/conv_precision.md). True where torch cannot tell."""
    names = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    probes = [probe for probe in (getattr(torch.cpu, name, None) for name in names) if probe is not None]
    return not probes or any(probe() for probe in probes)


class _Layer(NamedTuple):
    """A conv torso's layer as it computes: weight and bias in the torso's precision, the stride
    (None for the hidden, linear layer), the float32 parameters they come from, and the scale
    the weight was multiplied by on the way."""

    weight: Tensor
    bias: Tensor
    stride: tuple[int, int] | None
    param_weight: Tensor
    param_bias: Tensor
    scale: float


@dataclass
class Trace:
    """One rollout's acting passes through a conv torso, whose weights do not change until its
    learning pass replays them: each pass's layer outputs before their activations, and the
    weights as the torso computed with them (bfloat16: cast once for the whole rollout)."""

    passes: list[list[Tensor]] = field(default_factory=list)
    layers: list[_Layer] | None = None

    def __len__(self) -> int:
        return len(self.passes)


class _KnownOutput(torch.autograd.Function):
    """A layer whose output is already known: forward returns it, backward computes the gradients
    autograd would for the layer (a convolution, or linear where the stride is None), computed
    with the weights the layer used and returned for the parameters they were cast from."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor, output: Tensor, layer: _Layer) -> Tensor:
        ctx.save_for_backward(x, layer.weight)
        ctx.layer = layer
        return output

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        layer, needs_input = ctx.layer, ctx.needs_input_grad[0]
        if layer.stride is None:
            grad_x = grad @ weight if needs_input else None
            grad_weight, grad_bias = grad.t() @ x, grad.sum(0)
        else:
            grad_x, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
                grad, x, weight, [weight.shape[0]], list(layer.stride), [0, 0], [1, 1], False, [0, 0], 1,
                [needs_input, True, True])
        if layer.scale != 1.0:
            grad_weight = grad_weight * layer.scale
        return (grad_x, grad_weight.to(layer.param_weight.dtype), grad_bias.to(layer.param_bias.dtype),
                None, None)


# --- encoders: a part's observations as floats ---------------------------------------------------

class OneHot(nn.Module):
    """Discrete and MultiDiscrete parts: each component one-hot, the components side by side."""

    def __init__(self, part: ObsPart):
        super().__init__()
        offsets = np.concatenate([[0], np.cumsum(part.nvec)[:-1]]) - np.asarray(part.start)
        self.scalar = part.kind == "discrete"
        self.register_buffer("offsets", torch.as_tensor(offsets, dtype=torch.int64), persistent=False)
        self.register_buffer("values", torch.arange(int(sum(part.nvec))), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        components = x.unsqueeze(-1) if self.scalar else x.flatten(1)
        index = components.long() + self.offsets
        return (index.unsqueeze(-1) == self.values).float().sum(1)


def _column(x: Tensor) -> Tensor:
    return x.unsqueeze(-1)


def _rows(x: Tensor) -> Tensor:
    return x.flatten(1)


def _flat(part: ObsPart) -> Callable[[Tensor], Tensor]:
    """[B, *shape] to [B, size]; module-level functions, since workers receive networks by pickle."""
    return _column if not part.shape else _rows


def _as_floats(x: Tensor) -> Tensor:
    return x.float() * (1.0 / 255.0) if x.dtype == torch.uint8 else x.float()


class PartInputs(nn.Module):
    """Every part of an observation as float tensors, with no parameters of its own.

    flat=True: each part [B, width], for an MLP; flat=False: Box parts keep their shape, images are
    [B, C, H, W], one-hot parts [B, width] (what a user's torso receives). Box parts are normalised
    together by `normalize` (obs_norm), as one vector of their values in part order.
    """

    def __init__(self, parts: tuple[ObsPart, ...], normalize: Normalize | None, flat: bool):
        super().__init__()
        self.parts = parts
        self.flat = flat
        self.normalize = normalize
        self.one_hot = nn.ModuleDict()
        for i, part in enumerate(parts):
            if part.kind in ("discrete", "multi_discrete"):
                self.one_hot[str(i)] = OneHot(part)
        self._boxes = [(part.key, _flat(part), part.shape) for part in parts if part.kind == "box"]
        self._box_sizes = [part.size for part in parts if part.kind == "box"]

    def forward(self, obs: dict[str, Tensor]) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        if self._boxes:
            pieces = [flatten(obs[key]).float() for key, flatten, _ in self._boxes]
            if self.normalize is not None:
                values = self.normalize(torch.cat(pieces, -1) if len(pieces) > 1 else pieces[0])
                pieces = list(values.split(self._box_sizes, -1)) if len(pieces) > 1 else [values]
            for (key, _, shape), piece in zip(self._boxes, pieces, strict=True):
                out[key] = piece if self.flat else piece.reshape(-1, *shape)
        for i, part in enumerate(self.parts):
            x = obs[part.key]
            if part.kind in ("discrete", "multi_discrete"):
                out[part.key] = self.one_hot[str(i)](x)
            elif part.kind == "multi_binary":
                out[part.key] = _flat(part)(x).float() if self.flat else x.float()
            elif part.kind == "image":
                x = _as_floats(x)
                if self.flat:
                    out[part.key] = x.flatten(1)
                else:
                    out[part.key] = x.permute(0, 3, 1, 2) if part.channels_last else x
        return {part.key: out[part.key] for part in self.parts}


def input_shapes(parts: tuple[ObsPart, ...]) -> dict[str, tuple[int, ...]]:
    """What PartInputs(flat=False) gives per part, for one observation."""
    shapes = {}
    for part in parts:
        if part.kind == "image":
            shapes[part.key] = channels_first(part)
        elif part.kind in ("discrete", "multi_discrete"):
            shapes[part.key] = (part.width,)
        else:
            shapes[part.key] = part.shape
    return shapes


def box_values(obs: np.ndarray | dict[str, np.ndarray], parts: tuple[ObsPart, ...]) -> np.ndarray:
    """The Box parts' values of a batch [..., parts], side by side [M, size]: what obs_norm counts."""
    if not isinstance(obs, dict):
        return obs
    boxes = [part for part in parts if part.kind == "box"]
    first = obs[boxes[0].key]
    lead = first.shape[:first.ndim - len(boxes[0].shape)]
    return np.concatenate([obs[p.key].reshape(*lead, p.size) for p in boxes], -1)


def _single(obs: Observation) -> dict[str, Tensor]:
    return obs if isinstance(obs, dict) else {"": obs}


class PartsTorso(nn.Module):
    """One conv torso per image part the conv torso takes; every other part into one MLP."""

    def __init__(self, parts: tuple[ObsPart, ...], conv: str, hidden_sizes: tuple[int, ...],
                 activation: str, conv_hidden: int, conv_activation: str, normalize: Normalize | None,
                 conv_precision: str = "float32"):
        super().__init__()
        self.images = nn.ModuleList()
        self._image_keys = []
        rest = []
        for part in parts:
            if conv_takes(part, conv):
                self.images.append(ConvTorso(part.shape, conv, conv_hidden, conv_activation,
                                             part.channels_last, conv_precision))
                self._image_keys.append(part.key)
            else:
                rest.append(part)
        self.inputs = PartInputs(tuple(rest), normalize, flat=True)
        self.mlp = MLP(sum(p.width for p in rest), hidden_sizes, activation) if rest else None
        self.out_dim = sum(c.out_dim for c in self.images) + (self.mlp.out_dim if self.mlp else 0)

    def forward(self, obs: Observation) -> Tensor:
        obs = _single(obs)
        features = [conv(obs[key]) for key, conv in zip(self._image_keys, self.images, strict=True)]
        if self.mlp is not None:
            values = list(self.inputs(obs).values())
            features.append(self.mlp(values[0] if len(values) == 1 else torch.cat(values, -1)))
        return features[0] if len(features) == 1 else torch.cat(features, -1)


class UserTorso(nn.Module):
    """A user's nn.Module class as the torso: made as ``cls(obs_shape, **kwargs)``, called with the
    observation as PartInputs(flat=False) gives it (a tensor, or a dict of tensors by part), and
    expected to return features [B, F]; F is found by one forward pass on a blank observation."""

    def __init__(self, cls: type, kwargs: dict[str, Any], parts: tuple[ObsPart, ...], name: str,
                 normalize: Normalize | None):
        super().__init__()
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise ConfigError(f"torso {name} is {cls!r}, not an nn.Module class")
        self.inputs = PartInputs(parts, normalize, flat=False)
        self.single = len(parts) == 1 and parts[0].key == ""
        shapes = input_shapes(parts)
        obs_shape = shapes[""] if self.single else shapes
        try:
            self.net = cls(obs_shape, **kwargs)
        except Exception as exc:
            raise ConfigError(f"torso {name}({obs_shape}, **{kwargs}) failed: "
                              f"{type(exc).__name__}: {exc}") from exc
        blank = {p.key: torch.zeros(2, *p.shape, dtype=getattr(torch, p.dtype, torch.float32))
                 for p in parts}
        try:
            with torch.no_grad():
                out = self.forward(blank[""] if self.single else blank)
        except Exception as exc:
            raise ConfigError(f"torso {name}: its forward failed on a blank batch of observations of "
                              f"shape {obs_shape}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(out, Tensor) or out.dim() != 2 or out.shape[0] != 2 or not out.is_floating_point():
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ConfigError(f"torso {name} must return float features [batch, F]; for a batch of 2 "
                              f"observations it returned {got}")
        self.out_dim = int(out.shape[1])

    def forward(self, obs: Observation) -> Tensor:
        inputs = self.inputs(_single(obs))
        return self.net(inputs[""] if self.single else inputs)
