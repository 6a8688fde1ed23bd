"""torch's CPU float draws over a `tr.Generator`'s words: the same seed gives torch's numbers.

uniform: `(word & (2**digits - 1)) * 2**-digits`, 24 bits of one 32-bit word per value (53 of two, random64(),
for float64), then `x * (to - from) + from` as one fused multiply-add (in float32 below float64).

normal, as torch's CPU normal_ kernel (aten/src/ATen/native/cpu/DistributionTemplates.h):
- 16 or more values: every value first drawn uniform in the dtype, then each run of 16 turned into normals
  by Box-Muller over the pairs (j, j + 8); when the count is not a multiple of 16 the last 16 are drawn
  again and transformed. float32 goes through the AVX2 kernel (avx_mathfun's Cephes log and sincos, with
  the compiler's fused multiply-adds), reproduced step by step below; float64 through libm.
- fewer than 16: one double at a time from normal_distribution<double> (two uniform doubles give two
  normals; the second is cached in the generator for the next draw).

bernoulli (dropout's mask), as torch's bernoulli_ with a float p on the CPU: one uniform double per value,
1 where it is below p.
"""
import math

import numpy as np

F32 = np.float32


def _fma32(a, b, c):
    """float32 a * b + c rounded once, as the FMA instruction: the product is exact in float64, and the
    float64 sum rounds to float32 as the exact one does unless it landed exactly halfway between two
    float32s; there the sum's rounding error (TwoSum) says which way to go."""
    p = np.multiply(a, b, dtype=np.float64)
    s = p + np.float64(c) if np.ndim(c) == 0 else p + c.astype(np.float64)
    tie = (s.view(np.uint64) & np.uint64((1 << 29) - 1)) == np.uint64(1 << 28)
    if tie.any():
        c = np.broadcast_to(np.asarray(c, np.float64), s.shape)[tie]
        p, t = p[tie], s[tie]
        bp = t - p
        err = (p - (t - bp)) + (c - bp)
        s[tie] = np.where(err != 0, np.nextafter(t, np.copysign(np.inf, err)), t)
    return s.astype(F32)


def _log_avx(x):
    """avx_mathfun's log256_ps for x in (0, 1] (normal floats), with the fused multiply-adds torch's
    build makes of it."""
    bits = x.view(np.uint32)
    e = ((bits >> np.uint32(23)).astype(np.int32) - 0x7F).astype(F32) + F32(1)
    x = ((bits & np.uint32(0x807FFFFF)) | np.uint32(0x3F000000)).view(F32)  # mantissa in [0.5, 1)
    small = x < F32(0.707106781186547524)
    tmp = np.where(small, x, F32(0))
    x = x - F32(1)
    e = e - np.where(small, F32(1), F32(0))
    x = x + tmp
    z = x * x
    y = np.full_like(x, F32(7.0376836292E-2))
    for p in (-1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, 1.4249322787E-1, -1.6668057665E-1,
              2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1):
        y = _fma32(y, x, F32(p))
    y = y * x
    y = _fma32(y, z, e * F32(-2.12194440e-4))
    y = _fma32(-z, F32(0.5), y)
    x = x + y
    return _fma32(e, F32(0.693359375), x)


def _sincos_avx(x):
    """avx_mathfun's sincos256_ps for x >= 0, with the fused multiply-adds torch's build makes of it."""
    j = (x * F32(1.27323954473516)).astype(np.int32)
    j = (j + 1) & ~1
    y = j.astype(F32)
    swap_sin = (j & 4) != 0
    poly = (j & 2) == 0
    neg_cos = ((~(j - 2)) & 4) != 0
    for dp in (-0.78515625, -2.4187564849853515625e-4, -3.77489497744594108e-8):
        x = _fma32(y, F32(dp), x)
    z = x * x
    yc = _fma32(F32(2.443315711809948E-005), z, F32(-1.388731625493765E-003))
    yc = _fma32(yc, z, F32(4.166664568298827E-002))
    yc = yc * z
    yc = _fma32(yc, z, -(z * F32(0.5)))
    yc = yc + F32(1)
    ys = _fma32(F32(-1.9515295891E-4), z, F32(8.3321608736E-3))
    ys = _fma32(ys, z, F32(-1.6666654611E-1))
    ys = ys * z
    ys = _fma32(ys, x, x)
    sin = np.where(poly, ys, yc)
    cos = np.where(poly, yc, ys)
    return np.where(swap_sin, -sin, sin), np.where(neg_cos, -cos, cos)


def _two_product(a, b):
    """a * b as an unevaluated sum p + e, exactly (Dekker's product with Veltkamp's split)."""
    p = a * b
    split = 134217729.0  # 2**27 + 1
    ah = a * split
    ah = ah - (ah - a)
    bh = b * split
    bh = bh - (bh - b)
    al, bl = a - ah, b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _fma64(a, b, c):
    """float64 a * b + c rounded once (to within the rare tie a double-double sum misses), as the FMA
    torch's compiler makes of `x * std + mean`."""
    p, pe = _two_product(np.asarray(a, np.float64), np.asarray(b, np.float64))
    s = p + c
    bp = s - p
    se = (p - (s - bp)) + (c - bp)
    return s + (pe + se)


def uniform(generator, shape, dtype, low=0.0, high=1.0):
    """Values in [low, high) of `dtype`, torch's uniform_ from `generator` (a tr.Generator)."""
    dtype, count = np.dtype(dtype), math.prod(shape)
    if dtype == np.float64:
        return _fma64(generator.uniform(count), high - low, low).reshape(shape)
    # below float64, a float32 draw (24 bits of one word) rounded to the dtype: float32's are torch's
    # exactly; float16 and bfloat16 ones differ from torch's in the last bit about once in 5000
    x = (generator.random32(count) & np.uint64(2 ** 24 - 1)).astype(F32) * F32(2.0 ** -24)
    low, high = F32(low), F32(high)
    return _fma32(x, high - low, low).astype(dtype).reshape(shape)


def _box_muller_avx(values, mean, std):
    """torch's normal_fill_16_AVX2 over runs of 16 float32 uniforms."""
    values = values.reshape(-1, 16)
    radius = np.sqrt(F32(-2) * _log_avx(F32(1) - values[:, :8]))  # 1 - u: [0, 1) -> (0, 1] for the log
    sin, cos = _sincos_avx(F32(2 * math.pi) * values[:, 8:])
    mean, std = F32(mean), F32(std)
    return np.concatenate([_fma32(radius * cos, std, mean), _fma32(radius * sin, std, mean)], axis=1).ravel()


def _box_muller_libm(values, mean, std):
    """torch's normal_fill_16 (the dtypes other than float32), in float64 with libm's log, cos and sin."""
    dtype, values = values.dtype, values.astype(np.float64).reshape(-1, 16)
    radius = np.sqrt(-2 * np.log(1 - values[:, :8]))
    theta = 2 * math.pi * values[:, 8:]
    mean, std = float(dtype.type(mean)), float(dtype.type(std))
    return np.concatenate([_fma64(radius * np.cos(theta), std, mean),
                           _fma64(radius * np.sin(theta), std, mean)], axis=1).ravel().astype(dtype)


def _normal_doubles(generator, count):
    """`count` draws of torch's normal_distribution<double>: Box-Muller on two uniform doubles, the sine's
    normal kept in the generator for the next draw."""
    drawn = []
    for _ in range(count):
        if generator._normal_cache is not None:
            drawn.append(generator._normal_cache)
            generator._normal_cache = None
            continue
        u1, u2 = generator.uniform(2).tolist()
        radius, theta = math.sqrt(-2.0 * math.log1p(-u2)), 2.0 * math.pi * u1
        generator._normal_cache = radius * math.sin(theta)
        drawn.append(radius * math.cos(theta))
    return np.array(drawn, np.float64)


def normal(generator, shape, dtype, mean=0.0, std=1.0):
    """Values of `dtype` from N(mean, std^2), torch's normal_ from `generator` (see the module's notes)."""
    dtype, count = np.dtype(dtype), math.prod(shape)
    if count < 16:
        return _fma64(_normal_doubles(generator, count), std, mean).astype(dtype).reshape(shape)
    box_muller = _box_muller_avx if dtype == np.float32 else _box_muller_libm
    whole = count // 16 * 16
    drawn = box_muller(uniform(generator, (count,), dtype)[:whole], mean, std)
    if count > whole:  # torch draws the last 16 again and transforms them
        drawn = np.concatenate([drawn[:count - 16], box_muller(uniform(generator, (16,), dtype), mean, std)])
    return drawn.reshape(shape)


def bernoulli(generator, shape, p):
    """Booleans, True with probability p: torch's bernoulli_(p) from `generator`."""
    return (generator.uniform(math.prod(shape)) < p).reshape(shape)
