"""The MSD-net layer stack as one autograd function over a shared feature buffer.

Layout
------
All feature maps live in one buffer ``B`` of shape ``(N, C0 + depth * width, *spatial)``:
the input in channels ``[0, C0)``, layer ``i`` in ``[C0 + i * width, C0 + (i + 1) * width)``,
the order :func:`torch.cat` would give.  Layer ``i`` reads the contiguous prefix
``B[n, :c_i]`` (``c_i = C0 + i * width``) and writes its own slice; nothing else is kept
for the backward pass, so memory grows linearly with depth (a ``torch.cat`` per layer keeps
``sum_i c_i`` channels, quadratic in depth).

Convolution as one GEMM plus shifted adds
-----------------------------------------
A dilated 3^n convolution from ``c`` channels to ``width`` channels is computed as

1. ``Y = W @ X``: one matrix product of the ``(taps * width, c)`` weights with the
   ``(c, voxels)`` input, giving every tap's channel mix at once;
2. ``z = sum_t shift_t(Y_t)``: the taps are added with their offsets
   ``(k - 1) * dilation`` per axis, zero outside (``padding = dilation``).

The product has ``taps * width`` (27 in 3D) output rows, a shape BLAS and cuBLAS run near
peak; a convolution with one output channel runs an order of magnitude slower on CPU
(oneDNN pads the channels to 16).  The backward pass is the same two steps transposed:
the shifted copies ``T`` of the layer's gradient give ``dX += W^T @ T`` and
``dW = T @ X^T``.  ReLU masks come from the stored outputs; a normalised layer is
recomputed (one more product) and differentiated through the norm locally.

Under autocast the buffer and the products use the autocast dtype (bf16/fp16, half the
memory); the tap sums, biases and normalisation run in float32, and parameter gradients
are returned in the parameters' dtype.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = ["msd_stack"]


def _shift_slices(offset: int, size: int):
    """(destination, source) slices of one axis for ``dst[p] += src[p + offset]``, None if empty."""
    if abs(offset) >= size:
        return None
    return slice(max(0, -offset), size - max(0, offset)), slice(max(0, offset), size - max(0, -offset))


def _taps(spatial: tuple[int, ...], dilation: int) -> tuple[list[int], list[tuple]]:
    """Kernel taps (flat indices in weight order) that reach inside the volume, and their slices.

    Each entry of the second list is ``(destination, source)``, tuples of slices that start
    with ``slice(None)`` for the channel axis.
    """
    per_axis = [[_shift_slices((k - 1) * dilation, n) for k in range(3)] for n in spatial]
    indices, slices = [], []
    for index, ks in enumerate(itertools.product(range(3), repeat=len(spatial))):
        pairs = [per_axis[axis][k] for axis, k in enumerate(ks)]
        if any(pair is None for pair in pairs):
            continue  # a dilation at least the size: this tap only ever sees the zero padding
        indices.append(index)
        everything = (slice(None),)
        slices.append((everything + tuple(p[0] for p in pairs), everything + tuple(p[1] for p in pairs)))
    return indices, slices


def _accumulate_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


@dataclass
class StackSpec:
    """What the function needs besides tensors: one entry per layer."""

    in_channels: int
    width: int
    dilations: list[int]
    norms: list | None  # one torch.nn norm module per layer, or None for none at all
    compute_dtype: torch.dtype


class _Workspace:
    """Geometry of one call, and the tap products of one sample (reused by every layer)."""

    def __init__(self, spec: StackSpec, x: torch.Tensor):
        self.spatial = tuple(x.shape[2:])
        self.voxels = 1
        for n in self.spatial:
            self.voxels *= n
        self.ntaps = 3 ** len(self.spatial)
        self.taps = {d: _taps(self.spatial, d) for d in set(spec.dilations)}
        self.size = max(len(self.taps[d][0]) for d in self.taps) * spec.width * self.voxels
        self.dtype, self.device = spec.compute_dtype, x.device
        self.rows = None

    def tap_rows(self, count: int) -> torch.Tensor:
        if self.rows is None:  # allocated on first use, freed between forward and backward
            self.rows = torch.empty(self.size, dtype=self.dtype, device=self.device)
        return self.rows[: count * self.voxels].view(count, self.voxels)


def _tap_matrix(weight: torch.Tensor, taps: list[int], dtype: torch.dtype) -> torch.Tensor:
    """``(len(taps) * width, c)`` rows of a ``(width, c, 3, ...)`` weight, tap-major."""
    width, channels = weight.shape[:2]
    by_tap = weight.detach().to(dtype).reshape(width, channels, -1).permute(2, 0, 1)
    return by_tap[taps].reshape(len(taps) * width, channels)


def _preactivation(buffer, layer, matrix, work, spec, out):
    """Layer ``layer``'s convolution (no bias) into ``out``, shape (N, width, *spatial)."""
    width, channels = spec.width, spec.in_channels + layer * spec.width
    taps, slices = work.taps[spec.dilations[layer]]
    centre = taps.index(work.ntaps // 2)
    for n in range(buffer.shape[0]):
        rows = work.tap_rows(len(taps) * width)
        torch.mm(matrix, buffer[n, :channels].reshape(channels, work.voxels), out=rows)
        by_tap = rows.view(len(taps), width, *work.spatial)
        target = out[n]
        target.copy_(by_tap[centre])
        for k, (dst, src) in enumerate(slices):
            if k != centre:
                target[dst] += by_tap[k][src]
    return out


def _normalise(norm, z, weight, bias, batch_stats):
    """The norm of ``z`` through the functional API (no running-statistics update)."""
    if isinstance(norm, torch.nn.modules.batchnorm._BatchNorm):
        if batch_stats:
            return F.batch_norm(z, None, None, weight, bias, True, 0.0, norm.eps)
        return F.batch_norm(z, norm.running_mean, norm.running_var, weight, bias, False, 0.0, norm.eps)
    return F.instance_norm(z, None, None, weight, bias, True, 0.0, norm.eps)


class _MSDStack(torch.autograd.Function):
    """Inputs: spec, x, final weight, final bias, then per layer weight and bias (or norm weight, norm bias)."""

    @staticmethod
    def forward(ctx, spec: StackSpec, x, final_weight, final_bias, *layer_params):
        dtype = spec.compute_dtype
        acc_dtype = _accumulate_dtype(dtype)
        depth, width = len(spec.dilations), spec.width
        batch = x.shape[0]
        work = _Workspace(spec, x)
        buffer = torch.empty(batch, spec.in_channels + depth * width, *work.spatial, dtype=dtype, device=x.device)
        buffer[:, : spec.in_channels] = x
        z = torch.empty(batch, width, *work.spatial, dtype=acc_dtype, device=x.device)
        matrices, batch_stats = [], []
        for layer in range(depth):
            weight, second, _ = _layer_params(spec, layer_params, layer)
            matrix = _tap_matrix(weight, work.taps[spec.dilations[layer]][0], dtype)
            matrices.append(matrix)
            _preactivation(buffer, layer, matrix, work, spec, z)
            if spec.norms is None:
                a = z.add_(second.to(acc_dtype).view(1, width, *([1] * len(work.spatial))))
            else:  # the module itself: it updates running statistics as PyTorch does
                norm = spec.norms[layer]
                batch_stats.append(norm.training or norm.running_mean is None)
                a = norm(z)
            start = spec.in_channels + layer * width
            buffer[:, start : start + width] = a.clamp_(min=0)
        channels = buffer.shape[1]
        final = final_weight.detach().to(dtype).reshape(-1, channels)
        out = torch.empty(batch, final.shape[0], *work.spatial, dtype=dtype, device=x.device)
        bias = final_bias.detach().to(dtype)[:, None]
        for n in range(batch):
            torch.addmm(bias, final, buffer[n].reshape(channels, -1), out=out[n].view(final.shape[0], -1))
        work.rows = None
        ctx.spec, ctx.work, ctx.matrices, ctx.batch_stats = spec, work, matrices, batch_stats
        ctx.x_dtype = x.dtype
        ctx.save_for_backward(buffer, final_weight, final_bias, *layer_params)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        with torch.autocast(grad_out.device.type, enabled=False):
            return _MSDStack._backward(ctx, grad_out)

    @staticmethod
    def _backward(ctx, grad_out):
        spec, work, matrices = ctx.spec, ctx.work, ctx.matrices
        buffer, final_weight, final_bias, *layer_params = ctx.saved_tensors
        dtype, acc_dtype = spec.compute_dtype, _accumulate_dtype(spec.compute_dtype)
        depth, width, c0 = len(spec.dilations), spec.width, spec.in_channels
        batch, channels = buffer.shape[:2]
        ndim = len(work.spatial)
        grad_out = grad_out.to(dtype)
        final = final_weight.detach().to(dtype).reshape(-1, channels)
        outs = final.shape[0]

        # the 1x1 output layer
        grad = torch.empty_like(buffer)
        grad_final = torch.zeros(outs, channels, dtype=final_weight.dtype, device=buffer.device)
        for n in range(batch):
            g = grad_out[n].reshape(outs, -1)
            torch.mm(final.t(), g, out=grad[n].view(channels, -1))
            grad_final += (g @ buffer[n].reshape(channels, -1).t()).to(grad_final.dtype)
        grads = [None] * len(layer_params)
        sum_dims = (0, *range(2, 2 + ndim))
        grad_final_bias = grad_out.sum(sum_dims, dtype=acc_dtype).to(final_bias.dtype)

        z = torch.empty(batch, width, *work.spatial, dtype=acc_dtype, device=buffer.device)
        lowest = 0 if ctx.needs_input_grad[1] else c0  # skip dX of the input when nobody wants it
        for layer in reversed(range(depth)):
            weight, second, third = _layer_params(spec, layer_params, layer)
            start = c0 + layer * width
            grad_a = grad[:, start : start + width]
            if spec.norms is None:
                grad_z = grad_a * (buffer[:, start : start + width] > 0)
                grads[2 * layer + 1] = grad_z.sum(sum_dims, dtype=acc_dtype).to(second.dtype)
            else:  # recompute the pre-norm activation, differentiate norm + ReLU locally
                _preactivation(buffer, layer, matrices[layer], work, spec, z)
                leaves = [z.detach().requires_grad_(), second.detach().requires_grad_(),
                          third.detach().requires_grad_()]
                with torch.enable_grad():
                    normed = _normalise(spec.norms[layer], *leaves, ctx.batch_stats[layer])
                    a = torch.relu(normed)
                grad_z, g_gamma, g_beta = torch.autograd.grad(a, leaves, grad_a.to(a.dtype))
                grads[3 * layer + 1], grads[3 * layer + 2] = g_gamma, g_beta
            grad_z = grad_z.to(dtype)

            taps, slices = work.taps[spec.dilations[layer]]
            matrix = matrices[layer]
            c = c0 + layer * width
            grad_matrix = torch.zeros(matrix.shape, dtype=weight.dtype, device=buffer.device)
            for n in range(batch):
                rows = work.tap_rows(len(taps) * width)
                shifted = rows.view(len(taps), width, *work.spatial)
                rows.zero_()
                for k, (dst, src) in enumerate(slices):
                    shifted[k][src] = grad_z[n][dst]
                if c > lowest:
                    grad[n, lowest:c].view(c - lowest, -1).addmm_(matrix[:, lowest:].t(), rows)
                grad_matrix += (rows @ buffer[n, :c].reshape(c, -1).t()).to(grad_matrix.dtype)
            full = torch.zeros(work.ntaps, width, c, dtype=weight.dtype, device=buffer.device)
            full[taps] = grad_matrix.view(len(taps), width, c)
            step = 2 if spec.norms is None else 3
            grads[step * layer] = full.permute(1, 2, 0).reshape(weight.shape)

        work.rows = None
        grad_x = None
        if ctx.needs_input_grad[1]:  # a copy, so that the whole gradient buffer can be freed
            grad_x = grad[:, :c0].to(ctx.x_dtype, memory_format=torch.contiguous_format, copy=True)
        del grad
        return (None, grad_x, grad_final.view(final_weight.shape), grad_final_bias, *grads)


def _layer_params(spec: StackSpec, params, layer: int):
    """(conv weight, bias or norm weight, None or norm bias) of one layer from the flat list."""
    if spec.norms is None:
        return params[2 * layer], params[2 * layer + 1], None
    return params[3 * layer], params[3 * layer + 1], params[3 * layer + 2]


def msd_stack(spec: StackSpec, x, final_weight, final_bias, layer_params) -> torch.Tensor:
    """Run the whole MSD-net (layers and the 1x1 output layer) as one autograd node.

    ``layer_params`` is flat: per layer ``(weight, bias)`` without normalisation or
    ``(weight, norm weight, norm bias)`` with it (then the layer has no bias).
    ``spec.compute_dtype`` is the dtype of the buffer and of the matrix products
    (the caller picks the autocast dtype when autocast is on); autocast itself is
    switched off inside.
    """
    with torch.autocast(x.device.type, enabled=False):
        return _MSDStack.apply(spec, x, final_weight, final_bias, *layer_params)
