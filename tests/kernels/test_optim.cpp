// Optimizer kernels: (1) bit for bit against the operation orders optim_formulas.h
// documents, written here as independent scalar loops, over several steps and on 1, 2 and
// 3 threads; (2) against textbook float64 steps (tolerance); (3) PyTorch's and Keras's
// documented first-step behaviour; (4) Adam's bias corrections.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "kernels/common/optim_formulas.h"
#include "kernels/common/philox.h"
#include "kernels/cpu/optim.h"
#include "kernels/cpu/parallel.h"

namespace {

using i64 = std::int64_t;
using Vec = std::vector<float>;
using Vec64 = std::vector<double>;
namespace cpu = detdl::cpu;

Vec random_vec(i64 n, std::uint32_t sub, float lo = -1.0f, float hi = 1.0f) {
  Vec v(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i)
    v[i] = lo + (hi - lo) * detdl::philox_uniform(3, detdl::RandomStream::test, sub, i);
  return v;
}
bool same_bits(const Vec& a, const Vec& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Switches the pool only when the count changes.
void use_threads(int n) {
  if (n == cpu::num_threads()) return;
  cpu::set_num_threads(n);
}
struct ThreadGuard {
  ~ThreadGuard() { cpu::set_num_threads(1); }
};

enum class Kind { sgd, sgd_keras, adam, adamw, adam_keras, rmsprop, rmsprop_keras };

struct Config {
  Kind kind;
  float lr, momentum, wd;
  bool nesterov;
};

// State of one run: parameters and two slots.
struct State {
  Vec p, s0, s1;
};

constexpr float kB1 = 0.9f, kB2 = 0.999f, kEps = 1e-8f, kAlpha = 0.99f;

// One step through the array kernels.
void kernel_step(const Config& c, State& st, const Vec& g, i64 t) {
  const i64 n = static_cast<i64>(st.p.size());
  const auto [bc1, bc2] = cpu::adam_bias_corrections(kB1, kB2, t);
  switch (c.kind) {
    case Kind::sgd:
    case Kind::sgd_keras:
      cpu::sgd_update(n, st.p.data(), g.data(), st.s0.data(),
                      {c.lr, c.momentum, c.wd, c.nesterov, t == 1, c.kind == Kind::sgd_keras});
      break;
    case Kind::adam:
    case Kind::adamw:
    case Kind::adam_keras:
      cpu::adam_update(n, st.p.data(), g.data(), st.s0.data(), st.s1.data(),
                       {c.lr, kB1, kB2, kEps, bc1, bc2, c.wd, c.kind == Kind::adamw,
                        c.kind == Kind::adam_keras});
      break;
    case Kind::rmsprop:
    case Kind::rmsprop_keras:
      cpu::rmsprop_update(n, st.p.data(), g.data(), st.s0.data(), st.s1.data(),
                          {c.lr, kAlpha, kEps, c.momentum, c.wd, c.kind == Kind::rmsprop_keras});
      break;
  }
}

// The same step as an independent scalar loop in the documented order (float).
void loop_step(const Config& c, State& st, const Vec& g0, i64 t) {
  const auto [bc1, bc2] = cpu::adam_bias_corrections(kB1, kB2, t);
  for (std::size_t i = 0; i < st.p.size(); ++i) {
    float& p = st.p[i];
    float& a = st.s0[i];
    float& b = st.s1[i];
    float g = g0[i];
    if (c.wd != 0.0f && c.kind != Kind::adamw) g = g + c.wd * p;
    switch (c.kind) {
      case Kind::sgd: {
        float d = g;
        if (c.momentum != 0.0f) {
          a = t == 1 ? g : c.momentum * a + g;
          d = c.nesterov ? g + c.momentum * a : a;
        }
        p = p - c.lr * d;
        break;
      }
      case Kind::sgd_keras:
        if (c.momentum == 0.0f) {
          p = p - c.lr * g;
        } else {
          a = c.momentum * a - c.lr * g;
          p = c.nesterov ? p + (c.momentum * a - c.lr * g) : p + a;
        }
        break;
      case Kind::adam:
      case Kind::adamw:
      case Kind::adam_keras:
        if (c.kind == Kind::adamw && c.wd != 0.0f) p = p - (c.lr * c.wd) * p;
        a = kB1 * a + (1.0f - kB1) * g;
        b = kB2 * b + (1.0f - kB2) * (g * g);
        if (c.kind == Kind::adam_keras) {
          const float lr_t =
              static_cast<float>(double(c.lr) * std::sqrt(double(bc2)) / double(bc1));
          p = p - (lr_t * a) / (std::sqrt(b) + kEps);
        } else {
          p = p - (c.lr * (a / bc1)) / (std::sqrt(b / bc2) + kEps);
        }
        break;
      case Kind::rmsprop: {
        a = kAlpha * a + (1.0f - kAlpha) * (g * g);
        const float den = std::sqrt(a) + kEps;
        if (c.momentum > 0.0f) {
          b = c.momentum * b + g / den;
          p = p - c.lr * b;
        } else {
          p = p - c.lr * (g / den);
        }
        break;
      }
      case Kind::rmsprop_keras: {
        a = kAlpha * a + (1.0f - kAlpha) * (g * g);
        const float step = (c.lr * g) / std::sqrt(a + kEps);
        if (c.momentum > 0.0f) {
          b = c.momentum * b + step;
          p = p - b;
        } else {
          p = p - step;
        }
        break;
      }
    }
  }
}

// Textbook float64 step.
struct State64 {
  Vec64 p, s0, s1;
};
void textbook_step(const Config& c, State64& st, const Vec& g0, i64 t) {
  const double lr = c.lr, mu = c.momentum, wd = c.wd, b1 = kB1, b2 = kB2, eps = kEps, al = kAlpha;
  for (std::size_t i = 0; i < st.p.size(); ++i) {
    double &p = st.p[i], &a = st.s0[i], &b = st.s1[i];
    double g = g0[i];
    if (c.kind != Kind::adamw) g += wd * p;
    switch (c.kind) {
      case Kind::sgd: {
        double d = g;
        if (mu != 0) {
          a = t == 1 ? g : mu * a + g;
          d = c.nesterov ? g + mu * a : a;
        }
        p -= lr * d;
        break;
      }
      case Kind::sgd_keras:
        a = mu * a - lr * g;
        p = c.nesterov ? p + mu * a - lr * g : p + a;
        break;
      case Kind::adam:
      case Kind::adamw:
      case Kind::adam_keras: {
        if (c.kind == Kind::adamw) p *= 1 - lr * wd;  // PyTorch AdamW's form
        a = b1 * a + (1 - b1) * g;
        b = b2 * b + (1 - b2) * g * g;
        const double mhat = a / (1 - std::pow(b1, double(t))),
                     vhat = b / (1 - std::pow(b2, double(t)));
        if (c.kind == Kind::adam_keras)  // Keras: eps added to sqrt(v), not to sqrt(v_hat)
          p -= lr * std::sqrt(1 - std::pow(b2, double(t))) / (1 - std::pow(b1, double(t))) * a /
               (std::sqrt(b) + eps);
        else
          p -= lr * mhat / (std::sqrt(vhat) + eps);
        break;
      }
      case Kind::rmsprop:
        a = al * a + (1 - al) * g * g;
        if (mu > 0) {
          b = mu * b + g / (std::sqrt(a) + eps);
          p -= lr * b;
        } else {
          p -= lr * g / (std::sqrt(a) + eps);
        }
        break;
      case Kind::rmsprop_keras:
        a = al * a + (1 - al) * g * g;
        if (mu > 0) {
          b = mu * b + lr * g / std::sqrt(a + eps);
          p -= b;
        } else {
          p -= lr * g / std::sqrt(a + eps);
        }
        break;
    }
  }
}

const std::vector<Config> kConfigs = {
    {Kind::sgd, 0.1f, 0.0f, 0.0f, false},
    {Kind::sgd, 0.05f, 0.9f, 1e-3f, false},
    {Kind::sgd, 0.05f, 0.9f, 0.0f, true},
    {Kind::sgd_keras, 0.05f, 0.9f, 0.0f, false},
    {Kind::sgd_keras, 0.05f, 0.9f, 1e-3f, true},
    {Kind::sgd_keras, 0.1f, 0.0f, 0.0f, false},
    {Kind::adam, 1e-3f, 0.0f, 0.0f, false},
    {Kind::adam, 1e-2f, 0.0f, 1e-2f, false},
    {Kind::adamw, 1e-2f, 0.0f, 1e-2f, false},
    {Kind::adam_keras, 1e-3f, 0.0f, 0.0f, false},
    {Kind::rmsprop, 1e-2f, 0.0f, 0.0f, false},
    {Kind::rmsprop, 1e-2f, 0.9f, 1e-3f, false},
    {Kind::rmsprop_keras, 1e-3f, 0.0f, 0.0f, false},
    {Kind::rmsprop_keras, 1e-3f, 0.9f, 0.0f, false},
};

TEST(Optim, MatchesDocumentedOrderBitForBitOnAnyThreads) {
  ThreadGuard guard;
  const i64 n = 100003;  // four blocks of 32768 and a short one
  const Vec p0 = random_vec(n, 1);
  std::vector<Vec> grads;
  for (int t = 0; t < 4; ++t) grads.push_back(random_vec(n, 10 + t));
  std::vector<State> wants;
  for (const Config& c : kConfigs) {
    wants.push_back(State{p0, Vec(n, 0.0f), Vec(n, 0.0f)});
    for (int t = 1; t <= 4; ++t) loop_step(c, wants.back(), grads[t - 1], t);
  }
  for (int threads : {1, 2, 3}) {
    use_threads(threads);
    for (std::size_t ci = 0; ci < kConfigs.size(); ++ci) {
      const Config& c = kConfigs[ci];
      const State& want = wants[ci];
      State got{p0, Vec(n, 0.0f), Vec(n, 0.0f)};
      for (int t = 1; t <= 4; ++t) kernel_step(c, got, grads[t - 1], t);
      EXPECT_TRUE(same_bits(got.p, want.p)) << "config " << ci << " threads " << threads;
      EXPECT_TRUE(same_bits(got.s0, want.s0)) << "config " << ci << " threads " << threads;
      EXPECT_TRUE(same_bits(got.s1, want.s1)) << "config " << ci << " threads " << threads;
    }
  }
}

TEST(Optim, CloseToTextbookFloat64Steps) {
  const i64 n = 37;
  const Vec p0 = random_vec(n, 2);
  for (std::size_t ci = 0; ci < kConfigs.size(); ++ci) {
    const Config& c = kConfigs[ci];
    State got{p0, Vec(n, 0.0f), Vec(n, 0.0f)};
    State64 want{Vec64(p0.begin(), p0.end()), Vec64(n, 0.0), Vec64(n, 0.0)};
    for (int t = 1; t <= 6; ++t) {
      const Vec g = random_vec(n, 20 + t);
      kernel_step(c, got, g, t);
      textbook_step(c, want, g, t);
    }
    for (i64 i = 0; i < n; ++i) {
      // Tolerance relative to the distance moved (a few float roundings of each step).
      const double moved = std::fabs(want.p[i] - p0[i]);
      EXPECT_NEAR(got.p[i], want.p[i], 1e-6 + 1e-4 * moved) << "config " << ci << " i " << i;
    }
  }
}

TEST(Optim, PyTorchAndKerasFirstSteps) {
  const i64 n = 9;
  const Vec p0 = random_vec(n, 3), g = random_vec(n, 4);
  // PyTorch SGD with momentum: the buffer starts as the gradient itself.
  {
    Vec p = p0, buf(n, 123.0f);  // whatever the buffer held is ignored at the first step
    cpu::sgd_update(n, p.data(), g.data(), buf.data(), {0.1f, 0.9f, 0.0f, false, true, false});
    for (i64 i = 0; i < n; ++i) {
      EXPECT_EQ(buf[i], g[i]);
      EXPECT_EQ(p[i], p0[i] - 0.1f * g[i]);
    }
    Vec pn = p0, bn(n, 0.0f);
    cpu::sgd_update(n, pn.data(), g.data(), bn.data(), {0.1f, 0.9f, 0.0f, true, true, false});
    for (i64 i = 0; i < n; ++i) EXPECT_EQ(pn[i], p0[i] - 0.1f * (g[i] + 0.9f * g[i]));
  }
  // Keras SGD with momentum: v = -lr * g from v = 0.
  {
    Vec p = p0, v(n, 0.0f);
    cpu::sgd_update(n, p.data(), g.data(), v.data(), {0.1f, 0.9f, 0.0f, false, true, true});
    for (i64 i = 0; i < n; ++i) {
      EXPECT_EQ(v[i], -(0.1f * g[i]));
      EXPECT_EQ(p[i], p0[i] - 0.1f * g[i]);
    }
  }
  // Adam's first step moves each parameter by about lr * sign(g) (m_hat = g, v_hat = g^2).
  for (bool keras : {false, true}) {
    Vec p = p0, m(n, 0.0f), v(n, 0.0f);
    const auto [bc1, bc2] = cpu::adam_bias_corrections(0.9f, 0.999f, 1);
    cpu::adam_update(n, p.data(), g.data(), m.data(), v.data(),
                     {1e-3f, 0.9f, 0.999f, 1e-8f, bc1, bc2, 0.0f, false, keras});
    for (i64 i = 0; i < n; ++i)
      EXPECT_NEAR(p0[i] - p[i], 1e-3 * (g[i] > 0 ? 1 : -1), 1e-7) << keras << " " << i;
  }
  // RMSprop: PyTorch's momentum form equals the plain form at the first step, bit for bit.
  {
    Vec pa = p0, va(n, 0.0f), ba(n, 0.0f), pb = p0, vb(n, 0.0f), bb(n, 0.0f);
    cpu::rmsprop_update(n, pa.data(), g.data(), va.data(), ba.data(),
                        {0.01f, 0.99f, 1e-8f, 0.0f, 0.0f});
    cpu::rmsprop_update(n, pb.data(), g.data(), vb.data(), bb.data(),
                        {0.01f, 0.99f, 1e-8f, 0.9f, 0.0f});
    EXPECT_TRUE(same_bits(pa, pb));
    // First step: v = (1 - alpha) g^2, so the move is lr * g / (sqrt(0.01) |g|) = 10 lr sign(g).
    for (i64 i = 0; i < n; ++i) EXPECT_NEAR(p0[i] - pa[i], 0.1 * (g[i] > 0 ? 1 : -1), 1e-6) << i;
  }
}

TEST(Optim, AdamBiasCorrectionsAreReproduciblePowers) {
  for (float b : {0.9f, 0.999f, 0.5f}) {
    for (i64 t : {1, 2, 3, 7, 10, 100, 1000, 12345, 1000000}) {
      const auto [bc1, bc2] = cpu::adam_bias_corrections(b, b, t);
      EXPECT_EQ(bc1, bc2);
      // The documented binary exponentiation, written out here.
      double r = 1.0, base = b;
      for (i64 e = t; e > 0; e >>= 1) {
        if (e & 1) r = r * base;
        base = base * base;
      }
      EXPECT_EQ(bc1, static_cast<float>(1.0 - r)) << b << " " << t;
      // And close to the true value (the double powers differ from pow by a few ulp).
      const double truth = 1.0 - std::pow(double(b), double(t));
      EXPECT_NEAR(bc1, truth, 2e-7 * truth + 1e-12) << b << " " << t;
    }
  }
  const auto [bc1, bc2] = cpu::adam_bias_corrections(0.9f, 0.999f, 1);
  EXPECT_EQ(bc1, static_cast<float>(1.0 - double(0.9f)));
  EXPECT_EQ(bc2, static_cast<float>(1.0 - double(0.999f)));
  // Keras's lr_t from the same corrections.
  EXPECT_EQ(detdl::adam_keras_lr(1e-3f, bc1, bc2),
            static_cast<float>(double(1e-3f) * std::sqrt(double(bc2)) / double(bc1)));
}

}  // namespace
