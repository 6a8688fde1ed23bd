"""scaled_dot_product_attention, MultiheadAttention and the Transformer layers against torch in float64
(dropout 0): outputs, attention weights, and the gradients of the inputs and of every parameter, over mask kinds and
layer options; torch's initial weights after the same seed (float32); state_dicts both ways; reprs; errors."""
import numpy as np
import pytest

import tinygrad_rnn as tr
from tests.conftest import to_np

# torch's notes on paths it would take elsewhere; the mask-type warning has its own test below
pytestmark = [pytest.mark.filterwarnings("ignore:enable_nested_tensor is True"),
              pytest.mark.filterwarnings("ignore:Support for mismatched")]

VALUE_RTOL, GRAD_RTOL = 1e-13, 1e-12
L, S, N, E, HEADS = 3, 4, 2, 8, 2  # target and source lengths, batch, embedding, heads


def _tensor(lib, array, device=None, requires_grad=False):
    """The array as a float64 (or bool) tensor of either library."""
    array = np.asarray(array)
    if lib is tr:
        return tr.tensor(array, dtype=tr.float64 if array.dtype.kind == "f" else None, device=device,
                         requires_grad=requires_grad)
    return lib.tensor(array, requires_grad=requires_grad)


def _assert_close(ours, theirs, what, rtol):
    theirs = theirs.detach().numpy()
    assert to_np(ours).shape == theirs.shape, f"{what}: shape {to_np(ours).shape} != {theirs.shape}"
    np.testing.assert_allclose(to_np(ours), theirs, rtol=rtol, atol=rtol * 0.1, err_msg=what)


def _float64_pair(torch, build, device):
    """(ours, theirs) from `build(lib)`: torch's float64 module, and ours with torch's weights loaded."""
    theirs = build(torch).double()
    ours = build(tr).double().to(device)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _check_parity(torch, rng, device, call, arrays, modules=(None, None)):
    """call(lib, module, tensors) on both sides, tensors made from `arrays` (float ones require grad):
    outputs compared, then gradients of a random weighting of the outputs for every float input and every
    parameter (skipped where torch's output holds NaN, a fully masked row)."""
    ours_in = {k: _tensor(tr, a, device, requires_grad=a.dtype.kind == "f") for k, a in arrays.items()}
    theirs_in = {k: _tensor(torch, a, requires_grad=a.dtype.kind == "f") for k, a in arrays.items()}
    outputs = [(a, b) for a, b in zip(call(tr, modules[0], ours_in), call(torch, modules[1], theirs_in))]
    for k, (mine, theirs) in enumerate(outputs):
        assert (mine is None) == (theirs is None), f"output {k}: {mine} vs {theirs}"
        if theirs is not None:
            _assert_close(mine, theirs, f"output {k}", VALUE_RTOL)
    outputs = [(a, b) for a, b in outputs if b is not None]
    if any(bool(torch.isnan(b).any()) for _, b in outputs):
        return
    weights = [rng.standard_normal(tuple(b.shape)) for _, b in outputs]
    sum(((a * _tensor(tr, w, device)).sum() for (a, _), w in zip(outputs, weights))).backward()
    sum((b * torch.tensor(w)).sum() for (_, b), w in zip(outputs, weights)).backward()
    for name in arrays:
        if theirs_in[name].grad is None:
            assert ours_in[name].grad is None, f"{name} has a gradient where torch's has none"
        else:
            _assert_close(ours_in[name].grad, theirs_in[name].grad, f"gradient of {name}", GRAD_RTOL)
    if modules[1] is not None:
        mine = dict(modules[0].named_parameters())
        assert list(mine) == [n for n, _ in modules[1].named_parameters()]
        for name, p in modules[1].named_parameters():
            _assert_close(mine[name].grad, p.grad, f"gradient of {name}", GRAD_RTOL)


# ----------------------------------------------------------------------------- scaled_dot_product_attention

def _rows_masked(shape, rows):
    mask = np.ones(shape, dtype=bool)
    mask[..., rows, :] = False
    return mask


def _qkv(query=(N, L, E), key=(N, S, E), value=(N, S, 6), **masks):
    """Shapes of query, key and value (arrays for masks), the default ones unless given."""
    return {"query": query, "key": key, "value": value, **masks}


SDPA_CASES = {
    "no mask": (_qkv(), {}),
    "leading batch dims": (_qkv((2, N, L, E), (2, N, S, E), (2, N, S, 6)), {}),
    "unbatched": (_qkv((L, E), (S, E), (S, 6)), {}),
    "broadcast key and value": (_qkv((2, N, L, E), (N, S, E), (1, N, S, 6)), {}),
    "bool mask": (_qkv(attn_mask=np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 1, 0]], bool)), {}),
    "float mask": (_qkv(attn_mask=(N, L, S)), {}),
    "causal": (_qkv(), {"is_causal": True}),
    "causal, more queries than keys": (_qkv(query=(N, 5, E)), {"is_causal": True}),
    "scale": (_qkv(), {"scale": 0.3}),
    "bool mask, a row fully masked": (_qkv(attn_mask=_rows_masked((N, L, S), 1)), {}),
    "float mask, a row all -inf": (_qkv(attn_mask=np.where(_rows_masked((L, S), 2), 0.5, -np.inf)), {}),
    "grouped query heads": (_qkv((1, 4, L, E), (1, 2, S, E), (1, 2, S, 6)), {"enable_gqa": True}),
}


def _arrays(rng, spec):
    """Random float64 arrays for the shapes in spec; arrays given as they are."""
    return {k: rng.standard_normal(v) if isinstance(v, tuple) else v for k, v in spec.items()}


@pytest.mark.parametrize("case", list(SDPA_CASES))
def test_scaled_dot_product_attention_matches_torch(torch, device, rng, case):
    spec, options = SDPA_CASES[case]

    def call(lib, _, t):
        return (lib.nn.functional.scaled_dot_product_attention(t["query"], t["key"], t["value"],
                                                               attn_mask=t.get("attn_mask"), **options),)
    _check_parity(torch, rng, device, call, _arrays(rng, spec))


def test_scaled_dot_product_attention_fully_masked_row_is_zero_without_gradient(device, rng):
    q, k, v = (tr.tensor(rng.standard_normal(s), dtype=tr.float64, device=device, requires_grad=True)
               for s in ((L, E), (S, E), (S, 6)))
    mask = tr.tensor(_rows_masked((L, S), 0), device=device)
    out = tr.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out.sum().backward()
    assert not to_np(out)[0].any() and not to_np(q.grad)[0].any()
    assert np.isfinite(to_np(k.grad)).all()


def test_scaled_dot_product_attention_dropout_drops_weights(device):
    q = k = tr.zeros(1, 2, 4, dtype=tr.float64, device=device)
    v = tr.ones(1, 2, 3, dtype=tr.float64, device=device)
    out = tr.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    assert not to_np(out).any()


# ----------------------------------------------------------------------------- MultiheadAttention

def _causal(size):
    return np.triu(np.full((size, size), -np.inf), 1)


def _padding(rows):
    """(N, S) key_padding_mask with True (left out) at the given (batch, position) pairs."""
    mask = np.zeros((N, S), dtype=bool)
    for b, s in rows:
        mask[b, s] = True
    return mask


MHA_CASES = {
    "plain": ({}, {}),
    "batch_first": ({"batch_first": True}, {}),
    "kdim and vdim": ({"kdim": 3, "vdim": 5}, {}),
    "bias_kv and zero attention": ({"add_bias_kv": True, "add_zero_attn": True},
                                   {"attn_mask": np.eye(L, S, dtype=bool), "key_padding_mask": _padding([(0, 1)])}),
    "no bias": ({"bias": False}, {}),
    "2-D bool attn_mask": ({}, {"attn_mask": np.eye(L, S, dtype=bool)}),
    "3-D float attn_mask": ({}, {"attn_mask": (N * HEADS, L, S)}),
    "bool key_padding_mask": ({}, {"key_padding_mask": _padding([(0, 3), (1, 0), (1, 2)])}),
    "float key_padding_mask": ({}, {"key_padding_mask": (N, S)}),
    "both masks, no weights": ({}, {"attn_mask": np.eye(L, S, dtype=bool), "key_padding_mask": _padding([(1, 1)]),
                                        "need_weights": False}),
    "weights per head": ({"batch_first": True}, {"attn_mask": (L, S), "average_attn_weights": False}),
    "causal hint, no weights": ({}, {"self_attention": True, "attn_mask": _causal(L), "is_causal": True,
                                         "need_weights": False}),
    "causal hint with weights": ({}, {"self_attention": True, "attn_mask": _causal(L), "is_causal": True}),
    "unbatched": ({}, {"unbatched": True, "attn_mask": (HEADS, L, S),
                       "key_padding_mask": np.array([0, 1, 0, 0], bool)}),
    "unbatched, no weights": ({"kdim": 3, "vdim": 5}, {"unbatched": True, "need_weights": False}),
    "fully padded sequence": ({}, {"key_padding_mask": _padding([(1, s) for s in range(S)])}),
    "fully padded sequence, no weights": ({}, {"key_padding_mask": _padding([(1, s) for s in range(S)]),
                                                   "need_weights": False}),
}


def _mha_inputs(rng, layer_options, forward_options):
    """query, key, value arrays in the layer's layout, and the forward's keyword arguments (mask shapes drawn)."""
    forward_options = dict(forward_options)
    unbatched, self_attention = forward_options.pop("unbatched", False), forward_options.pop("self_attention", False)
    sizes = {"query": E, "key": layer_options.get("kdim", E), "value": layer_options.get("vdim", E)}
    lengths = {"query": L, "key": L if self_attention else S, "value": L if self_attention else S}

    def shape(name):
        if unbatched:
            return lengths[name], sizes[name]
        if layer_options.get("batch_first"):
            return N, lengths[name], sizes[name]
        return lengths[name], N, sizes[name]
    arrays = {name: rng.standard_normal(shape(name)) for name in sizes}
    masks = {k: v for k, v in forward_options.items() if k in ("attn_mask", "key_padding_mask")}
    flags = {k: v for k, v in forward_options.items() if k not in masks}
    return {**arrays, **_arrays(rng, masks)}, flags


@pytest.mark.parametrize("case", list(MHA_CASES))
def test_multihead_attention_matches_torch(torch, device, rng, case):
    layer_options, forward_options = MHA_CASES[case]
    arrays, flags = _mha_inputs(rng, layer_options, forward_options)
    modules = _float64_pair(torch, lambda lib: lib.nn.MultiheadAttention(E, HEADS, **layer_options), device)

    def call(lib, layer, t):
        masks = {k: t[k] for k in ("attn_mask", "key_padding_mask") if k in t}
        return layer(t["query"], t["key"], t["value"], **masks, **flags)
    _check_parity(torch, rng, device, call, arrays, modules)


def test_multihead_attention_self_attention_with_one_tensor(torch, device, rng):
    """query is key is value: one tensor's gradient gathers all three uses."""
    modules = _float64_pair(torch, lambda lib: lib.nn.MultiheadAttention(E, HEADS, batch_first=True), device)
    _check_parity(torch, rng, device, lambda lib, layer, t: layer(t["x"], t["x"], t["x"]),
                  {"x": rng.standard_normal((N, L, E))}, modules)


# ----------------------------------------------------------------------------- Transformer layers

def _layer_options(lib, options):
    """Layer keyword arguments with dropout 0; "callable" activation means each library's tanh."""
    options = dict(dropout=0.0, **options)
    if options.get("activation") == "callable":
        options["activation"] = lib.tanh
    return options


def _sequence(rng, length, batch_first, d_model=E):
    return rng.standard_normal((N, length, d_model) if batch_first else (length, N, d_model))


ENCODER_CASES = {
    "post-norm relu": ({}, {}),
    "norm_first gelu": ({"norm_first": True, "activation": "gelu"}, {}),
    "batch_first, callable activation, no bias": ({"batch_first": True, "activation": "callable", "bias": False},
                                                  {}),
    "causal src_mask": ({}, {"src_mask": _causal(L), "is_causal": True}),
    "bool masks": ({"batch_first": True}, {"src_mask": np.eye(L, dtype=bool) == 0,
                                                "src_key_padding_mask": np.array([[0, 0, 1], [0, 1, 1]], bool)}),
    "float key padding": ({"norm_first": True}, {"src_key_padding_mask": (N, L)}),
}


@pytest.mark.parametrize("case", list(ENCODER_CASES))
def test_transformer_encoder_layer_matches_torch(torch, device, rng, case):
    options, masks = ENCODER_CASES[case]
    masks = dict(masks)
    is_causal = masks.pop("is_causal", False)
    modules = _float64_pair(torch, lambda lib: lib.nn.TransformerEncoderLayer(
        E, HEADS, dim_feedforward=16, **_layer_options(lib, options)), device)

    def call(lib, layer, t):
        return (layer(t["src"], **{k: t[k] for k in masks}, is_causal=is_causal),)
    arrays = {"src": _sequence(rng, L, options.get("batch_first", False)), **_arrays(rng, masks)}
    _check_parity(torch, rng, device, call, arrays, modules)


DECODER_CASES = {
    "post-norm relu": ({}, {}),
    "norm_first gelu, batch_first": ({"norm_first": True, "activation": "gelu", "batch_first": True}, {}),
    "all masks": ({}, {"tgt_mask": _causal(L), "memory_mask": (L, S), "tgt_key_padding_mask": (N, L),
                               "memory_key_padding_mask": _padding([(0, 2)]) * -1e9}),
    "causal hint": ({"bias": False}, {"tgt_mask": _causal(L), "tgt_is_causal": True}),
}


def _decoder_arrays(rng, options, masks):
    masks = {k: v for k, v in masks.items() if not k.endswith("is_causal")}
    batch_first = options.get("batch_first", False)
    return {"tgt": _sequence(rng, L, batch_first), "memory": _sequence(rng, S, batch_first), **_arrays(rng, masks)}


@pytest.mark.parametrize("case", list(DECODER_CASES))
def test_transformer_decoder_layer_matches_torch(torch, device, rng, case):
    options, masks = DECODER_CASES[case]
    flags = {k: v for k, v in masks.items() if k.endswith("is_causal")}
    modules = _float64_pair(torch, lambda lib: lib.nn.TransformerDecoderLayer(
        E, HEADS, dim_feedforward=16, **_layer_options(lib, options)), device)

    def call(lib, layer, t):
        masks = {k: v for k, v in t.items() if k not in ("tgt", "memory")}
        return (layer(t["tgt"], t["memory"], **masks, **flags),)
    _check_parity(torch, rng, device, call, _decoder_arrays(rng, options, masks), modules)


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_and_decoder_stacks_match_torch(torch, device, rng, norm_first):
    def build(lib):
        options = _layer_options(lib, {"norm_first": norm_first})
        encoder = lib.nn.TransformerEncoder(lib.nn.TransformerEncoderLayer(E, HEADS, 16, **options), 2,
                                            norm=lib.nn.LayerNorm(E), enable_nested_tensor=False)
        decoder = lib.nn.TransformerDecoder(lib.nn.TransformerDecoderLayer(E, HEADS, 16, **options), 2)
        return lib.nn.ModuleDict({"encoder": encoder, "decoder": decoder})

    def call(lib, stacks, t):
        # the causal mask is detected (is_causal=None), and given to the decoder as a hint
        memory = stacks["encoder"](t["src"], mask=t["mask"], src_key_padding_mask=t["padding"])
        return memory, stacks["decoder"](t["tgt"], memory, tgt_mask=t["mask"], tgt_is_causal=True)
    arrays = {"src": _sequence(rng, L, False), "tgt": _sequence(rng, L, False), "mask": _causal(L),
              "padding": np.array([[0, 0, 1], [0, 0, 0]], bool)}
    _check_parity(torch, rng, device, call, arrays, _float64_pair(torch, build, device))


@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_matches_torch(torch, device, rng, batch_first):
    def build(lib):
        return lib.nn.Transformer(E, HEADS, 2, 1, 16, **_layer_options(lib, {"batch_first": batch_first}))

    def call(lib, model, t):
        causal = lib.nn.Transformer.generate_square_subsequent_mask(L, dtype=t["src"].dtype)
        return (model(t["src"], t["tgt"], tgt_mask=causal, src_key_padding_mask=t["padding"],
                      memory_key_padding_mask=t["padding"]),)
    arrays = {"src": _sequence(rng, S, batch_first), "tgt": _sequence(rng, L, batch_first),
              "padding": _padding([(0, 3), (1, 0)])}
    _check_parity(torch, rng, device, call, arrays, _float64_pair(torch, build, device))


def test_encoder_layer_in_eval_matches_torch_fused_inference(torch, device, rng):
    """torch's eval forward without grad runs its fused kernel; the composed one gives the same numbers."""
    ours, theirs = _float64_pair(torch, lambda lib: lib.nn.TransformerEncoderLayer(
        E, HEADS, 16, batch_first=True, activation="gelu"), device)
    ours.eval(), theirs.eval()
    src, padding = rng.standard_normal((N, L, E)), np.array([[0, 0, 1], [0, 0, 0]], bool)
    with torch.no_grad():
        expected = theirs(torch.tensor(src), src_key_padding_mask=torch.tensor(padding))
    out = ours(_tensor(tr, src, device), src_key_padding_mask=_tensor(tr, padding, device))
    _assert_close(out, expected, "eval output", 1e-12)


def test_generate_square_subsequent_mask_matches_torch(torch, device):
    mask = tr.nn.Transformer.generate_square_subsequent_mask(4, device=device)
    assert mask.dtype == tr.float32
    np.testing.assert_array_equal(to_np(mask), torch.nn.Transformer.generate_square_subsequent_mask(4).numpy())


# ----------------------------------------------------------------------------- initialisation, state_dicts, reprs

CONSTRUCTORS = {  # float32 given: the torch fixture makes float64 torch's default
    "MultiheadAttention": lambda lib: lib.nn.MultiheadAttention(E, HEADS, dtype=lib.float32),
    "MultiheadAttention kdim, vdim, bias_kv": lambda lib: lib.nn.MultiheadAttention(
        E, HEADS, kdim=3, vdim=5, add_bias_kv=True, bias=False, dtype=lib.float32),
    "TransformerEncoderLayer": lambda lib: lib.nn.TransformerEncoderLayer(E, HEADS, 16, dtype=lib.float32),
    "TransformerDecoderLayer norm_first": lambda lib: lib.nn.TransformerDecoderLayer(
        E, HEADS, 16, norm_first=True, dtype=lib.float32),
    "TransformerEncoder": lambda lib: lib.nn.TransformerEncoder(
        lib.nn.TransformerEncoderLayer(E, HEADS, 16, dtype=lib.float32), 2, enable_nested_tensor=False),
    "Transformer": lambda lib: lib.nn.Transformer(E, HEADS, 2, 2, 16, dtype=lib.float32),
}


@pytest.mark.parametrize("name", list(CONSTRUCTORS))
def test_same_seed_gives_torch_initial_weights(torch, name):
    torch.manual_seed(7)
    theirs = CONSTRUCTORS[name](torch)
    tr.manual_seed(7)
    ours = CONSTRUCTORS[name](tr)
    state = ours.state_dict()
    assert list(state) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert state[key].dtype == tr.float32
        np.testing.assert_array_equal(to_np(state[key]), value.numpy(), err_msg=key)


@pytest.mark.parametrize("name", list(CONSTRUCTORS))
def test_state_dict_moves_both_ways_and_repr_matches(torch, device, name):
    theirs, ours = CONSTRUCTORS[name](torch), CONSTRUCTORS[name](tr).to(device)
    assert repr(ours) == repr(theirs)
    theirs.load_state_dict({k: torch.tensor(to_np(v)) for k, v in ours.state_dict().items()})
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), to_np(ours.state_dict()[key]), err_msg=key)
    fresh = CONSTRUCTORS[name](tr).to(device)
    fresh.load_state_dict(theirs.state_dict())
    for key, value in fresh.state_dict().items():
        np.testing.assert_array_equal(to_np(value), to_np(ours.state_dict()[key]), err_msg=key)


def test_mismatched_mask_types_warn_as_torch(torch):
    masks = {"key_padding_mask": np.zeros((N, S), bool), "attn_mask": np.zeros((L, S))}
    for lib in (torch, tr):
        with pytest.warns(UserWarning, match="Support for mismatched key_padding_mask and attn_mask"):
            _mha_call(lib, **masks)


def test_absent_parameters_are_not_in_the_state_dict():
    separate = tr.nn.MultiheadAttention(E, HEADS, kdim=3, bias=False)
    assert separate.in_proj_weight is None and separate.in_proj_bias is None and separate.bias_k is None
    assert list(separate.state_dict()) == ["q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight"]


# ----------------------------------------------------------------------------- bad input

def _tensors(lib, options):
    """Keyword arguments with the arrays among them as tensors of `lib`."""
    return {k: _tensor(lib, v) if isinstance(v, np.ndarray) else v for k, v in options.items()}


def _mha_call(lib, query_shape=(L, N, E), key_shape=(S, N, E), **options):
    layer = lib.nn.MultiheadAttention(E, HEADS).double()
    rng = np.random.default_rng(1)
    query, key = (_tensor(lib, rng.standard_normal(s)) for s in (query_shape, key_shape))
    return layer(query, key, key, **_tensors(lib, options))


def _sdpa_call(lib, **options):
    q, k, v = (_tensor(lib, np.zeros(s)) for s in ((N, L, E), (N, S, E), (N, S, 6)))
    return lib.nn.functional.scaled_dot_product_attention(q, k, v, **_tensors(lib, options))


BAD_INPUTS = {
    "embed_dim not divisible by num_heads": (lambda lib: lib.nn.MultiheadAttention(10, 3), AssertionError,
                                             "embed_dim must be divisible by num_heads"),
    "embed_dim zero": (lambda lib: lib.nn.MultiheadAttention(0, 2), ValueError, "embed_dim and num_heads"),
    "2-D attn_mask shape": (lambda lib: _mha_call(lib, attn_mask=np.zeros((L, L))), RuntimeError,
                            r"2D attn_mask is \(3, 3\), but should be \(3, 4\)"),
    "3-D attn_mask shape": (lambda lib: _mha_call(lib, attn_mask=np.zeros((N, L, S))), RuntimeError,
                            r"3D attn_mask is \(2, 3, 4\), but should be \(4, 3, 4\)"),
    "4-D attn_mask": (lambda lib: _mha_call(lib, attn_mask=np.zeros((1, 1, L, S))), AssertionError,
                      "expected `attn_mask` to be `None`, 2-D or 3-D"),
    "key_padding_mask length": (lambda lib: _mha_call(lib, key_padding_mask=np.zeros((N, L), bool)), AssertionError,
                                r"key_padded_mask.shape\[1\] to be 4, but got 3"),
    "integer attn_mask": (lambda lib: _mha_call(lib, attn_mask=np.zeros((L, S), np.int64)), AssertionError,
                          "only bool and floating types of attn_mask are supported"),
    "is_causal without a mask": (lambda lib: _mha_call(lib, is_causal=True), RuntimeError, "Need attn_mask"),
    "4-D query": (lambda lib: _mha_call(lib, query_shape=(1, L, N, E)), AssertionError,
                  "query should be unbatched 2D or batched 3D tensor"),
    "sdpa mask shape": (lambda lib: _sdpa_call(lib, attn_mask=np.ones((L, L), bool)), RuntimeError, "attn_mask"),
    "sdpa mask with is_causal": (lambda lib: _sdpa_call(lib, attn_mask=np.ones((L, S), bool), is_causal=True),
                                 RuntimeError, "Explicit attn_mask should not be set when is_causal=True"),
    "activation name": (lambda lib: lib.nn.TransformerEncoderLayer(E, HEADS, activation="tanh"), RuntimeError,
                        "activation should be relu/gelu, not tanh"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_torch_error(torch, case):
    call, error, message = BAD_INPUTS[case]
    with pytest.raises(error):
        call(torch)
    with pytest.raises(error, match=message):
        call(tr)
