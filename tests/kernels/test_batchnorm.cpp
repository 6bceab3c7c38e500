// Batch-norm kernels against (1) the order batchnorm.h documents, written here as plain
// loops that build the canonical chunk tree level by level (bit for bit), (2) a float64
// reference (tolerance), (3) central differences in double of L = sum(y * r) for the
// backward, and (4) themselves on 1, 2 and 3 threads (bit for bit in portable and
// repeatable; `fast` within tolerance and shown to depend on the piece assignment).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "kernels/common/philox.h"
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/parallel.h"
#include "tests/kernels/reference.h"

namespace {

using detdl::Level;
using i64 = std::int64_t;
using Vec = std::vector<float>;
using Vec64 = std::vector<double>;

Vec random_vec(i64 n, std::uint32_t sub, float lo = -1.0f, float hi = 1.0f) {
  Vec v(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i)
    v[i] = lo + (hi - lo) * detdl::philox_uniform(7, detdl::RandomStream::test, sub, i);
  return v;
}

bool same_bits(const Vec& a, const Vec& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// ---- the canonical sum of values, written independently of ChunkTree: level by level ----
float ref_sum(const Vec& v) { return detdl::reference::chunked_sum(v); }

struct Shape {
  i64 N, C, HW;
  i64 size() const { return N * C * HW; }
  i64 at(i64 n, i64 c, i64 hw) const { return (n * C + c) * HW + hw; }
};

struct Forward {
  Vec y, mean, inv_std, var;
};

// ---- the documented order as plain loops (float, bit for bit) ----
Forward ref_forward(const Shape& s, const Vec& x, const Vec& gamma, const Vec& beta, float eps) {
  Forward f{Vec(x.size()), Vec(s.C), Vec(s.C), Vec(s.C)};
  const float count = static_cast<float>(s.N * s.HW);
  for (i64 c = 0; c < s.C; ++c) {
    Vec vals, sq;
    for (i64 n = 0; n < s.N; ++n)
      for (i64 hw = 0; hw < s.HW; ++hw) vals.push_back(x[s.at(n, c, hw)]);
    const float mean = ref_sum(vals) / count;
    for (float v : vals) sq.push_back((v - mean) * (v - mean));
    const float var = ref_sum(sq) / count;
    const float inv = 1.0f / std::sqrt(var + eps);
    f.mean[c] = mean, f.var[c] = var, f.inv_std[c] = inv;
    for (i64 n = 0; n < s.N; ++n)
      for (i64 hw = 0; hw < s.HW; ++hw) {
        const i64 i = s.at(n, c, hw);
        f.y[i] = ((x[i] - mean) * inv) * gamma[c] + beta[c];
      }
  }
  return f;
}

struct Backward {
  Vec dx, dgamma, dbeta;
};

Backward ref_backward(const Shape& s, const Vec& x, const Vec& dy, const Vec& gamma,
                      const Vec& mean, const Vec& inv_std) {
  Backward b{Vec(x.size()), Vec(s.C), Vec(s.C)};
  const float count = static_cast<float>(s.N * s.HW);
  for (i64 c = 0; c < s.C; ++c) {
    Vec d, dxh;
    for (i64 n = 0; n < s.N; ++n)
      for (i64 hw = 0; hw < s.HW; ++hw) {
        const i64 i = s.at(n, c, hw);
        d.push_back(dy[i]);
        dxh.push_back(dy[i] * ((x[i] - mean[c]) * inv_std[c]));
      }
    const float db = ref_sum(d), dg = ref_sum(dxh);
    b.dbeta[c] = db, b.dgamma[c] = dg;
    const float k = (gamma[c] * inv_std[c]) / count;
    for (i64 n = 0; n < s.N; ++n)
      for (i64 hw = 0; hw < s.HW; ++hw) {
        const i64 i = s.at(n, c, hw);
        const float xhat = (x[i] - mean[c]) * inv_std[c];
        b.dx[i] = k * ((count * dy[i] - db) - xhat * dg);
      }
  }
  return b;
}

// ---- float64 forward, for the reference values and the finite differences ----
Vec64 forward64(const Shape& s, const Vec64& x, const Vec64& gamma, const Vec64& beta, double eps,
                Vec64* mean_out = nullptr, Vec64* var_out = nullptr) {
  Vec64 y(x.size());
  const double count = static_cast<double>(s.N * s.HW);
  for (i64 c = 0; c < s.C; ++c) {
    double sum = 0, sq = 0;
    for (i64 n = 0; n < s.N; ++n)
      for (i64 hw = 0; hw < s.HW; ++hw) sum += x[s.at(n, c, hw)];
    const double mean = sum / count;
    for (i64 n = 0; n < s.N; ++n)
      for (i64 hw = 0; hw < s.HW; ++hw)
        sq += (x[s.at(n, c, hw)] - mean) * (x[s.at(n, c, hw)] - mean);
    const double var = sq / count;
    if (mean_out) (*mean_out)[c] = mean;
    if (var_out) (*var_out)[c] = var;
    for (i64 n = 0; n < s.N; ++n)
      for (i64 hw = 0; hw < s.HW; ++hw) {
        const i64 i = s.at(n, c, hw);
        y[i] = (x[i] - mean) / std::sqrt(var + eps) * gamma[c] + beta[c];
      }
  }
  return y;
}

Vec64 widen(const Vec& v) { return Vec64(v.begin(), v.end()); }

struct Inputs {
  Vec x, gamma, beta;
};
Inputs make_inputs(const Shape& s) {
  // A mean offset per channel makes the two-pass variance matter.
  Inputs in{random_vec(s.size(), 1, -1.0f, 1.0f), random_vec(s.C, 2, 0.5f, 1.5f),
            random_vec(s.C, 3)};
  for (i64 n = 0; n < s.N; ++n)
    for (i64 c = 0; c < s.C; ++c)
      for (i64 hw = 0; hw < s.HW; ++hw) in.x[s.at(n, c, hw)] += 0.25f * static_cast<float>(c % 5);
  return in;
}

Forward run_forward(Level level, const Shape& s, const Inputs& in, float eps) {
  Forward f{Vec(in.x.size()), Vec(s.C), Vec(s.C), Vec(s.C)};
  detdl::cpu::batchnorm_forward_train(level, s.N, s.C, s.HW, in.x.data(), in.gamma.data(),
                                      in.beta.data(), eps, f.y.data(), f.mean.data(),
                                      f.inv_std.data(), f.var.data());
  return f;
}

Backward run_backward(Level level, const Shape& s, const Inputs& in, const Vec& dy,
                      const Forward& f) {
  Backward b{Vec(in.x.size()), Vec(s.C), Vec(s.C)};
  detdl::cpu::batchnorm_backward(level, s.N, s.C, s.HW, in.x.data(), dy.data(), in.gamma.data(),
                                 f.mean.data(), f.inv_std.data(), b.dx.data(), b.dgamma.data(),
                                 b.dbeta.data());
  return b;
}

// Awkward shapes: several chunks per channel (N*HW = 291, 600, 514), one value per
// channel, dense layouts with more channels than one block, HW just over a chunk.
// The last three have 10-17 chunks per channel (eight chunks are summed side by side):
// planes that cross chunk boundaries at varying offsets (300), that divide a chunk (64) and
// that hold several whole chunks (1024).
const std::vector<Shape> kShapes = {{3, 5, 97},  {600, 7, 1}, {1, 1, 1},    {2, 3, 300},
                                    {1, 4, 257}, {5, 37, 1},  {257, 18, 2}, {2, 2, 1},
                                    {9, 3, 300}, {40, 2, 64}, {4, 2, 1024}};

// Switches the pool only when the count changes.
void use_threads(int n) {
  if (n == detdl::cpu::num_threads()) return;
  detdl::cpu::set_num_threads(n);
}

class ThreadGuard {
 public:
  ~ThreadGuard() {
    detdl::cpu::set_num_threads(1);
    detdl::cpu::set_dynamic_assignment_for_testing({});
  }
};

TEST(BatchNorm, ForwardTrainMatchesDocumentedOrderBitForBit) {
  ThreadGuard guard;
  const float eps = 1e-5f;
  for (int threads : {1, 2, 3}) {
    use_threads(threads);
    for (const Shape& s : kShapes) {
      const Inputs in = make_inputs(s);
      const Forward want = ref_forward(s, in.x, in.gamma, in.beta, eps);
      for (Level level : {Level::portable, Level::repeatable, Level::fast}) {
        if (level == Level::fast && threads > 1) continue;  // fast: its own test
        const Forward got = run_forward(level, s, in, eps);
        SCOPED_TRACE(testing::Message()
                     << "N=" << s.N << " C=" << s.C << " HW=" << s.HW
                     << " level=" << detdl::level_name(level) << " threads=" << threads);
        EXPECT_TRUE(same_bits(got.y, want.y));
        EXPECT_TRUE(same_bits(got.mean, want.mean));
        EXPECT_TRUE(same_bits(got.inv_std, want.inv_std));
        EXPECT_TRUE(same_bits(got.var, want.var));
      }
    }
  }
}

TEST(BatchNorm, ForwardTrainCloseToFloat64) {
  const float eps = 1e-5f;
  for (const Shape& s : kShapes) {
    const Inputs in = make_inputs(s);
    const Forward got = run_forward(Level::portable, s, in, eps);
    Vec64 mean(s.C), var(s.C);
    const Vec64 y = forward64(s, widen(in.x), widen(in.gamma), widen(in.beta), eps, &mean, &var);
    for (i64 c = 0; c < s.C; ++c) {
      EXPECT_NEAR(got.mean[c], mean[c], 1e-6 + 1e-5 * std::fabs(mean[c]));
      EXPECT_NEAR(got.var[c], var[c], 1e-6 + 1e-5 * var[c]);
    }
    // count = 1 gives inv_std = 1/sqrt(eps): y is beta plus rounding of a zero difference.
    for (std::size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(got.y[i], y[i], 1e-4) << "i=" << i;
  }
}

TEST(BatchNorm, BackwardMatchesDocumentedOrderBitForBit) {
  ThreadGuard guard;
  const float eps = 1e-5f;
  for (int threads : {1, 2, 3}) {
    use_threads(threads);
    for (const Shape& s : kShapes) {
      const Inputs in = make_inputs(s);
      const Vec dy = random_vec(s.size(), 4);
      const Forward f = ref_forward(s, in.x, in.gamma, in.beta, eps);
      const Backward want = ref_backward(s, in.x, dy, in.gamma, f.mean, f.inv_std);
      for (Level level : {Level::portable, Level::repeatable, Level::fast}) {
        if (level == Level::fast && threads > 1) continue;
        const Backward got = run_backward(level, s, in, dy, f);
        SCOPED_TRACE(testing::Message()
                     << "N=" << s.N << " C=" << s.C << " HW=" << s.HW
                     << " level=" << detdl::level_name(level) << " threads=" << threads);
        EXPECT_TRUE(same_bits(got.dx, want.dx));
        EXPECT_TRUE(same_bits(got.dgamma, want.dgamma));
        EXPECT_TRUE(same_bits(got.dbeta, want.dbeta));
      }
    }
  }
}

// L = sum(y * r): dL/dx, dL/dgamma, dL/dbeta by central differences of the float64
// forward, against the float kernel's backward with dy = r.
TEST(BatchNorm, BackwardMatchesFiniteDifferences) {
  const float eps = 1e-3f;
  for (const Shape& s : {Shape{3, 2, 97}, Shape{6, 3, 1}, Shape{2, 2, 5}}) {
    const Inputs in = make_inputs(s);
    const Vec r = random_vec(s.size(), 5);
    const Forward f = run_forward(Level::portable, s, in, eps);
    const Backward b = run_backward(Level::portable, s, in, r, f);
    Vec64 x = widen(in.x), gamma = widen(in.gamma), beta = widen(in.beta);
    auto loss = [&] {
      const Vec64 y = forward64(s, x, gamma, beta, eps);
      double l = 0;
      for (std::size_t i = 0; i < y.size(); ++i) l += y[i] * r[i];
      return l;
    };
    auto central = [&](double& v) {
      const double h = 1e-5, keep = v;
      v = keep + h;
      const double up = loss();
      v = keep - h;
      const double down = loss();
      v = keep;
      return (up - down) / (2 * h);
    };
    SCOPED_TRACE(testing::Message() << "N=" << s.N << " C=" << s.C << " HW=" << s.HW);
    for (i64 i = 0; i < s.size(); i += (s.size() > 60 ? 7 : 1))
      EXPECT_NEAR(b.dx[i], central(x[i]), 2e-3) << "dx " << i;
    for (i64 c = 0; c < s.C; ++c) {
      EXPECT_NEAR(b.dgamma[c], central(gamma[c]), 2e-3 * (1 + std::fabs(b.dgamma[c])))
          << "dgamma " << c;
      EXPECT_NEAR(b.dbeta[c], central(beta[c]), 2e-3 * (1 + std::fabs(b.dbeta[c])))
          << "dbeta " << c;
    }
  }
}

TEST(BatchNorm, FastIsCloseAndDependsOnThePieceAssignment) {
  ThreadGuard guard;
  const Shape s{64, 3, 50};
  const float eps = 1e-5f;
  const Inputs in = make_inputs(s);
  const Vec dy = random_vec(s.size(), 6);
  const Forward portable = run_forward(Level::portable, s, in, eps);
  const Backward portable_b = run_backward(Level::portable, s, in, dy, portable);
  use_threads(2);
  std::vector<Forward> runs;
  std::vector<Backward> runs_b;
  for (const std::vector<int>& assignment : {std::vector<int>{0, 1}, std::vector<int>{0, 0, 1}}) {
    detdl::cpu::set_dynamic_assignment_for_testing(assignment);
    runs.push_back(run_forward(Level::fast, s, in, eps));
    runs_b.push_back(run_backward(Level::fast, s, in, dy, portable));
    for (i64 c = 0; c < s.C; ++c) {
      EXPECT_NEAR(runs.back().mean[c], portable.mean[c], 1e-5);
      EXPECT_NEAR(runs.back().var[c], portable.var[c], 1e-5);
      EXPECT_NEAR(runs_b.back().dbeta[c], portable_b.dbeta[c], 1e-3);
      EXPECT_NEAR(runs_b.back().dgamma[c], portable_b.dgamma[c], 1e-3);
    }
  }
  // Another interleaving of the same pieces changes the bits: that is what `fast` is for.
  EXPECT_FALSE(same_bits(runs[0].var, runs[1].var) && same_bits(runs[0].mean, runs[1].mean));
  EXPECT_FALSE(same_bits(runs_b[0].dgamma, runs_b[1].dgamma) &&
               same_bits(runs_b[0].dbeta, runs_b[1].dbeta));
}

TEST(BatchNorm, UpdateRunningFollowsPyTorchConvention) {
  const i64 C = 5, count = 291;
  const Vec mean = random_vec(C, 7), var = random_vec(C, 8, 0.1f, 2.0f);
  const float momentum = 0.1f;
  for (bool unbiased : {true, false}) {
    Vec rm = random_vec(C, 9), rv = random_vec(C, 10, 0.5f, 1.5f);
    const Vec rm0 = rm, rv0 = rv;
    detdl::cpu::batchnorm_update_running(C, count, momentum, mean.data(), var.data(), rm.data(),
                                         rv.data(), unbiased);
    const float keep = 1.0f - momentum;
    const float f = unbiased ? 291.0f / 290.0f : 1.0f;
    for (i64 c = 0; c < C; ++c) {
      const float want_m = rm0[c] * keep + mean[c] * momentum;
      const float want_v = rv0[c] * keep + (var[c] * f) * momentum;
      EXPECT_EQ(rm[c], want_m);
      EXPECT_EQ(rv[c], want_v);
      // Against float64: 0.9 * old + 0.1 * new (Keras momentum 0.9 is this with 1 - 0.9).
      const double vstat = unbiased ? var[c] * 291.0 / 290.0 : var[c];
      EXPECT_NEAR(rm[c], 0.9 * rm0[c] + 0.1 * mean[c], 1e-6);
      EXPECT_NEAR(rv[c], 0.9 * rv0[c] + 0.1 * vstat, 1e-6);
    }
  }
  // count = 1: no correction (no division by zero).
  float m = 1.0f, v = 1.0f;
  const float bm = 2.0f, bv = 3.0f;
  detdl::cpu::batchnorm_update_running(1, 1, 0.5f, &bm, &bv, &m, &v, true);
  EXPECT_EQ(m, 1.5f);
  EXPECT_EQ(v, 2.0f);
}

// Keras 2.2.2's moving statistics (kernels/common/batchnorm_keras.h), against TensorFlow's
// sequence written as a plain loop (bit for bit) and the debiased average in float64.
TEST(BatchNorm, KerasMovingStatisticsAreTheDebiasedAverage) {
  const i64 C = 3, count = 128 * 64;
  const float d = 0.01f, eps = 1e-3f;  // Keras momentum 0.99, epsilon 1e-3 (its defaults)
  Vec rm = {0.0f, 0.0f, 0.0f}, rv = {1.0f, 1.0f, 1.0f}, bm(C, 0.0f), bv(C, 0.0f), steps = {0.0f};
  Vec pm = rm, pv = rv, pbm = bm, pbv = bv;  // the plain loop's state
  Vec64 sum_m(C, 0.0), sum_v(C, 0.0);        // float64: sum of weighted batch values
  double weight = 0;
  for (int t = 1; t <= 6; ++t) {
    Vec mean(C), var(C);
    for (i64 c = 0; c < C; ++c) {
      mean[c] = 0.5f * static_cast<float>(c + 1) + 0.1f * static_cast<float>(t);
      var[c] = 2.0f + 0.3f * static_cast<float>(t * (c + 1));
    }
    detdl::cpu::batchnorm_update_running_keras(C, count, d, eps, mean.data(), var.data(), bm.data(),
                                               bv.data(), steps.data(), rm.data(), rv.data());
    EXPECT_EQ(steps[0], static_cast<float>(t));
    // TensorFlow's ops in order (normalization.py + assign_moving_average's _zero_debias).
    const float n = static_cast<float>(count);
    const float factor = n / (n - (1.0f + eps));
    const float debias = 1.0f - static_cast<float>(std::pow(double(1.0f - d), t));
    for (i64 c = 0; c < C; ++c) {
      pbm[c] = pbm[c] - (pbm[c] - mean[c]) * d;
      pbv[c] = pbv[c] - (pbv[c] - var[c] * factor) * d;
      pm[c] = pm[c] - (pm[c] - pbm[c] / debias);
      pv[c] = pv[c] - (pv[c] - pbv[c] / debias);
      EXPECT_EQ(rm[c], pm[c]) << "t=" << t << " c=" << c;
      EXPECT_EQ(rv[c], pv[c]) << "t=" << t << " c=" << c;
    }
    // float64: the average of the batch values with weights d (1 - d)^(t - i), normalised.
    weight = weight * (1 - double(d)) + double(d);
    for (i64 c = 0; c < C; ++c) {
      sum_m[c] = sum_m[c] * (1 - double(d)) + double(d) * mean[c];
      sum_v[c] = sum_v[c] * (1 - double(d)) + double(d) * var[c] * count / (count - 1.001);
      EXPECT_NEAR(rm[c], sum_m[c] / weight, 2e-5 * std::fabs(sum_m[c] / weight));
      EXPECT_NEAR(rv[c], sum_v[c] / weight, 2e-5 * std::fabs(sum_v[c] / weight));
    }
    if (t == 1) {  // the initial 0 and 1 are forgotten at once, unlike PyTorch's average
      EXPECT_NEAR(rm[0], mean[0], 1e-5);
      EXPECT_NEAR(rv[0], var[0] * factor, 1e-4);
    }
  }
}

TEST(BatchNorm, EvalUsesRunningStatistics) {
  ThreadGuard guard;
  for (int threads : {1, 2, 3}) {
    use_threads(threads);
    for (const Shape& s : kShapes) {
      const Inputs in = make_inputs(s);
      const Vec rm = random_vec(s.C, 11), rv = random_vec(s.C, 12, 0.2f, 2.0f);
      const float eps = 1e-3f;
      Vec want(in.x.size());
      for (i64 n = 0; n < s.N; ++n)
        for (i64 c = 0; c < s.C; ++c) {
          const float inv = 1.0f / std::sqrt(rv[c] + eps);
          for (i64 hw = 0; hw < s.HW; ++hw) {
            const i64 i = s.at(n, c, hw);
            want[i] = ((in.x[i] - rm[c]) * inv) * in.gamma[c] + in.beta[c];
            const double w64 =
                (in.x[i] - double(rm[c])) / std::sqrt(double(rv[c]) + double(eps)) * in.gamma[c] +
                in.beta[c];
            ASSERT_NEAR(want[i], w64, 1e-5);
          }
        }
      Vec y(in.x.size());
      detdl::cpu::batchnorm_forward_eval(s.N, s.C, s.HW, in.x.data(), in.gamma.data(),
                                         in.beta.data(), rm.data(), rv.data(), eps, y.data());
      EXPECT_TRUE(same_bits(y, want)) << "threads=" << threads;
    }
  }
}

// The inference backward (running statistics are constants): against the documented order
// as plain loops (bit for bit, on 1-3 threads) and a float64 reference of the same formulas.
TEST(BatchNorm, EvalBackwardMatchesDocumentedOrderAndFloat64) {
  ThreadGuard guard;
  for (int threads : {1, 2, 3}) {
    use_threads(threads);
    for (const Shape& s : kShapes) {
      const Inputs in = make_inputs(s);
      const Vec rm = random_vec(s.C, 11), rv = random_vec(s.C, 12, 0.2f, 2.0f);
      const Vec dy = random_vec(s.size(), 13);
      const float eps = 1e-3f;
      Vec want_dx(in.x.size()), want_dg(s.C), want_db(s.C);
      for (i64 c = 0; c < s.C; ++c) {
        const float inv = 1.0f / std::sqrt(rv[c] + eps);
        Vec g_terms, b_terms;
        double g64 = 0, b64 = 0;
        for (i64 n = 0; n < s.N; ++n)
          for (i64 hw = 0; hw < s.HW; ++hw) {
            const i64 i = s.at(n, c, hw);
            want_dx[i] = (dy[i] * in.gamma[c]) * inv;
            g_terms.push_back(dy[i] * ((in.x[i] - rm[c]) * inv));
            b_terms.push_back(dy[i]);
            const double inv64 = 1.0 / std::sqrt(double(rv[c]) + double(eps));
            g64 += double(dy[i]) * (in.x[i] - double(rm[c])) * inv64;
            b64 += dy[i];
            ASSERT_NEAR(want_dx[i], double(dy[i]) * in.gamma[c] * inv64, 1e-5);
          }
        want_dg[c] = ref_sum(g_terms);
        want_db[c] = ref_sum(b_terms);
        ASSERT_NEAR(want_dg[c], g64, 1e-4 * (1 + std::fabs(g64)));
        ASSERT_NEAR(want_db[c], b64, 1e-4 * (1 + std::fabs(b64)));
      }
      Vec dx(in.x.size()), dg(s.C), db(s.C);
      detdl::cpu::batchnorm_backward_eval(s.N, s.C, s.HW, in.x.data(), dy.data(), in.gamma.data(),
                                          rm.data(), rv.data(), eps, dx.data(), dg.data(),
                                          db.data());
      SCOPED_TRACE(testing::Message()
                   << "N=" << s.N << " C=" << s.C << " HW=" << s.HW << " threads=" << threads);
      EXPECT_TRUE(same_bits(dx, want_dx));
      EXPECT_TRUE(same_bits(dg, want_dg));
      EXPECT_TRUE(same_bits(db, want_db));
    }
  }
}

}  // namespace
