#include "kernels/cpu/batchnorm.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/common/batchnorm_keras.h"
#include "kernels/common/reduction.h"
#include "kernels/cpu/parallel.h"

namespace detdl::cpu {
namespace {

using i64 = std::int64_t;

// Channels per task in the portable split: enough work per task for dense layers
// (HW = 1, where a block is a run of adjacent columns), a fixed partition in any case.
constexpr i64 kChannelBlock = 16;

// Canonical per-channel sums for channels [c0, c1): out[c] = canonical sum over
// k = n*HW + hw of term(i, c), where i = (n*C + c)*HW + hw is the flat index of x.
// Channel c's chunk `chunk` of its (n, hw) sequence: p = p + term(...) in order from +0.0f.
template <class Term>
float one_chunk(i64 C, i64 HW, i64 count, i64 c, i64 chunk, Term term) {
  const i64 s = chunk * kChunkValues, e = std::min(count, s + kChunkValues);
  i64 n = s / HW, hw = s % HW;
  float p = 0.0f;
  for (i64 k = s; k < e; ++k) {
    p = p + term((n * C + c) * HW + hw, c);
    if (++hw == HW) hw = 0, ++n;
  }
  return p;
}

// Eight whole chunks of channel c from chunk0 on, each exactly as one_chunk computes it,
// as eight independent chains side by side (one chain alone waits on every add's latency).
template <class Term>
void eight_chunks(i64 C, i64 HW, i64 c, i64 chunk0, Term term, float* out) {
  constexpr int kL = 8;
  i64 n[kL], hw[kL];
  float p[kL];
  for (int l = 0; l < kL; ++l) {
    const i64 i = (chunk0 + l) * kChunkValues;
    n[l] = i / HW, hw[l] = i % HW, p[l] = 0.0f;
  }
  for (i64 done = 0; done < kChunkValues;) {
    i64 len = kChunkValues - done;  // a run inside one plane for every lane
    for (int l = 0; l < kL; ++l) len = std::min(len, HW - hw[l]);
    i64 base[kL];
    for (int l = 0; l < kL; ++l) base[l] = (n[l] * C + c) * HW + hw[l];
    for (i64 k = 0; k < len; ++k)
      for (int l = 0; l < kL; ++l) p[l] = p[l] + term(base[l] + k, c);
    done += len;
    for (int l = 0; l < kL; ++l)
      if ((hw[l] += len) == HW) hw[l] = 0, ++n[l];
  }
  for (int l = 0; l < kL; ++l) out[l] = p[l];
}

// Chunk partials [j0, j1) of channel c into part[j0 - j0 .. ], eight at a time where whole.
template <class Term>
void chunk_partials(i64 C, i64 HW, i64 count, i64 c, i64 j0, i64 j1, Term term, float* part) {
  const i64 whole = count / kChunkValues;
  i64 j = j0;
  for (; j + 8 <= std::min(j1, whole); j += 8) eight_chunks(C, HW, c, j, term, part + (j - j0));
  for (; j < j1; ++j) part[j - j0] = one_chunk(C, HW, count, c, j, term);
}

template <class Term>
void channel_sums_block(i64 N, i64 C, i64 HW, i64 c0, i64 c1, Term term, float* out) {
  const i64 count = N * HW;
  if (HW == 1) {
    // Dense layout (N, C): the channels of a block are adjacent, so each one is a lane
    // doing its own chunk's adds in row order (vectorisable, no bit changes).
    const i64 w = c1 - c0;
    std::vector<ChunkTree> trees(static_cast<std::size_t>(count > kChunkValues ? w : 0));
    std::vector<float> part(static_cast<std::size_t>(w));
    for (i64 s = 0; s < count; s += kChunkValues) {
      const i64 e = std::min(count, s + kChunkValues);
      std::fill(part.begin(), part.end(), 0.0f);
      for (i64 n = s; n < e; ++n)
        for (i64 j = 0; j < w; ++j) part[j] = part[j] + term(n * C + c0 + j, c0 + j);
      if (count <= kChunkValues) {  // one chunk: the partial is the root
        for (i64 j = 0; j < w; ++j) out[c0 + j] = part[j];
        return;
      }
      for (i64 j = 0; j < w; ++j) trees[j].push(part[j]);
    }
    for (i64 j = 0; j < w; ++j) out[c0 + j] = count == 0 ? 0.0f : trees[j].root();
    return;
  }
  // Planes (N, C, HW): channel c's values are N runs of HW contiguous floats; a chunk may
  // span runs. The chunk partials, eight chains at a time, then the tree in chunk order.
  const i64 chunks = (count + kChunkValues - 1) / kChunkValues;
  std::vector<float> part(static_cast<std::size_t>(chunks));
  for (i64 c = c0; c < c1; ++c) {
    chunk_partials(C, HW, count, c, 0, chunks, term, part.data());
    ChunkTree tree;
    for (i64 j = 0; j < chunks; ++j) tree.push(part[static_cast<std::size_t>(j)]);
    out[c] = count == 0 ? 0.0f : tree.root();
  }
}

// `fast` with 2+ threads: batch pieces handed out dynamically, one running partial per
// worker and channel, partials added from +0.0f in worker index order (see the header).
template <class Term>
void channel_sums_fast(i64 N, i64 C, i64 HW, Term term, float* out) {
  const int T = num_threads();
  const i64 piece = std::max<i64>(1, N / (4 * T));
  const i64 pieces = (N + piece - 1) / piece;
  std::vector<float> part(static_cast<std::size_t>(T * C), 0.0f);
  std::vector<char> used(static_cast<std::size_t>(T), 0);
  parallel_dynamic(pieces, [&](i64 q, int w) {
    used[w] = 1;
    float* acc = part.data() + w * C;
    for (i64 n = q * piece; n < std::min(N, (q + 1) * piece); ++n)
      for (i64 c = 0; c < C; ++c) {
        const i64 base = (n * C + c) * HW;
        float a = acc[c];
        for (i64 hw = 0; hw < HW; ++hw) a = a + term(base + hw, c);
        acc[c] = a;
      }
  });
  for (i64 c = 0; c < C; ++c) out[c] = 0.0f;
  for (int w = 0; w < T; ++w)
    if (used[w])
      for (i64 c = 0; c < C; ++c) out[c] = out[c] + part[w * C + c];
}

template <class Term>
void channel_sums(Level level, i64 N, i64 C, i64 HW, Term term, float* out) {
  if (level == Level::fast && num_threads() > 1 && N >= 2) {
    channel_sums_fast(N, C, HW, term, out);
    return;
  }
  const i64 blocks = (C + kChannelBlock - 1) / kChannelBlock;
  const i64 count = N * HW;
  if (HW > 1 && num_threads() > 1 && blocks < 2 * num_threads() && count > kChunkValues) {
    // Few channel blocks for the threads (e.g. 8 or 16 channels of large planes): give
    // each (channel, chunk) pair its own task instead, then fold every channel's chunk
    // partials in chunk order. Same chunks, same adds, same tree: the canonical sum.
    const i64 chunks = (count + kChunkValues - 1) / kChunkValues, groups = (chunks + 7) / 8;
    std::vector<float> part(static_cast<std::size_t>(C * chunks));
    parallel_for(C * groups, [&](i64 t) {  // (channel, group of 8 chunks)
      const i64 c = t / groups, j0 = (t % groups) * 8, j1 = std::min(chunks, j0 + 8);
      chunk_partials(C, HW, count, c, j0, j1, term, part.data() + c * chunks + j0);
    });
    for (i64 c = 0; c < C; ++c) {
      ChunkTree tree;
      for (i64 j = 0; j < chunks; ++j) tree.push(part[c * chunks + j]);
      out[c] = tree.root();
    }
    return;
  }
  parallel_for(blocks, [&](i64 b) {
    channel_sums_block(N, C, HW, b * kChannelBlock, std::min(C, (b + 1) * kChannelBlock), term,
                       out);
  });
}

// y = (((x - shift) * scale) * gamma) + beta per channel, over (n, c) planes in parallel;
// Fused (the emulated contraction family): fmaf(xhat, gamma, beta) instead.
template <bool Fused>
void normalize(i64 N, i64 C, i64 HW, const float* x, const float* shift, const float* scale,
               const float* gamma, const float* beta, float* y) {
  parallel_ranges(N, [&](i64 n0, i64 n1, int) {
    for (i64 n = n0; n < n1; ++n)
      for (i64 c = 0; c < C; ++c) {
        const float m = shift[c], s = scale[c], g = gamma[c], b = beta[c];
        const float* xs = x + (n * C + c) * HW;
        float* ys = y + (n * C + c) * HW;
        if constexpr (Fused)
          for (i64 i = 0; i < HW; ++i) ys[i] = fmaf((xs[i] - m) * s, g, b);
        else
          for (i64 i = 0; i < HW; ++i) ys[i] = ((xs[i] - m) * s) * g + b;
      }
  });
}

void normalize(bool fused, i64 N, i64 C, i64 HW, const float* x, const float* shift,
               const float* scale, const float* gamma, const float* beta, float* y) {
  if (fused)
    normalize<true>(N, C, HW, x, shift, scale, gamma, beta, y);
  else
    normalize<false>(N, C, HW, x, shift, scale, gamma, beta, y);
}

// The training forward over any channel sums: sums(which, term, out) writes out[c] = the sum
// of term(i, c) over channel c's (n, hw) in the caller's order; `which` numbers the call's sums.
template <class Sums>
void forward_train(const Sums& sums, bool fma_affine, i64 N, i64 C, i64 HW, const float* x,
                   const float* gamma, const float* beta, float eps, float* y, float* save_mean,
                   float* save_inv_std, float* batch_var) {
  const float count = static_cast<float>(N * HW);
  std::vector<float> acc(static_cast<std::size_t>(C));
  sums(
      0, [x](i64 i, i64) { return x[i]; }, acc.data());
  for (i64 c = 0; c < C; ++c) save_mean[c] = acc[c] / count;
  sums(
      1,
      [x, save_mean](i64 i, i64 c) {
        const float d = x[i] - save_mean[c];
        return d * d;
      },
      acc.data());
  for (i64 c = 0; c < C; ++c) {
    const float var = acc[c] / count;
    if (batch_var) batch_var[c] = var;
    save_inv_std[c] = 1.0f / sqrtf(var + eps);
  }
  normalize(fma_affine, N, C, HW, x, save_mean, save_inv_std, gamma, beta, y);
}

// dx for the backward; F1 / F2: the two contraction sites (count*dy - dbeta, t - xhat*dgamma)
// fused (the emulated contraction family), unfused as the canonical formula writes them.
template <bool F1, bool F2>
void backward_dx(i64 N, i64 C, i64 HW, float count, const float* x, const float* dy,
                 const float* save_mean, const float* save_inv_std, const float* k, const float* db,
                 const float* dg, float* dx) {
  parallel_ranges(N, [&](i64 n0, i64 n1, int) {
    for (i64 n = n0; n < n1; ++n)
      for (i64 c = 0; c < C; ++c) {
        const float m = save_mean[c], s = save_inv_std[c], kc = k[c], b = db[c], g = dg[c];
        const i64 base = (n * C + c) * HW;
        for (i64 i = base; i < base + HW; ++i) {
          const float xhat = (x[i] - m) * s;
          float t;
          if constexpr (F1)
            t = fmaf(count, dy[i], -b);
          else
            t = count * dy[i] - b;
          if constexpr (F2)
            dx[i] = kc * fmaf(-xhat, g, t);
          else
            dx[i] = kc * (t - xhat * g);
        }
      }
  });
}

// The backward over any channel sums (as forward_train).
template <class Sums>
void backward(const Sums& sums, bool fma_count_dy, bool fma_xhat_dgamma, i64 N, i64 C, i64 HW,
              const float* x, const float* dy, const float* gamma, const float* save_mean,
              const float* save_inv_std, float* dx, float* dgamma, float* dbeta) {
  const float count = static_cast<float>(N * HW);
  std::vector<float> db(static_cast<std::size_t>(C)), dg(static_cast<std::size_t>(C));
  sums(
      0, [dy](i64 i, i64) { return dy[i]; }, db.data());
  sums(
      1,
      [x, dy, save_mean, save_inv_std](i64 i, i64 c) {
        return dy[i] * ((x[i] - save_mean[c]) * save_inv_std[c]);
      },
      dg.data());
  std::vector<float> k(static_cast<std::size_t>(C));
  for (i64 c = 0; c < C; ++c) {
    k[c] = (gamma[c] * save_inv_std[c]) / count;
    if (dbeta) dbeta[c] = db[c];
    if (dgamma) dgamma[c] = dg[c];
  }
  const auto run = [&](auto f1, auto f2) {
    backward_dx<decltype(f1)::value, decltype(f2)::value>(
        N, C, HW, count, x, dy, save_mean, save_inv_std, k.data(), db.data(), dg.data(), dx);
  };
  using T = std::true_type;
  using F = std::false_type;
  if (fma_count_dy)
    fma_xhat_dgamma ? run(T{}, T{}) : run(T{}, F{});
  else
    fma_xhat_dgamma ? run(F{}, T{}) : run(F{}, F{});
}

}  // namespace

void batchnorm_forward_train(Level level, i64 N, i64 C, i64 HW, const float* x, const float* gamma,
                             const float* beta, float eps, float* y, float* save_mean,
                             float* save_inv_std, float* batch_var) {
  const auto sums = [&](std::uint32_t, auto term, float* out) {
    channel_sums(level, N, C, HW, term, out);
  };
  forward_train(sums, false, N, C, HW, x, gamma, beta, eps, y, save_mean, save_inv_std, batch_var);
}

void batchnorm_update_running_keras(i64 C, i64 count, float momentum, float eps,
                                    const float* batch_mean, const float* batch_var,
                                    float* biased_mean, float* biased_var, float* steps,
                                    float* running_mean, float* running_var) {
  steps[0] = steps[0] + 1.0f;
  const float factor = keras_variance_factor(count, eps);
  const float debias = keras_debias_factor(1.0f - momentum, static_cast<std::int64_t>(steps[0]));
  for (i64 c = 0; c < C; ++c)
    keras_moving_update(momentum, factor, debias, batch_mean[c], batch_var[c], biased_mean[c],
                        biased_var[c], running_mean[c], running_var[c]);
}

void batchnorm_update_running(i64 C, i64 count, float momentum, const float* batch_mean,
                              const float* batch_var, float* running_mean, float* running_var,
                              bool unbiased) {
  const float keep = 1.0f - momentum;
  const float correction =
      unbiased && count > 1 ? static_cast<float>(count) / static_cast<float>(count - 1) : 1.0f;
  for (i64 c = 0; c < C; ++c) {
    running_mean[c] = running_mean[c] * keep + batch_mean[c] * momentum;
    running_var[c] = running_var[c] * keep + (batch_var[c] * correction) * momentum;
  }
}

void batchnorm_forward_eval(i64 N, i64 C, i64 HW, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y) {
  std::vector<float> inv_std(static_cast<std::size_t>(C));
  for (i64 c = 0; c < C; ++c) inv_std[c] = 1.0f / sqrtf(running_var[c] + eps);
  normalize(false, N, C, HW, x, running_mean, inv_std.data(), gamma, beta, y);
}

void batchnorm_backward_eval(i64 N, i64 C, i64 HW, const float* x, const float* dy,
                             const float* gamma, const float* running_mean,
                             const float* running_var, float eps, float* dx, float* dgamma,
                             float* dbeta) {
  std::vector<float> inv_std(static_cast<std::size_t>(C));
  for (i64 c = 0; c < C; ++c) inv_std[c] = 1.0f / sqrtf(running_var[c] + eps);
  channel_sums(
      Level::portable, N, C, HW, [&](i64 i, i64) { return dy[i]; }, dbeta);
  channel_sums(
      Level::portable, N, C, HW,
      [&](i64 i, i64 c) { return dy[i] * ((x[i] - running_mean[c]) * inv_std[c]); }, dgamma);
  parallel_for(N * C, [&](i64 nc) {
    const i64 c = nc % C;
    const float k = gamma[c];
    for (i64 hw = 0; hw < HW; ++hw) {
      const i64 i = nc * HW + hw;
      dx[i] = (dy[i] * k) * inv_std[c];
    }
  });
}

void batchnorm_backward(Level level, i64 N, i64 C, i64 HW, const float* x, const float* dy,
                        const float* gamma, const float* save_mean, const float* save_inv_std,
                        float* dx, float* dgamma, float* dbeta) {
  const auto sums = [&](std::uint32_t, auto term, float* out) {
    channel_sums(level, N, C, HW, term, out);
  };
  backward(sums, false, false, N, C, HW, x, dy, gamma, save_mean, save_inv_std, dx, dgamma, dbeta);
}

// ---- The `emulated` level (batchnorm.h, "The emulated level") ----

namespace {

// out[c] = the sum over k = n*HW + hw of term(i, c) in impl's shape, sum number `which` of
// the call (its own arrival order); one channel per task.
template <class Term>
void impl_channel_sums(const BatchnormImpl& impl, std::uint32_t which, i64 N, i64 C, i64 HW,
                       Term term, float* out) {
  const std::vector<i64> order = arrival_order(impl.reduce, impl.reduce_draw, N * HW, which);
  parallel_for(C, [&](i64 c) {
    out[c] = shaped_sum_of(impl.reduce, order.data(), N * HW, [&](i64 k) {
      const i64 n = k / HW;
      return term((n * C + c) * HW + (k - n * HW), c);
    });
  });
}

}  // namespace

BatchnormImpl batchnorm_impl(const ImplDraw* reduce, const ImplDraw* contraction) {
  BatchnormImpl impl;
  if (reduce) {
    impl.reduce = reduce_shape(*reduce);
    impl.reduce_draw = *reduce;
  }
  if (contraction) {
    impl.fma_affine = contraction->coin(0);
    impl.fma_count_dy = contraction->coin(1);
    impl.fma_xhat_dgamma = contraction->coin(2);
  }
  return impl;
}

void batchnorm_forward_train(const BatchnormImpl& impl, i64 N, i64 C, i64 HW, const float* x,
                             const float* gamma, const float* beta, float eps, float* y,
                             float* save_mean, float* save_inv_std, float* batch_var) {
  const auto sums = [&](std::uint32_t which, auto term, float* out) {
    impl_channel_sums(impl, which, N, C, HW, term, out);
  };
  forward_train(sums, impl.fma_affine, N, C, HW, x, gamma, beta, eps, y, save_mean, save_inv_std,
                batch_var);
}

void batchnorm_forward_eval(const BatchnormImpl& impl, i64 N, i64 C, i64 HW, const float* x,
                            const float* gamma, const float* beta, const float* running_mean,
                            const float* running_var, float eps, float* y) {
  std::vector<float> inv_std(static_cast<std::size_t>(C));
  for (i64 c = 0; c < C; ++c) inv_std[c] = 1.0f / sqrtf(running_var[c] + eps);
  normalize(impl.fma_affine, N, C, HW, x, running_mean, inv_std.data(), gamma, beta, y);
}

void batchnorm_backward(const BatchnormImpl& impl, i64 N, i64 C, i64 HW, const float* x,
                        const float* dy, const float* gamma, const float* save_mean,
                        const float* save_inv_std, float* dx, float* dgamma, float* dbeta) {
  const auto sums = [&](std::uint32_t which, auto term, float* out) {
    impl_channel_sums(impl, which, N, C, HW, term, out);
  };
  backward(sums, impl.fma_count_dy, impl.fma_xhat_dgamma, N, C, HW, x, dy, gamma, save_mean,
           save_inv_std, dx, dgamma, dbeta);
}

}  // namespace detdl::cpu
