"""A feed-forward MLP actor-critic packed for small batches: its rollouts' acting and its update's
gradient, in NumPy.

An A3C worker acts on a handful of envs at a time and learns from a few dozen steps at a time. At
those sizes each of torch's small operations (normalise, two torsos, the heads, sampling; and with
autograd some thirty each way for the loss) costs several microseconds of fixed overhead, far more
than its arithmetic, where NumPy's costs a fraction of that. The weights do not change between a
rollout's start and its update, so they are packed once, at the rollout's start, into one layer per
depth: the policy's and the value's first layers side by side, the later ones and the heads in
block-diagonal matrices. Each acting step is then three matrix products; the update's forward pass
is the same over the whole rollout, and its backward pass the chain rule through them by hand, the
gradient of each packed block written to the parameter it came from. The rollout's random draws are
made at its start from torch's generator (seeded and checkpointed as before), and the samples
follow the heads' own rules (a3c.core.heads); the loss is a3c.core.losses.actor_critic_loss. Acting,
values and gradients are the network's but for float rounding (tests/unit/test_packed.py checks
them against torch's and autograd's), at a fraction of the CPU
(benchmarks/results/packed-acting.md, benchmarks/results/packed-learning.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from a3c.core.heads import CategoricalHead, GaussianHead, StateDependentNoiseHead
from a3c.core.networks import ActorCritic, State
from a3c.core.torsos import ACTIVATIONS, MLP, Trace

Step = tuple[np.ndarray, np.ndarray, State]  # actions, values, the network's next state
Statistics = tuple[np.ndarray, np.ndarray, float] | None  # obs_norm's mean, scale and clip; None: off
Losses = tuple[float, float, float, float]  # total, policy, value, entropy
_LOG_2PI = math.log(2 * math.pi)


def _tanh(x: np.ndarray) -> None:
    np.tanh(x, out=x)


def _tanh_slope(y: np.ndarray) -> np.ndarray:
    return 1.0 - y * y


def _relu(x: np.ndarray) -> None:
    np.maximum(x, 0, out=x)


def _relu_slope(y: np.ndarray) -> np.ndarray:
    return (y > 0).astype(y.dtype)


# The activations computed here in place as torch computes them, and their slopes from their
# outputs; networks with other activations go through torch.
NUMPY_ACTIVATIONS: dict[Callable, tuple[Callable[[np.ndarray], None], Callable[[np.ndarray], np.ndarray]]] = {
    ACTIVATIONS["tanh"]: (_tanh, _tanh_slope), ACTIVATIONS["relu"]: (_relu, _relu_slope),
}
# Past this many multiply-adds in one product (at the acting batch), torch's overhead per operation
# matters little next to the arithmetic, and A2C's torch keeps its threads: the network goes
# through torch.
LARGEST_PRODUCT = 1 << 18


@dataclass(frozen=True)
class _Branch:
    """One side of the network after the layers both sides share: its hidden layers and their
    activations, then the linear layers it ends in (the policy head's, or the value's one)."""

    hidden: tuple[nn.Linear, ...]
    activations: tuple[Callable, ...]
    outputs: tuple[nn.Linear, ...]


@dataclass(frozen=True)
class _Block:
    """Where a linear layer sits in a packed layer: its rows (inputs) and columns (outputs)."""

    layer: nn.Linear
    rows: slice
    columns: slice


def _mlp(mlp: MLP | None) -> _Branch:
    if mlp is None:
        return _Branch((), (), ())
    return _Branch(tuple(mlp.layers), (mlp.activation,) * len(mlp.layers), ())


class PackedMLP:
    """A feed-forward MLP actor-critic on one vector, packed and in NumPy (see the module's
    docstring). `packed_mlp` builds it where it applies."""

    def __init__(self, net: ActorCritic, batch: int, shared: _Branch, policy: _Branch, value: _Branch):
        self.net, self.batch = net, batch
        self.activations = [NUMPY_ACTIVATIONS[a] for a in (*shared.activations, *policy.activations)] + [None]
        self.blocks = [[_Block(layer, slice(None), slice(None))] for layer in shared.hidden]
        # (inputs, outputs) of each packed layer
        self.shapes = [(layer.in_features, layer.out_features) for layer in shared.hidden]
        pairs = [((p,), (v,)) for p, v in zip(policy.hidden, value.hidden, strict=True)]
        for i, (p_side, v_side) in enumerate([*pairs, (policy.outputs, value.outputs)]):
            # The first packed layer reads one input for both sides; the later ones, each its own part.
            p_in, v_in = p_side[0].in_features, v_side[0].in_features
            rows = (slice(0, p_in), slice(p_in, p_in + v_in)) if i else (slice(None), slice(None))
            blocks, column = [], 0
            for side, side_rows in ((p_side, rows[0]), (v_side, rows[1])):
                for layer in side:
                    blocks.append(_Block(layer, side_rows, slice(column, column + layer.out_features)))
                    column += layer.out_features
            self.blocks.append(blocks)
            self.shapes.append((p_in + v_in if i else p_in, column))
        # Each linear layer's weight and bias as slices of the flat gradient, in net.params order.
        offsets = {id(p): place for p, place in zip(net.params, net.param_slices, strict=True)}
        self.places = {id(b.layer): (offsets[id(b.layer.weight)], offsets[id(b.layer.bias)])
                       for blocks in self.blocks for b in blocks}
        head = net.policy
        self.log_std_place = offsets[id(head.log_std)] if isinstance(head, StateDependentNoiseHead) else None
        self.policy_width = policy.hidden[-1].out_features if policy.hidden else None
        self.action_width = sum(layer.out_features for layer in policy.outputs)
        self.layers: list[tuple[np.ndarray, np.ndarray]] = []
        self.statistics: Statistics = None  # held for the rollout's steps
        self.noise: np.ndarray | None = None
        self.t = 0

    @torch.no_grad()
    def start(self, steps: int) -> None:
        """Pack the weights as they are now, hold the observation statistics, and draw the noise of
        `steps` steps."""
        self.layers = []
        for blocks, (inputs, outputs) in zip(self.blocks, self.shapes, strict=True):
            weight = np.zeros((inputs, outputs), dtype=np.float32)
            bias = np.empty(outputs, dtype=np.float32)
            for b in blocks:
                weight[b.rows, b.columns] = b.layer.weight.detach().numpy().T
                bias[b.columns] = b.layer.bias.detach().numpy()
            self.layers.append((weight, bias))
        self.statistics = self._statistics()
        self.noise = self._draw(steps)
        self.t = 0

    def act(self, obs: np.ndarray, state: State, trace: Trace | None) -> Step:
        """Sampled actions and V(s) for a batch of observations, the rollout's step after step."""
        outputs = self._forward(_normalized(obs, self.statistics))
        out = outputs[-1]
        head, params = self.net.policy, out[:, :self.action_width]
        if isinstance(head, CategoricalHead):
            # Gumbel-max, as CategoricalHead.sample: the argmax of the logits minus log E, E ~ Exp(1).
            actions = np.argmax(params + self.noise[self.t], -1)
        elif isinstance(head, GaussianHead):
            mean, variance = _gaussian(params, head)
            actions = mean + np.sqrt(variance) * self.noise[self.t]
        else:  # gSDE (StateDependentNoiseHead.sample): the features times this env's noise matrix
            if head.noise is None or head.noise.shape[0] != len(obs):
                head.resample(len(obs))
            actions = params + np.matmul(self._features(outputs)[:, None, :], head.noise.numpy())[:, 0]
        self.t += 1
        return actions, out[:, -1], state

    def value(self, obs: np.ndarray, state: State) -> np.ndarray:
        return self._forward(_normalized(obs, self.statistics))[-1][:, -1]

    def gradients(self, obs: np.ndarray, actions: np.ndarray, returns: np.ndarray, advantages: np.ndarray,
                  value_coef: float, entropy_coef: float, grad: np.ndarray) -> Losses:
        """The A3C loss's gradient over a rollout's [T, N] steps, written into `grad` (the network's
        flat gradient buffer, a3c.core.gradients); returns (total, policy, value, entropy) as
        actor_critic_loss gives them. The observation statistics are read as they are now, as the
        network's own learning pass reads them."""
        with np.errstate(all="ignore"):  # a NaN or inf is reported by the caller, not warned of here
            x = obs.reshape(-1, obs.shape[-1])
            outputs = self._forward(_normalized(x, self._statistics()))
            out, m = outputs[-1], len(x)
            returns, advantages = returns.reshape(-1), advantages.reshape(-1)
            d_out = np.empty_like(out)
            values = out[:, -1]
            d_out[:, -1] = (2.0 * value_coef / m) * (values - returns)  # d/dV of c_v mean((R - V)^2)
            logp, entropy = self._policy_gradient(out[:, :self.action_width], self._features(outputs),
                                                  actions, advantages, entropy_coef, m, d_out[:, :-1], grad)
            self._backward(outputs, d_out, grad)
            policy = -float(np.mean(logp * advantages))
            value = float(np.mean((returns - values) ** 2))
            mean_entropy = float(np.mean(entropy))
        return policy - entropy_coef * mean_entropy + value_coef * value, policy, value, mean_entropy

    def _policy_gradient(self, params: np.ndarray, features: np.ndarray, actions: np.ndarray,
                         advantages: np.ndarray, entropy_coef: float, m: int, d_params: np.ndarray,
                         grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """log pi(a|s) and H(pi(.|s)) per row; d_params: d/d(the head's outputs) of
        -mean(log pi * A) - c_e mean(H); gSDE's log_std gradient written to its place in grad."""
        head = self.net.policy
        adv = advantages[:, None]
        if isinstance(head, CategoricalHead):
            shifted = params - params.max(1, keepdims=True)
            exp = np.exp(shifted)
            total = exp.sum(1, keepdims=True)
            logp_all, p = shifted - np.log(total), exp / total
            rows = np.arange(len(params)), actions.reshape(-1)
            entropy = -(p * logp_all).sum(1)
            # d(-log pi(a))/dl = p - onehot(a);  dH/dl = -p (log p + H)
            d = p * (adv + entropy_coef * (logp_all + entropy[:, None]))
            d[rows] -= advantages
            d_params[:] = d / m
            return logp_all[rows], entropy
        if isinstance(head, GaussianHead):
            mean, variance = _gaussian(params, head)
        else:  # gSDE: the variance from the detached features, as StateDependentNoiseHead.variance
            mean = params
            sigma2 = np.exp(2.0 * head.log_std.detach().numpy())
            variance = (features * features) @ sigma2 + np.float32(head.min_variance)
        diff = actions.reshape(len(params), -1) - mean
        log_variance = np.log(variance)
        logp = (-0.5 * (diff * diff / variance + log_variance + _LOG_2PI)).sum(1)
        entropy = (0.5 * (log_variance + _LOG_2PI + 1.0)).sum(1)
        width = mean.shape[1]
        d_params[:, :width] = -adv * diff / variance / m
        # d log pi / d var = ((a - mu)^2 / var - 1) / (2 var);  dH / d var = 1 / (2 var)
        d_variance = (-adv * (diff * diff / variance - 1.0) - entropy_coef) / (2.0 * variance * m)
        if isinstance(head, GaussianHead):
            raw = params[:, width:]
            d_params[:, width:] = d_variance / (1.0 + np.exp(-raw))  # softplus' = sigmoid
        else:  # d var_j / d log_std_ij = 2 features_i^2 sigma_ij^2; nothing reaches the features
            d_log_std = 2.0 * sigma2 * ((features * features).T @ d_variance)
            grad[self.log_std_place] = d_log_std.reshape(-1)
        return logp, entropy

    def _features(self, outputs: list[np.ndarray]) -> np.ndarray:
        """The policy head's features: the last packed layer's input, the policy's part of it."""
        return outputs[-2] if self.policy_width is None else outputs[-2][:, :self.policy_width]

    def _backward(self, outputs: list[np.ndarray], d_out: np.ndarray, grad: np.ndarray) -> None:
        """The chain rule back through the packed layers; each block's share of a layer's gradient
        written to its linear layer's place in `grad`."""
        d = d_out
        for k in reversed(range(len(self.layers))):
            if k < len(self.layers) - 1:
                d = d * self.activations[k][1](outputs[k + 1])
            d_weight, d_bias = outputs[k].T @ d, d.sum(0)
            for b in self.blocks[k]:
                weight, bias = self.places[id(b.layer)]
                grad[weight].reshape(b.layer.weight.shape)[:] = d_weight[b.rows, b.columns].T
                grad[bias] = d_bias[b.columns]
            if k:
                d = d @ self.layers[k][0].T

    def _forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Every packed layer's input, then the last one's output (the policy head's outputs, then
        V(s))."""
        outputs = [x]
        for (weight, bias), activation in zip(self.layers, self.activations, strict=True):
            x = x @ weight
            x += bias
            if activation is not None:
                activation[0](x)
            outputs.append(x)
        return outputs

    @torch.no_grad()
    def _statistics(self) -> Statistics:
        """obs_norm's statistics as they are now (a copy: a shared copy moves under other learners)."""
        normalizer = self.net.normalizer
        if normalizer is None:
            return None
        return normalizer.mean.numpy().copy(), normalizer.scale().numpy(), normalizer.clip

    def _draw(self, steps: int) -> np.ndarray | None:
        """The rollout's noise from torch's generator: -log E per logit (Categorical), a standard
        normal per action dimension (Gaussian); gSDE draws its noise matrices itself."""
        head = self.net.policy
        if isinstance(head, CategoricalHead):
            return torch.empty(steps, self.batch, self.action_width).exponential_().log_().neg_().numpy()
        if isinstance(head, GaussianHead):
            return torch.randn(steps, self.batch, self.action_width // 2).numpy()
        return None


def _normalized(x: np.ndarray, statistics: Statistics) -> np.ndarray:
    """x as ObsNormalizer.forward normalises it, with these statistics."""
    if statistics is None:
        return x
    mean, scale, clip = statistics
    return np.clip((x - mean) * scale, -clip, clip)


def _gaussian(params: np.ndarray, head: GaussianHead) -> tuple[np.ndarray, np.ndarray]:
    """The mean and variance from a Gaussian head's two outputs, as GaussianHead.forward makes them."""
    mean, raw = np.split(params, 2, -1)
    return mean, np.logaddexp(np.float32(0), raw) + np.float32(head.min_variance)  # softplus


def packed_mlp(net: ActorCritic, batch: int) -> PackedMLP | None:
    """The packed network for acting on `batch` envs and learning from their rollouts, or None where
    it does not apply: a feed-forward MLP on one vector, on the CPU, with a Categorical, Gaussian or
    gSDE head, tanh or relu activations, a policy side as deep as the value side with the same
    activations, and layers small enough (LARGEST_PRODUCT)."""
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
    packed = PackedMLP(net, batch, shared, policy, value)
    if max(batch * inputs * outputs for inputs, outputs in packed.shapes) > LARGEST_PRODUCT:
        return None
    return packed
