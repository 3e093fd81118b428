"""A rollout's acting pass: NumPy observations in, NumPy actions and values out.

`NetworkActing` goes through the network's own `act` (any network, any device). `PackedActing` is a
faster path for the common small network, a feed-forward MLP actor-critic on one vector: an A3C
worker acts on a handful of envs at a time, where each of torch's ~20 small operations per step
(normalise, two torsos, the heads, sampling) costs several microseconds of fixed overhead, far more
than its arithmetic, and NumPy's overhead per operation is a fraction of torch's. The weights do not
change during a rollout, so at its start they are packed into one layer per depth (the policy's and
the value's first layers side by side, the later ones and the heads in block-diagonal matrices), the
observation statistics are held, and the rollout's random draws are made at once from torch's
generator (seeded and checkpointed as before). Each step is then three matrix products
(benchmarks/results/packed-acting.md). The samples follow the heads' own rules (a3c.core.heads), and
the outputs are the network's but for float rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from a3c.core.heads import CategoricalHead, GaussianHead, StateDependentNoiseHead
from a3c.core.networks import ActorCritic, State
from a3c.core.torsos import ACTIVATIONS, MLP, Trace

Observations = np.ndarray | dict[str, np.ndarray]
Step = tuple[np.ndarray, np.ndarray, State]  # actions, values, the network's next state


def _tanh(x: np.ndarray) -> None:
    np.tanh(x, out=x)


def _relu(x: np.ndarray) -> None:
    np.maximum(x, 0, out=x)


# The activations computed here in place as torch computes them; other ones act through torch.
NUMPY_ACTIVATIONS: dict[Callable, Callable[[np.ndarray], None]] = {
    ACTIVATIONS["tanh"]: _tanh, ACTIVATIONS["relu"]: _relu,
}
# OpenBLAS computes a product of up to this many multiply-adds on the calling thread and spreads
# larger ones over every core, which would crowd the other workers: a network whose packed layers
# are larger for the batch acts through torch, which keeps each worker to one thread (and whose
# overhead matters less there).
SINGLE_THREADED_PRODUCT = 1 << 18


class NetworkActing:
    """The network's own act and value, with the conversions from and to NumPy (and, for A2C on a
    GPU, the copies to and from its device)."""

    def __init__(self, net: ActorCritic):
        self.net = net
        self._to_net, self._to_numpy = _converters(net.device)

    def start(self, steps: int) -> None:
        """Nothing to prepare: the network reads its weights at each call."""

    def act(self, obs: Observations, state: State, trace: Trace | None) -> Step:
        actions, values, state = self.net.act(self._tensors(obs), state, trace=trace)
        return self._to_numpy(actions), self._to_numpy(values), state

    def value(self, obs: Observations, state: State) -> np.ndarray:
        return self._to_numpy(self.net.value(self._tensors(obs), state))

    def _tensors(self, obs: Observations) -> torch.Tensor | dict[str, torch.Tensor]:
        if isinstance(obs, dict):
            return {k: self._to_net(v) for k, v in obs.items()}
        return self._to_net(obs)


def _converters(device: torch.device) -> tuple[Callable[[np.ndarray], torch.Tensor],
                                               Callable[[torch.Tensor], np.ndarray]]:
    """NumPy to the device and back (A2C on a GPU); on the CPU no copy, as in the hot path."""
    if device.type == "cpu":
        return torch.from_numpy, torch.Tensor.numpy
    return (lambda a: torch.from_numpy(a).to(device)), (lambda t: t.cpu().numpy())


@dataclass(frozen=True)
class _Branch:
    """One side of the network after the layers both sides share: its hidden layers and their
    activations, then the linear layers it ends in (the policy head's, or the value's one)."""

    hidden: tuple[nn.Linear, ...]
    activations: tuple[Callable, ...]
    outputs: tuple[nn.Linear, ...]


def _mlp(mlp: MLP | None) -> _Branch:
    if mlp is None:
        return _Branch((), (), ())
    return _Branch(tuple(mlp.layers), (mlp.activation,) * len(mlp.layers), ())


class PackedActing:
    """The acting pass of a feed-forward MLP actor-critic on one vector, packed and in NumPy (see
    the module's docstring). `packed_acting` builds it where it applies."""

    def __init__(self, net: ActorCritic, batch: int, shared: _Branch, policy: _Branch, value: _Branch):
        self.net, self.batch = net, batch
        self.shared, self.policy, self.value_side = shared, policy, value
        self.activations = [NUMPY_ACTIVATIONS[a] for a in policy.activations] + [None]
        self.policy_width = policy.hidden[-1].out_features if policy.hidden else None
        self.action_width = sum(layer.out_features for layer in policy.outputs)
        self.layers: list[tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], None] | None]] = []
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.noise: np.ndarray | None = None
        self.t = 0

    def shapes(self) -> list[tuple[int, int]]:
        """(inputs, outputs) of each packed layer."""
        shapes = [(layer.in_features, layer.out_features) for layer in self.shared.hidden]
        pairs = [((p,), (v,)) for p, v in zip(self.policy.hidden, self.value_side.hidden, strict=True)]
        for i, (p, v) in enumerate([*pairs, (self.policy.outputs, self.value_side.outputs)]):
            width = p[0].in_features + (v[0].in_features if i > 0 else 0)
            shapes.append((width, sum(layer.out_features for layer in (*p, *v))))
        return shapes

    @torch.no_grad()
    def start(self, steps: int) -> None:
        """Pack the weights as they are now, hold the observation statistics, and draw the noise of
        `steps` steps."""
        layers = [(*(np.array(a) for a in _weights(layer)), NUMPY_ACTIVATIONS[act])  # copies
                  for layer, act in zip(self.shared.hidden, self.shared.activations, strict=True)]
        pairs = [((p,), (v,)) for p, v in zip(self.policy.hidden, self.value_side.hidden, strict=True)]
        for i, (p, v) in enumerate([*pairs, (self.policy.outputs, self.value_side.outputs)]):
            (p_weight, p_bias), (v_weight, v_bias) = _weights(*p), _weights(*v)
            # The first packed layer reads one input for both sides; the later ones, each its own part.
            weight = _block_diagonal(p_weight, v_weight) if i else np.concatenate([p_weight, v_weight], 1)
            layers.append((weight, np.concatenate([p_bias, v_bias]), self.activations[i]))
        self.layers = layers
        normalizer = self.net.normalizer
        if normalizer is not None:
            self.mean = normalizer.mean.numpy().copy()
            self.scale = torch.rsqrt(normalizer.var + 1e-8).numpy()  # as ObsNormalizer.forward
        self.noise = self._draw(steps)
        self.t = 0

    def act(self, obs: np.ndarray, state: State, trace: Trace | None) -> Step:
        out, features = self._forward(obs)
        head, params = self.net.policy, out[:, :self.action_width]
        if isinstance(head, CategoricalHead):
            # Gumbel-max, as CategoricalHead.sample: the argmax of the logits minus log E, E ~ Exp(1).
            actions = np.argmax(params + self.noise[self.t], -1)
        elif isinstance(head, GaussianHead):
            mean, raw = np.split(params, 2, -1)
            variance = np.logaddexp(np.float32(0), raw) + np.float32(head.min_variance)  # softplus
            actions = mean + np.sqrt(variance) * self.noise[self.t]
        else:  # gSDE (StateDependentNoiseHead.sample): the features times this env's noise matrix
            if head.noise is None or head.noise.shape[0] != len(obs):
                head.resample(len(obs))
            actions = params + np.matmul(features[:, None, :], head.noise.numpy())[:, 0]
        self.t += 1
        return actions, out[:, -1], state

    def value(self, obs: np.ndarray, state: State) -> np.ndarray:
        return self._forward(obs)[0][:, -1]

    def _forward(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The last packed layer's output (the policy head's outputs, then V(s)), and the policy
        head's features."""
        x = obs
        if self.mean is not None:
            x = np.clip((obs - self.mean) * self.scale, -10.0, 10.0)  # as ObsNormalizer.forward
        features = x
        for weight, bias, activation in self.layers:
            features = x
            x = x @ weight
            x += bias
            if activation is not None:
                activation(x)
        # The last layer read the heads' features: the policy's part of them the policy head's.
        return x, features if self.policy_width is None else features[:, :self.policy_width]

    def _draw(self, steps: int) -> np.ndarray | None:
        """The rollout's noise from torch's generator: -log E per logit (Categorical), a standard
        normal per action dimension (Gaussian); gSDE draws its noise matrices itself."""
        head = self.net.policy
        if isinstance(head, CategoricalHead):
            return torch.empty(steps, self.batch, self.action_width).exponential_().log_().neg_().numpy()
        if isinstance(head, GaussianHead):
            return torch.randn(steps, self.batch, self.action_width // 2).numpy()
        return None


def packed_acting(net: ActorCritic, batch: int) -> PackedActing | None:
    """The packed NumPy acting pass for `batch` envs, or None where the network is not one it
    computes: a feed-forward MLP on one vector, on the CPU, with a Categorical, Gaussian or gSDE
    head, tanh or relu activations, a policy side as deep as the value side with the same
    activations, and layers small enough for one thread (SINGLE_THREADED_PRODUCT)."""
    if (net.device.type != "cpu" or net.recurrent or not isinstance(net.torso, MLP)
            or not isinstance(net.policy, CategoricalHead | GaussianHead | StateDependentNoiseHead)):
        return None
    torso, policy_hidden, value_hidden = _mlp(net.torso), _mlp(net.policy_hidden), _mlp(net.value_hidden)
    if net.value_torso is None:  # one torso for both sides: the layers they share
        shared, policy_side, value_side = torso, policy_hidden, value_hidden
    else:
        value_torso = _mlp(net.value_torso)
        shared = _Branch((), (), ())
        policy_side = _Branch(torso.hidden + policy_hidden.hidden,
                              torso.activations + policy_hidden.activations, ())
        value_side = _Branch(value_torso.hidden + value_hidden.hidden,
                             value_torso.activations + value_hidden.activations, ())
    policy = _Branch(policy_side.hidden, policy_side.activations, net.policy.linears)
    value = _Branch(value_side.hidden, value_side.activations, (net.value_head,))
    if (len(policy.hidden) != len(value.hidden) or policy.activations != value.activations
            or not all(a in NUMPY_ACTIVATIONS for a in shared.activations + policy.activations)):
        return None
    packed = PackedActing(net, batch, shared, policy, value)
    if max(batch * inputs * outputs for inputs, outputs in packed.shapes()) > SINGLE_THREADED_PRODUCT:
        return None
    return packed


def acting_for(net: ActorCritic, batch: int) -> PackedActing | NetworkActing:
    """How a rollout collector acts with this network on `batch` envs."""
    return packed_acting(net, batch) or NetworkActing(net)


def _weights(*layers: nn.Linear) -> tuple[np.ndarray, np.ndarray]:
    """Linear layers reading the same features as one: the weights as the right-hand side of
    x @ w, [in, sum of outs], and the biases side by side (NumPy views where there is one layer)."""
    weights = [layer.weight.detach().numpy() for layer in layers]
    biases = [layer.bias.detach().numpy() for layer in layers]
    if len(layers) == 1:
        return weights[0].T, biases[0]
    return np.concatenate(weights).T, np.concatenate(biases)


def _block_diagonal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros((a.shape[0] + b.shape[0], a.shape[1] + b.shape[1]), dtype=a.dtype)
    out[:a.shape[0], :a.shape[1]] = a
    out[a.shape[0]:, a.shape[1]:] = b
    return out
