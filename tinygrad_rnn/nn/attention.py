"""Attention composed from primitives (matmul, softmax, masked_fill, dropout, Linear), as torch:
F.scaled_dot_product_attention and nn.MultiheadAttention with torch's parameters, masks and paths.

Masks come in torch's two conventions. scaled_dot_product_attention takes a bool mask whose True
entries take part, or a float mask that is added to the scores. MultiheadAttention takes bool masks
whose True entries are left out (turned into -inf, as torch's _canonical_mask does), or float masks.
"""
import math
import warnings

import numpy as np

from .. import factory
from ..tensor import cat
from . import functional as F
from . import init
from .checks import InputError, check_flag, check_tensor
from .linear import Linear
from .module import Module

NEG_INF = float("-inf")


class AttentionInputError(InputError, AssertionError):
    """Bad attention input that torch reports with an AssertionError; also a ValueError and a RuntimeError,
    as every InputError here, so code written against either catches it."""


# ----------------------------------------------------------------------------- scaled dot-product attention

def _check_query_key_value(query, key, value):
    for name, x in (("query", query), ("key", key), ("value", value)):
        check_tensor("scaled_dot_product_attention", name, x)
    if not query.dtype == key.dtype == value.dtype:
        raise InputError(f"Expected query, key, and value to have the same dtype, but got query.dtype: "
                         f"{query.dtype} key.dtype: {key.dtype} and value.dtype: {value.dtype} instead.")
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise InputError(f"Expected query, key, and value to all be at least 2 dimensional, but got query.dim: "
                         f"{query.ndim} key.dim: {key.ndim} and value.dim: {value.ndim} instead.")
    if key.shape[-1] != query.shape[-1]:
        raise InputError(f"scaled_dot_product_attention: key's last dim ({key.shape[-1]}) must equal query's "
                         f"({query.shape[-1]}); got query {tuple(query.shape)}, key {tuple(key.shape)}")
    if key.shape[-2] != value.shape[-2]:
        raise InputError(f"scaled_dot_product_attention: key and value must hold the same number of positions "
                         f"(dim -2); got key {tuple(key.shape)}, value {tuple(value.shape)}")


def _repeat_heads(query, key, value):
    """enable_gqa: each key/value head serves query.size(-3) / key.size(-3) query heads, repeated in turn."""
    if min(query.ndim, key.ndim, value.ndim) < 3:
        raise InputError("scaled_dot_product_attention: enable_gqa=True needs query, key and value with a heads "
                         "dim (-3)")
    heads = query.shape[-3]
    if heads % key.shape[-3] or heads % value.shape[-3]:
        raise InputError(f"scaled_dot_product_attention: number of heads in key ({key.shape[-3]}) and value "
                         f"({value.shape[-3]}) must divide the number of heads in query ({heads})")
    return (key.repeat_interleave(heads // key.shape[-3], dim=-3),
            value.repeat_interleave(heads // value.shape[-3], dim=-3))


def _masked_scores(scores, attn_mask):
    """Scores with the mask applied: a bool mask's False entries set to -inf, a float mask added."""
    check_tensor("scaled_dot_product_attention", "attn_mask", attn_mask)
    if attn_mask.dtype != np.bool_ and attn_mask.dtype != scores.dtype:
        raise InputError(f"scaled_dot_product_attention: attn_mask must be bool or have query's dtype "
                         f"({scores.dtype}); got {attn_mask.dtype}")
    if not F._broadcasts_to(attn_mask.shape, scores.shape):
        raise InputError(f"scaled_dot_product_attention: attn_mask of shape {tuple(attn_mask.shape)} does not "
                         f"broadcast to the attention scores' shape (..., L, S) {tuple(scores.shape)}")
    if attn_mask.dtype == np.bool_:
        return scores.masked_fill(~attn_mask, NEG_INF)
    return scores + attn_mask


def _safe_softmax(scores):
    """softmax over the last dim, where a row with no entry taking part (all -inf) gives zeros and passes
    no gradient, as torch's _safe_softmax (a plain softmax would give NaN)."""
    dead = (scores.detach() == NEG_INF).all(dim=-1, keepdim=True)
    return F.softmax(scores.masked_fill(dead, 0.0), dim=-1).masked_fill(dead, 0.0)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """softmax(query @ key^T * scale + mask) @ value over any leading batch dims: query (..., L, E), key
    (..., S, E), value (..., S, Ev) -> (..., L, Ev). scale defaults to 1 / sqrt(E); is_causal lets
    query i see keys 0..i; dropout_p drops attention weights (always, as torch: pass 0 in eval)."""
    _check_query_key_value(query, key, value)
    if check_flag("enable_gqa", enable_gqa):
        key, value = _repeat_heads(query, key, value)
    if is_causal:
        if attn_mask is not None:
            raise InputError("_scaled_dot_product_attention: Explicit attn_mask should not be set when "
                             "is_causal=True")
        causal = np.tril(np.ones((query.shape[-2], key.shape[-2]), dtype=bool))
        attn_mask = factory.tensor(causal, device=query.device)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * scale
    if attn_mask is None:
        weights = F.softmax(scores, dim=-1)
    else:
        weights = _safe_softmax(_masked_scores(scores, attn_mask))
    if dropout_p > 0.0:
        weights = F.dropout(weights, dropout_p)
    return weights @ value


# ----------------------------------------------------------------------------- multi-head attention

def canonical_mask(mask, mask_name, other_type, other_name, target_type, check_other=True):
    """A float mask to add to the scores: a bool mask's True entries become -inf (torch's _canonical_mask)."""
    if mask is None:
        return None
    check_tensor("MultiheadAttention", mask_name, mask)
    if mask.dtype != np.bool_ and mask.dtype.kind != "f":
        raise AttentionInputError(f"only bool and floating types of {mask_name} are supported")
    if check_other and other_type is not None and mask.dtype != other_type:
        warnings.warn(f"Support for mismatched {mask_name} and {other_name} is deprecated. Use same type for "
                      f"both instead.", stacklevel=4)
    if mask.dtype.kind == "f":
        return mask
    return factory.zeros(*mask.shape, dtype=target_type, device=mask.device).masked_fill(mask, NEG_INF)


def dtype_or_none(mask):
    return None if mask is None else mask.dtype


def _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads):
    """True for batched (3-D) input, False for unbatched (2-D), with torch's checks and messages."""
    if query.ndim not in (2, 3):
        raise AttentionInputError(f"query should be unbatched 2D or batched 3D tensor but received {query.ndim}-D "
                                  f"query tensor")
    batched = query.ndim == 3
    kind = "batched (3-D)" if batched else "unbatched (2-D)"
    if key.ndim != query.ndim or value.ndim != query.ndim:
        raise AttentionInputError(f"For {kind} `query`, expected `key` and `value` to be {query.ndim}-D but found "
                                  f"{key.ndim}-D and {value.ndim}-D tensors respectively")
    if key_padding_mask is not None and key_padding_mask.ndim != query.ndim - 1:
        raise AttentionInputError(f"For {kind} `query`, expected `key_padding_mask` to be `None` or "
                                  f"{query.ndim - 1}-D but found {key_padding_mask.ndim}-D tensor instead")
    if attn_mask is not None and attn_mask.ndim not in (2, 3):
        raise AttentionInputError(f"For {kind} `query`, expected `attn_mask` to be `None`, 2-D or 3-D but found "
                                  f"{attn_mask.ndim}-D tensor instead")
    if not batched and attn_mask is not None and attn_mask.ndim == 3:
        expected = (num_heads, query.shape[0], key.shape[0])
        if tuple(attn_mask.shape) != expected:
            raise AttentionInputError(f"Expected `attn_mask` shape to be {expected} but got "
                                      f"{tuple(attn_mask.shape)}")
    return batched


def _three_dim_attn_mask(attn_mask, tgt_len, src_len, heads_in_batch):
    """attn_mask as (1 or N * num_heads, L, S), checked against the sizes torch expects."""
    expected = (tgt_len, src_len) if attn_mask.ndim == 2 else (heads_in_batch, tgt_len, src_len)
    if tuple(attn_mask.shape) != expected:
        raise InputError(f"The shape of the {attn_mask.ndim}D attn_mask is {tuple(attn_mask.shape)}, but should be "
                         f"{expected}.")
    return attn_mask.unsqueeze(0) if attn_mask.ndim == 2 else attn_mask


def _check_key_padding_mask(key_padding_mask, src_len, bsz):
    for dim, expected in enumerate((bsz, src_len)):
        if key_padding_mask.shape[dim] != expected:
            raise AttentionInputError(f"Expected key_padded_mask.shape[{dim}] to be {expected}, but got "
                                      f"{key_padding_mask.shape[dim]}")


def _in_projection(query, key, value, weights, biases):
    """q, k, v: each input through its own (weight, bias); the packed weight arrives cut into three."""
    return tuple(F.linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases))


def _pad_last(mask):
    """One more key position (a bias_k or zero-attention key) that every query may attend."""
    return None if mask is None else F.pad(mask, (0, 1))


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias,
                                 bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias,
                                 training=True, key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None, k_proj_weight=None,
                                 v_proj_weight=None, average_attn_weights=True, is_causal=False):
    """torch.nn.functional.multi_head_attention_forward on (L, N, E) or unbatched (L, E) input, step for step:
    weights through softmax when need_weights, else through scaled_dot_product_attention."""
    batched = _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    key_padding_mask = canonical_mask(key_padding_mask, "key_padding_mask", dtype_or_none(attn_mask), "attn_mask",
                                      query.dtype)
    if is_causal and attn_mask is None:
        raise InputError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                         "method `generate_square_subsequent_mask` to create this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # scaled_dot_product_attention applies the causal mask itself
    else:
        attn_mask = canonical_mask(attn_mask, "attn_mask", None, "", query.dtype, check_other=False)
        if key_padding_mask is not None:
            is_causal = False  # the merged mask is no longer causal
    if embed_dim != embed_dim_to_check:
        raise AttentionInputError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AttentionInputError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight and key.shape[:2] != value.shape[:2]:
        raise AttentionInputError(f"key's sequence and batch dims {tuple(key.shape[:2])} do not match value's "
                                  f"{tuple(value.shape[:2])}")
    if not use_separate_proj_weight and key.shape != value.shape:
        raise AttentionInputError(f"key shape {tuple(key.shape)} does not match value shape {tuple(value.shape)}")
    weights = (q_proj_weight, k_proj_weight, v_proj_weight) if use_separate_proj_weight else in_proj_weight.chunk(3)
    biases = (None,) * 3 if in_proj_bias is None else in_proj_bias.chunk(3)
    q, k, v = _in_projection(query, key, value, weights, biases)

    if attn_mask is not None:
        attn_mask = _three_dim_attn_mask(attn_mask, tgt_len, src_len, bsz * num_heads)
    if bias_k is not None and bias_v is not None:
        k = cat([k, bias_k.repeat(1, bsz, 1)])
        v = cat([v, bias_v.repeat(1, bsz, 1)])
        attn_mask, key_padding_mask = _pad_last(attn_mask), _pad_last(key_padding_mask)

    # heads into the batch: (N * num_heads, length, head_dim)
    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)
    k = k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    v = v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    if add_zero_attn:
        zeros = factory.zeros(bsz * num_heads, 1, head_dim, dtype=k.dtype, device=k.device)
        k, v = cat([k, zeros], dim=1), cat([v, zeros], dim=1)
        attn_mask, key_padding_mask = _pad_last(attn_mask), _pad_last(key_padding_mask)
    src_len = k.shape[1]

    if key_padding_mask is not None:
        _check_key_padding_mask(key_padding_mask, src_len, bsz)
        key_padding_mask = (key_padding_mask.reshape(bsz, 1, 1, src_len).expand(-1, num_heads, -1, -1)
                            .reshape(bsz * num_heads, 1, src_len))
        attn_mask = key_padding_mask if attn_mask is None else attn_mask + key_padding_mask
    if not training:
        dropout_p = 0.0

    if need_weights:
        scores = (q * math.sqrt(1.0 / float(head_dim))) @ k.transpose(-2, -1)
        if attn_mask is not None:
            scores = scores + attn_mask
        weights = F.softmax(scores, dim=-1)
        if dropout_p > 0.0:
            weights = F.dropout(weights, dropout_p)
        output = (weights @ v).transpose(0, 1).reshape(tgt_len * bsz, embed_dim)
        output = F.linear(output, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
        weights = weights.reshape(bsz, num_heads, tgt_len, src_len)
        if average_attn_weights:
            weights = weights.mean(dim=1)
        return (output, weights) if batched else (output.squeeze(1), weights.squeeze(0))

    if attn_mask is not None:
        attn_mask = (attn_mask.unsqueeze(0) if attn_mask.shape[0] == 1
                     else attn_mask.reshape(bsz, num_heads, -1, src_len))
    q = q.reshape(bsz, num_heads, tgt_len, head_dim)
    k = k.reshape(bsz, num_heads, src_len, head_dim)
    v = v.reshape(bsz, num_heads, src_len, head_dim)
    output = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
    output = output.permute(2, 0, 1, 3).reshape(bsz * tgt_len, embed_dim)
    output = F.linear(output, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
    return (output if batched else output.squeeze(1)), None


class NonDynamicallyQuantizableLinear(Linear):
    """MultiheadAttention's out_proj: a Linear under torch's name for it, so reprs read the same."""


class MultiheadAttention(Module):
    """Attention over num_heads subspaces of embed_dim (Vaswani et al. 2017), torch's layer: packed
    in_proj_weight (3E, E), or q/k/v_proj_weight when kdim or vdim differ from embed_dim; in_proj_bias (3E,);
    out_proj; bias_k / bias_v (1, 1, E) with add_bias_kv. forward returns (output, weights or None)."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} and "
                             f"num_heads={num_heads} instead")
        super().__init__()
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads, self.dropout, self.batch_first = num_heads, dropout, batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AttentionInputError("embed_dim must be divisible by num_heads")
        # registered in torch's order (state_dict keys follow it); absent weights are registered as None
        separate = (("q_proj_weight", embed_dim), ("k_proj_weight", self.kdim), ("v_proj_weight", self.vdim))
        if self._qkv_same_embed_dim:
            self.in_proj_weight = init.parameter(3 * embed_dim, embed_dim, dtype=dtype, device=device)
        for name, in_features in separate:
            self.register_parameter(name, None if self._qkv_same_embed_dim else
                                    init.parameter(embed_dim, in_features, dtype=dtype, device=device))
        if not self._qkv_same_embed_dim:
            self.register_parameter("in_proj_weight", None)
        self.register_parameter("in_proj_bias", init.parameter(3 * embed_dim, dtype=dtype, device=device)
                                if bias else None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        if add_bias_kv:
            self.bias_k = init.parameter(1, 1, embed_dim, dtype=dtype, device=device)
            self.bias_v = init.parameter(1, 1, embed_dim, dtype=dtype, device=device)
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self):
        """torch's start: xavier_uniform_ projections, zero biases, xavier_normal_ bias_k and bias_v."""
        projections = ((self.in_proj_weight,) if self._qkv_same_embed_dim else
                       (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight))
        for weight in projections:
            init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        for extra in (self.bias_k, self.bias_v):
            if extra is not None:
                init.xavier_normal_(extra)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        for name, x in (("query", query), ("key", key), ("value", value)):
            check_tensor("MultiheadAttention", name, x)
        batched = query.ndim == 3
        key_padding_mask = canonical_mask(key_padding_mask, "key_padding_mask", dtype_or_none(attn_mask),
                                          "attn_mask", query.dtype)
        attn_mask = canonical_mask(attn_mask, "attn_mask", None, "", query.dtype, check_other=False)
        if self.batch_first and batched:
            query, key, value = (x.transpose(1, 0) for x in (query, key, value))
        output, weights = multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight, self.in_proj_bias,
            self.bias_k, self.bias_v, self.add_zero_attn, self.dropout, self.out_proj.weight, self.out_proj.bias,
            training=self.training, key_padding_mask=key_padding_mask, need_weights=need_weights,
            attn_mask=attn_mask, use_separate_proj_weight=not self._qkv_same_embed_dim,
            q_proj_weight=self.q_proj_weight, k_proj_weight=self.k_proj_weight, v_proj_weight=self.v_proj_weight,
            average_attn_weights=average_attn_weights, is_causal=is_causal)
        return (output.transpose(1, 0) if self.batch_first and batched else output), weights
